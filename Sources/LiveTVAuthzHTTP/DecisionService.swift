import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import Synchronization

/// Turns one decision subrequest into one answer: authenticates the frontend (the shared trust layer),
/// picks the adapter, asks the guard, writes the contract's headers. Operator endpoints are answered by
/// `OperatorEndpoints`.
public final class DecisionService: Sendable {
    public static let maximumTargetBytes = 16 * 1024

    private let guardian: Guard
    private let trust: FrontendTrust
    private let metrics: ServiceMetrics
    private let operators: OperatorEndpoints
    private let configurationErrors: RateLimitedLog

    public init(
        guard guardian: Guard, trust: FrontendTrust, metrics: ServiceMetrics, operators: OperatorEndpoints,
        logger: Logger
    ) {
        self.guardian = guardian
        self.trust = trust
        self.metrics = metrics
        self.operators = operators
        self.configurationErrors = RateLimitedLog(logger: logger, interval: .seconds(60))
    }

    public func respond(to wire: WireRequest, transport: ListenerTransport) async -> ServerResponse {
        let path = wire.path
        let endpoint: String
        let response: ServerResponse
        switch path {
        case "/v1/nginx":
            endpoint = "nginx"
            response = await decide(wire, transport: transport, adapter: NginxAdapter.request)
        case "/v1/forward":
            endpoint = "forward"
            response = await decide(wire, transport: transport, adapter: ForwardAuthAdapter.request)
        case _ where path == EnvoyHTTPAdapter.prefix || path.hasPrefix(EnvoyHTTPAdapter.prefix + "/"):
            endpoint = "envoy"
            response = await decide(wire, transport: transport, adapter: EnvoyHTTPAdapter.request)
        default:
            guard let answer = operators.respond(path: path) else {
                metrics.recordResponse(endpoint: "unknown", status: 404)
                return .text(404, "not found")
            }
            endpoint = answer.endpoint
            response = answer.response
        }
        metrics.recordResponse(endpoint: endpoint, status: response.status)
        return response
    }

    private func decide(
        _ wire: WireRequest, transport: ListenerTransport,
        adapter: (WireRequest) throws(AdapterError) -> AuthzRequest
    ) async -> ServerResponse {
        switch trust.authenticate(transport, presentedKey: wire.headers.firstText(ControlHeaders.frontendKey)) {
        case .trusted: break
        case .wrongKey: return .text(401, "missing or wrong X-Plexauthz-Key")
        case .peerNotAllowed: return .text(403, "not an allowed frontend")
        }
        let request: AuthzRequest
        do {
            request = try adapter(wire)
        } catch {
            configurationErrors.error("frontend configuration error: \(error.description) (answering 500)")
            return .text(500, "frontend configuration error: \(error.description)")
        }
        guard request.target.bytes.count <= Self.maximumTargetBytes else {
            return .text(414, "original request-target over \(Self.maximumTargetBytes) bytes")
        }
        var described = request
        if case .tcp(let peer) = transport { described.peer.connectionAddress = peer }
        let decision = await guardian.decide(described)
        if decision.rejected {
            return ServerResponse(status: 403, headers: DecisionHeaders.blocked(decision))
        }
        return ServerResponse(status: 200, headers: DecisionHeaders.allow(decision))
    }
}
