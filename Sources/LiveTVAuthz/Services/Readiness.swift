import LiveTVAuthzCore
import NIOConcurrencyHelpers

/// Readiness facts the operator endpoints report: ready while PMS answers `/identity`.
public final class Readiness: Sendable {
    private let lastIdentity = NIOLockedValueBox<Timestamp?>(nil)
    public let interval: Duration
    private let clock: any WallClock

    public init(interval: Duration, clock: any WallClock) {
        self.interval = interval
        self.clock = clock
    }

    public func recordIdentity(at time: Timestamp) { lastIdentity.withLockedValue { $0 = time } }

    /// Ready when PMS answered `/identity` within the last two probe intervals.
    public var isReady: Bool {
        guard let last = lastIdentity.withLockedValue({ $0 }) else { return false }
        return clock.now() - last <= interval * 2
    }
}
