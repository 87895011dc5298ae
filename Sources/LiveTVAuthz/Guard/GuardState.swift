import LiveTVAuthzCore
import Synchronization

/// The guard's memory of abuse: failure windows, blocks and cooldowns, keyed by fingerprints.
/// A protocol (and async) so a shared store can replace the in-memory one for several instances.
public protocol GuardStateStore: Sendable {
    func isBlocked(source: String, at now: Timestamp) async -> Bool
    func isCoolingDown(source: String, token: String, at now: Timestamp) async -> Bool
    func recordFailure(source: String, at now: Timestamp) async -> FailureOutcome
    func recordDenial(source: String, token: String, at now: Timestamp) async
    func activeBlocks(at now: Timestamp) async -> Int
    /// The records to persist (expired ones dropped).
    func snapshot(at now: Timestamp) async -> [String: SourceRecord]
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

    public func recordFailure(source: String, at now: Timestamp) -> FailureOutcome {
        let outcome = blocker.withLock { $0.recordFailure(source: source, at: now) }
        if outcome != .alreadyBlocked { onChange() }
        return outcome
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
