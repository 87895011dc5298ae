import AsyncHTTPClient
import FakePMS
import Foundation
import NIOHTTP1
import Testing

/// The viewer's address, presented the way every frontend passes on (a loopback hop's CF-Connecting-IP).
private let viewer = [("CF-Connecting-IP", "203.0.113.50")]
private let jwtToken = FakePMSConfig().jwtToken

/// A shared user watches a whole Live TV programme through every real frontend, the service and the fake PMS
/// (elevation-rules §12): guide → tune → decision → start → 60 media requests (a third without a token) with
/// timelines → scrobble → stop and teardown. Every client status is 2xx, PMS gets the owner token exactly
/// where §12 says, and the viewer is never blocked.
@Suite("Watching a programme end to end", .serialized)
struct WatchProgrammeTests {
    enum Variant: String, CaseIterable, CustomTestStringConvertible {
        case hls, dash
        var testDescription: String { rawValue }
    }

    struct Step {
        var method: HTTPMethod = .GET
        var target: String
        var headers: [(String, String)] = []
        /// The token class PMS must receive in the header ("OWNER", "USER", "NONE").
        var upstream: String
    }

    func watch(_ stack: Stack, _ variant: Variant, session: String, transcode: String) async throws -> [ClientResponse]
    {
        var responses: [ClientResponse] = []
        func expect(_ step: Step) async throws {
            let before = stack.pms.requests().last?.seq ?? 0
            let response = try await stack.get(step.target, method: step.method, headers: viewer + step.headers)
            responses.append(response)
            #expect((200..<300).contains(response.status), "\(step.method) \(step.target) → \(response.status)")
            let path = String(step.target.prefix { $0 != "?" })
            // What PMS got for this request (a neutralisation replay of it may arrive too, with the user's).
            let received = stack.pms.requests(path: path).filter { $0.seq > before }
            #expect(
                received.contains {
                    $0.tokenClass == step.upstream && $0.queryTokens.isEmpty
                        || step.upstream == "USER" && $0.tokenClass == "USER"
                },
                "\(step.target): PMS got \(received.map(\.tokenClass))")
            if step.upstream == "OWNER" {
                #expect(received.contains { $0.queryTokens.isEmpty && $0.headerTokens == ["OWNER"] }, "\(step.target)")
            }
        }
        let ids = "X-Plex-Session-Identifier=\(session)&X-Plex-Client-Identifier=dev-\(session)"
        let user = "X-Plex-Token=\(userToken)"
        // Browsing stays the user's own; the guide borrows the owner's.
        try await expect(Step(target: "/library/sections?\(user)", upstream: "USER"))
        try await expect(Step(target: "/tv.plex.providers.epg.xmltv:135/grid?type=1&\(user)", upstream: "OWNER"))
        // Tune: PMS answers the session uuid.
        let tune = try await stack.get(
            "/livetv/dvrs/135/channels/c7pt/tune?\(ids)&\(user)", method: .POST, headers: viewer)
        responses.append(tune)
        #expect(tune.status == 200)
        #expect(stack.pms.last(path: "/livetv/dvrs/135/channels/c7pt/tune")?.headerTokens == ["OWNER"])
        let uuid = try #require(
            tune.body.firstMatch(of: /\/livetv\/sessions\/([0-9a-f-]+)/).map { String($0.output.1) })
        let live = "path=%2Flivetv%2Fsessions%2F\(uuid)&session=\(transcode)&\(ids)&\(user)"
        try await expect(
            Step(
                target: "/video/:/transcode/universal/decision?hasMDE=1&protocol=\(variant.rawValue)&\(live)",
                upstream: "OWNER"))
        let start = variant == .hls ? "start.m3u8" : "start.mpd"
        try await expect(Step(target: "/video/:/transcode/universal/\(start)?\(live)", upstream: "OWNER"))
        // Sixty media requests, every third without a token (players cannot add one), timelines in between.
        for index in 1...60 {
            let tokenless = index % 3 == 0
            let media =
                variant == .hls
                ? (index == 1
                    ? "/livetv/sessions/\(uuid)/\(transcode)/index.m3u8"
                    : "/livetv/sessions/\(uuid)/\(transcode)/\(String(format: "%05d", index)).ts")
                : "/video/:/transcode/universal/session/\(transcode)/0/\(index == 1 ? "header" : "\(index).m4s")"
            try await expect(Step(target: media + (tokenless ? "" : "?\(user)"), upstream: "OWNER"))
            if index % 6 == 0 {
                try await expect(
                    Step(
                        target:
                            "/:/timeline?ratingKey=live-\(session)&key=%2Flivetv%2Fsessions%2F\(uuid)&state=playing&time=\(index * 2000)&\(ids)&\(user)",
                        upstream: "OWNER"))
            }
        }
        try await expect(
            Step(
                target: "/:/scrobble?key=live-\(session)&identifier=com.plexapp.plugins.library&\(ids)&\(user)",
                upstream: "OWNER"))
        return responses
    }

    func stop(_ stack: Stack, session: String, transcode: String) async throws -> [ClientResponse] {
        // Caddy cannot tell a DELETE without Content-Length (what browsers send) from one with a chunked
        // body, so its config marks the body unseen: the teardown goes with the viewer's own token, and Plex
        // refuses it (docs/frontends.md).
        let teardown = stack.frontend == .caddy ? 403..<404 : 200..<300
        let ids = "X-Plex-Session-Identifier=\(session)"
        let user = "X-Plex-Token=\(userToken)"
        var responses: [ClientResponse] = []
        for (method, target) in [
            (
                HTTPMethod.GET,
                "/:/timeline?ratingKey=live-\(session)&key=%2Flivetv%2Fsessions%2Fx&state=stopped&\(ids)&\(user)"
            ),
            (.GET, "/video/:/transcode/universal/stop?session=\(transcode)&\(user)"),
            (.DELETE, "/media/subscriptions/809?X-Plex-Playback-Session-Id=\(session)&\(user)"),
        ] {
            let response = try await stack.get(target, method: method, headers: viewer)
            responses.append(response)
            #expect(
                (method == .DELETE ? teardown : 200..<300).contains(response.status), "\(target) → \(response.status)")
        }
        if stack.frontend == .caddy {
            #expect(stack.pms.last(path: "/media/subscriptions/809")?.tokenClass == "USER")
        }
        return responses
    }

    func noLeak(_ responses: [ClientResponse], _ stack: Stack) {
        for response in responses { #expect(!response.everything.contains(ownerToken)) }
        #expect(!stack.allLogs.contains(ownerToken))
        #expect(!stack.allLogs.contains("203.0.113.50"))
    }

    @Test(arguments: Frontend.table, Variant.allCases)
    func aSharedUserWatchesAWholeProgramme(_ frontend: Frontend, _ variant: Variant) async throws {
        try await Stack.with(frontend: frontend) { stack in
            var responses = try await watch(stack, variant, session: "s-\(variant)", transcode: "ts-\(variant)")

            // Negative twins, while the session is live.
            let firstMedia =
                variant == .hls
                ? "/livetv/sessions/\(stack.pms.liveSessions.keys.first!)/ts-\(variant)/00003.ts"
                : "/video/:/transcode/universal/session/ts-\(variant)/0/3.m4s"
            // The same segment from another source: not elevated (PMS sees no token at all).
            responses.append(try await stack.get(firstMedia, headers: [("CF-Connecting-IP", "198.51.100.99")]))
            #expect(stack.pms.last(path: firstMedia)?.tokenClass == "NONE")
            // With another valid user's token: not elevated; PMS refuses that token the session.
            let other = try await stack.get(firstMedia + "?X-Plex-Token=\(jwtToken)", headers: viewer)
            responses.append(other)
            #expect(stack.pms.last(path: firstMedia)?.tokenClass == "JWT" && other.status == 403)

            responses += try await stop(stack, session: "s-\(variant)", transcode: "ts-\(variant)")
            // Stopped: the same tokenless segment is no longer elevated.
            responses.append(try await stack.get(firstMedia, headers: viewer))
            #expect(stack.pms.last(path: firstMedia)?.tokenClass == "NONE")

            let log = stack.service.log
            #expect(!log.contains("bad_actor_blocked") && !log.contains("blocked_bad_actor"))
            #expect(responses.allSatisfy { $0.status != 429 })
            #expect(log.contains("rule=tracked-segment") && log.contains("rule=tracked-timeline"))
            #expect(log.components(separatedBy: "outcome=deny_session_mismatch").count - 1 == 2)
            noLeak(responses, stack)
        }
    }

    /// Without the option the owner's history fills with the viewer's programme; with it, the owner's is
    /// unchanged and the viewer's advances.
    @Test func ownerHistoryIsNeutralizedOnlyWhenAskedFor() async throws {
        try await Stack.with { stack in
            let responses = try await watch(stack, .hls, session: "plain", transcode: "ts-plain")
            try await eventually("the scrobble") { stack.pms.history["OWNER"]?.watched == ["live-plain"] }
            #expect(stack.pms.history["USER"] == nil)
            noLeak(responses, stack)
        }
        try await Stack.with(extraServiceArguments: ["--neutralize-owner-history"]) { stack in
            let responses = try await watch(stack, .hls, session: "neutral", transcode: "ts-neutral")
            try await eventually("the viewer's history", timeout: .seconds(15)) {
                stack.pms.history["USER"]?.watched == ["live-neutral"]
                    && stack.pms.history["OWNER"]?.watched.isEmpty == true
            }
            #expect((stack.pms.history["USER"]?.timelines ?? 0) >= 10)
            #expect(stack.pms.history["USER"]?.offsets["live-neutral"] == 120_000)
            // The unscrobble went with the owner's token in the header, never in a URL.
            let unscrobble = try #require(stack.pms.last(path: "/:/unscrobble"))
            #expect(unscrobble.tokenClass == "OWNER" && unscrobble.queryTokens.isEmpty)
            noLeak(responses, stack)
        }
    }

    /// A viewer whose stream was not started through the service gets nothing elevated for it.
    @Test func aStreamNotStartedThroughTheServiceIsNotElevated() async throws {
        try await Stack.with { stack in
            // Tuned directly at PMS (with the owner's token), not through the frontend.
            var tune = HTTPClientRequest(url: "http://127.0.0.1:\(stack.fake.port)/livetv/dvrs/135/channels/c7pt/tune")
            tune.method = .POST
            tune.headers.add(name: "X-Plex-Token", value: ownerToken)
            _ = try await stack.client.execute(tune, timeout: .seconds(5)).body.collect(upTo: 1 << 16)
            let uuid = try #require(stack.pms.liveSessions.keys.first)
            var responses: [ClientResponse] = []
            for index in 1...10 {
                let segment = "/livetv/sessions/\(uuid)/ts/\(index).ts"
                responses.append(try await stack.get(segment, headers: viewer))
                #expect(stack.pms.last(path: segment)?.tokenClass == "NONE")
            }
            #expect(responses.allSatisfy { $0.status != 429 })
            #expect(!stack.service.log.contains("outcome="))
            noLeak(responses, stack)
        }
    }
}
