import Crypto
import Foundation
import NIOConcurrencyHelpers

/// The fake Plex Media Server's configuration (plex-wire.md §5).
public struct FakePMSConfig: Sendable, Codable, Equatable {
    public var machineIdentifier = "4f3c9a1e7b2d8c6f0a5e9d3b1c7f2a8e6d4b0c9f"
    public var version = "1.41.3.9314-a0bfb8370"
    public var friendlyName = "fake-pms"
    public var ownerToken = "ownr0000000000000000"
    public var userToken = "user0000000000000000"
    public var userTunerToken = "utnr0000000000000000"
    /// A valid plex.tv token with no access to this server: 401 here.
    public var otherToken = "othr0000000000000000"
    /// A long JWT-shaped token treated like `userToken`, so nothing assumes 20 characters.
    public var jwtToken =
        "eyJhbGciOiJIUzI1NiJ9." + String(repeating: "eyJzdWIiOiJzaGFyZWQtdXNlciJ9", count: 10) + ".c2ln"
    /// Answer 400 when query and header tokens differ or the query holds several different tokens.
    public var strict = true
    /// `GET /livetv/dvrs` for a shared user: `200-list`, `200-empty` or `403`.
    public var livetvDvrsForUser = "200-list"
    /// gzip responses when the client accepts it (applies to new connections).
    public var gzip = false
    /// Delay before answering `/library/sections` (to test validation timeouts), in milliseconds.
    public var validationDelayMs = 0
    /// Answer `/library/sections` with `302 Location: <this>` for every token (a login proxy or a misrouted
    /// URL in front of PMS): a sidecar that follows it would validate anything.
    public var redirectValidationTo: String? = nil
    /// Paths (prefixes) whose requests are answered by closing the connection without a response: PMS
    /// failing in the middle of a stream, as a crash or a restart does.
    public var abortPaths: [String] = []
    /// Paths (prefixes) whose requests are answered by resetting the connection (TCP RST, no response).
    public var resetPaths: [String] = []
    /// Answer `/library/sections` with this status for every token (a PMS in trouble: 500, 503).
    public var validationStatus: Int? = nil
    /// Answer `/library/sections` with 200 and this body for every token: something that is not PMS (a
    /// login page, a catch-all proxy) answering on PMS's address.
    public var validationBody: String? = nil
    /// The server preferences (`/:/prefs`), as a fresh install has them: Relay on, automatic port mapping.
    public var prefs: [String: String] = FakePMSConfig.installPrefs
    /// Accept `PUT /:/prefs` (200) without applying it, as a PMS that resets itself would: the read-back
    /// then differs.
    public var prefsWritesIgnored = false
    /// Keep the request log. Off for load runs (`make bench`), where it would grow by one entry per request;
    /// the per-path counts (`GET /__fake/counts`) are kept either way.
    public var recordRequests = true
    /// Any token beginning with this is a shared user's valid token (`make bench` fills the validator's cache
    /// with 100,000 different ones).
    public var userTokenPrefix: String? = nil

    public init() {}

    /// Preferences after an install, and what an upgrade resets (plex-wire §2.9: Relay and port mapping).
    public static let installPrefs: [String: String] = [
        "FriendlyName": "fake-pms", "RelayEnabled": "1", "ManualPortMappingMode": "0",
        "ManualPortMappingPort": "32400", "customConnections": "",
    ]
    /// Each preference's type, as `/:/prefs` reports it.
    public static let prefTypes: [String: String] = [
        "FriendlyName": "text", "RelayEnabled": "bool", "ManualPortMappingMode": "int", "ManualPortMappingPort": "int",
        "customConnections": "text",
    ]
}

/// The class of the token a request carried.
public enum TokenClass: String, Sendable, Codable {
    case owner = "OWNER"
    case user = "USER"
    case userTuner = "USER_TUNER"
    case jwt = "JWT"
    case other = "OTHER"
    case unknown = "UNKNOWN"
    case none = "NONE"

