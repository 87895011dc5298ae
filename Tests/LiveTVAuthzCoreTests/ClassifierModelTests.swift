import Foundation
import LiveTVAuthzCore
import Testing

/// Under a sanitizer (`make test-sanitizers`) the generated-request suites run a tenth of their cases: the
/// instrumented classifier is about ten times slower, and the point there is races and memory, not breadth.
let sanitizerDivisor = ProcessInfo.processInfo.environment["PLEXAUTHZ_SANITIZER"] == nil ? 1 : 10

/// The classifier against an independent model of elevation-rules §2–§6 (live-tv mode).
///
/// The model never decodes anything: every request is generated from a description whose meaning is known
/// by construction (this value is a Live TV reference, this path holds a dot segment three encodings deep,
/// this name is `path` encoded once), then encoded at random. The model reads the description, walks the
/// §4 table with plain string comparisons, and must reach the rule the classifier reaches from the bytes.
@Suite("Classifier against an independent model")
struct ClassifierModelTests {
    static let cases = 120_000 / sanitizerDivisor

    @Test func verdictsMatchTheModel() async {
        var generator = ModelGenerator(rng: SplitMix64(state: 0xC1A5_51F1))
        let classifier = LiveTVClassifier(mode: .liveTV, references: LiveTVReferenceMatcher(machineIdentifier: "m"))
        var seen: [String: Int] = [:]
        var mismatches = 0
        for index in 0..<Self.cases {
            // CPU-bound for seconds: let the other suites' tasks (servers in process among them) run meanwhile.
            if index % 200 == 0 { await Task.yield() }
            let spec = generator.request()
            let expected = ClassifierModel.rule(spec)
            let request = spec.authzRequest
            let actual = classifier.classify(request).rule.rawValue
            seen[expected, default: 0] += 1
            if actual != expected {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record(
                        "case \(index): model says \(expected), classifier says \(actual): \(request.method) \(request.target.wire) headers \(request.headers.map { "\($0.name): \($0.value)" }) body \(spec.body)"
                    )
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(Self.cases) verdicts differ from the model")
        // The generator must reach every rule the model knows, or agreement says little.
        for rule in ClassifierModel.rules {
            #expect(
                seen[rule, default: 0] >= 100 / sanitizerDivisor,
                "rule \(rule) reached only \(seen[rule, default: 0]) times")
        }
    }

    /// §2–§6's invariants on the same generated requests: elevation implies a candidate, a usable token and a
    /// safe path; the rewrite touches only token carriers and never puts the owner token in the URL.
    @Test func rewriteInvariantsHoldOnModelRequests() async {
        var generator = ModelGenerator(rng: SplitMix64(state: 0x0BAD_CAFE))
        let classifier = LiveTVClassifier(mode: .liveTV, references: LiveTVReferenceMatcher(machineIdentifier: "m"))
        let owner = PlexToken("OWNERsecret9zz")!
        var elevated = 0
        for index in 0..<40_000 / sanitizerDivisor {
            if index % 200 == 0 { await Task.yield() }
            let request = generator.request().authzRequest
            let classification = classifier.classify(request)
            let decision = AuthzDecision.assumingValidToken(classification, ownerToken: owner)
            #expect(!decision.upstreamTarget.contains(owner.value))
            if decision.elevate {
                elevated += 1
                #expect(classification.surface != nil && classification.token.token != nil)
                #expect(PathSafety.check(request.target.path) == nil)
                #expect(PropertyTests.withoutTokens(request.target.wire) == decision.upstreamTarget)
            } else {
                #expect(decision.upstreamTarget == request.target.wire)
                #expect(decision.upstreamToken == classification.token.token)
            }
        }
        #expect(elevated > 1_000 / sanitizerDivisor, "only \(elevated) elevations generated")
    }
}

/// A generated value with its meaning.
struct ValueSpec: CustomStringConvertible {
    var raw: String
    /// A Live TV reference in the sense of §5.
    var isReference: Bool
    var description: String { raw }
}

/// A query or form parameter: the name's meaning and how many times it was percent-encoded.
struct ParamSpec {
    var name: String
    var nameDepth: Int
    var rawName: String
    var value: ValueSpec
    /// For `X-Plex-Token` values: non-blank after form decoding, and a usable token.
    var tokenNonBlank = false
    var tokenUsable = false
}

enum BodySpec: CustomStringConvertible {
    case none
    case unseen
    case form([ParamSpec], contentType: String)
    /// Keys with string values (`nil`: a number, which is no reference).
    case json([(String, ValueSpec?)])
    case malformedJSON
    case other

