import ServiceLifecycle

/// Runs the abuse state writer; at graceful shutdown it stops taking changes and writes the final state.
public struct AbuseStateService: Service {
    public let writer: AbuseStateWriter

    public init(writer: AbuseStateWriter) {
        self.writer = writer
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await writer.run()
        } onGracefulShutdown: {
            writer.finish()
        }
    }
}
