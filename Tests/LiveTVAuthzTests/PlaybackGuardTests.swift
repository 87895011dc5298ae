import Foundation
import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzCore
import Logging
import Testing

private let uuid = "c1e26483-946b-4f8a-8120-000000000001"
private let tune = "/livetv/dvrs/135/channels/c7pt/tune"
private let viewer = "203.0.113.77"
private let elsewhere = "198.51.100.9"
private let secondUser = "utnr0000000000000000"

/// A shared viewer watching through the guard, with a scripted PMS and a manual clock (elevation-rules §12).
@Suite("Playback through the guard (§12)")
struct PlaybackGuardTests {
    /// Tunes and starts a transcode as the user: the session is tracked with its keys.
    func startWatching(_ h: Harness) async {
        let tuned = await h.decide(
            "\(tune)?X-Plex-Token=\(userValue)", method: "POST",
            headers: [("X-Plex-Session-Identifier", "s1"), ("X-Plex-Client-Identifier", "dev1")])
        #expect(tuned.elevate && tuned.rule == .livetvTune)
        let start = await h.decide(
            "/video/:/transcode/universal/start.m3u8?path=%2Flivetv%2Fsessions%2F\(uuid)&session=ts1&X-Plex-Session-Identifier=s1&X-Plex-Token=\(userValue)"
        )
        #expect(start.elevate && start.rule == .transcode)
    }

    func segment(_ h: Harness, _ index: Int, from address: String = viewer, token: String? = nil) async
        -> AuthzDecision
    {
        let query = token.map { "?X-Plex-Token=\($0)" } ?? ""
        return await h.decide("/livetv/sessions/\(uuid)/ts1/\(String(format: "%05d", index)).ts\(query)", from: address)
    }

    @Test func aTrackedViewersTokenlessMediaIsElevatedAndNeverBlocks() async {
        let h = Harness(pms: ScriptedPMS([userValue: .valid, secondUser: .valid]))
        await startWatching(h)
        for index in 1...30 {
            let d = await segment(h, index)
            #expect(d.elevate && d.rule == .trackedSegment && d.proof == .trackedSession && !d.rejected)
        }
        let dash = await h.decide("/video/:/transcode/universal/session/ts1/0/00001.m4s", from: viewer)
        #expect(dash.elevate && dash.rule == .trackedSegment)
        let timeline = await h.decide(
            "/:/timeline?key=%2Flivetv%2Fsessions%2F\(uuid)&state=playing&time=10000&X-Plex-Token=\(userValue)")
        #expect(timeline.elevate && timeline.rule == .trackedTimeline)
        // One validation for the whole stream: the cache.
        #expect(h.pms.callCount == 1)
        #expect(h.log.outcomes().allSatisfy { $0 == "elevated_live_tv" })
    }

    @Test func aLibraryTimelineFromTheSameClientIsNeverTrackedElevated() async {
        let h = Harness(pms: ScriptedPMS([userValue: .valid]))
        await startWatching(h)
        // Plex Web plays a library item in the same tab: same client and session identifiers, library key.
        let library = await h.decide(
            "/:/timeline?ratingKey=5123&key=%2Flibrary%2Fmetadata%2F5123&state=playing&X-Plex-Session-Identifier=s1&X-Plex-Client-Identifier=dev1&X-Plex-Token=\(userValue)"
        )
        #expect(!library.elevate && library.rule == .none, "\(library.rule)")
        #expect(library.upstreamToken?.value == userValue)
        // The Live TV timeline of the same session still is.
        let live = await h.decide(
            "/:/timeline?key=%2Flivetv%2Fsessions%2F\(uuid)&state=playing&X-Plex-Client-Identifier=dev1&X-Plex-Token=\(userValue)"
        )
        #expect(live.elevate && live.rule == .trackedTimeline)
    }