    /// Whether PMS would accept the token at all.
    var authorized: Bool { self == .owner || self == .user || self == .userTuner || self == .jwt }
    /// Whether the account has tuner entitlement.
    var entitled: Bool { self == .owner || self == .userTuner }
}

/// One request as received, for tests to read back. Tokens appear only as class labels
/// (`OWNER`, `USER`, …) or `unknown:<fingerprint>`, never raw.
public struct RecordedRequest: Sendable, Codable, Equatable {
    public var seq: Int
    public var method: String
    public var path: String
    /// The query exactly as received except that each `X-Plex-Token` value is replaced by its label.
    public var rawQuery: String
    public var queryTokens: [String]
    public var headerTokens: [String]
    public var smuggledTokens: [String]
    public var tokenClass: String
    public var status: Int
    public var clientIdentifier: String?
    public var sessionIdentifier: String?
    public var referer: String?
    public var connectionHeader: String?
    public var upgrade: String?
    /// `X-Plex-Product`: `plex-livetv-authz` marks the service's own requests (token validation).
    public var product: String?
    public var bodySha256: String?
    public var receivedAt: String
}

/// A request as the fake sees it.
public struct FakeRequest: Sendable {
    public var method: String
    public var target: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(method: String, target: String, headers: [(String, String)], body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name }?.1
    }
}

/// A response the fake sends.
public struct FakeResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Switch to the websocket protocol (101) instead of sending `body`.
    public var upgradeToWebSocket = false
    /// Hold the answer back this long (the server schedules it; the event loop is never blocked).
    public var delayMilliseconds = 0
    /// Close the connection instead of answering.
    public var abortConnection = false
    /// Reset the connection (RST) instead of answering.
    public var resetConnection = false
}

/// The routing and status matrix of plex-wire.md §5, as a pure function plus a request log.
public final class FakePMS: Sendable {
    private let state: NIOLockedValueBox<FakeState>

    public init(config: FakePMSConfig = FakePMSConfig()) {
        state = NIOLockedValueBox(FakeState(config: config))
    }

    public var config: FakePMSConfig { state.withLockedValue { $0.config } }

    public func update(_ change: (inout FakePMSConfig) -> Void) {
        state.withLockedValue { change(&$0.config) }
    }

    /// Every recorded request, optionally only those with `path`.
    public func requests(path: String? = nil) -> [RecordedRequest] {
        state.withLockedValue { state in path.map { p in state.log.filter { $0.path == p } } ?? state.log }
    }

    public func resetRequests() {
        state.withLockedValue {
            $0.log.removeAll()
            $0.counts.removeAll()
        }
    }

    /// How many requests each path has received (recorded or not).
    public var counts: [String: Int] { state.withLockedValue { $0.counts } }

    /// Each token's history (labels `OWNER`, `USER`, …).
    public var history: [String: FakeHistory] { state.withLockedValue { $0.playback.history } }

    /// The live session uuids tuned so far.
    public var liveSessions: [String: String] { state.withLockedValue { $0.playback.liveSessions } }

    /// The last request to `path`.
    public func last(path: String) -> RecordedRequest? { requests(path: path).last }

    static let h401 = Array(
        "<html><head><script>window.location = window.location.href.match(/(^.+\\/)[^\\/]*$/)[1] + 'web/index.html';</script><title>Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>"
            .utf8)
    static let h403 = Array(
        "<html><head><title>Forbidden</title></head><body><h1>403 Forbidden</h1></body></html>".utf8)

