import GRPCCore
import LiveTVAuthz
import LiveTVAuthzCore
import LiveTVAuthzEnvoy
import Logging

/// `envoy.service.auth.v3.Authorization/Check`: authenticates the asker through the shared frontend-trust
/// layer (Unix socket, or loopback / allow-listed TCP peer with the frontend key in the `x-plexauthz-key`
/// metadata), translates, asks the guard.
public struct EnvoyAuthorizationService: Envoy_Service_Auth_V3_Authorization.ServiceProtocol {
    public static let keyMetadata = "x-plexauthz-key"

    let guardian: Guard
    let trust: FrontendTrust
    let isUnixSocket: Bool
    let metrics: ServiceMetrics
    let logger: Logger

    public init(
        guard guardian: Guard, trust: FrontendTrust, isUnixSocket: Bool, metrics: ServiceMetrics, logger: Logger
    ) {
        self.guardian = guardian
        self.trust = trust
        self.isUnixSocket = isUnixSocket
        self.metrics = metrics
        self.logger = logger
    }

    public func check(
        request: ServerRequest<Envoy_Service_Auth_V3_CheckRequest>, context: ServerContext
    ) async throws -> ServerResponse<Envoy_Service_Auth_V3_CheckResponse> {
        let transport: ListenerTransport = isUnixSocket ? .unixSocket : .tcp(peer: Self.address(of: context.remotePeer))
        let presented = request.metadata[stringValues: Self.keyMetadata].first(where: { _ in true })
        switch trust.authenticate(transport, presentedKey: presented) {
        case .trusted:
            break
        case .peerNotAllowed:
            metrics.recordResponse(endpoint: "grpc", status: 403)
            return ServerResponse(
                message: EnvoyGRPCAdapter.refusal(
                    code: EnvoyGRPCAdapter.Code.permissionDenied, "peer is not an allowed frontend"))
        case .wrongKey:
            metrics.recordResponse(endpoint: "grpc", status: 401)
            return ServerResponse(
                message: EnvoyGRPCAdapter.refusal(
                    code: EnvoyGRPCAdapter.Code.unauthenticated, "missing or wrong x-plexauthz-key"))
        }
        let described: AuthzRequest
        do {
            described = try EnvoyGRPCAdapter.request(request.message)
        } catch {
            metrics.recordResponse(endpoint: "grpc", status: 400)
            return ServerResponse(
                message: EnvoyGRPCAdapter.refusal(code: EnvoyGRPCAdapter.Code.invalidArgument, error.description))
        }
        let decision = await guardian.decide(described)
        metrics.recordResponse(endpoint: "grpc", status: decision.rejected ? 403 : 200)
        return ServerResponse(message: EnvoyGRPCAdapter.response(decision))
    }

    /// The IP address in grpc-swift's peer description (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`);
    /// `nil` when there is none (then the peer is not admitted).
    static func address(of peer: String) -> String? {
        var host = Substring(peer)
        if host.hasPrefix("ipv4:") {
            host = host.dropFirst(5)
            guard let colon = host.lastIndex(of: ":") else { return nil }
            host = host[..<colon]
        } else if host.hasPrefix("ipv6:") {
            host = host.dropFirst(5)
            if host.hasPrefix("%5B") || host.hasPrefix("%5b") {
                host = host.dropFirst(3)
                guard let close = host.range(of: "%5D", options: .caseInsensitive) else { return nil }
                host = host[..<close.lowerBound]
            } else if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { return nil }
                host = host[host.index(after: host.startIndex)..<close]
            } else {
                return nil
            }
        } else {
            return nil
        }
        return host.isEmpty ? nil : String(host)
    }
}
