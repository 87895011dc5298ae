import LiveTVAuthz
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// A connection after its first bytes: HTTP/1.1, or h2c with its stream multiplexer.
enum NegotiatedConnection: Sendable {
    case http1(NIOAsyncChannel<WireRequest, ServerResponse>, ListenerTransport)
    case http2(
        NIOHTTP2Handler.AsyncStreamMultiplexer<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>>,
        ListenerTransport)
}

/// Reads the first bytes of a connection: the HTTP/2 connection preface means h2c (prior knowledge),
/// anything else HTTP/1.1. Installs that pipeline, resolves the connection's promise, and steps aside.
/// The first request's deadline already runs here, so a peer trickling a preface is closed too.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let limits: HTTP1Limits
    private let transport: ListenerTransport
    private let promise: EventLoopPromise<NegotiatedConnection>
    private var resolved = false
    private var buffered: ByteBuffer?
    private var deadline: Scheduled<Void>?

    init(limits: HTTP1Limits, transport: ListenerTransport, promise: EventLoopPromise<NegotiatedConnection>) {
        self.limits = limits
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
        try context.pipeline.syncOperations.addHandler(HTTP1DecisionCodec(limits: limits))
        return .http1(try NIOAsyncChannel(wrappingChannelSynchronously: context.channel), transport)
    }

    private func configureHTTP2(context: ChannelHandlerContext) throws -> NegotiatedConnection {
        var configuration = NIOHTTP2Handler.Configuration()
        configuration.connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 128),
            HTTP2Setting(parameter: .maxHeaderListSize, value: ServerSettings.maximumHeadBytes),
        ]
        let multiplexer = try context.pipeline.syncOperations.configureAsyncHTTP2Pipeline(
            mode: .server, configuration: configuration
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                    wrappingChannelSynchronously: stream)
            }
        }
        return .http2(multiplexer, transport)
    }
}
