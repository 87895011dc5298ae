import Logging
import NIOConcurrencyHelpers

/// A message that would otherwise repeat on every request (a broken frontend configuration, a PMS that
/// redirects): logged at most once per interval per distinct text (or per `key`, for a message whose text
/// varies), or only once with no interval.
public final class RateLimitedLog: Sendable {
    private let logger: Logger
    private let interval: Duration?
    private let last = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
    /// Distinct texts remembered (a flood of distinct texts is still bounded).
    static let capacity = 1_000

    public init(logger: Logger, interval: Duration?) {
        self.logger = logger
        self.interval = interval
    }

    public func error(_ message: String, key: String? = nil) {
        guard due(key ?? message) else { return }
        logger.error("\(message)\(interval == nil ? " (logged once)" : "; repeated at most once a minute")")
    }

    public func warning(_ message: String) {
        guard due(message) else { return }
        logger.warning("\(message)\(interval == nil ? " (logged once)" : "")")
    }

    /// Lets the next message with this key (or text) through at once: the condition it reported is over.
    public func forget(_ key: String) {
        _ = last.withLockedValue { $0.removeValue(forKey: key) }
    }

    private func due(_ message: String) -> Bool {
        let now = ContinuousClock.now
        return last.withLockedValue { last -> Bool in
            if let previous = last[message] {
                guard let interval, now - previous >= interval else { return false }
            } else if last.count >= Self.capacity {
                return false
            }
            last[message] = now
            return true
        }
    }
}