    var description: String {
        switch self {
        case .none: return "none"
        case .unseen: return "unseen"
        case .form(let params, let type):
            return "form(\(type)) " + params.map { "\($0.rawName)=\($0.value.raw)" }.joined(separator: "&")
        case .json(let fields): return "json " + fields.map { "\($0.0)=\($0.1?.raw ?? "7")" }.joined(separator: ",")
        case .malformedJSON: return "malformed json"
        case .other: return "text/plain"
        }
    }
}

struct RequestSpec {
    var method: String
    var path: String
    var pathUnsafe: Bool
    var params: [ParamSpec]
    var headers: [HTTPField]
    /// Whether the first `Referer` is a Live TV page (known by construction).
    var refererIsLiveTVPage: Bool?
    var body: BodySpec
    var frontendRemovesQueryTokens: Bool

    var authzRequest: AuthzRequest {
        var target = path
        if !params.isEmpty { target += "?" + params.map { "\($0.rawName)=\($0.value.raw)" }.joined(separator: "&") }
        let requestBody: RequestBody
        switch body {
        case .none: requestBody = .none
        case .unseen: requestBody = .unseen
        case .form(let fields, let type):
            requestBody = .seen(
                bytes: Array(fields.map { "\($0.rawName)=\($0.value.raw)" }.joined(separator: "&").utf8),
                contentType: type)
        case .json(let fields):
            let members = fields.map { key, value in
                "\"\(key)\":" + (value.map { "\"\($0.raw)\"" } ?? "7")
            }
            requestBody = .seen(
                bytes: Array(("{" + members.joined(separator: ",") + "}").utf8), contentType: "application/json")
        case .malformedJSON:
            requestBody = .seen(bytes: Array(#"{"uri":"/livetv/x""#.utf8), contentType: "application/json")
        case .other:
            requestBody = .seen(bytes: Array("uri=/livetv/sessions/x".utf8), contentType: "text/plain")
        }
        var request = AuthzRequest(method: method, target: target, headers: headers, body: requestBody)
        request.frontendRemovesQueryTokens = frontendRemovesQueryTokens
        return request
    }
}

/// The model: §2–§6 read off the description with string comparisons only.
enum ClassifierModel {
    static let rules = [
        "unsafe-path", "token-smuggling", "body-unseen", "query-token-kept", "no-token", "none", "livetv",
        "livetv-tune", "providers", "grabbers", "epg-provider", "subscriptions-read", "subscriptions-template",
        "subscriptions-write", "subscriptions-teardown", "transcode", "play-queue", "timeline", "root-referer",
    ]

    static func rule(_ spec: RequestSpec) -> String {
        if spec.pathUnsafe { return "unsafe-path" }
        // A name that decodes (at any depth) to x-plex-token, unless it is literally X-Plex-Token.
        if spec.params.contains(where: { $0.name.lowercased() == "x-plex-token" && !isExactTokenName($0) }) {
            return "token-smuggling"
        }
        let hasToken = token(spec)
        let method = spec.method
        let path = spec.path
        if case .unseen = spec.body {
            let mutating =
                (method == "POST"
                    && (isTune(path) || under(path, "/playQueues") || under(path, "/media/subscriptions")))
                || (["PUT", "PATCH", "DELETE"].contains(method) && under(path, "/media/subscriptions"))
            if mutating { return "body-unseen" }
        }
        guard let surface = surface(spec) else { return "none" }
        let queryTokenCarriers = spec.params.contains(where: isExactTokenName)
        if !spec.frontendRemovesQueryTokens, hasToken, queryTokenCarriers { return "query-token-kept" }
        return hasToken ? surface : "no-token"
    }

    static func isExactTokenName(_ param: ParamSpec) -> Bool { param.nameDepth == 0 && param.name == "X-Plex-Token" }

    /// §6: the first exact query carrier with a non-blank value decides; else the header, unless `Connection`
    /// names it.
    static func token(_ spec: RequestSpec) -> Bool {
        if let first = spec.params.first(where: { isExactTokenName($0) && $0.tokenNonBlank }) {
            return first.tokenUsable
        }
        guard let header = spec.headers.first(where: { $0.name.lowercased() == "x-plex-token" }) else { return false }
        let hopByHop = spec.headers.contains { field in
            field.name.lowercased() == "connection"
                && field.value.split(separator: ",").contains { $0.trimmingSpaces.lowercased() == "x-plex-token" }
        }
        if hopByHop { return false }
        let value = header.value.trimmingSpaces
        return !value.isEmpty && !value.contains(" ")
    }

    static func surface(_ spec: RequestSpec) -> String? {
        let method = spec.method
        let path = spec.path
        let read = method == "GET" || method == "HEAD"
        let write = ["POST", "PUT", "PATCH", "DELETE"].contains(method)
        if path.hasPrefix("/livetv/") {
            if read { return "livetv" }
            if isTune(path), method == "POST" { return "livetv-tune" }
        }
        if path == "/media/providers", read { return "providers" }
        if path.hasPrefix("/media/grabbers/"), read { return "grabbers" }
        if path.hasPrefix("/tv.plex.providers.epg.xmltv:"), read { return "epg-provider" }
        if under(path, "/media/subscriptions") {
            let template = under(path, "/media/subscriptions/template")
            if !template, read { return "subscriptions-read" }
            if template, read, evidence(spec, body: false, isSubscriptionKey) { return "subscriptions-template" }
            if write, evidence(spec, body: true, isSubscriptionKey) { return "subscriptions-write" }
            let digits = path.dropFirst("/media/subscriptions/".count)
            if method == "DELETE", path.hasPrefix("/media/subscriptions/"), !digits.isEmpty,
                digits.allSatisfy(\.isASCIIDigit), hasSessionID(spec)
            {
                return "subscriptions-teardown"
            }
        }
        if path.hasPrefix("/video/:/transcode/"), read, evidence(spec, body: false, { $0 == "path" }) {
            return "transcode"
        }
        if under(path, "/playQueues"), read || method == "POST",
            evidence(spec, body: method == "POST", { $0 == "uri" || $0 == "path" })
        {
            return "play-queue"
        }
        if path == "/:/timeline", read, evidence(spec, body: false, { $0 == "key" }) { return "timeline" }
        if path == "/" || path == "/identity", read, spec.refererIsLiveTVPage == true { return "root-referer" }
        return nil
    }

    /// Every inspected value is a reference, and one is present. Names count when decoded once.
    static func evidence(_ spec: RequestSpec, body: Bool, _ isKey: (String) -> Bool) -> Bool {
        var found = false
        for param in spec.params where param.nameDepth <= 1 && isKey(param.name.lowercased()) {
            guard param.value.isReference else { return false }
            found = true
        }
        guard body else { return found }
        switch spec.body {
        case .form(let fields, let type):
            guard type.lowercased().hasPrefix("application/x-www-form-urlencoded") else { return found }
            for field in fields where field.nameDepth <= 1 && isKey(field.name.lowercased()) {
                guard field.value.isReference else { return false }
                found = true
            }
        case .json(let fields):
            for (key, value) in fields where isKey(key.lowercased()) {
                guard let value, value.isReference else { return false }
                found = true
            }
        case .malformedJSON:
            return false
        case .none, .unseen, .other:
            break
        }
        return found
    }

    static func isSubscriptionKey(_ name: String) -> Bool {
        let keys = ["guid", "key", "uri", "ratingkey"]
        return keys.contains(name) || keys.contains { name.hasSuffix("[\($0)]") }
    }

    static func hasSessionID(_ spec: RequestSpec) -> Bool {
        let names = ["x-plex-session-id", "x-plex-playback-session-id"]
        return spec.headers.contains { names.contains($0.name.lowercased()) && !$0.value.trimmingSpaces.isEmpty }
            || spec.params.contains {
                $0.nameDepth <= 1 && names.contains($0.name.lowercased()) && $0.value.raw != "" && $0.value.raw != "%20"
            }
    }

    static func under(_ path: String, _ base: String) -> Bool { path == base || path.hasPrefix(base + "/") }

    static func isTune(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 7 && parts[0].isEmpty && parts[1] == "livetv" && parts[2] == "dvrs" && !parts[3].isEmpty
            && parts[4] == "channels" && !parts[5].isEmpty && parts[6] == "tune"
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

/// Requests from a grammar of Plex paths, parameters, headers and bodies, each encoded at random.
struct ModelGenerator {
    var rng: SplitMix64

    mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }
    mutating func pick<T>(_ options: [T]) -> T { options[Int(rng.next() % UInt64(options.count))] }
    mutating func upTo(_ limit: Int) -> Int { Int(rng.next() % UInt64(limit + 1)) }

    static let safePaths = [
        "/livetv/dvrs", "/livetv/", "/livetv", "/livetv/dvrs/1/channels/2/tune", "/livetv/dvrs/7/channels/5.1/tune",
        "/media/subscriptions/template", "/media/subscriptions/template", "/livetv/dvrs/1/channels/2/tune",
        "/livetv/dvrs/1/channels/2/tune/x",
        "/livetv/dvrs/1/channels/2/tunes", "/livetv/sessions/abc/index.m3u8", "/livetv/%61", "/%6civetv/x",
        "/LIVETV/dvrs", "/media/providers", "/media/providers/1", "/media/grabbers/devices", "/media/grabbers/",
        "/media/grabbers", "/tv.plex.providers.epg.xmltv:135/grid", "/tv.plex.providers.epg.xmltv:",
        "/media/subscriptions", "/media/subscriptions/", "/media/subscriptions/809", "/media/subscriptions/809",
        "/media/subscriptions/80a", "/:/timeline",
        "/media/subscriptions/809/x", "/media/subscriptions/template", "/media/subscriptions/template/x",
        "/media/subscriptionsX", "/video/:/transcode/universal/decision", "/video/:/transcode/",
        "/video/:/transcode", "/playQueues", "/playQueues/12", "/playQueuesX", "/:/timeline", "/:/timeline/", "/",
        "/identity", "/identity/x", "/video/:/transcode/universal/decision", "/:/timeline", "/", "/library/sections",
        "/library/metadata/1", "/:/prefs", "/api/v2/user",
        "/myplex/account",
    ]
    /// Fragments that make a path unsafe at any encoding depth (`%` re-encoded as `%25` each time).
    static let unsafeFragments = [
        "/..", "/.", "//", "\\", "/%2e%2e", "/%2E", "/.%2e", "/a%2fb", "/a%2Fb", "/a%5cb", "/%00", "/a%20b", "/a b",
        "/%zz", "/%5", "/é", "/%C3%A9", "/a%0ab", "/a\u{7F}",
    ]
    static let methods = [
        "GET", "GET", "GET", "GET", "HEAD", "POST", "POST", "POST", "PUT", "PATCH", "DELETE", "DELETE",
        "DELETE", "OPTIONS", "get", "",
    ]
    static let references = [
        "/livetv/sessions/abc", "/livetv/dvrs/1", "server://m/com.plexapp.plugins.library/livetv/sessions/x",
        "server://m/livetv/x", "tv.plex.xmltv://movie/x1", "tv.plex.providers.epg.xmltv:135",
        "http://127.0.0.1:32400/livetv/sessions/a", "/tv.plex.providers.epg.xmltv:135/grid",
    ]
    static let nonReferences = [
        "/library/metadata/1", "/library/metadata/9?x=/livetv/", "com.plexapp.agents.imdb://tt1",
        "http://evil.example/livetv/x", "server://other/livetv/x", "/livetv/../library/sections", "/LIVETV/x",
        "tv.plex.xmltv://a/../b", "", "library://x/livetv/",
    ]
    static let evidenceNames = [
        "path", "Path", "PATH", "uri", "URI", "key", "Key", "guid", "GUID", "ratingKey", "hints[guid]",
        "hints[ratingKey]", "hints[uri]", "hints[title]", "type", "X-Plex-Session-Id", "x-plex-playback-session-id",
    ]
    static let smugglingNames = ["x-plex-token", "X-PLEX-TOKEN", "X-Plex-Token"]
    static let refererPages = [
        ("https://app.plex.tv/desktop/#!/livetv/guide", true), ("https://x/web/index.html#!/livetv/dvr", true),
        ("https://x/#!/tv.plex.providers.epg.xmltv:1/grid", true), ("https://x/#!/LiveTV/guide", true),
        ("https://x/#!/media/library", false), ("https://x/web/index.html", false), ("", false),
    ]

    /// Percent-encodes every byte outside the unreserved set (`everything`: every byte), `depth` times, with
    /// random hex case.
    mutating func encode(_ text: String, depth: Int, everything: Bool = false) -> String {
        var current = text
        for _ in 0..<depth {
            let upper = chance(70)
            var out = ""
            for byte in current.utf8 {
                let isUnreserved =
                    (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                    || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E
                if isUnreserved && !everything {
                    out.unicodeScalars.append(Unicode.Scalar(byte))
                } else {
                    let hex = String(byte, radix: 16)
                    let padded = (byte < 16 ? "0" : "") + (upper ? hex.uppercased() : hex)
                    out += "%" + padded
                }
            }
            current = out
        }
        return current
    }

    /// A value for an inspected name. References stay references up to three encodings (query values get a
    /// form step plus four rounds; JSON strings four rounds), and stop being one at seven.
    mutating func value(deepAllowed: Bool = true) -> ValueSpec {
        if chance(55) {
            let base = pick(Self.references)
            if deepAllowed, chance(5) { return ValueSpec(raw: encode(base, depth: 7), isReference: false) }
            let depth = upTo(3)
            // Unencoded, `?` and `&` are not in references; `=` never is either.
            return ValueSpec(raw: depth == 0 ? base : encode(base, depth: depth), isReference: true)
        }
        let base = pick(Self.nonReferences)
        return ValueSpec(raw: encode(base, depth: upTo(3)), isReference: false)
    }

    mutating func tokenParam() -> ParamSpec {
        let choices: [(String, Bool, Bool)] = [
            ("tok000000000000", true, true), ("tok000000000000", true, true), ("", false, false),
            ("%20%20", false, false),
            ("a%20b", true, false), ("x%01y", true, false), ("%C3%A9tok", true, false), ("%09tok000%09", true, true),
        ]
        let (raw, nonBlank, usable) = pick(choices)
        return ParamSpec(
            name: "X-Plex-Token", nameDepth: 0, rawName: "X-Plex-Token", value: ValueSpec(raw: raw, isReference: false),
            tokenNonBlank: nonBlank, tokenUsable: usable)
    }

    mutating func param() -> ParamSpec {
        if chance(10) { return tokenParam() }
        if chance(3) {
            let name = pick(Self.smugglingNames)
            let depth = name == "X-Plex-Token" ? 1 + upTo(2) : upTo(2)
            return ParamSpec(
                name: name, nameDepth: depth, rawName: encode(name, depth: depth, everything: true),
                value: ValueSpec(raw: "tok", isReference: false))
        }
        let name = pick(Self.evidenceNames)
        let depth = chance(80) ? 0 : 1 + upTo(1)
        var value = value()
        if name.lowercased().contains("session"), chance(30) {
            value = ValueSpec(raw: pick(["", "%20"]), isReference: false)
        }
        return ParamSpec(
            name: name, nameDepth: depth, rawName: encode(name, depth: depth, everything: true), value: value)
    }

    mutating func path() -> (String, Bool) {
        if chance(3) { return (pick(["*", "livetv/dvrs", "", "http://x/livetv/dvrs"]), true) }
        let base = pick(Self.safePaths)
        guard chance(12) else { return (base, false) }
        var fragment = pick(Self.unsafeFragments)
        for _ in 0..<upTo(3) { fragment = fragment.replacingPercent() }
        if chance(50) { return (base + fragment, true) }
        // In the middle: before the last segment.
        guard let slash = base.lastIndex(of: "/"), slash != base.startIndex else { return (fragment + base, true) }
        return (String(base[..<slash]) + fragment + String(base[slash...]), true)
    }

    mutating func request() -> RequestSpec {
        let (path, unsafe) = path()
        var params: [ParamSpec] = chance(45) ? [tokenParam()] : []
        for _ in 0..<upTo(4) { params.insert(param(), at: upTo(params.count)) }
        // Mostly, the parameter the path's surface inspects, so evidence rows are reached often.
        let relevant: [String: String] = [
            "/video/:/transcode/universal/decision": "path", "/:/timeline": "key", "/playQueues": "uri",
            "/media/subscriptions/809": "X-Plex-Session-Id", "/media/subscriptions/template": "guid",
        ]
        if let name = relevant[path], chance(70) {
            let value = name.hasSuffix("Id") ? ValueSpec(raw: "s1", isReference: false) : value()
            params.insert(ParamSpec(name: name, nameDepth: 0, rawName: name, value: value), at: upTo(params.count))
        }
        var headers: [HTTPField] = []
        if chance(30) {
            headers.append(
                HTTPField(
                    name: pick(["X-Plex-Token", "x-plex-token"]),
                    value: pick(["hdr0000000", " hdr0000000 ", "h d r", " ", "hdr0000000"])))
        }
        if chance(10) {
            headers.append(
                HTTPField(name: "Connection", value: pick(["X-Plex-Token", "keep-alive, x-plex-token", "keep-alive"])))
        }
        var refererIsLiveTVPage: Bool?
        if chance(path == "/" || path == "/identity" ? 80 : 25) {
            let (page, isLive) = pick(Self.refererPages)
            let depth = upTo(2)
            headers.append(HTTPField(name: pick(["Referer", "referer"]), value: encode(page, depth: depth)))
            refererIsLiveTVPage = isLive
        }
        if chance(10) { headers.append(HTTPField(name: "X-Plex-Session-Id", value: pick(["s1", "  "]))) }
        let body: BodySpec
        switch rng.next() % 20 {
        case 0, 1: body = .unseen
        case 2, 3:
            var fields: [ParamSpec] = []
            for _ in 0..<(1 + upTo(2)) {
                let name = pick(["uri", "path", "guid", "key", "hints[guid]", "title"])
                fields.append(ParamSpec(name: name, nameDepth: 0, rawName: name, value: value()))
            }
            body = .form(
                fields,
                contentType: pick([
                    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8",
                    "Application/X-WWW-Form-Urlencoded",
                ]))
        case 4, 5:
            var fields: [(String, ValueSpec?)] = []
            for _ in 0..<(1 + upTo(2)) {
                let key = pick(["uri", "path", "guid", "key", "title"])
                // JSON strings get no form step: at most four encoding rounds count, so keep references shallow.
                var value = value(deepAllowed: false)
                if value.isReference { value.raw = encode(pick(Self.references), depth: upTo(2)) }
                fields.append((key, chance(10) ? nil : value))
            }
            body = .json(fields)
        case 6: body = .malformedJSON
        case 7: body = .other
        default: body = .none
        }
        return RequestSpec(
            method: pick(Self.methods), path: path, pathUnsafe: unsafe, params: params, headers: headers,
            refererIsLiveTVPage: refererIsLiveTVPage, body: body, frontendRemovesQueryTokens: chance(85))
    }
}

extension String {
    fileprivate func replacingPercent() -> String {
        var out = ""
        for character in self { out += character == "%" ? "%25" : String(character) }
        return out
    }
}
