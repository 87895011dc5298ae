import LiveTVAuthzCore
import Logging
import NIOConcurrencyHelpers

/// Writes the abuse state off the request path: every change only marks the state dirty; one loop writes
/// at most one file at a time and always the latest state. `finish()` then awaiting `run()` flushes.
public final class AbuseStateWriter: Sendable {
    private let file: AbuseStateFile
    private let snapshot: @Sendable () async -> GuardSnapshot
    private let logger: Logger
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let healthy = NIOLockedValueBox(true)
    /// Write failures: at most once a minute while they go on (their text names a new temporary file each time).
    private let failures: RateLimitedLog
    private static let failureKey = "state-write"
    /// How soon a failed write is tried again when nothing else changes.
    public let retryInterval: Duration

    public init(
        file: AbuseStateFile, logger: Logger, retryInterval: Duration = .seconds(5),
        snapshot: @escaping @Sendable () async -> GuardSnapshot
    ) {
        self.retryInterval = retryInterval
        self.failures = RateLimitedLog(logger: logger, interval: .seconds(60))
        self.file = file
        self.snapshot = snapshot
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Whether the last write succeeded (a read-only or full disk makes it false until one does).
    public var isHealthy: Bool { healthy.withLockedValue { $0 } }

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

    /// Writes the current state now. A failure never stops decisions: blocks go on in memory, the failure
    /// is logged (then at most once a minute while it lasts), the write is retried every `retryInterval`
    /// even when nothing changes, and the first write that works again says so.
    public func writeNow() async {
        let records = await snapshot()
        do {
            try file.write(records)
            if healthy.withLockedValue({ state in
                defer { state = true }
                return !state
            }) {
                failures.forget(Self.failureKey)
                logger.notice("abuse state file \(file.path) written again; blocks are persistent again")
            }
        } catch {
            healthy.withLockedValue { $0 = false }
            failures.error(
                "cannot write abuse state file: \(error); decisions go on, blocks are kept in memory only until a write succeeds (retried every \(GoDuration.format(retryInterval)))",
                key: Self.failureKey)
            // The disk may recover while nothing changes: try again (a no-op once finish() was called).
            let interval = retryInterval
            Task { [self] in
                try? await Task.sleep(for: interval)
                markDirty()
            }
        }
    }
}

/// Lets the in-memory state's change callback reach the writer created after it (the writer needs the
/// state for its snapshots, the state needs the writer to mark it dirty).
public final class AbuseStateWriterBox: Sendable {
    private let writer = NIOLockedValueBox<AbuseStateWriter?>(nil)

    public init() {}

    public func set(_ value: AbuseStateWriter) { writer.withLockedValue { $0 = value } }

    public func markDirty() { writer.withLockedValue { $0 }?.markDirty() }

    /// The writer's health (healthy when there is no writer).
    public var isHealthy: Bool { writer.withLockedValue { $0 }?.isHealthy ?? true }
}
