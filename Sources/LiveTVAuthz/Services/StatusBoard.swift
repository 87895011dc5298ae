import LiveTVAuthzCore
import NIOConcurrencyHelpers

/// What `/status` shows that the metrics do not keep: decisions per minute over the last hour, the last 50
/// decisions, recent validation latencies. Fed by `ServiceMetrics` from the same calls as the counters, so
/// the page and `/metrics` agree. Holds rule ids, outcomes, escaped paths without query and token
/// fingerprints: never a token or an address.
public final class StatusBoard: Sendable {
    public struct Recent: Sendable, Equatable {
        public var time: Timestamp
        /// A copy of the path's bytes (never a slice of the target: that would keep its query, and the token
        /// in it, alive); escaped as audit lines write it only when the page is rendered.
        var pathBytes: [UInt8]
        public var rule: String
        public var outcome: String
        public var token: String

        public var path: String { AuditEvent.escapeToken(pathBytes) }
    }

    struct Minute: Sendable {
        var index: Int64
        var counts: [String: Int]
    }

    struct State: Sendable {
        var totals: [String: Int] = [:]
        var minutes: [Minute] = []
        var recent: [Recent] = []
        var cacheHits = 0
        var cacheMisses = 0
        var latencies: [Duration] = []
    }

    public let startedAt: Timestamp
    let clock: any WallClock
    private let state = NIOLockedValueBox(State())
    static let recentLimit = 50
    static let latencyLimit = 200

    public init(clock: any WallClock) {
        self.clock = clock
        startedAt = clock.now()
    }

    func record(_ decision: AuthzDecision, outcome: String, tokenFingerprint: String? = nil) {
        let now = clock.now()
        let minute = now.unixSeconds / 60
        let classification = decision.classification
        // Only Live TV decisions (candidates, tracked playback, anything audited) are listed: the rest (images,
        // libraries) would push them out, and skipping them keeps the hot path free of hashing and escaping.
        let listed = classification.surface != nil || decision.elevate || decision.outcome != nil
        let entry =
            listed
            ? Recent(
                time: now, pathBytes: Array(classification.target.path), rule: decision.rule.rawValue,
                outcome: outcome,
                token: tokenFingerprint ?? classification.token.token?.fingerprint ?? Fingerprint.missing) : nil
        state.withLockedValue { state in
            state.totals[outcome, default: 0] += 1
            if state.minutes.last?.index != minute {
                state.minutes.append(Minute(index: minute, counts: [:]))
                state.minutes.removeAll { $0.index <= minute - 60 }
            }
            state.minutes[state.minutes.count - 1].counts[outcome, default: 0] += 1
            guard let entry else { return }
            state.recent.append(entry)
            if state.recent.count > Self.recentLimit { state.recent.removeFirst(state.recent.count - Self.recentLimit) }
        }
    }

    func recordCache(hit: Bool) {
        state.withLockedValue { if hit { $0.cacheHits += 1 } else { $0.cacheMisses += 1 } }
    }

    func recordValidation(_ duration: Duration) {
        state.withLockedValue { state in
            state.latencies.append(duration)
            if state.latencies.count > Self.latencyLimit { state.latencies.removeFirst() }
        }
    }

    /// Everything the page shows, at `now`.
    public struct Snapshot: Sendable {
        public var now: Timestamp
        public var startedAt: Timestamp
        public var totals: [String: Int]
        /// Oldest first, one per minute of the last hour (60 entries), counts by outcome.
        public var perMinute: [[String: Int]]
        /// Newest first.
        public var recent: [Recent]
        public var cacheHits: Int
        public var cacheMisses: Int
        public var validations: Int
        public var latencyP50: Duration?
        public var latencyP95: Duration?
    }

    public func snapshot() -> Snapshot {
        let now = clock.now()
        let current = now.unixSeconds / 60
        return state.withLockedValue { state in
            var perMinute = [[String: Int]](repeating: [:], count: 60)
            for minute in state.minutes where minute.index > current - 60 && minute.index <= current {
                perMinute[Int(59 - (current - minute.index))] = minute.counts
            }
            let sorted = state.latencies.sorted()
            func quantile(_ q: Double) -> Duration? {
                sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q + 0.5))]
            }
            return Snapshot(
                now: now, startedAt: startedAt, totals: state.totals, perMinute: perMinute,
                recent: state.recent.reversed(), cacheHits: state.cacheHits, cacheMisses: state.cacheMisses,
                validations: state.latencies.count, latencyP50: quantile(0.5), latencyP95: quantile(0.95))
        }
    }
}
