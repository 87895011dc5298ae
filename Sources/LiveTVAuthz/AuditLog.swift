import LiveTVAuthzCore
import Logging
import Synchronization

/// Writes audit lines and keeps the counters of the periodic summary line.
public final class AuditLog: Sendable {
    private let logger: Logger
    private let counters: Mutex<AuditCounters>

    public init(logger: Logger, since: Timestamp) {
        self.logger = logger
        self.counters = Mutex(AuditCounters(since: since))
    }

    /// Logs one audit line and counts it.
    public func record(_ event: AuditEvent) {
        counters.withLock { $0.record(event.outcome, source: event.source.fingerprint) }
        logger.notice("\(event.line)")
    }

    /// Counts a validation cache hit or miss.
    public func recordCache(hit: Bool) {
        counters.withLock { counters in
            if hit { counters.cacheHits += 1 } else { counters.cacheMisses += 1 }
        }
    }

    /// Logs the summary line for the interval that ends `now` and starts a new one. Returns the line.
    @discardableResult
    public func emitSummary(now: Timestamp) -> String {
        let line = counters.withLock { counters in
            let line = counters.summaryLine
            counters = AuditCounters(since: now)
            return line
        }
        logger.notice("\(line)")
        return line
    }
}
