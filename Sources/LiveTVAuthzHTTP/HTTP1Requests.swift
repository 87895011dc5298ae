import LiveTVAuthz
import NIOCore

/// A decision on an HTTP/1.1 connection that waits for PMS: the connection's task finishes it and hands
/// the answer back to the connection's handler, which writes it in request order.
struct PendingHTTP1Answer: Sendable {
    let pending: DecisionService.Pending
    let sequence: Int
    private let handler: NIOLoopBound<HTTP1DecisionHandler>
    private let context: NIOLoopBound<ChannelHandlerContext>

    init(pending: DecisionService.Pending, sequence: Int, handler: HTTP1DecisionHandler, context: ChannelHandlerContext)
    {
        self.pending = pending
        self.sequence = sequence
        self.handler = NIOLoopBound(handler, eventLoop: context.eventLoop)
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
    }

    /// Called from the connection's task: the answer goes back to the event loop.
    func deliver(_ response: ServerResponse) {
        let handler = self.handler
        let context = self.context
        let sequence = self.sequence
        context.eventLoop.execute {
            handler.value.answered(sequence, response, context: context.value)
        }
    }
}

/// The requests of one HTTP/1.1 connection, answered on the event loop whenever the service can decide at
/// once (operator pages, refusals, non-candidates, cached tokens: no task, no thread hop). A request whose
/// token PMS must still be asked about goes to the connection's task; the answers after it wait for it,
/// because HTTP/1.1 answers in request order. Reading pauses while `maximumQueued` answers are owed.
final class HTTP1DecisionHandler: ChannelDuplexHandler {
    typealias InboundIn = WireRequest
    typealias OutboundIn = Never
    typealias OutboundOut = ServerResponse

    static let maximumQueued = 64

    private let service: DecisionService
    private let transport: ListenerTransport
    private let slow: AsyncStream<PendingHTTP1Answer>.Continuation
    /// Answers not yet written, in request order; `nil` while that decision waits for PMS. They belong to the
    /// last `queue.count` requests: `queue[0]` is request `nextSequence - queue.count`.
    private var queue: [ServerResponse?] = []
    private var nextSequence = 0
    private var unflushed = false
    private var readHeld = false
    /// False once the handler left the pipeline (the connection closed): a late answer is dropped, never
    /// written through a context that is no longer valid.
    private var inPipeline = true

    init(service: DecisionService, transport: ListenerTransport, slow: AsyncStream<PendingHTTP1Answer>.Continuation) {
        self.service = service
        self.transport = transport
        self.slow = slow
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = unwrapInboundIn(data)
        let sequence = nextSequence
        nextSequence += 1
        switch service.begin(request, transport: transport) {
        case .ready(let response):
            if queue.isEmpty {
                context.write(wrapOutboundOut(response), promise: nil)
                unflushed = true
            } else {
                queue.append(response)
            }
        case .pending(let pending):
            queue.append(nil)
            slow.yield(PendingHTTP1Answer(pending: pending, sequence: sequence, handler: self, context: context))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// A waiting decision's answer: written with every ready answer behind it, in order.
    func answered(_ sequence: Int, _ response: ServerResponse, context: ChannelHandlerContext) {
        guard inPipeline else { return }
        let index = sequence - (nextSequence - queue.count)
        guard index >= 0, index < queue.count else { return }
        queue[index] = response
        var wrote = false
        while let first = queue.first, let ready = first {
            queue.removeFirst()
            context.write(wrapOutboundOut(ready), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        if readHeld, queue.count < Self.maximumQueued {
            readHeld = false
            context.read()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        inPipeline = false
        queue.removeAll()
    }

    func read(context: ChannelHandlerContext) {
        if queue.count >= Self.maximumQueued {
            readHeld = true
        } else {
            context.read()
        }
    }
}

/// Ends a connection's stream of pending answers when the connection closes, so its task returns.
final class PendingAnswersFinisher<Answer: Sendable>: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    private let slow: AsyncStream<Answer>.Continuation

    init(slow: AsyncStream<Answer>.Continuation) {
        self.slow = slow
    }

    func channelInactive(context: ChannelHandlerContext) {
        slow.finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        slow.finish()
    }
}
