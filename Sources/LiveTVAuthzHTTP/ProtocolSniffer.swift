import LiveTVAuthz
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// A connection after its first bytes: HTTP/1.1, or h2c with its stream multiplexer.
enum NegotiatedConnection: Sendable {
    /// HTTP/1.1: requests are answered by the connection's handler; what waits for PMS arrives here.
    case http1(AsyncStream<PendingHTTP1Answer>)
    /// h2c: streams are answered by their own handlers; what waits for PMS arrives here.
    case http2(AsyncStream<PendingStreamAnswer>)
}

/// Reads the first bytes of a connection: the HTTP/2 connection preface means h2c (prior knowledge),
/// anything else HTTP/1.1. Installs that pipeline, resolves the connection's promise, and steps aside.
/// The first request's deadline already runs here, so a peer trickling a preface is closed too.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let limits: HTTP1Limits
    private let service: DecisionService
    private let transport: ListenerTransport
    private let promise: EventLoopPromise<NegotiatedConnection>
    private var resolved = false
    private var buffered: ByteBuffer?
    private var deadline: Scheduled<Void>?

    init(
        limits: HTTP1Limits, service: DecisionService, transport: ListenerTransport,
        promise: EventLoopPromise<NegotiatedConnection>
    ) {
        self.limits = limits
        self.service = service
        self.transport = transport
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: limits.requestDeadline) { channel.close(promise: nil) }
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let bytes = buffered!.readableBytesView
        let compared = min(bytes.count, Self.preface.count)
        let isPrefacePrefix = bytes.prefix(compared).elementsEqual(Self.preface.prefix(compared))
        if isPrefacePrefix, bytes.count < Self.preface.count { return }  // wait for more
        deadline?.cancel()
        resolved = true
        let negotiated: NegotiatedConnection
        do {
            negotiated = isPrefacePrefix ? try configureHTTP2(context: context) : try configureHTTP1(context: context)
        } catch {
            promise.fail(error)
            context.close(promise: nil)
            return
        }
        promise.succeed(negotiated)
        let pending = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(pending))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        if !resolved {
            resolved = true
            promise.fail(ChannelError.ioOnClosedChannel)
        }
        context.fireChannelInactive()
    }

    private func configureHTTP1(context: ChannelHandlerContext) throws -> NegotiatedConnection {
        let (pending, slow) = AsyncStream.makeStream(of: PendingHTTP1Answer.self)
        let sync = context.pipeline.syncOperations
        try sync.addHandler(HTTP1DecisionCodec(limits: limits))
        try sync.addHandler(HTTP1DecisionHandler(service: service, transport: transport, slow: slow))
        try sync.addHandler(PendingAnswersFinisher(slow: slow))
        return .http1(pending)
    }

    private func configureHTTP2(context: ChannelHandlerContext) throws -> NegotiatedConnection {
        let service = self.service
        let transport = self.transport
        let (pending, slow) = AsyncStream.makeStream(of: PendingStreamAnswer.self)
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 128),
            HTTP2Setting(parameter: .maxHeaderListSize, value: ServerSettings.maximumHeadBytes),
        ]
        let sync = context.pipeline.syncOperations
        _ = try sync.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: .init()
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                try stream.pipeline.syncOperations.addHandler(
                    HTTP2DecisionStreamHandler(service: service, transport: transport, slow: slow))
            }
        }
        try sync.addHandler(PendingAnswersFinisher(slow: slow))
        return .http2(pending)
    }
}
