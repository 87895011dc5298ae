import LiveTVAuthzCore
import ServiceLifecycle

/// Keeps the gauges (active blocks, cached tokens) current.
public struct GaugeService: Service {
    let state: any GuardStateStore
    let validator: TokenValidator
    let metrics: ServiceMetrics
    let clock: any WallClock

    public init(state: any GuardStateStore, validator: TokenValidator, metrics: ServiceMetrics, clock: any WallClock) {
        self.state = state
        self.validator = validator
        self.metrics = metrics
        self.clock = clock
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            metrics.activeBlocks.record(state.activeBlocks(at: clock.now()))
            metrics.trackedSessions.record(state.trackedSessions(at: clock.now()))
            metrics.cacheEntries.record(validator.cachedTokens)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
            } catch {
                return
            }
        }
    }
}
