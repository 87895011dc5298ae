import LiveTVAuthzCore
import Testing

private let uuid = "c1e26483-946b-4f8a-8120-000000000001"
private let tune = "/livetv/dvrs/135/channels/c7pt/tune"
private func request(_ method: String, _ target: String, headers: [(String, String)] = []) -> AuthzRequest {
    AuthzRequest(method: method, target: target, headers: headers.map { HTTPField(name: $0.0, value: $0.1) })
}
private func facts(_ method: String, _ target: String, headers: [(String, String)] = []) -> PlaybackFacts? {
    let request = request(method, target, headers: headers)
    return PlaybackFacts.extract(request, classifier().classify(request))
}
private func key(_ kind: PlaybackKey.Kind, _ value: String) -> PlaybackKey {
    PlaybackKey(kind, fingerprint: Fingerprint.of(value))
}

@Suite("Playback facts (§12.1)")
struct PlaybackFactsTests {
    @Test func streamStartsNameTheirKeys() throws {
        let tuned = try #require(
            facts(
                "POST", "\(tune)?X-Plex-Client-Identifier=dev1&\(tok)", headers: [("X-Plex-Session-Identifier", "s1")]))
        #expect(tuned.kind == .streamStart)
        #expect(tuned.ownKeys == [key(.sessionIdentifier, "s1"), key(.clientIdentifier, "dev1")])
        let decision = try #require(
            facts(
                "GET",
                "/video/:/transcode/universal/decision?path=%2Flivetv%2Fsessions%2F\(uuid)&session=ts1&X-Plex-Session-Identifier=s1&\(tok)"
            ))
        #expect(decision.kind == .streamStart)
        #expect(
            decision.ownKeys == [key(.uuid, uuid), key(.transcodeSession, "ts1"), key(.sessionIdentifier, "s1")])
        // Only elevatable stream starts: a library transcode is no playback fact at all.
        #expect(facts("GET", "/video/:/transcode/universal/decision?path=%2Flibrary%2Fmetadata%2F1&session=x") == nil)
        #expect(facts("POST", "/playQueues?uri=%2Flivetv%2Fsessions%2F\(uuid)&\(tok)")?.kind == .streamStart)
    }

    @Test func mediaPathsProbeBothOfTheirParts() throws {
        let hls = try #require(facts("GET", "/livetv/sessions/\(uuid)/ts1/00001.ts"))
        #expect(hls.kind == .liveMedia && hls.isMedia)
        #expect(
            hls.probes == [
                key(.uuid, uuid), key(.sessionIdentifier, uuid), key(.clientIdentifier, "ts1"),
                key(.transcodeSession, "ts1"),
            ])
        let dash = try #require(facts("GET", "/video/:/transcode/universal/session/ts1/0/00001.m4s"))
        #expect(dash.kind == .transcodeMedia && dash.probes == [key(.transcodeSession, "ts1")])
        #expect(facts("POST", "/livetv/sessions/\(uuid)/ts1/00001.ts") == nil)
        #expect(facts("GET", "/livetv/sessions/") == nil)
        // A refused request is never playback.
        #expect(facts("GET", "/livetv/sessions/\(uuid)/../../library/sections") == nil)
    }

    @Test func keepAlivesAndStops() throws {
        let timeline = try #require(
            facts("GET", "/:/timeline?key=%2Flivetv%2Fsessions%2F\(uuid)&state=playing&time=5000&\(tok)"))
        #expect(timeline.kind == .keepAlive && !timeline.stops && !timeline.isScrobble)
        #expect(timeline.probes.contains(key(.uuid, uuid)))
        #expect(try #require(facts("GET", "/:/timeline?key=%2Flivetv%2Fsessions%2F\(uuid)&state=stopped")).stops)
        #expect(try #require(facts("GET", "/:/scrobble?key=42&identifier=com.plexapp.plugins.library")).isScrobble)
        #expect(try #require(facts("GET", "/video/:/transcode/universal/stop?session=ts1")).stops)
        #expect(try #require(facts("GET", "/video/:/transcode/universal/ping?session=ts1")).kind == .keepAlive)
        let teardown = try #require(facts("DELETE", "/media/subscriptions/809?X-Plex-Playback-Session-Id=s1&\(tok)"))
        #expect(teardown.kind == .teardown && teardown.stops && teardown.probes == [key(.sessionIdentifier, "s1")])
        #expect(facts("GET", "/library/sections?\(tok)") == nil)
        #expect(facts("GET", "/photo/:/transcode?url=%2Flivetv%2Fsessions%2Fx") == nil)
    }
}

