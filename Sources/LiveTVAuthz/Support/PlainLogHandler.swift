import Foundation
import LiveTVAuthzCore
import Logging
import NIOConcurrencyHelpers

/// One line per message on standard error, without timestamps (journald adds them): audit lines start
/// exactly with `plexlabelproxy_audit:` so operators' `journalctl -g` searches match as before.
public struct PlainLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let format: LogFormat
    private static let lock = NIOLock()

    public init(level: Logger.Level, format: LogFormat = .logfmt) {
        self.logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text: String
        switch format {
        case .logfmt:
            text =
                event.level == .notice || event.level == .info
                ? "\(event.message)\n" : "\(event.level): \(event.message)\n"
        case .json:
            text =
                "{\"level\":\(AuditField.jsonString(event.level.rawValue)),\"message\":\(AuditField.jsonString("\(event.message)"))}\n"
        }
        Self.lock.withLock { FileHandle.standardError.write(Data(text.utf8)) }
    }
}

/// How log and audit lines are written (`--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// Text lines; audit lines exactly as the original proxy's.
    case logfmt
    /// One JSON object per line.
    case json
}
