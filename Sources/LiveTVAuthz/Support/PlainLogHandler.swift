import Foundation
import Logging
import Synchronization

/// One line per message on standard error, without timestamps (journald adds them): audit lines start
/// exactly with `plexlabelproxy_audit:` so operators' `journalctl -g` searches match as before.
public struct PlainLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private static let lock = Mutex(())

    public init(level: Logger.Level) {
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text =
            event.level == .notice || event.level == .info ? "\(event.message)\n" : "\(event.level): \(event.message)\n"
        Self.lock.withLock { _ in FileHandle.standardError.write(Data(text.utf8)) }
    }
}