    /// Answers one request and (unless told not to) records it.
    public func handle(_ request: FakeRequest, record: Bool = true) -> FakeResponse {
        let config = self.config
        let split = request.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let rawPath = String(split[0])
        let rawQuery = split.count > 1 ? String(split[1]) : ""
        let path = rawPath.removingPercentEncoding ?? rawPath
        let params = Self.parseForm(rawQuery)
        let queryTokens = params.filter { $0.rawName == "X-Plex-Token" }.map(\.value)
        let smuggled = params.filter { $0.rawName != "X-Plex-Token" && $0.name.lowercased() == "x-plex-token" }.map(
            \.value)
        let headerTokens = request.headers.filter { $0.0.lowercased() == "x-plex-token" }.map(\.1)
        let distinct = Set((queryTokens + headerTokens).filter { !$0.isEmpty })
        let token = queryTokens.first { !$0.isEmpty } ?? headerTokens.first { !$0.isEmpty }
        let tokenClass = token.map { classify($0, config) } ?? .none

        var response: FakeResponse
        if config.abortPaths.contains(where: { path.hasPrefix($0) }) {
            response = FakeResponse(status: 502, headers: [], body: [])
            response.abortConnection = true
        } else if config.resetPaths.contains(where: { path.hasPrefix($0) }) {
            response = FakeResponse(status: 502, headers: [], body: [])
            response.resetConnection = true
        } else if path == "/library/sections", let status = config.validationStatus {
            response = Self.text(status, "<html><body><h1>\(status)</h1></body></html>")
            response.delayMilliseconds = config.validationDelayMs
        } else if path == "/library/sections", let body = config.validationBody {
            response = FakeResponse(status: 200, headers: [("Content-Type", "text/html")], body: Array(body.utf8))
        } else if config.strict, distinct.count > 1 {
            response = Self.text(400, "token carriers disagree")
        } else if let played = state.withLockedValue({
            Self.playback(&$0.playback, request, path: path, params: params, tokenClass: tokenClass)
        }) {
            response = played
        } else {
            response = route(request, path: path, params: params, tokenClass: tokenClass, config: config)
        }
        response.headers.append(("X-Plex-Protocol", "1.0"))
        guard record else { return response }
        state.withLockedValue { $0.counts[path, default: 0] += 1 }
        guard config.recordRequests else { return response }
        let labelled = Self.labelTokens(rawQuery, config)
        state.withLockedValue { state in
            state.seq += 1
            state.log.append(
                RecordedRequest(
                    seq: state.seq, method: request.method, path: path, rawQuery: labelled,
                    queryTokens: queryTokens.map { label($0, config) },
                    headerTokens: headerTokens.map { label($0, config) },
                    smuggledTokens: smuggled.map { label($0, config) }, tokenClass: tokenClass.rawValue,
                    status: response.upgradeToWebSocket ? 101 : response.status,
                    clientIdentifier: params.first { $0.name == "X-Plex-Client-Identifier" }?.value
                        ?? request.header("x-plex-client-identifier"),
                    sessionIdentifier: params.first { $0.name == "X-Plex-Session-Identifier" }?.value
                        ?? request.header("x-plex-session-identifier"),
                    referer: request.header("referer"), connectionHeader: request.header("connection"),
                    upgrade: request.header("upgrade"), product: request.header("x-plex-product"),
                    bodySha256: request.body.isEmpty
                        ? nil : SHA256.hash(data: request.body).map { String(format: "%02x", $0) }.joined(),
                    receivedAt: ISO8601DateFormatter().string(from: Date())))
        }
        return response
    }

    func classify(_ token: String, _ config: FakePMSConfig) -> TokenClass {
        switch token {
        case config.ownerToken: return .owner
        case config.userToken: return .user
        case config.userTunerToken: return .userTuner
        case config.jwtToken: return .jwt
        case config.otherToken: return .other
        case _ where config.userTokenPrefix.map { !$0.isEmpty && token.hasPrefix($0) } == true: return .user
        default: return .unknown
        }
    }

