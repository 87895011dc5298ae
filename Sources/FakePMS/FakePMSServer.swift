import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
import NIOWebSocket

/// Runs a `FakePMS` on a loopback HTTP/1.1 port, and its control API (`/__fake/…`) on a separate port so a
/// proxy under test can never reach it by accident.
public final class FakePMSServer: Sendable {
    public let pms: FakePMS
    public let port: Int
    public let controlPort: Int
    private let channels: [any Channel]
    /// Accepted connections, so a shutdown ends them as a PMS restart does (not only the listeners).
    private let accepted: AcceptedChannels

    private init(pms: FakePMS, channels: [any Channel], accepted: AcceptedChannels, port: Int, controlPort: Int) {
        self.pms = pms
        self.channels = channels
        self.accepted = accepted
        self.port = port
        self.controlPort = controlPort
    }

    /// Binds both ports (0 = ephemeral) on `host`, which must be a loopback address.
    public static func start(
        pms: FakePMS, host: String = "127.0.0.1", port: Int = 0, controlPort: Int = 0,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> FakePMSServer {
        let accepted = AcceptedChannels()
        let main = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                accepted.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    // Built by hand (not configureHTTPServerPipeline with NIO's upgrader): PMS upgrades a
                    // websocket on any request of a keep-alive connection, and nginx pools connections.
                    let encoder = HTTPResponseEncoder()
                    let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
                    let compressor: HTTPResponseCompressor? = pms.config.gzip ? HTTPResponseCompressor() : nil
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(encoder)
                    try sync.addHandler(decoder)
                    if let compressor { try sync.addHandler(compressor) }
                    try sync.addHandler(
                        FakePMSHandler(pms: pms, httpHandlers: [encoder, decoder] + (compressor.map { [$0] } ?? [])))
                }
            }
            .bind(host: host, port: port).get()
        let control = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeControlHandler(pms: pms))
                }
            }
            .bind(host: host, port: controlPort).get()
        return FakePMSServer(
            pms: pms, channels: [main, control], accepted: accepted, port: main.localAddress?.port ?? 0,
            controlPort: control.localAddress?.port ?? 0)
    }

    public func shutdown() async {
        for channel in channels { try? await channel.close() }
        for channel in accepted.all() { try? await channel.close() }
    }
}

/// The open accepted connections of one server.
final class AcceptedChannels: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLockedValue { $0[id] = channel }
        channel.closeFuture.whenComplete { _ in _ = self.channels.withLockedValue { $0.removeValue(forKey: id) } }
    }

    func all() -> [any Channel] { channels.withLockedValue { Array($0.values) } }
}

extension FakeRequest {
    init(head: HTTPRequestHead, body: [UInt8] = []) {
        self.init(
            method: head.method.rawValue, target: head.uri, headers: head.headers.map { ($0.name, $0.value) },
            body: body)
    }
}

/// Collects one HTTP/1 request (head and up to 1 MiB of body) from its parts.
struct RequestAccumulator {
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    /// The complete request once its `.end` arrives.
    mutating func feed(_ part: HTTPServerRequestPart) -> (head: HTTPRequestHead, body: [UInt8])? {
        switch part {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            if body.count < 1 << 20 { body += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        case .end:
            defer {
                head = nil
                body = []
            }
            return head.map { ($0, body) }
        }
        return nil
    }
}

/// Collects one request, asks the fake, writes its answer (possibly after a scheduled delay).
final class FakePMSHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let pms: FakePMS
    private let httpHandlers: [any RemovableChannelHandler]
    private var request = RequestAccumulator()