    @Test func anotherSourceOrAnotherTokenGetsAMismatchThatCounts() async {
        let h = Harness(pms: ScriptedPMS([userValue: .valid, secondUser: .valid]))
        await startWatching(h)
        let stranger = await segment(h, 1, from: elsewhere)
        #expect(!stranger.elevate && stranger.outcome == .denySessionMismatch && stranger.rule == .trackedSegment)
        let otherUser = await segment(h, 2, token: secondUser)
        #expect(!otherUser.elevate && otherUser.outcome == .denySessionMismatch)
        #expect(otherUser.upstreamToken?.value == secondUser)
        // Mismatches count toward the block (default threshold 5) of the source that sends them.
        for index in 3...6 { _ = await segment(h, index, from: elsewhere) }
        #expect(await segment(h, 7, from: elsewhere).rejected)
        #expect(!(await segment(h, 8)).rejected)
        #expect(h.audit.emitSummary(now: h.clock.now()).contains("deny_session_mismatch=6"))
    }

    @Test func tokenlessMediaOfNoSessionIsNotAbuseAndOnlyCounted() async {
        let h = Harness()
        for index in 1...20 {
            let d = await segment(h, index)
            #expect(!d.elevate && !d.rejected && d.rule == .noToken && d.outcome == .denyMissingToken)
        }
        #expect(h.log.auditLines.isEmpty)
        #expect(h.state.activeBlocks(at: h.clock.now()) == 0)
        let summary = h.audit.emitSummary(now: h.clock.now())
        #expect(summary.contains("deny_missing=0 ") && summary.contains("deny_missing_media=20 "))
    }

    @Test func stopAndTeardownEndTheSession() async {
        let h = Harness()
        await startWatching(h)
        #expect(await segment(h, 1).elevate)
        let stop = await h.decide("/video/:/transcode/universal/stop?session=ts1&X-Plex-Token=\(userValue)")
        #expect(stop.elevate && stop.rule == .trackedTimeline)
        #expect(!(await segment(h, 2)).elevate)
        #expect(h.state.trackedSessions(at: h.clock.now()) == 0)
        await startWatching(h)
        #expect(await segment(h, 3).elevate)
        let teardown = await h.decide(
            "/media/subscriptions/809?X-Plex-Playback-Session-Id=s1&X-Plex-Token=\(userValue)", method: "DELETE")
        #expect(teardown.elevate && teardown.rule == .subscriptionsTeardown)
        #expect(!(await segment(h, 4)).elevate)
    }

