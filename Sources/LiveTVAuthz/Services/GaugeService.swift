import LiveTVAuthzCore
import ServiceLifecycle

/// Keeps the gauges (active blocks, cached tokens) current.
public struct GaugeService: Service {
    let state: any GuardStateStore
    let validator: TokenValidator
    let metrics: ServiceMetrics
    let clock: any WallClock
    let readiness: Readiness?

    public init(
        state: any GuardStateStore, validator: TokenValidator, metrics: ServiceMetrics, clock: any WallClock,
        readiness: Readiness? = nil
    ) {
        self.readiness = readiness
        self.state = state
        self.validator = validator
        self.metrics = metrics
        self.clock = clock
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            Self.refresh(state: state, validator: validator, metrics: metrics, clock: clock, readiness: readiness)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
            } catch {
                return
            }
        }
    }

    /// Sets the gauges from the state now (also right before each `/metrics` scrape).
    public static func refresh(
        state: any GuardStateStore, validator: TokenValidator, metrics: ServiceMetrics, clock: any WallClock,
        readiness: Readiness?
    ) {
        if let readiness { metrics.pmsReady.record(readiness.isReady ? 1 : 0) }
        metrics.activeBlocks.record(state.activeBlocks(at: clock.now()))
        metrics.stateStoreUp.record(state.isHealthy ? 1 : 0)
        metrics.trackedSessions.record(state.trackedSessions(at: clock.now()))
        metrics.cacheEntries.record(validator.cachedTokens)
    }
}