    init(pms: FakePMS, httpHandlers: [any RemovableChannelHandler]) {
        self.pms = pms
        self.httpHandlers = httpHandlers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let (head, body) = request.feed(unwrapInboundIn(data)) else { return }
        let response = pms.handle(FakeRequest(head: head, body: body))
        if response.abortConnection {
            context.close(promise: nil)
            return
        }
        if response.resetConnection {
            // SO_LINGER with a zero timeout: close sends RST instead of FIN.
            let channel = context.channel
            guard let provider = channel as? any SocketOptionProvider else {
                context.close(promise: nil)
                return
            }
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        if response.upgradeToWebSocket, let key = head.headers.first(name: "Sec-WebSocket-Key") {
            upgrade(context: context, key: key, extraHeaders: response.headers)
            return
        }
        let keepAlive = head.isKeepAlive
        let isHead = head.method == .HEAD
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let write: @Sendable () -> Void = {
            let (handler, context) = loopBound.value
            handler.write(response, keepAlive: keepAlive, isHead: isHead, context: context)
        }
        if response.delayMilliseconds > 0 {
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(response.delayMilliseconds))) { write() }
        } else {
            write()
        }
    }

    /// Answers 101, then swaps the HTTP handlers for websocket framing and the notification socket.
    private func upgrade(context: ChannelHandlerContext, key: String, extraHeaders: [(String, String)]) {
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        var headers = HTTPHeaders(extraHeaders)
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: Data(digest).base64EncodedString())
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))),
            promise: nil)
        let channel = context.channel
        let handlers = httpHandlers + [self]
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenSuccess { _ in
            let sync = channel.pipeline.syncOperations
            for handler in handlers { sync.removeHandler(handler, promise: nil) }
            do {
                try sync.addHandler(WebSocketFrameEncoder())
                try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder()))
                try sync.addHandler(NotificationSocketHandler())
            } catch {
                channel.close(promise: nil)
            }
        }
    }

    private func write(_ response: FakeResponse, keepAlive: Bool, isHead: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders(response.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !isHead, !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// After the websocket upgrade: one `ping` notification, then answer pings and closes.
final class NotificationSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func handlerAdded(context: ChannelHandlerContext) {
        let text = #"{"NotificationContainer":{"type":"ping","size":0}}"#
        let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .ping:
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.data)), promise: nil)
        case .connectionClose:
            let close = WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.data)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(close)).whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }
}

/// `GET /__fake/requests[?path=…]`, `DELETE /__fake/requests`, `GET /__fake/counts`, `GET|PUT /__fake/config`.
final class FakeControlHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let pms: FakePMS
    private var request = RequestAccumulator()

    init(pms: FakePMS) {
        self.pms = pms
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let (head, body) = request.feed(unwrapInboundIn(data)) else { return }
        let (status, payload) = answer(head, body: body)
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(payload.count))])
        headers.add(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: payload)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func answer(_ head: HTTPRequestHead, body: [UInt8]) -> (HTTPResponseStatus, [UInt8]) {
        let parts = head.uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? ""
        let query = parts.count > 1 ? FakePMS.parseForm(String(parts[1])) : []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        switch (head.method, path) {
        case (.GET, "/__fake/requests"):
            let filter = query.first { $0.name == "path" }?.value
            return (.ok, Array((try? encoder.encode(pms.requests(path: filter))) ?? Data()))
        case (.DELETE, "/__fake/requests"):
            pms.resetRequests()
            return (.ok, Array("{}".utf8))
        case (.GET, "/__fake/counts"):
            return (.ok, Array((try? encoder.encode(pms.counts)) ?? Data()))
        case (.GET, "/__fake/history"):
            return (.ok, Array((try? encoder.encode(pms.history)) ?? Data()))
        case (.POST, "/__fake/upgrade"):
            pms.simulateUpgrade()
            return (.ok, Array((try? encoder.encode(pms.config)) ?? Data()))
        case (.GET, "/__fake/config"):
            return (.ok, Array((try? encoder.encode(pms.config)) ?? Data()))
        case (.PUT, "/__fake/config"):
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                return (.badRequest, Array(#"{"error":"expected a JSON object"}"#.utf8))
            }
            var merged = (try? JSONSerialization.jsonObject(with: encoder.encode(pms.config)) as? [String: Any]) ?? [:]
            for (key, value) in object { merged[key] = value }
            guard let data = try? JSONSerialization.data(withJSONObject: merged),
                let config = try? JSONDecoder().decode(FakePMSConfig.self, from: data)
            else { return (.badRequest, Array(#"{"error":"unknown field or wrong type"}"#.utf8)) }
            pms.update { $0 = config }
            return (.ok, Array((try? encoder.encode(config)) ?? Data()))
        default:
            return (.notFound, Array(#"{"error":"not found"}"#.utf8))
        }
    }
}
