import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import Synchronization

/// A clock tests move by hand.
final class ManualClock: WallClock {
    private let time: Mutex<Timestamp>
    init(_ start: Timestamp = Timestamp(unixSeconds: 1_800_000_000)) { time = Mutex(start) }
    func now() -> Timestamp { time.withLock { $0 } }
    func advance(_ duration: Duration) { time.withLock { $0 = $0 + duration } }
}

/// A PMS whose answers are scripted per token; counts calls and can hold answers back.
final class ScriptedPMS: PMSClient {
    private let answers: Mutex<[String: TokenCheck]>
    private let calls = Mutex(0)
    private let delay: Duration
    let fallback: TokenCheck

    init(_ answers: [String: TokenCheck] = [:], fallback: TokenCheck = .invalid(status: 401), delay: Duration = .zero) {
        self.answers = Mutex(answers)
        self.fallback = fallback
        self.delay = delay
    }

    var callCount: Int { calls.withLock { $0 } }

    func set(_ token: String, _ check: TokenCheck) { answers.withLock { $0[token] = check } }

    func checkToken(_ token: PlexToken) async -> TokenCheck {
        calls.withLock { $0 += 1 }
        if delay > .zero { try? await Task.sleep(for: delay) }
        return answers.withLock { $0[token.value] } ?? fallback
    }
}

/// Keeps every log message in memory so tests can assert on what operators would see.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var logger: Logger {
        Logger(label: "test") { _ in CapturingHandler(sink: self) }
    }

    var auditLines: [String] { all.filter { $0.hasPrefix(AuditEvent.prefix) } }

    func outcomes() -> [String] {
        auditLines.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("outcome=") }.map { String($0.dropFirst(8)) }
        }
    }
}

struct CapturingHandler: LogHandler {
    let sink: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        sink.append(event.message.description)
    }
}
