import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import ServiceLifecycle

/// The decision server: HTTP/1.1 with keep-alive and h2c (prior knowledge) on every listener, each
/// connection served in its own child task of a discarding task group (structured concurrency: a failing
/// connection never takes the server down, and SIGTERM drains them all).
public final class AuthzServer: Service, Sendable {
    private let settings: ServerSettings
    private let service: DecisionService
    private let trust: FrontendTrust
    private let metrics: ServiceMetrics
    private let logger: Logger
    private let group: any EventLoopGroup
    private let bound = NIOLockedValueBox<[(ListenAddress, SocketAddress?)]>([])
    private let ready = AsyncStream<Void>.makeStream()

    public init(
        settings: ServerSettings, service: DecisionService, trust: FrontendTrust, metrics: ServiceMetrics,
        logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.settings = settings
        self.service = service
        self.trust = trust
        self.metrics = metrics
        self.logger = logger
        self.group = group
    }

    /// The addresses actually bound (ephemeral ports resolved), once `run` has bound them.
    public var boundAddresses: [(ListenAddress, SocketAddress?)] { bound.withLockedValue { $0 } }

    /// Waits until every listener is bound.
    public func waitUntilListening() async {
        for await _ in ready.stream { return }
    }

    typealias Listener = NIOAsyncChannel<EventLoopFuture<NegotiatedConnection>, Never>

    public func run() async throws {
        // One quiescing helper per listener: a helper tracks a single server channel.
        var quiescers: [ServerQuiescingHelper] = []
        var listeners: [(Listener, ConnectionLimiter)] = []
        do {
            for address in settings.listeners {
                let quiesce = ServerQuiescingHelper(group: group)
                quiescers.append(quiesce)
                let limiter = ConnectionLimiter(
                    limit: settings.maximumConnections, perPeerLimit: settings.maximumConnectionsPerPeer)
                let listener = try await bind(address, quiesce: quiesce, limiter: limiter)
                listeners.append((listener, limiter))
                bound.withLockedValue { $0.append((address, listener.channel.localAddress)) }
                logger.notice("listening on \(address.description)\(Self.portNote(address, listener.channel))")
            }
        } catch {
            for (listener, _) in listeners { try? await listener.channel.close() }
            throw error
        }
        ready.continuation.yield(())
        ready.continuation.finish()

        let quiescing = quiescers
        let drainTimeout = settings.drainTimeout
        let logger = self.logger
        let eventLoop = group.any()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { tasks in
                for (listener, _) in listeners {
                    tasks.addTask { await self.accept(listener) }
                }
            }
        } onGracefulShutdown: {
            logger.notice("draining in-flight decisions")
            // Closes the listeners and asks every connection to close once idle (h2c: GOAWAY).
            for quiesce in quiescing { quiesce.initiateShutdown(promise: nil) }
            eventLoop.scheduleTask(in: .nanoseconds(drainTimeout.nanoseconds)) {
                let stragglers = listeners.reduce(0) { $0 + $1.1.openConnections }
                if stragglers > 0 { logger.warning("drain timeout: closing \(stragglers) remaining connection(s)") }
                for (_, limiter) in listeners { limiter.closeAll() }
            }
        }
        for case .unix(let path) in settings.listeners { unlink(path) }
    }

    /// Accepts a listener's connections until it closes; each connection is a child task.
    private func accept(_ listener: Listener) async {
        do {
            try await listener.executeThenClose { inbound in
                await withDiscardingTaskGroup { connections in
                    do {
                        for try await negotiation in inbound {
                            connections.addTask { await self.serve(negotiation) }
                        }
                    } catch {
                        self.logger.debug("listener stopped accepting: \(error)")
                    }
                }
            }
        } catch {
            logger.debug("listener closed: \(error)")
        }
    }

    /// One connection, until it closes. Errors end the connection, never the server.
    private func serve(_ negotiation: EventLoopFuture<NegotiatedConnection>) async {
        do {
            switch try await negotiation.get() {
            case .http1(let pending):
                // Requests are answered on the event loop (`HTTP1DecisionHandler`); only those waiting for PMS
                // arrive here, each finished in a child task; the handler keeps the answers in request order.
                await withDiscardingTaskGroup { requests in
                    for await answer in pending {
                        requests.addTask { answer.deliver(await self.service.complete(answer.pending)) }
                    }
                }
            case .http2(let pending):
                // Streams answer themselves on the event loop; only those waiting for PMS arrive here, each
                // finished in a child task so one slow validation never holds up the others.
                await withDiscardingTaskGroup { streams in
                    for await answer in pending {
                        streams.addTask {
                            let response = await self.service.complete(answer.pending)
                            HTTP2DecisionStreamHandler.write(response, isHead: answer.isHead, on: answer.stream)
                        }
                    }
                }
            }
        } catch {
            logger.trace("connection ended: \(error)")
        }
    }

    private static func portNote(_ address: ListenAddress, _ channel: any Channel) -> String {
        if case .tcp(_, 0) = address, let port = channel.localAddress?.port { return " (port \(port))" }
        return ""
    }

    private func bind(_ address: ListenAddress, quiesce: ServerQuiescingHelper, limiter: ConnectionLimiter)
        async throws -> Listener
    {
        let settings = self.settings
        let service = self.service
        let trust = self.trust
        let metrics = self.metrics
        let logger = self.logger
        let isUnix: Bool
        if case .unix = address { isUnix = true } else { isUnix = false }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<EventLoopFuture<NegotiatedConnection>> = {
            channel in
            channel.eventLoop.makeCompletedFuture {
                let promise = channel.eventLoop.makePromise(of: NegotiatedConnection.self)
                // The listener decides the transport, never the peer's address: a TCP peer without an
                // address is not admitted.
                let transport: ListenerTransport = isUnix ? .unixSocket : .tcp(peer: channel.remoteAddress?.ipAddress)
                if let refusal = try limiter.admit(channel, transport: transport, trust: trust, metrics: metrics) {
                    if refusal == "not_allowed" {
                        logger.warning("refused a TCP connection from a peer that is not an allowed frontend")
                    }
                    promise.fail(ChannelError.ioOnClosedChannel)
                    return promise.futureResult
                }
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(IdleStateHandler(readTimeout: .nanoseconds(settings.idleTimeout.nanoseconds)))
                try sync.addHandler(IdleCloseHandler())
                try sync.addHandler(
                    ProtocolSniffer(
                        limits: settings.http1Limits, service: service, transport: transport, promise: promise))
                return promise.futureResult
            }
        }
        switch address {
        case .unix(let path):
            try settings.socketPermissions.prepare(socketAt: path)
            let listener = try await bootstrap.bind(
                unixDomainSocketPath: path, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            do {
                try settings.socketPermissions.apply(toSocketAt: path)
            } catch {
                try? await listener.channel.close()
                throw error
            }
            return listener
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
        }
    }
}
