import LiveTVAuthzCore
import Synchronization

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
    /// The records to persist (expired ones dropped).
    func snapshot(at now: Timestamp) -> [String: SourceRecord]
}

/// The in-memory store: the pure `AbuseBlocker` behind a mutex. `onChange` is called after every change
/// that should reach the state file (the writer coalesces the calls).
public final class InMemoryGuardState: GuardStateStore {
    private let blocker: Mutex<AbuseBlocker>
    private let onChange: @Sendable () -> Void

    public init(blocker: AbuseBlocker, onChange: @escaping @Sendable () -> Void = {}) {
        self.blocker = Mutex(blocker)
        self.onChange = onChange
    }

    public func isBlocked(source: String, at now: Timestamp) -> Bool {
        blocker.withLock { $0.isBlocked(source, at: now) }
    }

    public func isCoolingDown(source: String, token: String, at now: Timestamp) -> Bool {
        blocker.withLock { $0.isCoolingDown(source: source, token: token, at: now) }
    }

    public func recordFailure(
        source: String, at now: Timestamp, onBlock: @escaping @Sendable (Int, Timestamp) -> Void
    ) {
        let outcome = blocker.withLock { $0.recordFailure(source: source, at: now) }
        if outcome != .alreadyBlocked { onChange() }
        if case .blocked(let failures, let until) = outcome { onBlock(failures, until) }
    }

    public func recordDenial(source: String, token: String, at now: Timestamp) {
        blocker.withLock { $0.recordDenial(source: source, token: token, at: now) }
    }

    public func activeBlocks(at now: Timestamp) -> Int {
        blocker.withLock { $0.activeBlocks(at: now) }
    }

    public func snapshot(at now: Timestamp) -> [String: SourceRecord] {
        blocker.withLock { blocker in
            blocker.prune(now: now)
            return blocker.sources
        }
    }
}
