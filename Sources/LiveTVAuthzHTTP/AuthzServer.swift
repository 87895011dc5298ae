import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Connection-level settings of the decision server.
public struct ServerSettings: Sendable {
    public var listeners: [ListenAddress]
    /// File mode of a Unix socket (the frontend's group must be able to write).
    public var socketMode: mode_t = 0o660
    /// Group of a Unix socket (e.g. `www-data`), `nil` to keep the process's.
    public var socketGroup: String?
    /// Non-loopback frontend addresses allowed on TCP listeners.
    public var allowedFrontends: Set<String> = []
    public var idleTimeout: Duration = .seconds(60)
    public var maximumConnections = 1024
    public static let maximumHeadBytes = 32 * 1024
    public static let maximumBodyBytes = 64 * 1024
    /// How long SIGTERM waits for in-flight requests before closing connections.
    public var drainTimeout: Duration = .seconds(10)

    public init(listeners: [ListenAddress]) {
        self.listeners = listeners
    }
}

/// The decision server: HTTP/1.1 with keep-alive and h2c (prior knowledge) on every listener.
public final class AuthzServer: Service, Sendable {
    private let settings: ServerSettings
    private let service: DecisionService
    private let metrics: ServiceMetrics
    private let logger: Logger
    private let group: any EventLoopGroup
    private let bound = Mutex<[(ListenAddress, SocketAddress?)]>([])
    private let ready = AsyncStream<Void>.makeStream()

    public init(
        settings: ServerSettings, service: DecisionService, metrics: ServiceMetrics, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.logger = logger
        self.group = group
    }

    /// The addresses actually bound (ephemeral ports resolved), once `run` has bound them.
    public var boundAddresses: [(ListenAddress, SocketAddress?)] { bound.withLock { $0 } }

    /// Waits until every listener is bound.
    public func waitUntilListening() async {
        for await _ in ready.stream { return }
    }

    public func run() async throws {
        let quiesce = ServerQuiescingHelper(group: group)
        let connections = ConnectionGauge(limit: settings.maximumConnections, metrics: metrics)
        var channels: [any Channel] = []
        do {
            for address in settings.listeners {
                let channel = try await bind(address, quiesce: quiesce, connections: connections)
                channels.append(channel)
                bound.withLock { $0.append((address, channel.localAddress)) }
                logger.notice("listening on \(address.description)\(Self.portNote(address, channel))")
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        ready.continuation.yield(())
        ready.continuation.finish()
        // Serve until graceful shutdown (SIGTERM) or cancellation, then drain.
        try? await gracefulShutdown()
        logger.notice("draining in-flight decisions")
        let drained = group.any().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: drained)
        let future = drained.futureResult
        let timeout = settings.drainTimeout
        let finished = await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                do { try await future.get() } catch {}
                return true
            }
            tasks.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await tasks.next() ?? false
            tasks.cancelAll()
            return first
        }
        if !finished { logger.warning("drain timeout: closing remaining connections") }
        for case .unix(let path) in settings.listeners { unlink(path) }
    }

    private static func portNote(_ address: ListenAddress, _ channel: any Channel) -> String {
        if case .tcp(_, 0) = address, let port = channel.localAddress?.port { return " (port \(port))" }
        return ""
    }

    private func bind(_ address: ListenAddress, quiesce: ServerQuiescingHelper, connections: ConnectionGauge)
        async throws -> any Channel
    {
        let service = self.service
        let settings = self.settings
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
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let remote = channel.remoteAddress?.ipAddress
                    if !isUnix {
                        // TCP: loopback always; anything else only when allow-listed.
                        guard let remote, PeerAddress.isLoopback(remote) || settings.allowedFrontends.contains(remote)
                        else {
                            logger.warning("refused a TCP connection from a peer that is not an allowed frontend")
                            channel.close(promise: nil)
                            return
                        }
                    }
                    let transport: Transport = isUnix ? .unixSocket : .tcp(remote: remote)
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ConnectionCountingHandler(gauge: connections))
                    try sync.addHandler(IdleStateHandler(readTimeout: .nanoseconds(settings.idleTimeout.nanoseconds)))
                    try sync.addHandler(IdleCloseHandler())
                    try sync.addHandler(
                        ProtocolSniffer(service: service, transport: transport, logger: logger))
                }
            }
        switch address {
        case .unix(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !FileManager.default.fileExists(atPath: directory) {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            }
            let channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            guard chmod(path, settings.socketMode) == 0 else {
                try? await channel.close()
                throw ServerError(
                    "cannot set mode \(String(settings.socketMode, radix: 8)) on \(path): \(String(cString: strerror(errno)))"
                )
            }
            if let groupName = settings.socketGroup {
                guard let entry = getgrnam(groupName) else {
                    try? await channel.close()
                    throw ServerError("socket group \(groupName) does not exist")
                }
                guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
                    try? await channel.close()
                    throw ServerError("cannot give \(path) to group \(groupName): \(String(cString: strerror(errno)))")
                }
            }
            return channel
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        }
    }
}

public struct ServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Counts open connections; over the cap, a new connection is closed at once.
final class ConnectionGauge: Sendable {
    private let open = Atomic<Int>(0)
    let limit: Int
    let metrics: ServiceMetrics

    init(limit: Int, metrics: ServiceMetrics) {
        self.limit = limit
        self.metrics = metrics
    }

