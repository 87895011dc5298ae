import LiveTVAuthzCore
import NIOConcurrencyHelpers

/// The guard's memory of abuse: failure windows, blocks and cooldowns, keyed by fingerprints.
///
/// Synchronous on purpose: the guard reads it on every candidate and must not suspend for it. A shared
/// store keeps a local mirror for these reads and does its database work off the request path; that is why
/// a failure reports the block it causes through `onBlock` (at once in memory, when the database says so
/// for a shared store) instead of returning it.
public protocol GuardStateStore: Sendable {
    func isBlocked(source: String, at now: Timestamp) -> Bool
    func isCoolingDown(source: String, token: String, at now: Timestamp) -> Bool
    /// Counts a failure; `onBlock(failures, until)` is called once when this failure crosses the threshold.
    func recordFailure(
        source: String, at now: Timestamp, onBlock: @escaping @Sendable (_ failures: Int, _ until: Timestamp) -> Void)
    func recordDenial(source: String, token: String, at now: Timestamp)
    func activeBlocks(at now: Timestamp) -> Int

    /// The live playback session one of `probes` names (elevation-rules §12).
    func trackedSession(named probes: Set<PlaybackKey>, at now: Timestamp) -> TrackedSession?
    /// Tracks an elevated stream start (or extends the same user's session from this source).
    func startTracking(
        source: String, userToken: String, keys: Set<PlaybackKey>, provenUntil: Timestamp, at now: Timestamp)
    /// A request of a tracked session: seen now, its keys learnt, its token proven until `provenUntil`.
    func touchTracking(_ id: String, learning keys: Set<PlaybackKey>, provenUntil: Timestamp?, at now: Timestamp)
    func endTracking(_ id: String)
    func trackedSessions(at now: Timestamp) -> Int

    /// What to persist (expired records and sessions dropped).
    func snapshot(at now: Timestamp) -> GuardSnapshot

    /// An operator's unblock (`blocks unblock`): the source's failures, block and cooldowns forgotten;
    /// `nil` forgets every source. The number of sources forgotten.
    func forget(source: String?) -> Int

    /// Whether the store reaches what it shares state through (always, for memory): `/readyz/state`.
    var isHealthy: Bool { get }
}

extension GuardStateStore {
    public var isHealthy: Bool { true }
}

/// The in-memory store: the pure `AbuseBlocker` and `PlaybackTracker` behind mutexes. `onChange` is
/// called after every change that should reach the state file (the writer coalesces the calls).
public final class InMemoryGuardState: GuardStateStore {
    private let blocker: NIOLockedValueBox<AbuseBlocker>
    private let tracker: NIOLockedValueBox<PlaybackTracker>
    private let onChange: @Sendable () -> Void
    private let healthy: @Sendable () -> Bool

    /// `healthy`: whether the state file (if any) is being written (`/readyz/state`, `plexauthz_state_store_up`).
    public init(
        blocker: AbuseBlocker, tracker: PlaybackTracker = PlaybackTracker(policy: PlaybackPolicy()),
        onChange: @escaping @Sendable () -> Void = {}, healthy: @escaping @Sendable () -> Bool = { true }
    ) {
        self.blocker = NIOLockedValueBox(blocker)
        self.tracker = NIOLockedValueBox(tracker)
        self.healthy = healthy
        self.onChange = onChange
    }

    public var isHealthy: Bool { healthy() }

    public func isBlocked(source: String, at now: Timestamp) -> Bool {
        blocker.withLockedValue { $0.isBlocked(source, at: now) }
    }

    public func isCoolingDown(source: String, token: String, at now: Timestamp) -> Bool {
        blocker.withLockedValue { $0.isCoolingDown(source: source, token: token, at: now) }
    }

    public func recordFailure(
        source: String, at now: Timestamp, onBlock: @escaping @Sendable (Int, Timestamp) -> Void
    ) {
        let outcome = blocker.withLockedValue { $0.recordFailure(source: source, at: now) }
        if outcome != .alreadyBlocked { onChange() }
        if case .blocked(let failures, let until) = outcome { onBlock(failures, until) }
    }

    public func recordDenial(source: String, token: String, at now: Timestamp) {
        blocker.withLockedValue { $0.recordDenial(source: source, token: token, at: now) }
    }

    public func activeBlocks(at now: Timestamp) -> Int {
        blocker.withLockedValue { $0.activeBlocks(at: now) }
    }

    public func trackedSession(named probes: Set<PlaybackKey>, at now: Timestamp) -> TrackedSession? {
        guard !probes.isEmpty else { return nil }
        return tracker.withLockedValue { $0.session(named: probes, at: now) }
    }

    public func startTracking(
        source: String, userToken: String, keys: Set<PlaybackKey>, provenUntil: Timestamp, at now: Timestamp
    ) {
        tracker.withLockedValue {
            _ = $0.start(source: source, userToken: userToken, keys: keys, provenUntil: provenUntil, at: now)
        }
        onChange()
    }

    public func touchTracking(
        _ id: String, learning keys: Set<PlaybackKey>, provenUntil: Timestamp?, at now: Timestamp
    ) {
        // Seen-time alone is not worth a state-file write; new keys are.
        let learnt = tracker.withLockedValue { tracker -> Bool in
            let before = tracker.sessions[id]?.keys.count
            tracker.touch(id, learning: keys, provenUntil: provenUntil, at: now)
            return tracker.sessions[id]?.keys.count != before
        }
        if learnt { onChange() }
    }

    public func endTracking(_ id: String) {
        tracker.withLockedValue { $0.remove(id) }
        onChange()
    }

    public func trackedSessions(at now: Timestamp) -> Int {
        tracker.withLockedValue { tracker in
            tracker.prune(now: now)
            return tracker.sessions.count
        }
    }

    public func forget(source: String?) -> Int {
        let count = blocker.withLockedValue { blocker in
            if let source { return blocker.forget(source) ? 1 : 0 }
            return blocker.forgetAll()
        }
        if count > 0 { onChange() }
        return count
    }

    // MARK: A shared store's mirror (changes other replicas announced)

    public func mirror(source: String, record: SourceRecord, at now: Timestamp) {
        blocker.withLockedValue { $0.apply(source, record, now: now) }
    }

    public func mirror(cooldown source: String, token: String, until: Timestamp) {
        blocker.withLockedValue { $0.applyCooldown(source: source, token: token, until: until) }
    }

    public func mirror(session: TrackedSession) {
        tracker.withLockedValue { $0.apply(session) }
    }

    public func cooldownEnd(source: String, token: String) -> Timestamp? {
        blocker.withLockedValue { $0.cooldownEnd(source: source, token: token) }
    }

    public func session(id: String) -> TrackedSession? {
        tracker.withLockedValue { $0.sessions[id] }
    }

    public func snapshot(at now: Timestamp) -> GuardSnapshot {
        let sources = blocker.withLockedValue { blocker in
            blocker.prune(now: now)
            return blocker.sources
        }
        let sessions = tracker.withLockedValue { tracker in
            tracker.prune(now: now)
            return tracker.sessions.values.sorted { $0.id < $1.id }
        }
        return GuardSnapshot(sources: sources, sessions: sessions)
    }
}
