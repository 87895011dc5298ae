import FakePMS
import Foundation
import NIOHTTP1
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real nginx (Debian's, with the shipped frontends/nginx configuration), the real service binary and
/// the fake PMS, on ephemeral loopback ports. Every test checks that the owner token never reaches the
/// client and never reaches a log.
@Suite("nginx end to end", .serialized)
struct NginxEndToEndTests {
    func noOwnerLeak(_ responses: [ClientResponse], _ stack: Stack) {
        for response in responses {
            #expect(!response.everything.contains(ownerToken), "owner token sent to the client")
        }
        #expect(!stack.allLogs.contains(ownerToken), "owner token in a log line")
    }

    @Test func sharedUserBorrowsTheOwnerTokenForLiveTVOnly() async throws {
        try await Stack.with { stack in
            let live = try await stack.get(
                "/livetv/dvrs?X-Plex-Token=\(userToken)", headers: [("X-Forwarded-For", "203.0.113.10")])
            #expect(live.status == 200)
            #expect(live.body.contains("<Dvr ") && live.body.contains(" key=\"135\""))
            let upstream = try #require(stack.pms.last(path: "/livetv/dvrs"))
            // The owner token travels in the header only; the query carrier is gone.
            #expect(upstream.queryTokens.isEmpty && upstream.headerTokens == ["OWNER"])
            #expect(upstream.rawQuery == "")

            let library = try await stack.get("/library/sections?X-Plex-Token=\(userToken)&x=%20a+b%2F")
            #expect(library.status == 200)
            let preserved = try #require(stack.pms.last(path: "/library/sections"))
            #expect(preserved.queryTokens == ["USER"] && preserved.headerTokens == ["USER"])
            // Every other byte of the target arrives exactly as the client sent it.
            #expect(preserved.rawQuery == "X-Plex-Token=USER&x=%20a+b%2F")

            // A guide grid: elevated with its encoded query intact.
            let grid = try await stack.get(
                "/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4&X-Plex-Token=\(userToken)&beginsAt%3C=1767236400")
            #expect(grid.status == 200)
            #expect(
                stack.pms.last(path: "/tv.plex.providers.epg.xmltv:135/grid")?.rawQuery
                    == "type=1%2C4&beginsAt%3C=1767236400")
            #expect(stack.pms.last(path: "/tv.plex.providers.epg.xmltv:135/grid")?.headerTokens == ["OWNER"])
            noOwnerLeak([live, library, grid], stack)
        }
    }

    @Test func aByteThatIsNotUTF8ReachesPlexEscapedNotReplaced() async throws {
        try await Stack.with { stack in
            var bytes = Array("GET /library/sections?a=".utf8) + [0xFF]
            bytes += Array("&X-Plex-Token=\(userToken) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
            let answer = String(decoding: try await rawExchange(port: stack.nginxPort, bytes), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            #expect(stack.pms.last(path: "/library/sections")?.rawQuery == "a=%FF&X-Plex-Token=USER")
        }
    }

    @Test func headerOnlyAndQueryOnlyTokens() async throws {
        try await Stack.with { stack in
            let header = try await stack.get(
                "/media/providers", headers: [("X-Plex-Token", userToken), ("Accept", "application/json")])
            #expect(header.status == 200)
            let upstream = try #require(stack.pms.last(path: "/media/providers"))
            #expect(upstream.headerTokens == ["OWNER"] && upstream.queryTokens.isEmpty)
            #expect(header.body.contains("tv.plex.providers.epg.xmltv:135"))
            let query = try await stack.get("/media/providers?X-Plex-Token=\(userToken)")
            #expect(stack.pms.last(path: "/media/providers")?.queryTokens == [])
            #expect(stack.pms.last(path: "/media/providers")?.headerTokens == ["OWNER"])
            // Not a candidate, header token: forwarded as it is.
            let hubs = try await stack.get("/hubs/promoted", headers: [("X-Plex-Token", userToken)])
            #expect(hubs.status == 200)
            #expect(stack.pms.last(path: "/hubs/promoted")?.headerTokens == ["USER"])
            noOwnerLeak([header, query, hubs], stack)
        }
    }

    @Test func unrelatedFakeAndMissingTokensAreNeverElevated() async throws {
        try await Stack.with { stack in
            let other = try await stack.get(
                "/livetv/dvrs?X-Plex-Token=\(otherToken)", headers: [("X-Forwarded-For", "203.0.113.20")])
            #expect(other.status == 401)
            #expect(stack.pms.last(path: "/livetv/dvrs")?.queryTokens == ["OTHER"])
            #expect(stack.pms.last(path: "/livetv/dvrs")?.headerTokens == ["OTHER"])
            let fake = try await stack.get(
                "/livetv/dvrs", headers: [("X-Plex-Token", "fakefakefakefake"), ("X-Forwarded-For", "203.0.113.21")])
            #expect(fake.status == 401)
            #expect(stack.pms.last(path: "/livetv/dvrs")?.tokenClass == "UNKNOWN")
            let missing = try await stack.get("/livetv/dvrs", headers: [("X-Forwarded-For", "203.0.113.22")])
            #expect(missing.status == 401)
            #expect(stack.pms.last(path: "/livetv/dvrs")?.tokenClass == "NONE")
            // A hop-by-hop token header is neither used nor forwarded.
            let hop = try await stack.get(
                "/livetv/dvrs",
                headers: [
                    ("X-Plex-Token", userToken), ("Connection", "X-Plex-Token"), ("X-Forwarded-For", "203.0.113.23"),
                ])
            #expect(hop.status == 401)
            #expect(stack.pms.last(path: "/livetv/dvrs")?.tokenClass == "NONE")
            // A smuggled carrier beside a valid token: not elevated.
            let smuggled = try await stack.get("/livetv/dvrs?X-Plex-Token=\(userToken)&x-plex-token=\(otherToken)")
            #expect(stack.pms.last(path: "/livetv/dvrs")?.queryTokens == ["USER"])
            #expect(smuggled.status == 200)
            #expect(stack.pms.requests().allSatisfy { $0.tokenClass != "OWNER" || $0.path == "/library/sections" })
            noOwnerLeak([other, fake, missing, hop, smuggled], stack)
            let audit = stack.service.log
            #expect(audit.contains("outcome=deny_unauthorized_token"))
            #expect(audit.contains("outcome=deny_missing_token"))
        }
    }

    @Test func aBlockedSourceGets429AndOthersAreUnaffected() async throws {
        try await Stack.with { stack in
            var responses: [ClientResponse] = []
            for _ in 0..<5 {
                responses.append(try await stack.get("/livetv/dvrs", headers: [("X-Forwarded-For", "203.0.113.66")]))
            }
            #expect(responses.allSatisfy { $0.status == 401 })
            let blocked = try await stack.get("/livetv/dvrs", headers: [("X-Forwarded-For", "203.0.113.66")])
            #expect(blocked.status == 429)
            // The blocked source still passes with a valid token, and ordinary paths are untouched.
            let valid = try await stack.get(
                "/livetv/dvrs?X-Plex-Token=\(userToken)", headers: [("X-Forwarded-For", "203.0.113.66")])
            #expect(valid.status == 200)
            let library = try await stack.get("/library/sections", headers: [("X-Forwarded-For", "203.0.113.66")])
            #expect(library.status == 401)
            let otherSource = try await stack.get("/livetv/dvrs", headers: [("X-Forwarded-For", "203.0.113.67")])
            #expect(otherSource.status == 401)
            #expect(stack.service.log.contains("outcome=bad_actor_blocked"))
            #expect(stack.service.log.contains("outcome=blocked_bad_actor"))
            #expect(!stack.service.log.contains("203.0.113.66"))
            noOwnerLeak(responses + [blocked, valid, library, otherSource], stack)
        }
    }

    @Test func websocketUpgradePassesAndStripsAHopByHopToken() async throws {
        try await Stack.with { stack in
            let request = """
                GET /:/websockets/notifications?X-Plex-Token=\(userToken) HTTP/1.1\r
                Host: 127.0.0.1\r
                Connection: Upgrade\r
                Upgrade: websocket\r
                Sec-WebSocket-Version: 13\r
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
                \r

                """
            let answer = String(
                decoding: try await rawExchange(port: stack.nginxPort, Array(request.utf8)), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 101"))
            #expect(answer.contains("NotificationContainer"))
            let upstream = try #require(stack.pms.last(path: "/:/websockets/notifications"))
            #expect(upstream.status == 101 && upstream.upgrade?.lowercased() == "websocket")
            #expect(upstream.queryTokens == ["USER"])
            #expect(!answer.contains(ownerToken))
        }
    }

    @Test func serviceDownMeansOrdinaryTrafficUnelevated() async throws {
        try await Stack.with { stack in
            await stack.service.stop()
            let library = try await stack.get("/library/sections?X-Plex-Token=\(userToken)")
            #expect(library.status == 200)
            #expect(stack.pms.last(path: "/library/sections")?.queryTokens == ["USER"])
            let live = try await stack.get("/livetv/dvrs?X-Plex-Token=\(userToken)")
            // Plex itself answers the shared user (never the owner's view).
            #expect(stack.pms.last(path: "/livetv/dvrs")?.tokenClass == "USER")
            #expect(live.status == 200)
            let epg = try await stack.get("/livetv/epg/channels?X-Plex-Token=\(userToken)")
            #expect(epg.status == 403)
            noOwnerLeak([library, live, epg], stack)
        }
    }

    @Test func allowTunersHintIsRewrittenOnDiscoveryAnswers() async throws {
        try await Stack.with { stack in
            // /identity carries no allowTuners; the root does, for the shared user it is 0 at PMS.
            let root = try await stack.get("/?X-Plex-Token=\(userToken)")
            #expect(root.status == 200)
            #expect(stack.pms.last(path: "/")?.tokenClass == "USER")
            #expect(root.body.contains("allowTuners=\"1\""))
            #expect(!root.body.contains("allowTuners=\"0\""))
            let json = try await stack.get("/?X-Plex-Token=\(userToken)", headers: [("Accept", "application/json")])
            #expect(json.body.contains("\"allowTuners\":true"))
            noOwnerLeak([root, json], stack)
        }
    }

    @Test func mutatingRequestsWithUnseenBodiesAreNotElevated() async throws {
        try await Stack.with { stack in
            let live = "uri=server%3A%2F%2Fx%2Fcom.plexapp.plugins.library%2Flivetv%2Fsessions%2Fabc"
            let withBody = try await stack.get(
                "/playQueues?type=video&\(live)&X-Plex-Token=\(userToken)", method: .POST,
                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "uri=%2Flibrary%2Fmetadata%2F1")
            #expect(stack.pms.last(path: "/playQueues")?.queryTokens == ["USER"])
            #expect(withBody.status == 403)
            let tune = try await stack.get(
                "/livetv/dvrs/135/channels/c7pt/tune?X-Plex-Token=\(userToken)", method: .POST)
            #expect(tune.status == 200)
            #expect(stack.pms.last(path: "/livetv/dvrs/135/channels/c7pt/tune")?.queryTokens == [])
            #expect(stack.pms.last(path: "/livetv/dvrs/135/channels/c7pt/tune")?.headerTokens == ["OWNER"])
            noOwnerLeak([withBody, tune], stack)
        }
    }

    /// Plex failing during an elevated stream makes nginx log the upstream URL; the owner token must not
    /// be in it (it travels in the header only, elevation-rules §6).
    @Test func pmsFailingMidStreamLeavesNoOwnerTokenInNginxsErrorLog() async throws {
        try await Stack.with { stack in
            let tune = try await stack.get(
                "/livetv/dvrs/135/channels/c7pt/tune?X-Plex-Token=\(userToken)", method: .POST,
                headers: [("X-Plex-Session-Identifier", "s-mid-stream")])
            #expect(tune.status == 200)
            let uuid = try #require(stack.pms.liveSessions.keys.first)
            let segment = "/livetv/sessions/\(uuid)/tsid/00001.ts?offset=0&X-Plex-Token=\(userToken)"
            let ok = try await stack.get(segment)
            #expect(ok.status == 200)
            #expect(stack.pms.last(path: "/livetv/sessions/\(uuid)/tsid/00001.ts")?.headerTokens == ["OWNER"])
            // PMS drops the connection mid-stream (a crash or restart while playing).
            stack.pms.update { $0.abortPaths = ["/livetv/sessions/"] }
            let aborted = try await stack.get(segment)
            #expect(aborted.status == 502)
            // PMS gone altogether (connection refused): the token is still cached, so the request is
            // elevated and nginx logs the URL it could not reach.
            await stack.fake.shutdown()
            let refused = try await stack.get(segment)
            #expect(refused.status == 502)
            let errorLog =
                (try? String(contentsOf: stack.directory.appendingPathComponent("nginx-error.log"), encoding: .utf8))
                ?? ""
            #expect(errorLog.contains("upstream prematurely closed"), "\(errorLog)")
            #expect(errorLog.contains("upstream: \"http://127.0.0.1:"), "\(errorLog)")
            #expect(!errorLog.contains(ownerToken), "owner token in nginx's error log")
            noOwnerLeak([tune, ok, aborted, refused], stack)
        }
    }

    @Test func h2cInteropWithNghttpCurlAndH2load() async throws {
        try await Stack.with { stack in
            let url = "http://127.0.0.1:\(stack.serviceTCPPort)/v1/nginx"
            let headers = [
                "X-Plexauthz-Key: \(frontendKey)", "X-Original-Method: GET",
                "X-Original-URI: /livetv/dvrs?X-Plex-Token=\(userToken)", "X-Forwarded-For: 203.0.113.90",
            ]
            let nghttp = try await run("/usr/bin/nghttp", ["-v", "-n"] + headers.flatMap { ["-H", $0] } + [url])
            #expect(nghttp.contains(":status: 200") && nghttp.contains("x-plexauthz-decision: elevated"), "\(nghttp)")
            let curl = try await run(
                "/usr/bin/curl", ["-s", "-i", "--http2-prior-knowledge"] + headers.flatMap { ["-H", $0] } + [url])
            #expect(
                curl.hasPrefix("HTTP/2 200")
                    && curl.contains("x-plexauthz-uri: /livetv/dvrs\r\n")
                    && curl.contains("x-plexauthz-token: \(ownerToken)"))
            let noKey = try await run(
                "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge", url])
            #expect(noKey == "401")
            let load = try await run(
                "/usr/bin/h2load", ["-n", "2000", "-c", "4", "-m", "8"] + headers.flatMap { ["-H", $0] } + [url])
            #expect(load.contains("2000 succeeded, 0 failed, 0 errored"), "\(load)")
            #expect(load.contains("status codes: 2000 2xx"), "\(load)")
            // One PMS validation for all of them: the cache and single-flight at work.
            #expect(stack.pms.requests(path: "/library/sections").count == 1)
        }
    }
}

/// Runs a tool to completion and returns its output.
func run(_ executable: String, _ arguments: [String]) async throws -> String {
    let output = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tool-\(UUID().uuidString).out")
    let child = try ChildProcess(executable, arguments, output: output)
    try await eventually("\(executable) to finish", timeout: .seconds(60)) { !child.isRunning }
    let text = child.log
    try? FileManager.default.removeItem(at: output)
    return text
}