    func label(_ token: String, _ config: FakePMSConfig) -> String {
        let tokenClass = classify(token, config)
        if tokenClass != .unknown { return tokenClass.rawValue }
        if token.isEmpty { return "" }
        return "unknown:sha256:"
            + SHA256.hash(data: Array(token.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    static func labelTokens(_ rawQuery: String, _ config: FakePMSConfig) -> String {
        guard !rawQuery.isEmpty else { return "" }
        let fake = FakePMS(config: config)
        return rawQuery.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
            // Any spelling of the name (a smuggled carrier too): no raw token in a recording.
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = pair[0].replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            guard pair.count == 2, name.lowercased() == "x-plex-token" else { return String(part) }
            let value = pair[1].replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            return pair[0] + "=" + fake.label(value, config)
        }.joined(separator: "&")
    }

    struct Param {
        var rawName: String
        var name: String
        var value: String
    }

    static func parseForm(_ text: String) -> [Param] {
        text.split(separator: "&").map { part in
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let rawName = String(pieces[0])
            let rawValue = pieces.count > 1 ? String(pieces[1]) : ""
            return Param(
                rawName: rawName, name: rawName.removingPercentEncoding ?? rawName,
                value: rawValue.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? rawValue)
        }
    }

    /// PMS is lenient: a value mentioning Live TV at any of a few decoding depths counts.
    static func mentionsLiveTV(_ value: String) -> Bool {
        var layer = value
        for _ in 0..<4 {
            if layer.contains("/livetv/") || layer.contains("tv.plex.providers.epg.xmltv") { return true }
            guard let next = layer.removingPercentEncoding, next != layer else { return false }
            layer = next
        }
        return false
    }

    private func route(
        _ request: FakeRequest, path: String, params: [Param], tokenClass: TokenClass, config: FakePMSConfig
    ) -> FakeResponse {
        let json = (request.header("accept") ?? "").contains("application/json")
        let method = request.method
        if method == "OPTIONS" {
            return FakeResponse(
                status: 204,
                headers: [
                    ("Access-Control-Allow-Origin", "*"),
                    ("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"),
                    ("Access-Control-Allow-Headers", "X-Plex-Token, X-Plex-Client-Identifier, Content-Type"),
                ], body: [])
        }
        if path == "/identity" {
            return container(
                json,
                attributes: [
                    "size": "0", "claimed": "1", "machineIdentifier": config.machineIdentifier,
                    "version": config.version,
                ])
        }
        if path == "/library/sections", let location = config.redirectValidationTo {
            return FakeResponse(status: 302, headers: [("Location", location)], body: [])
        }
        guard tokenClass.authorized else {
            var response = FakeResponse(status: 401, headers: [("Content-Type", "text/html")], body: Self.h401)
            if path == "/library/sections" { response.delayMilliseconds = config.validationDelayMs }
            return response
        }
        let entitled = tokenClass.entitled
        let forbidden = FakeResponse(status: 403, headers: [("Content-Type", "text/html")], body: Self.h403)
        let values = { (name: String) in params.filter { $0.name.lowercased() == name }.map(\.value) }
        let liveParameter = { (names: [String]) in names.flatMap(values).contains(where: Self.mentionsLiveTV) }

        switch path {
        case "/":
            return container(json, attributes: rootAttributes(tokenClass, config))
        case "/library/sections":
            let sections = tokenClass == .owner ? ["Movies", "TV Shows", "Music"] : ["Movies", "TV Shows"]
            var response = container(
                json, attributes: ["size": String(sections.count), "title1": "Plex Library"],
                children: sections.enumerated().map {
                    ("Directory", ["key": String($0.offset + 1), "title": $0.element])
                })
            response.delayMilliseconds = config.validationDelayMs
            return response
        case "/media/providers":
            var children = [("MediaProvider", ["identifier": "com.plexapp.plugins.library", "title": "Library"])]
            if entitled {
                children.append(
                    (
                        "MediaProvider",
                        [
                            "identifier": "tv.plex.providers.epg.xmltv:135", "title": "Live TV & DVR",
                            "protocols": "livetv",
                        ]
                    ))
            }
            var attributes = rootAttributes(tokenClass, config)
            attributes["size"] = String(children.count)
            return container(json, attributes: attributes, children: children)
        case "/livetv/dvrs" where method == "GET" || method == "HEAD":
            if !entitled {
                switch config.livetvDvrsForUser {
                case "403": return forbidden
                case "200-empty": return container(json, attributes: ["size": "0"])
                default: break
                }
            }
            return container(
                json, attributes: ["size": "1"],
                children: [
                    ("Dvr", ["key": "135", "epgIdentifier": "tv.plex.providers.epg.xmltv:135", "language": "eng"])
                ])
        case "/:/prefs":
            guard tokenClass == .owner else { return forbidden }
            if method == "PUT" { return putPrefs(params, config) }
            guard method == "GET" || method == "HEAD" else { return Self.text(405, "method not allowed") }
            return prefs(json, config.prefs)
        case "/accounts", "/status/sessions":
            return tokenClass == .owner ? container(json, attributes: ["size": "0"]) : forbidden
        case "/:/websockets/notifications":
            if request.header("upgrade")?.lowercased() == "websocket" {
                var response = FakeResponse(status: 101, headers: [], body: [])
                response.upgradeToWebSocket = true
                return response
            }
            return Self.text(400, "websocket upgrade required")
        default:
            break
        }
        let liveOnly = ["/livetv/", "/tv.plex.providers.epg.xmltv:", "/media/grabbers/", "/media/subscriptions"]
        if liveOnly.contains(where: { path.hasPrefix($0) }) || path == "/media/subscriptions" {
            return entitled ? container(json, attributes: ["size": "0"]) : forbidden
        }
        if path.hasPrefix("/video/:/transcode/") {
            return liveParameter(["path"]) && !entitled ? forbidden : container(json, attributes: ["size": "0"])
        }
        if path == "/playQueues" || path.hasPrefix("/playQueues/") {
            let bodyLive = Self.parseForm(String(decoding: request.body, as: UTF8.self))
                .filter { ["uri", "path"].contains($0.name.lowercased()) }.contains { Self.mentionsLiveTV($0.value) }
            return (liveParameter(["uri", "path"]) || bodyLive) && !entitled
                ? forbidden : container(json, attributes: ["size": "0"])
        }
        let ordinary = ["/library/", "/hubs/", "/photo/:/transcode"]
        if ordinary.contains(where: { path.hasPrefix($0) }) {
            return container(json, attributes: ["size": "0"])
        }
        return Self.text(404, "not found")
    }

    private func rootAttributes(_ tokenClass: TokenClass, _ config: FakePMSConfig) -> [String: String] {
        var attributes = [
            "size": "0", "friendlyName": config.friendlyName, "machineIdentifier": config.machineIdentifier,
            "version": config.version, "myPlex": "1", "multiuser": "1",
            "allowTuners": tokenClass.entitled ? "1" : "0",
        ]
        if tokenClass == .owner {
            attributes["livetv"] = "1"
            attributes["ownerFeatures"] = "camera_upload,dvr,livetv,sync"
        }
        return attributes
    }

    /// Plex-wire §2.7: tune, transcode starts, media of the sessions they start (served to the token that
    /// started them and to tokenless requests, 403 to any other), keep-alives and history. `nil` for every
    /// other request.
    static func playback(
        _ playback: inout FakePlayback, _ request: FakeRequest, path: String, params: [Param], tokenClass: TokenClass
    ) -> FakeResponse? {
        let label = tokenClass.rawValue
        let value = { (name: String) in params.first { $0.name.lowercased() == name }?.value }
        let forbidden = FakeResponse(status: 403, headers: [("Content-Type", "text/html")], body: h403)
        let unauthorized = FakeResponse(status: 401, headers: [("Content-Type", "text/html")], body: h401)
        func media(_ owner: String?, _ body: String) -> FakeResponse {
            guard let owner else { return text(404, "no such session") }
            guard tokenClass == .none || label == owner else { return forbidden }
            return FakeResponse(
                status: 200, headers: [("Content-Type", "application/octet-stream")], body: Array(body.utf8))
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if request.method == "POST", isTunePath(path) {
            guard tokenClass.authorized else { return unauthorized }
            guard tokenClass.entitled else { return forbidden }
            playback.tunes += 1
            let uuid = String(format: "c1e26483-946b-4f8a-8120-%012x", playback.tunes)
            playback.liveSessions[uuid] = label
            let xml = """
                <?xml version="1.0" encoding="UTF-8"?>
                <MediaContainer size="1"><MediaSubscription key="809" type="rolling"><MediaGrabOperation>\
                <Video key="/livetv/sessions/\(uuid)"><Media><Part key="/livetv/sessions/\(uuid)/tsid/index.m3u8"/>\
                </Media></Video></MediaGrabOperation></MediaSubscription></MediaContainer>

                """
            return FakeResponse(
                status: 200,
                headers: [("Content-Type", "text/xml;charset=utf-8"), ("X-Plex-Activity", "fake-activity")],
                body: Array(xml.utf8))
        }
        guard request.method == "GET" || request.method == "HEAD" else { return nil }
        if segments.count >= 4, segments[1] == "livetv", segments[2] == "sessions" {
            return media(playback.liveSessions[segments[3]], path.hasSuffix(".m3u8") ? "#EXTM3U\n" : "TS")
        }
        let universal = "/video/:/transcode/universal/"
        if path.hasPrefix(universal + "session/") {
            let tsid = path.dropFirst((universal + "session/").count).split(separator: "/").first.map(String.init) ?? ""
            return media(playback.transcodeSessions[tsid], "M4S")
        }
        if path.hasPrefix(universal) {
            let action = String(path.dropFirst(universal.count))
            guard tokenClass.authorized else { return unauthorized }
            if action == "stop" || action == "ping" {
                if action == "stop", let tsid = value("session") { playback.transcodeSessions[tsid] = nil }
                return text(200, "")
            }
            if action.hasPrefix("decision") || action.hasPrefix("start"), let live = value("path"),
                mentionsLiveTV(live)
            {
                guard tokenClass.entitled else { return forbidden }
                if let tsid = value("session") { playback.transcodeSessions[tsid] = label }
                return text(200, action.hasPrefix("start.m3u8") ? "#EXTM3U\n" : "<MediaContainer size=\"0\"/>")
            }
            return nil
        }
        switch path {
        case "/:/timeline", "/:/progress":
            guard tokenClass.authorized else { return unauthorized }
            if let key = value("key"), mentionsLiveTV(key), !tokenClass.entitled { return forbidden }
            let item = value("ratingkey") ?? value("key") ?? "-"
            playback.history[label, default: FakeHistory()].timelines += 1
            playback.history[label, default: FakeHistory()].offsets[item] = Int(value("time") ?? "") ?? 0
            return text(200, "")
        case "/:/scrobble", "/:/unscrobble":
            guard tokenClass.authorized else { return unauthorized }
            guard let key = value("key") else { return text(400, "key required") }
            var history = playback.history[label, default: FakeHistory()]
            history.watched.removeAll { $0 == key }
            if path == "/:/scrobble" { history.watched.append(key) }
            playback.history[label] = history
            return text(200, "")
        default:
            return nil
        }
    }

    static func isTunePath(_ path: String) -> Bool {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return segments.count == 7 && segments[1] == "livetv" && segments[2] == "dvrs" && segments[4] == "channels"
            && segments[6] == "tune"
    }

    /// `PUT /:/prefs?Name=value&…`: every name must be a known preference (else 400, nothing applied).
    private func putPrefs(_ params: [Param], _ config: FakePMSConfig) -> FakeResponse {
        let changes = params.filter { $0.rawName != "X-Plex-Token" && !$0.name.hasPrefix("X-Plex-") }
        if let unknown = changes.first(where: { FakePMSConfig.prefTypes[$0.name] == nil }) {
            return Self.text(400, "unknown preference \(unknown.name)")
        }
        if !config.prefsWritesIgnored {
            update { config in for change in changes { config.prefs[change.name] = change.value } }
        }
        return FakeResponse(status: 200, headers: [], body: [])
    }

    /// `/:/prefs` as PMS shows it: `Setting` elements; in JSON, values typed (bool, int, text).
    private func prefs(_ json: Bool, _ prefs: [String: String]) -> FakeResponse {
        let ids = prefs.keys.sorted()
        guard json else {
            return container(
                false, attributes: ["size": String(ids.count)],
                children: ids.map { id in
                    let type = FakePMSConfig.prefTypes[id] ?? "text"
                    return (
                        "Setting",
                        [
                            "id": id, "label": id, "summary": "", "type": type,
                            "default": FakePMSConfig.installPrefs[id] ?? "", "value": prefs[id] ?? "", "hidden": "0",
                            "advanced": "0", "group": "network",
                        ]
                    )
                })
        }
        let settings: [[String: Any]] = ids.map { id in
            let value = prefs[id] ?? ""
            let typed: Any
            switch FakePMSConfig.prefTypes[id] {
            case "bool": typed = value == "1" || value == "true"
            case "int": typed = Int(value) ?? 0
            default: typed = value
            }
            return ["id": id, "type": FakePMSConfig.prefTypes[id] ?? "text", "value": typed, "hidden": false]
        }
        let object: [String: Any] = ["MediaContainer": ["size": ids.count, "Setting": settings]]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return FakeResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array(data))
    }

    /// What a PMS upgrade does to the preferences (plex-wire §2.9): Relay and port mapping back to their
    /// install values.
    public func simulateUpgrade() {
        update { config in
            for id in ["RelayEnabled", "ManualPortMappingMode", "ManualPortMappingPort"] {
                config.prefs[id] = FakePMSConfig.installPrefs[id]
            }
        }
    }

    static func text(_ status: Int, _ text: String) -> FakeResponse {
        FakeResponse(status: status, headers: [("Content-Type", "text/plain")], body: Array(text.utf8))
    }

    /// A MediaContainer in XML (default) or JSON (`Accept: application/json`).
    private func container(
        _ json: Bool, attributes: [String: String], children: [(String, [String: String])] = []
    ) -> FakeResponse {
        if json {
            var object: [String: Any] = [:]
            for (key, value) in attributes {
                if key == "allowTuners" { object[key] = value == "1" } else { object[key] = Int(value) ?? value as Any }
            }
            var grouped: [String: [[String: String]]] = [:]
            for (name, attrs) in children { grouped[name, default: []].append(attrs) }
            for (name, list) in grouped { object[name] = list }
            let data =
                (try? JSONSerialization.data(withJSONObject: ["MediaContainer": object], options: [.sortedKeys]))
                ?? Data()
            return FakeResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array(data))
        }
        func attributeText(_ attrs: [String: String]) -> String {
            attrs.sorted { $0.key < $1.key }.map { " \($0.key)=\"\(Self.xmlEscape($0.value))\"" }.joined()
        }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer\(attributeText(attributes))"
        if children.isEmpty {
            xml += "/>\n"
        } else {
            xml += ">\n" + children.map { "<\($0.0)\(attributeText($0.1))/>\n" }.joined() + "</MediaContainer>\n"
        }
        return FakeResponse(status: 200, headers: [("Content-Type", "text/xml;charset=utf-8")], body: Array(xml.utf8))
    }

    static func xmlEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// The fake's mutable state.
struct FakeState {
    var config: FakePMSConfig
    var log: [RecordedRequest] = []
    var counts: [String: Int] = [:]
    var seq = 0
    var playback = FakePlayback()
}

/// What one token has watched, as PMS records it (plex-wire §2.7): timelines and scrobbles.
public struct FakeHistory: Sendable, Codable, Equatable {
    /// Rating keys marked watched by `/:/scrobble` (and unmarked by `/:/unscrobble`).
    public var watched: [String] = []
    /// Timelines received, and the last `time` per rating key (the "continue watching" position).
    public var timelines = 0
    public var offsets: [String: Int] = [:]
}

/// Live playback as PMS keeps it: tuned sessions and transcode sessions, each owned by the token that
/// started it, and each token's history.
struct FakePlayback {
    var liveSessions: [String: String] = [:]
    var transcodeSessions: [String: String] = [:]
    var history: [String: FakeHistory] = [:]
    var tunes = 0
}
