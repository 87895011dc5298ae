import AsyncHTTPClient
import FakePMS
import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import LiveTVAuthzHTTP
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private func request(_ lines: [String]) -> [UInt8] {
    Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
}

@Suite("Decision server")
struct ServerTests {
    @Test func tcpNeedsTheFrontendKeyAndAnswersCarryEveryHeader() async throws {
        try await InProcessService.with { s in
            for key in [nil, "wrong-key-wrong-key-wrong", String(frontendKey.dropLast()), frontendKey + "x"] {
                let denied = try await s.nginx("/livetv/dvrs?X-Plex-Token=\(userToken)", key: key)
                #expect(denied.status == 401)
                #expect(
                    !denied.headers.contains {
                        $0.name.lowercased().hasPrefix("x-plexauthz") || $0.name.lowercased() == "x-plex-token"
                    })
                #expect(!denied.body.contains(ownerToken))
            }
            let allowed = try await s.nginx("/livetv/dvrs?X-Plex-Token=\(userToken)")
            #expect(allowed.status == 200)
            #expect(allowed.headers.first(name: "X-Plexauthz-Decision") == "elevated")
            #expect(allowed.headers.first(name: "X-Plexauthz-Rule") == "livetv")
            #expect(allowed.headers.first(name: "X-Plexauthz-Token") == ownerToken)
            #expect(allowed.headers.first(name: "X-Plex-Token") == ownerToken)
            // The owner token is in the token headers only, never in a target (elevation-rules §6).
            #expect(allowed.headers.first(name: "X-Plexauthz-Uri") == "/livetv/dvrs")
            #expect(allowed.headers.first(name: "X-Plexauthz-Query") == "?")
            #expect(allowed.headers.first(name: "Cache-Control") == "no-store")
            let preserved = try await s.nginx("/library/sections")
            #expect(preserved.status == 200)
            #expect(preserved.headers.first(name: "X-Plexauthz-Decision") == "preserved")
            #expect(preserved.headers.first(name: "X-Plexauthz-Token") == "")
            #expect(preserved.headers.first(name: "X-Plexauthz-Query") == "?")
        }
    }

    @Test func unixSocketIsGroupOnlyAndNeedsNoKey() async throws {
        try await InProcessService.with { s in
            var status = stat()
            #expect(stat(s.socket, &status) == 0)
            #expect(status.st_mode & 0o777 == 0o660)
            let output = try await run(
                "/usr/bin/curl",
                [
                    "-s", "-i", "--unix-socket", s.socket, "http://x/v1/nginx", "-H", "X-Original-Method: GET",
                    "-H", "X-Original-URI: /livetv/dvrs?X-Plex-Token=\(userToken)",
                ])
            #expect(output.hasPrefix("HTTP/1.1 200"))
            #expect(output.contains("X-Plexauthz-Decision: elevated"))
        }
    }

    @Test func brokenSubrequestIs500AndUnknownPathIs404() async throws {
        try await InProcessService.with { s in
            let missing = try await s.send(
                "/v1/nginx", headers: [("X-Plexauthz-Key", frontendKey), ("X-Original-Method", "GET")])
            #expect(missing.status == 500)
            #expect(missing.body.contains("X-Original-URI"))
            #expect(!missing.headers.contains { $0.name.lowercased().hasPrefix("x-plexauthz") })
            let forward = try await s.send(
                "/v1/forward", headers: [("X-Plexauthz-Key", frontendKey), ("X-Forwarded-Uri", "/livetv/dvrs")])
            #expect(forward.status == 500)
            let unknown = try await s.send("/v1/other", headers: [("X-Plexauthz-Key", frontendKey)])
            #expect(unknown.status == 404)
        }
    }

    @Test func forwardAuthAndEnvoyAdapters() async throws {
        try await InProcessService.with { s in
            let forward = try await s.send(
                "/v1/forward",
                headers: [
                    ("X-Plexauthz-Key", frontendKey), ("X-Forwarded-Method", "GET"),
                    ("X-Forwarded-Uri", "/tv.plex.providers.epg.xmltv:135/grid?X-Plex-Token=\(userToken)"),
                ])
            #expect(forward.headers.first(name: "X-Plexauthz-Rule") == "epg-provider")
            #expect(forward.headers.first(name: "X-Plex-Token") == ownerToken)
            let envoyGet = try await s.send(
                "/v1/envoy/livetv/dvrs?X-Plex-Token=\(userToken)", headers: [("X-Plexauthz-Key", frontendKey)])
            #expect(envoyGet.status == 200 && envoyGet.headers.first(name: "X-Plexauthz-Decision") == "elevated")
            let live = "uri=%2Flivetv%2Fsessions%2Fabc"
            let envoyBody = try await s.send(
                "/v1/envoy/playQueues?X-Plex-Token=\(userToken)", method: .POST,
                headers: [("X-Plexauthz-Key", frontendKey), ("Content-Type", "application/x-www-form-urlencoded")],
                body: Array(live.utf8))
            #expect(envoyBody.headers.first(name: "X-Plexauthz-Rule") == "play-queue")
            #expect(envoyBody.headers.first(name: "X-Plexauthz-Decision") == "elevated")
            let huge = Array((live + "&pad=" + String(repeating: "a", count: 70_000)).utf8)
            let envoyHuge = try await s.send(
                "/v1/envoy/playQueues?X-Plex-Token=\(userToken)", method: .POST,
                headers: [("X-Plexauthz-Key", frontendKey), ("Content-Type", "application/x-www-form-urlencoded")],
                body: huge)
            #expect(envoyHuge.headers.first(name: "X-Plexauthz-Rule") == "body-unseen")
            #expect(envoyHuge.headers.first(name: "X-Plexauthz-Decision") == "preserved")
            let declared = try await s.nginx(
                "/playQueues?\(live)&X-Plex-Token=\(userToken)", method: "POST",
                extra: [("X-Original-Content-Length", "41")])
            #expect(declared.headers.first(name: "X-Plexauthz-Rule") == "body-unseen")
            let empty = try await s.nginx(
                "/playQueues?\(live)&X-Plex-Token=\(userToken)", method: "POST",
                extra: [("X-Original-Content-Length", "0")])
            #expect(empty.headers.first(name: "X-Plexauthz-Rule") == "play-queue")
        }
    }

    /// Traefik forwards the client's target as it is and cannot say whether there was a body.
    @Test func traefikNeverElevatesAQueryTokenOrAnUnseenBody() async throws {
        try await InProcessService.with { s in
            func traefik(_ method: String, _ target: String, _ extra: [(String, String)] = [], body: [UInt8]? = nil)
                async throws -> (rule: String?, token: String?)
            {
                let answer = try await s.send(
                    "/v1/traefik",
                    headers: [
                        ("X-Plexauthz-Key", frontendKey), ("X-Forwarded-Method", method), ("X-Forwarded-Uri", target),
                        ("X-Forwarded-For", "203.0.113.5"),
                    ] + extra, body: body)
                #expect(answer.status == 200)
                return (answer.headers.first(name: "X-Plexauthz-Rule"), answer.headers.first(name: "X-Plex-Token"))
            }
            let query = try await traefik("GET", "/livetv/dvrs?X-Plex-Token=\(userToken)")
            #expect(query.rule == "query-token-kept" && query.token == userToken)
            let header = try await traefik("GET", "/livetv/dvrs", [("X-Plex-Token", userToken)])
            #expect(header.rule == "livetv" && header.token == ownerToken)
            let both = try await traefik("GET", "/livetv/dvrs?X-Plex-Token=", [("X-Plex-Token", userToken)])
            #expect(both.rule == "query-token-kept" && both.token == userToken)
            let tune = "/livetv/dvrs/135/channels/c7pt/tune"
            // Without forwardBody Traefik says nothing about a body: a stream start is never elevated.
            let unmarked = try await traefik("POST", tune, [("X-Plex-Token", userToken)])
            #expect(unmarked.rule == "body-unseen" && unmarked.token == userToken)
            // The marker comes from the frontend's own configuration (Traefik's headers middleware on the
            // writes router overwrites a client's copy), and only with forwardBody is the subrequest's body
            // the original's.
            let marked = [("X-Plex-Token", userToken), ("X-Plexauthz-Body", "forwarded")]
            let empty = try await traefik("POST", tune, marked)
            #expect(empty.rule == "livetv-tune" && empty.token == ownerToken)
            let live = "uri=%2Flivetv%2Fsessions%2Fabc"
            let queue = try await traefik(
                "POST", "/playQueues?type=video", marked + [("Content-Type", "application/x-www-form-urlencoded")],
                body: Array(live.utf8))
            #expect(queue.rule == "play-queue" && queue.token == ownerToken)
            let library = try await traefik(
                "POST", "/playQueues?type=video&\(live)",
                marked + [("Content-Type", "application/x-www-form-urlencoded")],
                body: Array("uri=%2Flibrary%2Fmetadata%2F1".utf8))
            #expect(library.rule == "none" && library.token == userToken)
            let ordinary = try await traefik("GET", "/library/sections?X-Plex-Token=\(userToken)")
            #expect(ordinary.rule == "none" && ordinary.token == userToken)
        }
    }

    @Test func hopByHopTokenFromNginxIsIgnored() async throws {
        try await InProcessService.with { s in
            let hop = try await s.nginx(
                "/livetv/dvrs",
                extra: [("X-Plex-Token", userToken), ("X-Original-Connection", "keep-alive, X-Plex-Token")])
            #expect(hop.headers.first(name: "X-Plexauthz-Rule") == "no-token")
            #expect(hop.headers.first(name: "X-Plexauthz-Token") == "")
        }
    }

    @Test func decisionHeadersNeverCarryRawBracesSpacesOrControls() async throws {
        try await InProcessService.with { s in
            let answer = try await s.nginx("/library/{x}?a={b}&X-Plex-Token=\(userToken)")
            #expect(
                answer.headers.first(name: "X-Plexauthz-Uri") == "/library/%7Bx%7D?a=%7Bb%7D&X-Plex-Token=\(userToken)")
            #expect(answer.headers.first(name: "X-Plexauthz-Query") == "?a=%7Bb%7D&X-Plex-Token=\(userToken)")
        }
        #expect(PercentEscaping.headerSafe(Array("/a b\u{7}é%20{}".utf8)) == "/a%20b%07%C3%A9%20%7B%7D")
    }

    /// The original target is bytes: a byte that is not UTF-8 goes out percent-escaped, never replaced
    /// by U+FFFD (which PMS would receive as %EF%BF%BD).
    @Test func targetBytesThatAreNotUTF8ArePercentEscapedNotReplaced() async throws {
        try await InProcessService.with { s in
            var bytes = Array("GET /v1/nginx HTTP/1.1\r\nHost: x\r\nX-Plexauthz-Key: \(frontendKey)\r\n".utf8)
            bytes += Array("X-Original-Method: GET\r\nX-Original-URI: /library/x?a=".utf8) + [0xFF, 0xC3]
            bytes += Array("&X-Plex-Token=\(userToken)\r\nConnection: close\r\n\r\n".utf8)
            let answer = String(decoding: try await rawExchange(port: s.tcpPort, bytes), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 200"))
            #expect(answer.contains("X-Plexauthz-Uri: /library/x?a=%FF%C3&X-Plex-Token=\(userToken)\r\n"), "\(answer)")
            #expect(!answer.contains("%EF%BF%BD"))
        }
    }

    @Test func blockedSourceGets403WithoutTokenHeaders() async throws {
        try await InProcessService.with(policy: AbusePolicy(threshold: 2)) { s in
            _ = try await s.nginx("/livetv/dvrs")
            _ = try await s.nginx("/livetv/dvrs")
            let blocked = try await s.nginx("/livetv/dvrs")
            #expect(blocked.status == 403)
            #expect(blocked.headers.first(name: "X-Plexauthz-Decision") == "blocked")
            #expect(
                blocked.headers.first(name: "X-Plexauthz-Token") == nil
                    && blocked.headers.first(name: "X-Plex-Token") == nil)
        }
    }

    /// Traefik hands a non-2xx answer to the client unchanged and cannot map a status, so its endpoint says
    /// 429 itself; nginx's stays 403 (its config maps it).
    @Test func traefikBlockedSourceGets429DirectlyWithoutTokenHeaders() async throws {
        try await InProcessService.with(policy: AbusePolicy(threshold: 2)) { s in
            let headers = [
                ("X-Plexauthz-Key", frontendKey), ("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/livetv/dvrs"),
                ("X-Forwarded-For", "203.0.113.41"),
            ]
            for _ in 1...2 { #expect(try await s.send("/v1/traefik", headers: headers).status == 200) }
            let blocked = try await s.send("/v1/traefik", headers: headers)
            #expect(blocked.status == 429)
            #expect(blocked.headers.first(name: "X-Plexauthz-Decision") == "blocked")
            #expect(blocked.headers.first(name: "X-Plex-Token") == nil)
            let other = try await s.send(
                "/v1/traefik", headers: Array(headers.dropLast()) + [("X-Forwarded-For", "203.0.113.42")])
            #expect(other.status == 200)
        }
    }

    @Test func limitsAnswer431And414And400() async throws {
        try await InProcessService.with { s in
            let bigHeader = "X-Padding: " + String(repeating: "a", count: 33 * 1024)
            let tooLarge = String(
                decoding: try await rawExchange(
                    port: s.tcpPort, request(["GET /healthz HTTP/1.1", "Host: x", bigHeader])), as: UTF8.self)
            #expect(tooLarge.hasPrefix("HTTP/1.1 431"))
            let longTarget = "/livetv/" + String(repeating: "a", count: 17 * 1024)
            let tooLong = try await s.nginx(longTarget)
            #expect(tooLong.status == 414)
            let malformed = String(
                decoding: try await rawExchange(port: s.tcpPort, Array("GARBAGE\r\n\r\n".utf8)), as: UTF8.self)
            #expect(malformed.hasPrefix("HTTP/1.1 400"))
            #expect(malformed.lowercased().contains("connection: close"))
            // The server is still there.
            #expect(try await s.send("/healthz", headers: []).status == 200)
        }
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        try await InProcessService.with { s in
            let one = request(["GET /healthz HTTP/1.1", "Host: x"])
            let answer = String(decoding: try await rawExchange(port: s.tcpPort, one + one + one), as: UTF8.self)
            #expect(answer.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        }
    }

    /// HTTP/1.1 answers leave in request order even when an earlier decision waits for PMS and later ones are
    /// ready at once: an answer carrying the owner token must never reach another request.
    @Test func pipelinedAnswersKeepRequestOrderWhileADecisionWaitsForPMS() async throws {
        try await InProcessService.with { s in
            s.fake.pms.update { $0.validationDelayMs = 300 }
            func decision(_ target: String, close: Bool = false) -> [UInt8] {
                request(
                    [
                        "GET /v1/nginx HTTP/1.1", "Host: x", "X-Plexauthz-Key: \(frontendKey)",
                        "X-Original-Method: GET",
                        "X-Original-URI: \(target)", "X-Forwarded-For: 203.0.113.41",
                    ] + (close ? ["Connection: close"] : []))
            }
            let pipelined =
                decision("/livetv/dvrs?mark=1&X-Plex-Token=\(userToken)")  // waits for PMS, elevated
                + decision("/library/sections?mark=2&X-Plex-Token=\(otherToken)")  // ready at once
                + decision("/livetv/dvrs?mark=3&X-Plex-Token=\(otherToken)")  // waits for PMS, refused there
                + decision("/library/sections?mark=4&X-Plex-Token=\(userToken)", close: true)  // ready at once
            let answer = String(
                decoding: try await rawExchange(port: s.tcpPort, pipelined, readFor: .seconds(10)), as: UTF8.self)
            let answers = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.lowercased() }
            try #require(answers.count == 4)
            for (index, text) in answers.enumerated() {
                #expect(text.contains("x-plexauthz-uri: ") && text.contains("mark=\(index + 1)"), "answer \(index + 1)")
                #expect(text.contains("x-plexauthz-decision: elevated") == (index == 0), "answer \(index + 1)")
                #expect(text.contains(ownerToken.lowercased()) == (index == 0), "answer \(index + 1)")
            }
        }
    }

    @Test func idleConnectionsAreClosed() async throws {
        try await InProcessService.with(configure: { $0.set(Settings.idleTimeout, .milliseconds(300)) }) { s in
            let started = ContinuousClock.now
            let answer = try await rawExchange(
                port: s.tcpPort, request(["GET /healthz HTTP/1.1", "Host: x"]), readFor: .seconds(5))
            #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func connectionCapClosesTheExtraConnection() async throws {
        try await InProcessService.with(configure: { $0.set(Settings.maxConnections, 1) }) { s in
            // Closed by the server, well before the client would give up (longer under a sanitizer).
            let patience: Duration = sanitizer == nil ? .seconds(2) : .seconds(10)
            async let first = rawExchange(port: s.tcpPort, [], readFor: patience / 2)
            try await Task.sleep(for: .milliseconds(200))
            let started = ContinuousClock.now
            let second = try await rawExchange(
                port: s.tcpPort, request(["GET /healthz HTTP/1.1", "Host: x"]), readFor: patience)
            #expect(second.isEmpty)
            #expect(ContinuousClock.now - started < patience / 2)
            _ = try await first
        }
    }

    @Test func operatorEndpointsAndMetricsWithoutSecrets() async throws {
        try await InProcessService.with { s in
            #expect(try await s.send("/healthz", headers: []).status == 200)
            // The identity probe runs inside the service: ready once the fake PMS answered /identity.
            try await eventually("/readyz") { (try? await s.send("/readyz", headers: []).status) == 200 }
            _ = try await s.nginx("/livetv/dvrs?X-Plex-Token=\(userToken)")
            _ = try await s.nginx("/livetv/dvrs?X-Plex-Token=\(otherToken)")
            let metrics = try await s.send("/metrics", headers: [])
            #expect(metrics.body.contains(#"plexauthz_decisions_total{rule="livetv",outcome="elevated_live_tv"} 1"#))
            #expect(
                metrics.body.contains(#"plexauthz_decisions_total{rule="livetv",outcome="deny_unauthorized_token"} 1"#))
            #expect(metrics.body.contains("plexauthz_validation_duration_seconds_count"))
            #expect(metrics.body.contains("plexauthz_open_connections"))
            for secret in [userToken, otherToken, ownerToken, "203.0.113.40", "sha256:"] {
                #expect(!metrics.body.contains(secret), "metrics expose \(secret)")
            }
        }
    }
}

/// One local process without the key must not be able to starve the frontends (issue 9, item 4).
@Suite("Connection starvation", .serialized)
struct ConnectionStarvationTests {
    /// Opens `count` idle TCP connections and keeps them until `body` returns.
    func holding(_ count: Int, port: Int, _ body: () async throws -> Void) async throws {
        var channels: [any Channel] = []
        for _ in 0..<count {
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            {
                channels.append(channel)
            }
        }
        defer { for channel in channels { channel.close(promise: nil) } }
        // Let the server accept (and refuse) them.
        try await Task.sleep(for: .milliseconds(300))
        try await body()
    }

    @Test func theUnixSocketKeepsAnsweringWhileTCPIsFlooded() async throws {
        try await InProcessService.with(
            configure: {
                $0.set(Settings.maxConnections, 40)
                $0.set(Settings.maxConnectionsPerPeer, 1_000)
            }, grpc: true
        ) { s in
            try await holding(60, port: s.tcpPort) {
                try await holding(60, port: try #require(s.grpcPort)) {
                    // TCP is full: a new connection is closed without an answer (an end of file, or a reset
                    // when the close races the request the client already sent).
                    let refused =
                        (try? await rawExchange(
                            port: s.tcpPort, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))) ?? []
                    #expect(refused.isEmpty)
                    // The Unix sockets, HTTP and gRPC, answer as usual.
                    let unix = try await run(
                        "/usr/bin/curl",
                        [
                            "-s", "-i", "-m", "5", "--unix-socket", s.socket, "http://x/v1/nginx",
                            "-H", "X-Original-Method: GET", "-H",
                            "X-Original-URI: /livetv/dvrs?X-Plex-Token=\(userToken)",
                        ])
                    #expect(unix.contains("X-Plexauthz-Decision: elevated"), "\(unix)")
                    let grpc = try await FrontendTrustTests().check(
                        .unixDomainSocket(path: s.grpcSocket),
                        .with {
                            $0.attributes.request.http.method = "GET"
                            $0.attributes.request.http.path = "/livetv/dvrs?X-Plex-Token=\(userToken)"
                        }, key: nil)
                    #expect(grpc)
                }
            }
            // The held connections close asynchronously: until the listener has seen them go, it is still
            // full and refuses (resets) a new one.
            var scraped: (status: Int, headers: HTTPHeaders, body: String)? = nil
            try await eventually("a /metrics answer once the flood is gone") {
                scraped = try? await s.send("/metrics", headers: [])
                return scraped != nil
            }
            let metrics = try #require(scraped)
            // 20 over the cap on each of the two TCP listeners (HTTP and gRPC), plus the probe above.
            let refusals = metrics.body.split(separator: "\n").first {
                $0.hasPrefix(#"plexauthz_refused_connections_total{reason="listener_cap"}"#)
            }.flatMap { Int($0.split(separator: " ").last ?? "") }
            #expect((refusals ?? 0) >= 41, "\(metrics.body)")
        }
    }

    @Test func onePeerCannotTakeTheWholeListener() async throws {
        try await InProcessService.with(configure: { $0.set(Settings.maxConnectionsPerPeer, 5) }) { s in
            try await holding(5, port: s.tcpPort) {
                // Closed without an answer: an end of file, or a reset when the close races the request.
                let refused =
                    (try? await rawExchange(
                        port: s.tcpPort, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))) ?? []
                #expect(refused.isEmpty)
            }
            // Released (the held connections close asynchronously): the peer may connect again.
            try await eventually("the peer connects again") {
                (try? await s.send("/healthz", headers: []))?.status == 200
            }
        }
    }

    @Test func aTricklingHeadIsCutAtTheRequestDeadlineNotKeptAliveByEachByte() async throws {
        try await InProcessService.with(
            configure: {
                $0.set(Settings.requestTimeout, .seconds(1))
                $0.set(Settings.idleTimeout, .seconds(30))
            }
        ) { s in
            let collected = NIOLockedValueBox<[UInt8]>([])
            let closed = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            CollectingHandler(sink: collected, closed: closed))
                    }
                }
                .connect(host: "127.0.0.1", port: s.tcpPort).get()
            let started = ContinuousClock.now
            // One byte every 200 ms, far under the idle timeout, never finishing the head.
            for byte in Array("GET /healthz HTTP/1.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa".utf8) {
                if !channel.isActive { break }
                try? await channel.writeAndFlush(ByteBuffer(bytes: [byte]))
                try await Task.sleep(for: .milliseconds(200))
            }
            try await closed.futureResult.get()
            #expect(ContinuousClock.now - started < .seconds(4))
            #expect(String(decoding: collected.withLockedValue { $0 }, as: UTF8.self).hasPrefix("HTTP/1.1 408"))
        }
    }
}
