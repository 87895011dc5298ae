import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import NIOHTTP1
import Prometheus
import Synchronization

/// How the asker reached the service.
public enum Transport: Sendable, Hashable {
    /// The Unix domain socket: its file mode and group are the authentication.
    case unixSocket
    /// TCP from an allowed address: every decision request must carry the frontend key.
    case tcp(remote: String?)
}

/// An answer of the decision server.
public struct ServerResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: HTTPResponseStatus, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func text(_ status: HTTPResponseStatus, _ text: String) -> ServerResponse {
        ServerResponse(
            status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array((text + "\n").utf8))
    }
}

/// The frontend key (`X-Plexauthz-Key`), compared in constant time.
public struct FrontendKey: Sendable {
    let bytes: [UInt8]

    /// A key of at least 16 visible ASCII characters.
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count >= 16, trimmed.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        bytes = Array(trimmed.utf8)
    }

    /// Constant-time in the length of the presented value (and of the key).
    public func matches(_ presented: String?) -> Bool {
        guard let presented else { return false }
        return ConstantTime.equals(bytes, presented.utf8)
    }
}

/// Readiness facts the operator endpoints report.
public final class Readiness: Sendable {
    private let lastIdentity = Mutex<Timestamp?>(nil)
    public let interval: Duration
    private let clock: any WallClock

    public init(interval: Duration, clock: any WallClock) {
        self.interval = interval
        self.clock = clock
    }

    public func recordIdentity(at time: Timestamp) { lastIdentity.withLock { $0 = time } }

    /// Ready when PMS answered `/identity` within the last two probe intervals.
    public var isReady: Bool {
        guard let last = lastIdentity.withLock({ $0 }) else { return false }
        return clock.now() - last <= interval * 2
    }
}

/// Turns one decision subrequest into one answer: authenticates the frontend, picks the adapter, asks the
/// guard, writes the contract's headers. Operator endpoints live here too.
public final class DecisionService: Sendable {
    public static let maximumTargetBytes = 16 * 1024

    private let guardian: Guard
    private let frontendKey: FrontendKey?
    private let metrics: ServiceMetrics
    private let registry: PrometheusCollectorRegistry?
    private let readiness: Readiness
    private let logger: Logger
    private let configErrorLog = Mutex<[String: ContinuousClock.Instant]>([:])

    public init(
        guard guardian: Guard, frontendKey: FrontendKey?, metrics: ServiceMetrics,
        registry: PrometheusCollectorRegistry?,
        readiness: Readiness, logger: Logger
    ) {
        self.guardian = guardian
        self.frontendKey = frontendKey
        self.metrics = metrics
        self.registry = registry
        self.readiness = readiness
        self.logger = logger
    }

    public func respond(to wire: WireRequest, transport: Transport) async -> ServerResponse {
        let path =
            wire.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let endpoint: String
        let response: ServerResponse
        switch path {
        case "/healthz":
            endpoint = "healthz"
            response = .text(.ok, "ok")
        case "/readyz":
            endpoint = "readyz"
            response =
                readiness.isReady
                ? .text(.ok, "ready") : .text(.serviceUnavailable, "not ready: PMS has not answered /identity recently")
        case "/metrics":
            endpoint = "metrics"
            response = ServerResponse(
                status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4")],
                body: registry?.emitToBuffer() ?? [])
        case "/v1/nginx":
            endpoint = "nginx"
            response = await decide(wire, transport: transport) { wire throws(AdapterError) in
                try NginxAdapter.request(wire)
            }
        case "/v1/forward":
            endpoint = "forward"
            response = await decide(wire, transport: transport) { wire throws(AdapterError) in
                try ForwardAuthAdapter.request(wire)
            }
        case _ where path == EnvoyHTTPAdapter.prefix || path.hasPrefix(EnvoyHTTPAdapter.prefix + "/"):
            endpoint = "envoy"
            response = await decide(wire, transport: transport) { wire throws(AdapterError) in
                try EnvoyHTTPAdapter.request(wire)
            }
        default:
            endpoint = "unknown"
            response = .text(.notFound, "not found")
        }
        metrics.recordResponse(endpoint: endpoint, status: Int(response.status.code))
        return response
    }

    private func decide(
        _ wire: WireRequest, transport: Transport, adapter: (WireRequest) throws(AdapterError) -> AuthzRequest
    ) async -> ServerResponse {
        if case .tcp = transport {
            guard let frontendKey, frontendKey.matches(wire.headers.first(name: ControlHeaders.frontendKey)) else {
                return .text(.unauthorized, "missing or wrong X-Plexauthz-Key")
            }
        }
        let request: AuthzRequest
        do {
            request = try adapter(wire)
        } catch {
            logConfigurationError(error.description)
            return .text(.internalServerError, "frontend configuration error: \(error.description)")
        }
        guard request.target.utf8.count <= Self.maximumTargetBytes else {
            return .text(.uriTooLong, "original request-target over \(Self.maximumTargetBytes) bytes")
        }
        var described = request
        if case .tcp(let remote) = transport { described.peer.connectionAddress = remote }
        let decision = await guardian.decide(described)
        if decision.rejected {
            return ServerResponse(status: .forbidden, headers: DecisionHeaders.blocked(decision))
        }
        return ServerResponse(status: .ok, headers: DecisionHeaders.allow(decision))
    }

    /// A broken frontend config fails every request; say so once a minute, not once per request.
    private func logConfigurationError(_ message: String) {
        let now = ContinuousClock.now
        let due = configErrorLog.withLock { log -> Bool in
            if let last = log[message], now - last < .seconds(60) { return false }
            log[message] = now
            return true
        }
        if due {
            logger.error("frontend configuration error: \(message) (answering 500; repeated at most once a minute)")
        }
    }
}
