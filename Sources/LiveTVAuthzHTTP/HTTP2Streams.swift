import LiveTVAuthz
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// A decision on an h2c stream that waits for PMS: the connection's task finishes it and answers on the
/// stream.
struct PendingStreamAnswer: Sendable {
    let pending: DecisionService.Pending
    let stream: any Channel
    let isHead: Bool
}

/// One h2c stream: collects its request, answers on the event loop when the service can decide at once
/// (the common case: no task, no hop), and hands it to the connection's task otherwise.
final class HTTP2DecisionStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: DecisionService
    private let transport: ListenerTransport
    private let slow: AsyncStream<PendingStreamAnswer>.Continuation
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(service: DecisionService, transport: ListenerTransport, slow: AsyncStream<PendingStreamAnswer>.Continuation) {
        self.service = service
        self.transport = transport
        self.slow = slow
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let received):
            head = received
        case .body(let buffer):
            if !tooLarge, body.count + buffer.readableBytes <= ServerSettings.maximumBodyBytes {
                body += buffer.readableBytesView
            } else {
                tooLarge = true
                body = []
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let request = WireRequest(
                method: head.method.rawValue, uri: head.uri,
                headers: WireHeaders(head.headers.map { WireField($0.name, $0.value) }), body: body,
                bodyTooLarge: tooLarge)
            body = []
            switch service.begin(request, transport: transport) {
            case .ready(let response):
                Self.write(response, isHead: head.method == .HEAD, on: context.channel)
            case .pending(let pending):
                slow.yield(PendingStreamAnswer(pending: pending, stream: context.channel, isHead: head.method == .HEAD))
            }
        }
    }

    /// Head, body and end of one answer on a stream (from the event loop or from the connection's task).
    static func write(_ response: ServerResponse, isHead: Bool, on stream: any Channel) {
        var headers = HTTPHeaders(response.headers)
        headers.add(name: "content-length", value: String(response.body.count))
        let head = HTTPServerResponsePart.head(
            HTTPResponseHead(version: .http2, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        )
        stream.write(head, promise: nil)
        if !isHead, !response.body.isEmpty {
            stream.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: response.body))), promise: nil)
        }
        stream.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
    }
}