@Suite("Playback tracker (§12.1)")
struct PlaybackTrackerTests {
    let t0 = Timestamp(unixSeconds: 1_800_000_000)
    let keys: Set<PlaybackKey> = [key(.sessionIdentifier, "s1"), key(.clientIdentifier, "dev1")]

    @Test func startFindLearnAndStop() throws {
        var tracker = PlaybackTracker(policy: PlaybackPolicy())
        let idStarted = tracker.start(source: "src", userToken: "tok", keys: keys, provenUntil: t0, at: t0)
        let id = try #require(idStarted)
        #expect(tracker.session(named: [key(.sessionIdentifier, "s1")], at: t0)?.id == id)
        #expect(tracker.session(named: [key(.uuid, uuid)], at: t0) == nil)
        // A later request naming the uuid together with a tracked identifier teaches the uuid.
        tracker.touch(id, learning: [key(.uuid, uuid), key(.sessionIdentifier, "s1")], at: t0 + .seconds(5))
        #expect(tracker.session(named: [key(.uuid, uuid)], at: t0 + .seconds(5))?.id == id)
        // The same user's next start from the same source extends the session.
        let again = tracker.start(
            source: "src", userToken: "tok", keys: [key(.sessionIdentifier, "s1")], provenUntil: t0, at: t0)
        #expect(again == id)
        #expect(tracker.sessions.count == 1)
        tracker.remove(id)
        #expect(tracker.session(named: keys, at: t0) == nil && tracker.sessions.isEmpty)
    }

    @Test func idleSessionsExpireAndRestoreDropsThem() throws {
        var tracker = PlaybackTracker(policy: PlaybackPolicy(maximumSessions: 10, idleExpiry: .seconds(3600)))
        let idStarted = tracker.start(source: "s", userToken: "t", keys: keys, provenUntil: t0, at: t0)
        let id = try #require(idStarted)
        #expect(tracker.session(named: keys, at: t0 + .seconds(3599)) != nil)
        #expect(tracker.session(named: keys, at: t0 + .seconds(3600)) == nil)
        tracker.touch(id, at: t0 + .seconds(3000))
        #expect(tracker.session(named: keys, at: t0 + .seconds(6599)) != nil)
        let restored = PlaybackTracker(
            policy: tracker.policy, restoring: Array(tracker.sessions.values), now: t0 + .seconds(6600))
        #expect(restored.sessions.isEmpty)
        tracker.prune(now: t0 + .seconds(6600))
        #expect(tracker.sessions.isEmpty)
    }

    @Test func theBoundEvictsTheLeastRecentlySeen() throws {
        var tracker = PlaybackTracker(policy: PlaybackPolicy(maximumSessions: 3))
        for index in 0..<3 {
            tracker.start(
                source: "s", userToken: "t", keys: [key(.sessionIdentifier, "s\(index)")], provenUntil: t0,
                at: t0 + .seconds(Int64(index)))
        }
        let oldest = try #require(tracker.session(named: [key(.sessionIdentifier, "s0")], at: t0)?.id)
        tracker.touch(oldest, at: t0 + .seconds(10))
        tracker.start(
            source: "s", userToken: "t", keys: [key(.sessionIdentifier, "s3")], provenUntil: t0, at: t0 + .seconds(11))
        #expect(tracker.sessions.count == 3)
        #expect(tracker.session(named: [key(.sessionIdentifier, "s1")], at: t0 + .seconds(11)) == nil)
        #expect(tracker.session(named: [key(.sessionIdentifier, "s0")], at: t0 + .seconds(11)) != nil)
    }

