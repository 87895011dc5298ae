import LiveTVAuthzCore
import Logging
import Synchronization

/// Writes the abuse state off the request path: every change only marks the state dirty; one loop writes
/// at most one file at a time and always the latest state. `finish()` then awaiting `run()` flushes.
public final class AbuseStateWriter: Sendable {
    private let file: AbuseStateFile
    private let snapshot: @Sendable () async -> GuardSnapshot
    private let logger: Logger
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init(file: AbuseStateFile, logger: Logger, snapshot: @escaping @Sendable () async -> GuardSnapshot) {
        self.file = file
        self.snapshot = snapshot
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Cheap and non-blocking: called on the request path after a change.
    public func markDirty() {
        continuation.yield(())
    }

    /// Stops accepting changes; `run()` writes once more and returns.
    public func finish() {
        continuation.finish()
    }

    /// The writer loop. Returns after `finish()`, having written the final state.
    public func run() async {
        for await _ in stream {
            await writeNow()
        }
        await writeNow()
    }

    /// Writes the current state now.
    public func writeNow() async {
        let records = await snapshot()
        do {
            try file.write(records)
        } catch {
            logger.error("cannot write abuse state file: \(error)")
        }
    }
}

/// Lets the in-memory state's change callback reach the writer created after it (the writer needs the
/// state for its snapshots, the state needs the writer to mark it dirty).
public final class AbuseStateWriterBox: Sendable {
    private let writer = Mutex<AbuseStateWriter?>(nil)

    public init() {}

    public func set(_ value: AbuseStateWriter) { writer.withLock { $0 = value } }

    public func markDirty() { writer.withLock { $0 }?.markDirty() }
}
