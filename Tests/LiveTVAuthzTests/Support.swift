import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzCore
import Logging
import NIOConcurrencyHelpers

/// A clock tests move by hand.
final class ManualClock: WallClock {
    private let time: NIOLockedValueBox<Timestamp>
    init(_ start: Timestamp = Timestamp(unixSeconds: 1_800_000_000)) { time = NIOLockedValueBox(start) }
    func now() -> Timestamp { time.withLockedValue { $0 } }
    func advance(_ duration: Duration) { time.withLockedValue { $0 = $0 + duration } }
}

/// A PMS whose answers are scripted per token; counts calls and can hold answers back.
final class ScriptedPMS: PMSClient {
    private let answers: NIOLockedValueBox<[String: TokenCheck]>
    private let calls = NIOLockedValueBox(0)
    private let delay: Duration
    let fallback: TokenCheck

    init(_ answers: [String: TokenCheck] = [:], fallback: TokenCheck = .invalid(status: 401), delay: Duration = .zero) {
        self.answers = NIOLockedValueBox(answers)
        self.fallback = fallback
        self.delay = delay
    }

    var callCount: Int { calls.withLockedValue { $0 } }

    func set(_ token: String, _ check: TokenCheck) { answers.withLockedValue { $0[token] = check } }

    func checkToken(_ token: PlexToken) async -> TokenCheck {
        calls.withLockedValue { $0 += 1 }
        if delay > .zero { try? await Task.sleep(for: delay) }
        return answers.withLockedValue { $0[token.value] } ?? fallback
    }

    func identity() async -> String? { "4f3c9a1e7b2d8c6f0a5e9d3b1c7f2a8e6d4b0c9f" }

    private let sent = NIOLockedValueBox<[PMSRequest]>([])
    /// Requests the service sent on its own (owner-history neutralisation).
    var sentRequests: [PMSRequest] { sent.withLockedValue { $0 } }

    func send(_ request: PMSRequest, timeout: Duration) async -> Int? {
        sent.withLockedValue { $0.append(request) }
        return 200
    }
}

/// Keeps every log message and audit line in memory so tests can assert on what operators would see.
final class CapturedLog: AuditSink {
    private let lines = NIOLockedValueBox<[String]>([])
    var all: [String] { lines.withLockedValue { $0 } }
    func append(_ line: String) { lines.withLockedValue { $0.append(line) } }
    func write(_ line: String) { append(line) }

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

extension Configuration {
    /// A configuration for in-process tests: the owner token, no listeners, the given abuse limits.
    static func testing(
        owner: String = "ownr0000000000000000", policy: AbusePolicy = AbusePolicy(), mode: ElevationMode = .liveTV,
        listen: [ListenAddress] = []
    ) -> Configuration {
        var configuration = Configuration()
        configuration.set(Settings.ownerToken, PlexToken(owner)!)
        configuration.set(Settings.listen, listen)
        configuration.set(Settings.mode, mode)
        configuration.set(abusePolicy: policy)
        return configuration
    }
}

extension AuthzDependencies {
    /// Scripted PMS, manual clock, captured audit and log.
    static func testing(clock: any WallClock, pms: (any PMSClient)?, log: CapturedLog) -> AuthzDependencies {
        var dependencies = AuthzDependencies()
        dependencies.clock = clock
        dependencies.pms = pms
        dependencies.auditSink = log
        dependencies.logger = log.logger
        dependencies.handlesSignals = false
        return dependencies
    }
}
