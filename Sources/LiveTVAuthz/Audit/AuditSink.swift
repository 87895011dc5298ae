import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Where audit lines go. Separate from the operational logger on purpose: audit lines are written whatever
/// the log level, because operators' alerts (`journalctl -g plexlabelproxy_audit`) depend on them.
public protocol AuditSink: Sendable {
    /// Writes one line (without its newline).
    func write(_ line: String)
    /// Writes out whatever is buffered and waits until it is written (a clean stop). Lines written after
    /// it are written at once.
    func close()
}

extension AuditSink {
    public func close() {}
}

/// Standard error through one writer thread (the service's default): `write` appends the line to a buffer
/// and returns, so a decision never waits for the journal and costs no system call; the writer thread takes
/// everything buffered and writes it in one `write(2)`, then pauses a millisecond so a burst gathers into
/// the next batch. It is woken only when it sleeps with nothing to do. Lines never interleave and keep
/// their order. Nothing is dropped: past `maximumBuffered` bytes the caller writes the buffer itself (the
/// journal's back-pressure, as with direct writes), and `close()` (a clean stop) writes the rest and joins
/// the thread. A crash loses at most what was buffered: about a millisecond of lines.
public final class BufferedAuditSink: AuditSink, @unchecked Sendable {
    public static let maximumBuffered = 1 << 20
    static let batchPause: useconds_t = 1_000
    private static let idle = 0
    private static let busy = 1

    private let fileDescriptor: Int32
    /// `idle` while the writer sleeps waiting for lines; guards every `var` below.
    private let condition = ConditionLock(value: BufferedAuditSink.idle)
    private var buffer: [UInt8] = []
    private var writerIdle = true
    private var closing = false
    private var closed = false
    private var started = false
    /// Held while a taken batch is written, so batches reach the file in the order they were taken.
    private let writing = NIOLock()
    private let finished = ConditionLock(value: false)

    public init(fileDescriptor: Int32 = 2) {
        self.fileDescriptor = fileDescriptor
    }

    public func write(_ line: String) {
        condition.lock()
        if closed {
            condition.unlock()
            writing.withLock { StandardErrorAuditSink.writeAll(Array(line.utf8) + [0x0A], to: fileDescriptor) }
            return
        }
        if !started {
            started = true
            let thread = Thread { [self] in drain() }
            thread.name = "audit-writer"
            thread.start()
        }
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        let full = buffer.count >= Self.maximumBuffered
        if writerIdle {
            writerIdle = false
            condition.unlock(withValue: Self.busy)
        } else {
            condition.unlock()
        }
        if full { writeBuffered() }
    }

    public func close() {
        condition.lock()
        closed = true
        guard started, !closing else {
            condition.unlock()
            return
        }
        closing = true
        if writerIdle {
            writerIdle = false
            condition.unlock(withValue: Self.busy)
        } else {
            condition.unlock()
        }
        finished.lock(whenValue: true)
        finished.unlock()
    }

    /// Takes whatever is buffered and writes it (the writer thread, or a caller past the bound).
    private func writeBuffered() {
        writing.withLock {
            condition.lock()
            let batch = buffer
            buffer = []
            condition.unlock()
            StandardErrorAuditSink.writeAll(batch, to: fileDescriptor)
        }
    }

    private func drain() {
        while true {
            condition.lock(whenValue: Self.busy)
            let last = closing
            condition.unlock()
            writeBuffered()
            if last { break }
            usleep(Self.batchPause)
            condition.lock()
            if buffer.isEmpty, !closing {
                writerIdle = true
                condition.unlock(withValue: Self.idle)
            } else {
                condition.unlock()
            }
        }
        finished.lock()
        finished.unlock(withValue: true)
    }
}

/// Standard error, one `write(2)` per line, synchronously (the command line's one-off audit lines).
public final class StandardErrorAuditSink: AuditSink {
    private let lock = NIOLock()

    public init() {}

    public func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        lock.withLock { Self.writeAll(bytes, to: 2) }
    }

    /// Writes every byte (retrying partial writes and EINTR); gives up silently on another error, since
    /// there is nowhere left to report it.
    static func writeAll(_ bytes: [UInt8], to fileDescriptor: Int32) {
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(fileDescriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            written += count
        }
    }
}

/// Keeps lines in memory (tests, `explain`'s captured output).
public final class MemoryAuditSink: AuditSink {
    private let storage = NIOLockedValueBox<[String]>([])

    public init() {}

    public func write(_ line: String) { storage.withLockedValue { $0.append(line) } }

    public var lines: [String] { storage.withLockedValue { $0 } }
}