    @Test func idleSessionsExpireAndTheProofNeedsATokenedRequest() async {
        let h = Harness(configure: { $0.set(Settings.playbackIdleTimeout, .seconds(3600)) })
        await startWatching(h)
        // The cache's TTL (5 min) bounds how long tokenless media rides on the last proof.
        h.clock.advance(.seconds(299))
        #expect(await segment(h, 1).elevate)
        h.clock.advance(.seconds(2))
        let unproven = await segment(h, 2)
        #expect(!unproven.elevate && unproven.rule == .noToken && !unproven.rejected)
        // A timeline with the user's token proves it again (one PMS call), and media flows again.
        let calls = h.pms.callCount
        #expect(
            await h.decide("/:/timeline?key=%2Flivetv%2Fsessions%2F\(uuid)&state=playing&X-Plex-Token=\(userValue)")
                .elevate)
        #expect(h.pms.callCount == calls + 1)
        #expect(await segment(h, 3).elevate)
        // An hour without any request: forgotten.
        h.clock.advance(.seconds(3600))
        #expect(h.state.trackedSessions(at: h.clock.now()) == 0)
        #expect(!(await segment(h, 4)).elevate)
    }

    @Test func aRevokedShareEndsTrackedElevation() async {
        let pms = ScriptedPMS([userValue: .valid])
        let h = Harness(pms: pms)
        await startWatching(h)
        h.clock.advance(.seconds(301))
        pms.set(userValue, .invalid(status: 401))
        let timeline = await h.decide(
            "/:/timeline?key=%2Flivetv%2Fsessions%2F\(uuid)&state=playing&X-Plex-Token=\(userValue)")
        #expect(!timeline.elevate && timeline.outcome == .denyUnauthorizedToken)
        #expect(h.state.trackedSessions(at: h.clock.now()) == 0)
        #expect(!(await segment(h, 1)).elevate)
    }

    @Test func theBoundKeepsTheNewestSessions() async {
        let h = Harness(configure: { $0.set(Settings.playbackSessions, 2) })
        for index in 1...3 {
            _ = await h.decide(
                "\(tune)?X-Plex-Token=\(userValue)", method: "POST", from: "203.0.113.\(index)",
                headers: [("X-Plex-Session-Identifier", "s\(index)")])
            h.clock.advance(.seconds(1))
        }
        #expect(h.state.trackedSessions(at: h.clock.now()) == 2)
    }

    @Test func sessionsSurviveARestartThroughTheStateFile() async throws {
        let directory = temporaryDirectory()
        let path = directory + "/state.json"
        let clock = ManualClock()
        func harness() -> Harness {
            Harness(clock: clock, configure: { $0.set(Settings.abuseStateFile, path) })
        }
        // The first service ends (and lets go of the state file's lock) before the second starts.
        do {
            let first = harness()
            await startWatching(first)
            for service in first.application.services {
                if let writer = service as? AbuseStateService { await writer.writer.writeNow() }
            }
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains(#""sessions":[{"#) && !text.contains("s1") && !text.contains(viewer))
        let second = harness()
        #expect(await segment(second, 1).elevate)
    }

    /// Two services on one state file would overwrite each other's blocks: the second refuses to start, and
    /// starts once the first is gone.
    @Test func aSecondServiceOnTheSameStateFileRefusesToStart() throws {
        let path = temporaryDirectory() + "/state.json"
        let clock = ManualClock()
        var configuration = Configuration.testing()
        configuration.set(Settings.abuseStateFile, path)
        func start() throws -> AuthzApplication {
            try AuthzApplication(
                configuration: configuration,
                dependencies: .testing(clock: clock, pms: ScriptedPMS([:]), log: CapturedLog()))
        }
        do {
            let first = try start()
            #expect {
                _ = try start()
            } throws: { error in
                "\(error)".contains("state.json.lock: the service is running")
            }
            withExtendedLifetime(first) {}
        }
        _ = try start()
    }

    @Test func neutralizationReplaysForTheUserAndUnscrobblesForTheOwner() async throws {
        let pms = ScriptedPMS([userValue: .valid])
        let neutralizer = OwnerHistoryNeutralizer(
            pms: pms, owner: OwnerTokenHolder(PlexToken(ownerValue)!), metrics: .none, logger: CapturedLog().logger,
            unscrobbleDelay: .milliseconds(10))
        neutralizer.trackedKeepAlive(
            target: RequestTarget(
                "/:/scrobble?key=42&identifier=com.plexapp.plugins.library&X-Plex-Token=\(userValue)"),
            userToken: PlexToken(userValue)!, isScrobble: true)
        let running = Task { await neutralizer.run() }
        try await eventually("two calls") { pms.sentRequests.count == 2 }
        neutralizer.finish()
        await running.value
        let sent = pms.sentRequests
        #expect(
            sent.contains(
                PMSRequest(
                    target: "/:/scrobble?key=42&identifier=com.plexapp.plugins.library", token: PlexToken(userValue)!)))
        #expect(
            sent.contains(
                PMSRequest(
                    target: "/:/unscrobble?key=42&identifier=com.plexapp.plugins.library", token: PlexToken(ownerValue)!
                )))
        #expect(!sent.contains { $0.target.contains("X-Plex-Token") })
    }

    @Test func aFullNeutralizerQueueDropsAndCounts() async {
        let pms = ScriptedPMS()
        let neutralizer = OwnerHistoryNeutralizer(
            pms: pms, owner: OwnerTokenHolder(PlexToken(ownerValue)!), metrics: .none, logger: CapturedLog().logger,
            capacity: 3)
        for _ in 0..<10 {
            neutralizer.trackedKeepAlive(
                target: RequestTarget("/:/timeline?key=1"), userToken: PlexToken(userValue)!, isScrobble: false)
        }
        // Nothing runs yet: three wait, seven were dropped (the decisions were never delayed).
        #expect(pms.sentRequests.isEmpty)
        let running = Task { await neutralizer.run() }
        try? await eventually("three replays") { pms.sentRequests.count == 3 }
        neutralizer.finish()
        await running.value
        #expect(pms.sentRequests.count == 3)
    }
}

/// Waits until `check` passes or fails after `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(10), _ check: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await check() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TimeoutError(what: what)
}

struct TimeoutError: Error { let what: String }
