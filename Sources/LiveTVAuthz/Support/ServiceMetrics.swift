import CoreMetrics
import LiveTVAuthzCore
import NIOConcurrencyHelpers

/// The service's metrics, through swift-metrics with an explicit factory (the Prometheus registry in
/// production, a private one in tests). No label ever carries a token, a fingerprint or an address:
/// labels are rule ids, outcomes and fixed words only.
public final class ServiceMetrics: Sendable {
    private let factory: any MetricsFactory
    private let decisions = NIOLockedValueBox<[DecisionSeries: Counter]>([:])
    public let validationDuration: Timer
    public let cacheHits: Counter
    public let cacheMisses: Counter
    public let cacheEntries: Gauge
    public let activeBlocks: Gauge
    private let pmsErrors = NIOLockedValueBox<[String: Counter]>([:])
    public let openConnections: Meter
    private let responses = NIOLockedValueBox<[ResponseSeries: Counter]>([:])
    private let refusedConnections = NIOLockedValueBox<[String: Counter]>([:])
    private let backgroundJobs = NIOLockedValueBox<[String: Counter]>([:])
    public let trackedSessions: Gauge
    /// 1 while PMS answers `/identity` (the readiness rule), else 0.
    public let pmsReady: Gauge
    /// 1 while the guard state store reaches what it shares state through (always 1 in memory).
    public let stateStoreUp: Gauge
    /// The status page's memory (`/status`), fed by the same calls as the counters.
    public let board: StatusBoard?

    public init(factory: any MetricsFactory, board: StatusBoard? = nil) {
        self.factory = factory
        self.board = board
        validationDuration = Timer(label: "plexauthz_validation_duration_seconds", dimensions: [], factory: factory)
        cacheHits = Counter(
            label: "plexauthz_validation_cache_total", dimensions: [("result", "hit")], factory: factory)
        cacheMisses = Counter(
            label: "plexauthz_validation_cache_total", dimensions: [("result", "miss")], factory: factory)
        cacheEntries = Gauge(label: "plexauthz_validation_cache_entries", dimensions: [], factory: factory)
        activeBlocks = Gauge(label: "plexauthz_blocked_sources", dimensions: [], factory: factory)
        openConnections = Meter(label: "plexauthz_open_connections", dimensions: [], factory: factory)
        trackedSessions = Gauge(label: "plexauthz_tracked_playback_sessions", dimensions: [], factory: factory)
        pmsReady = Gauge(label: "plexauthz_pms_ready", dimensions: [], factory: factory)
        stateStoreUp = Gauge(label: "plexauthz_state_store_up", dimensions: [], factory: factory)
        // Every known series from the start, at zero: alerts and dashboards see 0, not "no data".
        for kind in Unavailability.kinds {
            _ = counter(pmsErrors, "plexauthz_pms_errors_total", [("kind", kind)])
        }
        for reason in ["not_allowed", "listener_cap", "peer_cap"] {
            _ = counter(refusedConnections, "plexauthz_refused_connections_total", [("reason", reason)])
        }
        for job in ["replay", "unscrobble"] {
            for result in ["done", "failed", "dropped"] {
                _ = counter(backgroundJobs, "plexauthz_background_jobs_total", [("job", job), ("result", result)])
            }
        }
    }

    /// A metrics object that records nothing (tests, `explain`).
    public static let none = ServiceMetrics(factory: NOOPMetricsHandler.instance)

    /// Counts one decision by rule and outcome (`elevated`, `preserved` or the audit outcome).
    /// `tokenFingerprint`: the inbound token's, when the caller has it already (the status page lists it).
    public func recordDecision(_ decision: AuthzDecision, tokenFingerprint: String? = nil) {
        let series = DecisionSeries(rule: decision.rule, outcome: decision.outcome, elevate: decision.elevate)
        counter(decisions, series, "plexauthz_decisions_total") {
            [("rule", series.rule.rawValue), ("outcome", series.outcomeLabel)]
        }.increment()
        board?.record(decision, outcome: series.outcomeLabel, tokenFingerprint: tokenFingerprint)
    }

    /// One series of `plexauthz_decisions_total`, hashed without building its label strings (every decision
    /// counts itself).
    struct DecisionSeries: Hashable {
        let rule: ElevationRule
        let outcome: AuditOutcome?
        let elevate: Bool

        var outcomeLabel: String { outcome?.rawValue ?? (elevate ? "elevated" : "preserved") }
    }

    struct ResponseSeries: Hashable {
        let endpoint: String
        let status: Int
    }

    /// Counts a validation cache hit or miss.
    public func recordCache(hit: Bool) {
        if hit { cacheHits.increment() } else { cacheMisses.increment() }
        board?.recordCache(hit: hit)
    }

    /// Records how long PMS took to answer a validation.
    public func recordValidation(_ duration: Duration) {
        validationDuration.recordNanoseconds(duration.nanoseconds)
        board?.recordValidation(duration)
    }

    /// Counts a PMS validation failure by kind (`timeout`, `status`, `connection`).
    public func recordPMSError(_ kind: String) {
        counter(pmsErrors, "plexauthz_pms_errors_total", [("kind", kind)]).increment()
    }

    /// Counts an answer of the decision server by endpoint and status.
    public func recordResponse(endpoint: String, status: Int) {
        counter(responses, ResponseSeries(endpoint: endpoint, status: status), "plexauthz_http_responses_total") {
            [("endpoint", endpoint), ("status", String(status))]
        }.increment()
    }

    /// Counts a connection refused at accept (`not_allowed`, `listener_cap`, `peer_cap`).
    public func recordRefusedConnection(_ reason: String) {
        counter(refusedConnections, "plexauthz_refused_connections_total", [("reason", reason)]).increment()
    }

    /// Counts an owner-history job (`replay`, `unscrobble`) by result (`done`, `failed`, `dropped`).
    public func recordBackgroundJob(_ job: String, result: String) {
        counter(backgroundJobs, "plexauthz_background_jobs_total", [("job", job), ("result", result)]).increment()
    }

    private func counter(
        _ cache: borrowing NIOLockedValueBox<[String: Counter]>, _ label: String, _ dimensions: [(String, String)]
    )
        -> Counter
    {
        counter(cache, dimensions.map { "\($0.0)=\($0.1)" }.joined(separator: ","), label) { dimensions }
    }

    /// The counter of one series, created (with its dimensions) the first time the series is seen.
    private func counter<Key: Hashable>(
        _ cache: borrowing NIOLockedValueBox<[Key: Counter]>, _ key: Key, _ label: String,
        dimensions: () -> [(String, String)]
    ) -> Counter {
        cache.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions(), factory: factory)
            counters[key] = counter
            return counter
        }
    }
}
