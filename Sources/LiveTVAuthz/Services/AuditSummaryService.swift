import LiveTVAuthzCore
import ServiceLifecycle

/// Writes the `plexlabelproxy_audit_summary:` line every interval, and a last one at shutdown.
public struct AuditSummaryService: Service {
    let audit: AuditLog
    let interval: Duration
    let clock: any WallClock

    public init(audit: AuditLog, interval: Duration, clock: any WallClock) {
        self.audit = audit
        self.interval = interval
        self.clock = clock
    }

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
            audit.emitSummary(now: clock.now())
        }
        // The interval cut short by shutdown still gets its line.
        audit.emitSummary(now: clock.now())
    }
}
