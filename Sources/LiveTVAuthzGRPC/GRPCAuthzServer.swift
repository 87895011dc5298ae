import GRPCCore
import GRPCNIOTransportHTTP2
import LiveTVAuthz
import LiveTVAuthzCore
import LiveTVAuthzEnvoy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The gRPC listener as a lifecycle service: h2c (prior knowledge) on a Unix socket or TCP. Its socket
/// file gets the same directory, mode and group as the HTTP listeners' (`UnixSocketPermissions`).
public final class GRPCAuthzServer: Service, Sendable {
    private let address: ListenAddress
    private let service: EnvoyAuthorizationService
    private let permissions: UnixSocketPermissions
    private let limiter: ConnectionLimiter
    private let idleTimeout: Duration
    private let trust: FrontendTrust
    private let metrics: ServiceMetrics
    private let logger: Logger
    private let bound = NIOLockedValueBox<Int?>(nil)
    private let ready = AsyncStream<Void>.makeStream()

    public init(
        address: ListenAddress, guard guardian: Guard, trust: FrontendTrust, permissions: UnixSocketPermissions,
        limiter: ConnectionLimiter, idleTimeout: Duration, metrics: ServiceMetrics, logger: Logger
    ) {
        self.limiter = limiter
        self.idleTimeout = idleTimeout
        self.trust = trust
        self.metrics = metrics
        self.address = address
        var isUnix = false
        if case .unix = address { isUnix = true }
        self.service = EnvoyAuthorizationService(
            guard: guardian, trust: trust, isUnixSocket: isUnix, metrics: metrics, logger: logger)
        self.permissions = permissions
        self.logger = logger
    }

    /// The bound TCP port (ephemeral ports resolved) once listening.
    public var port: Int? { bound.withLockedValue { $0 } }

    public func waitUntilListening() async {
        for await _ in ready.stream { return }
    }

    public func run() async throws {
        let socketAddress: GRPCNIOTransportCore.SocketAddress
        switch address {
        case .unix(let path):
            try permissions.prepare(socketAt: path)
            socketAddress = .unixDomainSocket(path: path)
        case .tcp(let host, let port):
            socketAddress = host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        }
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = 1 << 20
        config.connection.maxIdleTime = idleTimeout
        // The same admission as the HTTP listeners: the trust layer's peer rule, then this listener's caps.
        let isUnix: Bool
        if case .unix = address { isUnix = true } else { isUnix = false }
        let limiter = self.limiter
        let trust = self.trust
        let metrics = self.metrics
        config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                let transport: ListenerTransport =
                    isUnix ? .unixSocket : .tcp(peer: channel.remoteAddress?.ipAddress)
                _ = try limiter.admit(channel, transport: transport, trust: trust, metrics: metrics)
            }
        }
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
                do {
                    try permissions.apply(toSocketAt: path)
                } catch {
                    server.beginGracefulShutdown()
                    throw error
                }
            }
            if let ipv4 = listening.ipv4 { bound.withLockedValue { $0 = ipv4.port } }
            if let ipv6 = listening.ipv6 { bound.withLockedValue { $0 = ipv6.port } }
            logger.notice(
                "gRPC (Envoy ext_authz) listening on \(address.description)\(port.map { " (port \($0))" } ?? "")")
            ready.continuation.yield(())
            ready.continuation.finish()
        }
        if case .unix(let path) = address { unlink(path) }
    }
}
