import LiveTVAuthzCore
import Logging
import ServiceLifecycle

/// Asks PMS for `/identity` (no token needed) every interval: readiness, and the machine identifier that
/// pins `server://` references to this server.
public struct PMSIdentityService: Service {
    let client: any PMSClient
    let pms: PMSURL
    let interval: Duration
    let clock: any WallClock
    let logger: Logger
    let onIdentity: @Sendable (_ machineIdentifier: String?, _ at: Timestamp) -> Void

    public init(
        client: any PMSClient, pms: PMSURL, interval: Duration, clock: any WallClock, logger: Logger,
        onIdentity: @escaping @Sendable (String?, Timestamp) -> Void
    ) {
        self.client = client
        self.pms = pms
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self.onIdentity = onIdentity
    }

    public func run() async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if let identifier = await client.identity() {
                if failures > 0 { logger.notice("PMS at \(pms) answers /identity again; ready") }
                failures = 0
                onIdentity(identifier.isEmpty ? nil : identifier, clock.now())
            } else {
                failures += 1
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("PMS at \(pms) did not answer /identity (\(failures) time(s) in a row); not ready")
                }
            }
            // Probe quickly until the first answer, then every interval.
            let pause = failures > 0 && failures < 10 ? min(interval, .seconds(2)) : interval
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            } catch {
                return
            }
        }
    }
}
