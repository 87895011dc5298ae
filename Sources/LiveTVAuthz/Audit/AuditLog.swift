import LiveTVAuthzCore
import NIOConcurrencyHelpers

/// Writes audit lines to the audit sink and keeps the counters of the periodic summary line.
public final class AuditLog: Sendable {
    private let sink: any AuditSink
    private let counters: NIOLockedValueBox<AuditCounters>
    public let format: LogFormat

    public init(sink: any AuditSink, since: Timestamp, format: LogFormat = .logfmt) {
        self.sink = sink
        self.counters = NIOLockedValueBox(AuditCounters(since: since))
        self.format = format
    }

    /// Writes one audit line and counts it.
    public func record(_ event: AuditEvent) {
        counters.withLockedValue { $0.record(event.outcome, source: event.source.fingerprint) }
        sink.write(format == .json ? event.json : event.line)
    }

    /// An operator's action (e.g. `operator_unblock`), written whatever the log level.
    public func recordOperator(action: String, source: String, count: Int) {
        let event = OperatorAuditEvent(action: action, source: source, count: count)
        sink.write(format == .json ? event.json : event.line)
    }

    /// Counts a player's tokenless media request (§12.3): the summary's `deny_missing_media`, no line.
    public func recordMissingMedia() {
        counters.withLockedValue { $0.denyMissingMedia += 1 }
    }

    /// Counts a validation cache hit or miss.
    public func recordCache(hit: Bool) {
        counters.withLockedValue { counters in
            if hit { counters.cacheHits += 1 } else { counters.cacheMisses += 1 }
        }
    }

    /// Writes the summary line for the interval that ends `now` and starts a new one. Returns the line.
    @discardableResult
    public func emitSummary(now: Timestamp) -> String {
        let line = counters.withLockedValue { counters in
            let line = format == .json ? counters.summaryJSON : counters.summaryLine
            counters = AuditCounters(since: now)
            return line
        }
        sink.write(line)
        return line
    }
}
