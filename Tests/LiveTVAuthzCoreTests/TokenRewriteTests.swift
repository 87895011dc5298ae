import LiveTVAuthzCore
import Testing

@Suite("Token location and rewrite (§6)")
struct TokenRewriteTests {
    func decision(_ target: String, headers: [(String, String)] = [], owner: PlexToken = ownerToken) -> AuthzDecision {
        let request = AuthzRequest(
            method: "GET", target: target, headers: headers.map { HTTPField(name: $0.0, value: $0.1) })
        return AuthzDecision.assumingValidToken(classifier().classify(request), ownerToken: owner)
    }

    @Test func removesTheTokenComponentAndKeepsEveryOtherByte() {
        let d = decision("/livetv/dvrs?a=1&X-Plex-Token=\(userToken)&b=%20+x&c=%2F&d")
        #expect(d.elevate)
        #expect(d.upstreamTarget == "/livetv/dvrs?a=1&b=%20+x&c=%2F&d")
        #expect(d.upstreamToken?.value == ownerValue)
        #expect(d.upstreamQuery == "?a=1&b=%20+x&c=%2F&d")
    }

    @Test func removesEveryCarrierIncludingBlankAndBareOnes() {
        let d = decision("/livetv/dvrs?X-Plex-Token=%20&X-Plex-Token=\(userToken)&x=1&X-Plex-Token=other&&X-Plex-Token")
        #expect(d.elevate)
        #expect(d.classification.token.token?.value == userToken)
        #expect(d.classification.token.queryTokenParameters == 4)
        // The empty component between `&&` is a component too, kept as it was.
        #expect(d.upstreamTarget == "/livetv/dvrs?x=1&")
        #expect(!d.upstreamTarget.contains(userToken) && !d.upstreamTarget.contains("X-Plex-Token"))
    }

    @Test func aQueryOfOnlyTokensLosesItsQuestionMark() {
        #expect(decision("/livetv/dvrs?\(tok)").upstreamTarget == "/livetv/dvrs")
        #expect(decision("/livetv/dvrs?\(tok)").upstreamQuery == "?")
        #expect(decision("/livetv/dvrs?\(tok)&X-Plex-Token=").upstreamTarget == "/livetv/dvrs")
        // Names that only look like the carrier stay (an exact-name match only removes the carrier).
        #expect(decision("/livetv/dvrs?\(tok)&X-Plex-Tokens=1").upstreamTarget == "/livetv/dvrs?X-Plex-Tokens=1")
    }

    @Test func theOwnerTokenNeverAppearsInAnUpstreamTarget() {
        let owner = PlexToken("a+b/c&d=e%")!
        let d = decision("/livetv/dvrs?\(tok)&z=9", owner: owner)
        #expect(d.upstreamTarget == "/livetv/dvrs?z=9")
        #expect(d.upstreamToken?.value == "a+b/c&d=e%")
    }

    @Test func headerOnlyTokenKeepsTheTargetAndSwapsTheHeader() {
        let d = decision("/livetv/dvrs?x=1", headers: [("X-Plex-Token", userToken)])
        #expect(d.elevate)
        #expect(d.upstreamTarget == "/livetv/dvrs?x=1")
        #expect(d.upstreamToken == ownerToken)
        #expect(d.classification.token.carrier == .header)
        #expect(d.upstreamQuery == "?x=1")
        #expect(decision("/livetv/dvrs", headers: [("X-Plex-Token", userToken)]).upstreamQuery == "?")
    }

    @Test func queryTokenWinsOverADifferentHeaderToken() {
        let d = decision("/library/sections?\(tok)", headers: [("X-Plex-Token", "header000000000000000")])
        #expect(!d.elevate)
        #expect(d.classification.token.carrier == .query)
        #expect(d.upstreamToken?.value == userToken)
    }

    @Test func preservedRequestsKeepTheirTargetAndToken() {
        let target = "/library/sections?x=%2Flivetv%2F&\(tok)"
        let d = decision(target)
        #expect(!d.elevate)
        #expect(d.upstreamTarget == target)
        #expect(d.upstreamToken?.value == userToken)
        #expect(!d.upstreamTarget.contains(ownerValue))
    }

    @Test func notValidatedMeansNotElevated() {
        let request = AuthzRequest(method: "GET", target: "/livetv/dvrs?\(tok)")
        let d = AuthzDecision.preserving(classifier().classify(request))
        #expect(!d.elevate)
        #expect(d.upstreamTarget == "/livetv/dvrs?\(tok)")
        #expect(d.upstreamToken?.value == userToken)
    }