    func opened() -> Bool {
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        metrics.openConnections.increment()
        return now <= limit
    }

    func closed() {
        open.wrappingSubtract(1, ordering: .relaxed)
        metrics.openConnections.decrement()
    }
}

final class ConnectionCountingHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    private let gauge: ConnectionGauge
    private var counted = false

    init(gauge: ConnectionGauge) {
        self.gauge = gauge
    }

    func channelActive(context: ChannelHandlerContext) {
        counted = true
        if !gauge.opened() {
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive, !counted {
            counted = true
            if !gauge.opened() { context.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted { gauge.closed() }
        counted = false
        context.fireChannelInactive()
    }
}

/// Closes a connection that has been idle for the keep-alive timeout.
final class IdleCloseHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Reads the first bytes of a connection: the HTTP/2 connection preface means h2c (prior knowledge),
/// anything else HTTP/1.1. Then installs the right pipeline and steps aside.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let service: DecisionService
    private let transport: Transport
    private let logger: Logger
    private var buffered: ByteBuffer?

    init(service: DecisionService, transport: Transport, logger: Logger) {
        self.service = service
        self.transport = transport
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil { buffered = incoming } else { buffered!.writeBuffer(&incoming) }
        let bytes = buffered!.readableBytesView
        let compared = min(bytes.count, Self.preface.count)
        let isPrefacePrefix = bytes.prefix(compared).elementsEqual(Self.preface.prefix(compared))
        if isPrefacePrefix, bytes.count < Self.preface.count { return }  // wait for more
        do {
            if isPrefacePrefix {
                try configureHTTP2(context: context)
            } else {
                try configureHTTP1(context: context)
            }
        } catch {
            logger.error("cannot set up connection pipeline: \(error)")
            context.close(promise: nil)
            return
        }
        let pending = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(pending))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func configureHTTP1(context: ChannelHandlerContext) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = ServerSettings.maximumHeadBytes
        limits.maxHeaderListSize = ServerSettings.maximumHeadBytes
        limits.maxHeaderFieldCount = 512
        let sync = context.pipeline.syncOperations
        try sync.configureHTTPServerPipeline(
            position: .last, withPipeliningAssistance: true, withServerUpgrade: nil, withErrorHandling: false,
            withOutboundHeaderValidation: true, withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits
        )
        try sync.addHandler(HTTP1ErrorHandler())
        try sync.addHandler(DecisionRequestHandler(service: service, transport: transport, isHTTP2: false))
    }

    private func configureHTTP2(context: ChannelHandlerContext) throws {
        let service = self.service
        let transport = self.transport
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 128),
            HTTP2Setting(parameter: .maxHeaderListSize, value: ServerSettings.maximumHeadBytes),
        ]
        _ = try context.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: .init()
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                try stream.pipeline.syncOperations.addHandler(
                    DecisionRequestHandler(service: service, transport: transport, isHTTP2: true))
            }
        }
    }
}

/// Answers a malformed HTTP/1 request: 431 for an oversized head, 400 for anything else, then closes.
/// (NIO's own handler only knows 400.)
final class HTTP1ErrorHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseOpen = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if !responseOpen {
            let status: HTTPResponseStatus = parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            let body = ByteBuffer(string: status == .badRequest ? "malformed request\n" : "request head over 32 KiB\n")
            let headers = HTTPHeaders([
                ("Connection", "close"), ("Content-Length", String(body.readableBytes)), ("Content-Type", "text/plain"),
            ])
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.close(promise: nil)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responseOpen = true
        case .end: responseOpen = false
        default: break
        }
        context.write(data, promise: promise)
    }
}

/// Collects one decision request (head and, up to 64 KiB, body), asks the service, writes the answer.
final class DecisionRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: DecisionService
    private let transport: Transport
    private let isHTTP2: Bool
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var bodyTooLarge = false

    init(service: DecisionService, transport: Transport, isHTTP2: Bool) {
        self.service = service
        self.transport = transport
        self.isHTTP2 = isHTTP2
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            bodyTooLarge = false
        case .body(var buffer):
            // Only Envoy HTTP mode sends bodies; more than 64 KiB is never inspected (nor kept).
            if !bodyTooLarge, body.count + buffer.readableBytes <= ServerSettings.maximumBodyBytes {
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            } else {
                bodyTooLarge = true
                body = []
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let wire = WireRequest(
                method: head.method.rawValue, uri: head.uri, headers: head.headers, body: body,
                bodyTooLarge: bodyTooLarge)
            body = []
            let keepAlive = isHTTP2 || head.isKeepAlive
            let isHead = head.method == .HEAD
            let service = self.service
            let transport = self.transport
            let isHTTP2 = self.isHTTP2
            let promise = context.eventLoop.makePromise(of: ServerResponse.self)
            promise.completeWithTask { await service.respond(to: wire, transport: transport) }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { response in
                let (handler, context) = bound.value
                handler.write(response, keepAlive: keepAlive, isHead: isHead, isHTTP2: isHTTP2, context: context)
            }
        }
    }

    private func write(
        _ response: ServerResponse, keepAlive: Bool, isHead: Bool, isHTTP2: Bool, context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders(response.headers)
        headers.add(name: "Content-Length", value: String(response.body.count))
        if !isHTTP2 { headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close") }
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: isHTTP2 ? .http2 : .http1_1, status: response.status, headers: headers))
            ),
            promise: nil)
        if !isHead, !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        if !keepAlive {
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