    @Test func anotherUsersStartTakesTheKeysIntoItsOwnSession() throws {
        var tracker = PlaybackTracker(policy: PlaybackPolicy())
        let firstStarted = tracker.start(source: "a", userToken: "u1", keys: keys, provenUntil: t0, at: t0)
        let first = try #require(firstStarted)
        let secondStarted = tracker.start(source: "b", userToken: "u2", keys: keys, provenUntil: t0, at: t0)
        let second = try #require(secondStarted)
        #expect(tracker.session(named: keys, at: t0)?.source == "b")
        tracker.remove(first)
        #expect(tracker.session(named: keys, at: t0)?.id == second)
    }
}

/// §12.2 and §12.3 as a table: playback kind × session facts × blocked → judgement.
@Suite("Tracked policy (§12.2, §12.3)")
struct TrackedPolicyTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var target: String
        var tracked: TrackedMatch
        var blocked = false
        var check: TokenCheck? = nil
        var outcome: AuditOutcome
        var rule: ElevationRule
        var elevate: Bool
        var tracking: TrackingEffect = .none
        var counts = false
        var missingMedia = false
        var testDescription: String { "\(target) \(tracked) blocked=\(blocked) → \(outcome.rawValue)/\(rule.rawValue)" }
    }

    static let segment = "/livetv/sessions/\(uuid)/ts1/00001.ts"
    static let dash = "/video/:/transcode/universal/session/ts1/0/00001.m4s"
    static let timeline = "/:/timeline?key=%2Flivetv%2Fsessions%2F\(uuid)&state=playing"

    static let rows: [Row] = [
        // Tokenless media of a tracked session from its source, token proven: elevated.
        Row(
            target: segment, tracked: .session(sameSource: true, token: .absent, proven: true),
            outcome: .elevatedLiveTV,
            rule: .trackedSegment, elevate: true, tracking: .touch),
        Row(
            target: dash, tracked: .session(sameSource: true, token: .absent, proven: true), outcome: .elevatedLiveTV,
            rule: .trackedSegment, elevate: true, tracking: .touch),
        // …not proven any more (the cache's TTL passed without a tokened request): preserved, not counted.
        Row(
            target: segment, tracked: .session(sameSource: true, token: .absent, proven: false),
            outcome: .denyMissingToken, rule: .noToken, elevate: false, missingMedia: true),
        // With the tracked user's token: PMS (or the cache) decides.
        Row(
            target: segment + "?\(tok)", tracked: .session(sameSource: true, token: .trackedUser, proven: false),
            check: .valid, outcome: .elevatedLiveTV, rule: .trackedSegment, elevate: true, tracking: .touch),
        Row(
            target: timeline + "&\(tok)", tracked: .session(sameSource: true, token: .trackedUser, proven: true),
            check: .valid, outcome: .elevatedLiveTV, rule: .trackedTimeline, elevate: true, tracking: .touch),
        Row(
            target: timeline + "&\(tok)", tracked: .session(sameSource: true, token: .trackedUser, proven: true),
            check: .invalid(status: 401), outcome: .denyUnauthorizedToken, rule: .trackedTimeline, elevate: false,
            tracking: .end, counts: true),
        Row(
            target: "/:/timeline?key=%2Flivetv%2Fsessions%2F\(uuid)&state=stopped&\(tok)",
            tracked: .session(sameSource: true, token: .trackedUser, proven: true), check: .valid,
            outcome: .elevatedLiveTV, rule: .trackedTimeline, elevate: true, tracking: .end),
        // A keep-alive without a token: not elevated, not counted.
        Row(
            target: timeline, tracked: .session(sameSource: true, token: .absent, proven: true),
            outcome: .denyMissingToken, rule: .noToken, elevate: false, missingMedia: true),
        // Another source, or another token: mismatch, counted.
        Row(
            target: segment, tracked: .session(sameSource: false, token: .absent, proven: true),
            outcome: .denySessionMismatch, rule: .trackedSegment, elevate: false, counts: true),
        Row(
            target: segment + "?\(tok)", tracked: .session(sameSource: true, token: .other, proven: true),
            outcome: .denySessionMismatch, rule: .trackedSegment, elevate: false, counts: true),
        Row(
            target: timeline + "&\(tok)", tracked: .session(sameSource: false, token: .trackedUser, proven: true),
            outcome: .denySessionMismatch, rule: .trackedTimeline, elevate: false, counts: true),
        Row(
            target: segment, tracked: .session(sameSource: false, token: .absent, proven: true), blocked: true,
            outcome: .blockedBadActor, rule: .trackedSegment, elevate: false),
        // The owner's own token on a tracked session's media: elevated.
        Row(
            target: segment + "?X-Plex-Token=\(ownerValue)",
            tracked: .session(sameSource: true, token: .owner, proven: false), outcome: .elevatedLiveTV,
            rule: .trackedSegment, elevate: true, tracking: .touch),
        // Tokenless media of no tracked session: preserved, no line, not counted (§12.3).
        Row(
            target: segment, tracked: .none, outcome: .denyMissingToken, rule: .noToken, elevate: false,
            missingMedia: true),
        Row(
            target: dash, tracked: .none, outcome: .denyMissingToken, rule: .noToken, elevate: false, missingMedia: true
        ),
        Row(
            target: segment, tracked: .none, blocked: true, outcome: .blockedBadActor, rule: .noToken, elevate: false),
    ]

    @Test(arguments: rows)
    func judgement(_ row: Row) throws {
        let request = AuthzRequest(method: "GET", target: row.target)
        let classification = classifier().classify(request)
        let playback = try #require(PlaybackFacts.extract(request, classification))
        let token: InboundTokenState =
            classification.token.token == nil
            ? .missing : classification.token.token == ownerToken ? .owner : .unproven
        let judgement: GuardJudgement
        switch GuardPolicy.evaluate(
            classification, playback: playback, tracked: row.tracked, blocked: row.blocked, token: token)
        {
        case .decided(let decided):
            #expect(row.check == nil, "decided without asking PMS")
            judgement = decided
        case .validate:
            let check = try #require(row.check, "PMS must be asked")
            judgement = GuardPolicy.conclude(
                classification, playback: playback, tracked: row.tracked, blocked: row.blocked, check: check)
        }
        let decision = AuthzDecision(classification, judgement: judgement, ownerToken: ownerToken)
        #expect(judgement.outcome == row.outcome)
        #expect(decision.rule == row.rule)
        #expect(decision.elevate == row.elevate)
        #expect(judgement.tracking == row.tracking)
        #expect(judgement.countsAsFailure == row.counts)
        #expect(judgement.missingMedia == row.missingMedia)
        #expect(judgement.writesAuditLine == !row.missingMedia)
        if row.elevate {
            #expect(decision.upstreamToken == ownerToken && !decision.upstreamTarget.contains("X-Plex-Token"))
        }
    }

    @Test func aStreamStartOfAUserBeginsTrackingAndTheOwnersOwnDoesNot() {
        let request = AuthzRequest(method: "POST", target: "\(tune)?X-Plex-Session-Identifier=s1&\(tok)")
        let classification = classifier().classify(request)
        let playback = PlaybackFacts.extract(request, classification)
        #expect(GuardPolicy.evaluate(classification, playback: playback, blocked: false, token: .unproven) == .validate)
        #expect(
            GuardPolicy.conclude(classification, playback: playback, blocked: false, check: .valid).tracking == .start)
        guard
            case .decided(let owner) = GuardPolicy.evaluate(
                classification, playback: playback, blocked: false, token: .owner)
        else {
            Issue.record("the owner's token needs no PMS")
            return
        }
        #expect(owner.tracking == .none && owner.proof == .ownerToken)
    }

    /// A tracked rule never elevates a refused request, whatever the judgement says.
    @Test func refusalsStayRefused() {
        let request = AuthzRequest(method: "GET", target: "/livetv/sessions/\(uuid)/ts1/x?\(tok)&x-plex-token=a")
        let classification = classifier().classify(request)
        #expect(PlaybackFacts.extract(request, classification) == nil)
        #expect(classification.rule == .tokenSmuggling)
    }
}
