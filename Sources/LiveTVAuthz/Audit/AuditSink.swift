import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Where audit lines go. Separate from the operational logger on purpose: audit lines are written whatever
/// the log level, because operators' alerts (`journalctl -g plexlabelproxy_audit`) depend on them.
public protocol AuditSink: Sendable {
    /// Writes one line (without its newline).
    func write(_ line: String)
}

/// Standard error, one `write(2)` per line (the journal under systemd), so lines from several threads
/// never interleave.
public final class StandardErrorAuditSink: AuditSink {
    private let lock = NIOLock()

    public init() {}

    public func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        lock.withLock {
            var written = 0
            while written < bytes.count {
                let count = bytes[written...].withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    return
                }
                written += count
            }
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
