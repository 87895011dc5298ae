import LiveTVAuthzCore
import Testing

/// SplitMix64: a tiny seeded generator so a failing case can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Builds hostile and ordinary requests out of fragments that hit every rule boundary.
struct RequestGenerator {
    static let owner = PlexToken("OWNERsecret9zz")!
    static let methods = ["GET", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", ""]
    static let bases = [
        "/livetv/", "/livetv/dvrs", "/livetv/dvrs/1/channels/2/tune", "/media/providers", "/media/grabbers/devices",
        "/tv.plex.providers.epg.xmltv:135/grid", "/media/subscriptions", "/media/subscriptions/template",
        "/media/subscriptions/809", "/video/:/transcode/universal/decision", "/playQueues", "/:/timeline", "/",
        "/identity", "/library/sections", "/photo/:/transcode", "livetv/dvrs", "*", "",
    ]
    static let suffixes = [
        "", "", "", "", "", "", "", "", "", "", "", "", "/x", "/x", "/..", "/.", "/%2e%2e", "/%252e%252E", "//",
        "/a%2fb", "/%00", "/%zz", "\\", "/a b", "/é",
        "/%25252F", "/..;", "/a%5C",
    ]
    static let names = [
        "X-Plex-Token", "X-Plex-Token", "x-plex-token", "X%2DPlex-Token", "X%252dPlex%252DToken", "path", "Path", "uri",
        "URI", "key", "guid", "hints%5Bguid%5D", "hints[ratingKey]", "hints%5Btitle%5D", "X-Plex-Session-Id", "type",
    ]
    static let values = [
        "user0000", "", "%20", "%2Flivetv%2Fsessions%2Fa", "%2Flibrary%2Fmetadata%2F1",
        "tv.plex.xmltv%3A%2F%2Fmovie%2Fx",
        "server%3A%2F%2Fm%2Fcom.plexapp.plugins.library%2Flivetv%2Fx", "%252Flivetv%252F..%252Fx",
        "http%3A%2F%2Fevil%2Flivetv%2Fx", "a%0d%0ab", "/library/metadata/9?x=/livetv/", "%2Flivetv%2F%2e%2e%2Flibrary",
        "com.plexapp.agents.imdb%3A%2F%2Ftt1", "%zz",
    ]
    static let headerOptions: [[HTTPField]] = [
        [], [HTTPField(name: "X-Plex-Token", value: "hdr00000")],
        [HTTPField(name: "x-plex-token", value: "hdr00000"), HTTPField(name: "Connection", value: "X-Plex-Token")],
        [HTTPField(name: "Referer", value: "https://x/#!/livetv/guide")],
        [HTTPField(name: "X-Plex-Session-Id", value: "s1")],
    ]
    static let bodies: [RequestBody] = [
        .none, .none, .unseen,
        .seen(bytes: Array("uri=%2Flivetv%2Fsessions%2Fa".utf8), contentType: "application/x-www-form-urlencoded"),
        .seen(bytes: Array("uri=%2Flibrary%2Fmetadata%2F1".utf8), contentType: "application/x-www-form-urlencoded"),
        .seen(bytes: Array(#"{"guid":"tv.plex.xmltv://movie/x"}"#.utf8), contentType: "application/json"),
        .seen(bytes: Array(#"{"guid":7}"#.utf8), contentType: "application/json"),
    ]

    var rng: SplitMix64

    mutating func pick<T>(_ options: [T]) -> T { options[Int(rng.next() % UInt64(options.count))] }

    mutating func request() -> AuthzRequest {
        var target = pick(Self.bases) + pick(Self.suffixes)
        let count = Int(rng.next() % 5)
        if count > 0 || rng.next() % 4 == 0 {
            let params = (0..<count).map { _ in
                rng.next() % 7 == 0 ? pick(Self.names) : "\(pick(Self.names))=\(pick(Self.values))"
            }
            target += "?" + params.joined(separator: rng.next() % 9 == 0 ? "&&" : "&")
        }
        return AuthzRequest(
            method: pick(Self.methods), target: target, headers: pick(Self.headerOptions), body: pick(Self.bodies))
    }
}

@Suite("Properties over generated requests")
struct PropertyTests {
    @Test(arguments: [ElevationMode.liveTV, .discoveryOnly, .all])
    func elevationImpliesCandidateTokenAndSafePath(_ mode: ElevationMode) async {
        var generator = RequestGenerator(rng: SplitMix64(state: 0x5EED_0000 + UInt64(mode.rawValue.count)))
        let classifier = LiveTVClassifier(mode: mode, references: LiveTVReferenceMatcher(machineIdentifier: "m"))
        var elevated = 0
        for index in 0..<20_000 / sanitizerDivisor {
            if index % 200 == 0 { await Task.yield() }
            let request = generator.request()
            let classification = classifier.classify(request)
            let decision = AuthzDecision.assumingValidToken(classification, ownerToken: RequestGenerator.owner)
            let target = request.target
            let ownerInTarget = decision.upstreamTarget.contains(RequestGenerator.owner.value)
            if decision.elevate {
                elevated += 1
                #expect(classification.surface != nil, "\(request.target)")
                #expect(classification.token.token != nil, "\(request.target)")
                #expect(PathSafety.check(target.path) == nil, "\(request.target)")
                #expect(!classification.token.smuggledCarrier, "\(request.target)")
                #expect(request.method != "OPTIONS" && !request.method.isEmpty)
                #expect(decision.upstreamToken == RequestGenerator.owner)
                // The owner token travels in the header only: no carrier is left, nothing else changed.
                #expect(!ownerInTarget, "\(request.target)")
                #expect(Self.withoutTokens(request.target.wire) == decision.upstreamTarget, "\(request.target)")
            } else {
                #expect(!ownerInTarget, "\(request.target)")
                #expect(decision.upstreamTarget == request.target.wire)
                #expect(decision.upstreamToken == classification.token.token)
                #expect(decision.upstreamToken != RequestGenerator.owner)
            }
        }
        // The generator must reach elevations at all, or the property says nothing.
        #expect(elevated > 200 / sanitizerDivisor, "only \(elevated) elevations generated")
    }

    /// An independent model of §6's removal: drop every `&`-separated component named exactly
    /// `X-Plex-Token`, keep the rest in order, drop the `?` when nothing is left.
    static func withoutTokens(_ target: String) -> String {
        guard let mark = target.firstIndex(of: "?") else { return target }
        let kept = target[target.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false).filter {
            part in part.prefix { $0 != "=" } != "X-Plex-Token"
        }
        return kept.isEmpty ? String(target[..<mark]) : target[...mark] + kept.joined(separator: "&")
    }
}
