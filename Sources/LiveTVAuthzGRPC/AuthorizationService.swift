import GRPCCore
import GRPCNIOTransportHTTP2
import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `envoy.service.auth.v3.Authorization/Check`: authenticates the asker (Unix socket, or loopback /
/// allow-listed TCP peer with the frontend key in the `x-plexauthz-key` metadata), translates, asks the
/// guard.
public struct EnvoyAuthorizationService: Envoy_Service_Auth_V3_Authorization.ServiceProtocol {
    public static let keyMetadata = "x-plexauthz-key"

    let guardian: Guard
    let frontendKey: (@Sendable (String?) -> Bool)?
    let isUnixSocket: Bool
    let allowedFrontends: Set<String>
    let metrics: ServiceMetrics
    let logger: Logger

    /// - Parameter frontendKey: checks a presented key in constant time; required for TCP listeners.
    public init(
        guard guardian: Guard, isUnixSocket: Bool, frontendKey: (@Sendable (String?) -> Bool)?,
        allowedFrontends: Set<String>, metrics: ServiceMetrics, logger: Logger
    ) {
        self.guardian = guardian
        self.isUnixSocket = isUnixSocket
        self.frontendKey = frontendKey
        self.allowedFrontends = allowedFrontends
        self.metrics = metrics
        self.logger = logger
    }

    public func check(
        request: ServerRequest<Envoy_Service_Auth_V3_CheckRequest>, context: ServerContext
    ) async throws -> ServerResponse<Envoy_Service_Auth_V3_CheckResponse> {
        if !isUnixSocket {
            guard Self.isAllowedPeer(context.remotePeer, allowed: allowedFrontends) else {
                metrics.recordResponse(endpoint: "grpc", status: 403)
                return ServerResponse(
                    message: EnvoyGRPCAdapter.refusal(
                        code: EnvoyGRPCAdapter.Code.permissionDenied, "peer is not an allowed frontend"))
            }
            let presented = request.metadata[stringValues: Self.keyMetadata].first(where: { _ in true })
            guard let frontendKey, frontendKey(presented) else {
                metrics.recordResponse(endpoint: "grpc", status: 401)
                return ServerResponse(
                    message: EnvoyGRPCAdapter.refusal(
                        code: EnvoyGRPCAdapter.Code.unauthenticated, "missing or wrong x-plexauthz-key"))
            }
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

    /// `ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`: loopback, or an allow-listed address.
    static func isAllowedPeer(_ peer: String, allowed: Set<String>) -> Bool {
        var host = peer
        for prefix in ["ipv4:", "ipv6:"] where host.hasPrefix(prefix) { host = String(host.dropFirst(prefix.count)) }
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        if host.hasPrefix("%5B") {
            host = host.replacingOccurrences(of: "%5B", with: "").replacingOccurrences(of: "%5D", with: "")
        }
        return PeerAddress.isLoopback(host) || allowed.contains(host)
    }
}

/// The gRPC listener as a lifecycle service: h2c (prior knowledge) on a Unix socket or loopback TCP.
public final class GRPCAuthzServer: Service, Sendable {
    private let address: ListenAddress
    private let service: EnvoyAuthorizationService
    private let socketMode: mode_t
    private let socketGroup: String?
    private let logger: Logger
    private let bound = Mutex<Int?>(nil)
    private let ready = AsyncStream<Void>.makeStream()

    public init(
        address: ListenAddress, service: EnvoyAuthorizationService, socketMode: mode_t, socketGroup: String?,
        logger: Logger
    ) {
        self.address = address
        self.service = service
        self.socketMode = socketMode
        self.socketGroup = socketGroup
        self.logger = logger
    }

    /// The bound TCP port (ephemeral ports resolved) once listening.
    public var port: Int? { bound.withLock { $0 } }

    public func waitUntilListening() async {
        for await _ in ready.stream { return }
    }

    public func run() async throws {
        let socketAddress: GRPCNIOTransportCore.SocketAddress
        switch address {
        case .unix(let path): socketAddress = .unixDomainSocket(path: path)
        case .tcp(let host, let port):
            socketAddress = host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        }
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = 1 << 20
        let transport = HTTP2ServerTransport.Posix(
            address: socketAddress, transportSecurity: .plaintext, config: config)
        let server = GRPCServer(transport: transport, services: [service])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                try await withGracefulShutdownHandler {
                    try await server.serve()
                } onGracefulShutdown: {
                    server.beginGracefulShutdown()
                }
            }
            let listening = try await transport.listeningAddress
            if case .unix(let path) = address {
                guard chmod(path, socketMode) == 0 else { throw GRPCSetupError("cannot set the mode of \(path)") }
                if let socketGroup {
                    guard let entry = getgrnam(socketGroup), chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
                        throw GRPCSetupError("cannot give \(path) to group \(socketGroup)")
                    }
                }
            }
            if let ipv4 = listening.ipv4 { bound.withLock { $0 = ipv4.port } }
            if let ipv6 = listening.ipv6 { bound.withLock { $0 = ipv6.port } }
            logger.notice(
                "gRPC (Envoy ext_authz) listening on \(address.description)\(port.map { " (port \($0))" } ?? "")")
            ready.continuation.yield(())
            ready.continuation.finish()
        }
        if case .unix(let path) = address { unlink(path) }
    }
}

struct GRPCSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