    @Test func hopByHopHeaderTokenIsNeitherUsedNorForwarded() {
        let d = decision(
            "/library/sections", headers: [("X-Plex-Token", userToken), ("Connection", "close, X-Plex-Token")])
        #expect(d.classification.token.hopByHopHeaderToken)
        #expect(d.upstreamToken == nil)
    }

    @Test func constantTimeEqualityAgreesWithEquality() {
        let pairs = [
            ("abc", "abc"), ("abc", "abd"), ("abc", "abcd"), ("abcd", "abc"), ("a", "b"), (ownerValue, ownerValue),
        ]
        for (a, b) in pairs {
            #expect(PlexToken(a)!.constantTimeEquals(PlexToken(b)!) == (a == b), "\(a) vs \(b)")
        }
    }

    @Test func tokensPrintOnlyTheirFingerprint() {
        let token = PlexToken(userToken)!
        #expect("\(token)" == token.fingerprint)
        #expect(String(reflecting: token) == "PlexToken(\(token.fingerprint))")
        #expect(!"\(token)".contains(userToken))
        #expect(token.fingerprint.hasPrefix("sha256:") && token.fingerprint.count == 23)
        // SHA-256("user0000000000000000"), first 8 bytes: checked with sha256sum.
        #expect(Fingerprint.of("  \(userToken)\n") == token.fingerprint)
    }
}

@Suite("Bodies")
struct BodyTests {
    @Test func formBodyNamesAreDecodedAndCaseInsensitive() {
        let request = AuthzRequest(
            method: "POST", target: "/playQueues?\(tok)",
            body: form("URI=%2Flivetv%2Fsessions%2Fabc&own=1"))
        #expect(decide(request).rule == .playQueue)
    }

    @Test func contentTypeParametersAreIgnoredButTheMediaTypeMustMatch() {
        let body = "uri=%2Flivetv%2Fsessions%2Fabc"
        let withCharset = AuthzRequest(
            method: "POST", target: "/playQueues?\(tok)",
            body: .seen(bytes: Array(body.utf8), contentType: "Application/X-WWW-Form-URLEncoded; charset=UTF-8"))
        #expect(decide(withCharset).rule == .playQueue)
        let untyped = AuthzRequest(
            method: "POST", target: "/playQueues?\(tok)", body: .seen(bytes: Array(body.utf8), contentType: nil))
        #expect(decide(untyped).rule == .none)
    }

    @Test func jsonEscapesAreDecodedBeforeJudging() {
        let escaped = #"{"\u0075ri":"\/livetv\/sessions\/abc"}"#
        #expect(
            decide(AuthzRequest(method: "POST", target: "/playQueues?\(tok)", body: json(escaped))).rule == .playQueue)
        let smuggled = #"{"uri":"/livetv/sessions/abc","URI":"/library/metadata/1"}"#
        #expect(decide(AuthzRequest(method: "POST", target: "/playQueues?\(tok)", body: json(smuggled))).rule == .none)
    }

    @Test func deeplyNestedJsonIsSkippedWithoutRecursion() {
        let nested = String(repeating: "[", count: 30_000) + String(repeating: "]", count: 30_000)
        let body = #"{"x":"# + nested + #","uri":"/livetv/sessions/abc"}"#
        #expect(decide(AuthzRequest(method: "POST", target: "/playQueues?\(tok)", body: json(body))).rule == .playQueue)
    }

    @Test(arguments: ["", "[]", "{", #"{"uri"}"#, #"{"uri":"/livetv/x",}"#, #"{"uri":"/livetv/x"} x"#, #"{"uri":tru}"#])
    func invalidJsonNeverElevates(_ body: String) {
        let request = AuthzRequest(method: "POST", target: "/playQueues?uri=%2Flivetv%2Fx&\(tok)", body: json(body))
        let rule = decide(request).rule
        // An empty body is no body: the query evidence alone decides.
        #expect(rule == (body.isEmpty ? .playQueue : .none))
    }
}

@Suite("Header-safe bytes")
struct HeaderSafeTests {
    /// The word-at-a-time scan agrees with the byte predicate for every byte value at every position.
    @Test func fastScanAgreesWithTheBytePredicate() {
        for length in 0..<40 {
            for position in 0..<max(length, 1) {
                for value in UInt8.min...UInt8.max {
                    var bytes = [UInt8](repeating: 0x61, count: length)
                    if length > 0 { bytes[position] = value }
                    #expect(
                        PercentEscaping.hasHeaderUnsafe(bytes) == bytes.contains(where: PercentEscaping.isHeaderUnsafe),
                        "length \(length), byte \(value) at \(position)")
                }
            }
        }
    }
}
