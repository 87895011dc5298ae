import NIOCore

/// Limits of the HTTP/1.1 codec.
struct HTTP1Limits: Sendable {
    /// A request head larger than this is answered 431.
    var headBytes = 32 * 1024
    /// Bodies up to this size are kept for inspection (elevation-rules §5: 64 KiB).
    var keptBodyBytes = 64 * 1024
    /// Bodies are read (and dropped past `keptBodyBytes`) up to this size; beyond it: 413 and close.
    var maximumBodyBytes = 1024 * 1024
    /// A whole request (head and body) must arrive within this time from its first byte; a peer trickling
    /// bytes does not restart it (slowloris). Answered 408, then closed.
    var requestDeadline: TimeAmount = .seconds(10)
}

/// The decision server's own HTTP/1.1 codec: request heads and bodies in, `ServerResponse`s out.
///
/// Written for this service rather than NIO's decoder because the decoder turns header bytes into Swift
/// strings, replacing a byte that is not UTF-8 with U+FFFD; the original target in `X-Original-URI` must
/// stay bytes (elevation-rules §6). It is strict: CRLF line ends, no obs-fold, no whitespace before a
/// colon, no control bytes in values, `Content-Length` and `Transfer-Encoding` never together. It also
/// owns the per-request deadline and graceful quiescing (close when idle after `ChannelShouldQuiesceEvent`).
final class HTTP1DecisionCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = WireRequest
    typealias OutboundIn = ServerResponse
    typealias OutboundOut = ByteBuffer

    private let limits: HTTP1Limits
    private var buffer = ByteBuffer()
    /// Where the search for the end of the head resumes (nothing before it can start `\r\n\r\n`).
    private var scanned = 0
    private var body: BodyState = .none
    private var pending: (head: ParsedHead, body: [UInt8], tooLarge: Bool, received: Int)?
    /// Responses owed, in request order: whether each was a HEAD and whether it keeps the connection.
    private var owed: [(isHead: Bool, keepAlive: Bool)] = []
    private var quiescing = false
    private var failed = false  // nothing more is read: an error, or a request that closes the connection
    private var deadline: Scheduled<Void>?

    enum BodyState {
        case none
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    init(limits: HTTP1Limits) {
        self.limits = limits
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        process(context: context)
    }

    private func process(context: ChannelHandlerContext) {
        while !failed {
            if pending == nil {
                guard let head = parseHead(context: context) else { break }
                pending = (head, [], false, 0)
                switch head.framing {
                case .none: body = .none
                case .length(let length): body = length > 0 ? .length(remaining: length) : .none
                case .chunked: body = .chunkSize
                }
            }
            guard readBody(context: context) else { break }
            let request = pending!
            pending = nil
            body = .none
            owed.append((request.head.method == "HEAD", request.head.keepAlive))
            if !request.head.keepAlive {
                // Nothing after a request that closes the connection is read (RFC 9112 §9.6).
                failed = true
                buffer.clear()
            }
            context.fireChannelRead(
                wrapInboundOut(
                    WireRequest(
                        method: request.head.method, target: request.head.target, headers: request.head.headers,
                        body: request.body, bodyTooLarge: request.tooLarge)))
        }
        if buffer.readableBytes == 0 && pending == nil {
            buffer.clear()
            scanned = 0
            deadline?.cancel()
            deadline = nil
        } else if deadline == nil, !failed {
            // The first byte of a request starts its deadline; more bytes do not extend it.
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: limits.requestDeadline) {
                let (handler, context) = loopBound.value
                handler.deadline = nil
                handler.fail(context: context, status: 408, "request not complete within the deadline")
            }
        }
        if buffer.readerIndex > 4096 { buffer.discardReadBytes() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if owed.isEmpty, pending == nil, buffer.readableBytes == 0 { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    struct ParsedHead {
        var method: String
        var target: [UInt8]
        var headers: WireHeaders
        var keepAlive: Bool
        var framing: Framing
    }

    enum Framing {
        case none
        case length(Int)
        case chunked
    }

    /// Parses one complete head at the reader index, or returns `nil` (more bytes needed, or failed).
    private func parseHead(context: ChannelHandlerContext) -> ParsedHead? {
        let readable = buffer.readableBytesView
        // Tolerate empty lines before a request (RFC 9112 §2.2).
        var start = readable.startIndex
        while start + 1 < readable.endIndex, readable[start] == 0x0D, readable[start + 1] == 0x0A { start += 2 }
        guard let end = findHeadEnd(readable, from: max(start, readable.startIndex + scanned)) else {
            scanned = max(0, readable.count - 3)
            if readable.count > limits.headBytes { fail(context: context, status: 431, "request head over 32 KiB") }
            return nil
        }
        guard end - readable.startIndex <= limits.headBytes else {
            fail(context: context, status: 431, "request head over 32 KiB")
            return nil
        }
        let head = readable[start..<end]
        buffer.moveReaderIndex(forwardBy: end + 4 - readable.startIndex)
        scanned = 0
        guard let parsed = Self.parse(Array(head)) else {
            fail(context: context, status: 400, "malformed request")
            return nil
        }
        return parsed
    }

    private func findHeadEnd(_ bytes: ByteBufferView, from: Int) -> Int? {
        var index = from
        while index + 3 < bytes.endIndex {
            if bytes[index + 3] == 0x0A {
                if bytes[index] == 0x0D, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D { return index }
                index += 1
            } else {
                index += 1
            }
        }
        return nil
    }

    /// The request line and header fields of a head (without its final CRLF CRLF).
    static func parse(_ head: [UInt8]) -> ParsedHead? {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = 0
        var index = 0
        while index < head.count {
            if head[index] == 0x0D {
                guard index + 1 < head.count, head[index + 1] == 0x0A else { return nil }
                lines.append(head[lineStart..<index])
                index += 2
                lineStart = index
            } else if head[index] == 0x0A {
                return nil  // a bare LF
            } else {
                index += 1
            }
        }
        lines.append(head[lineStart..<head.count])
        guard let requestLine = lines.first else { return nil }
        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isTokenByte), !parts[1].isEmpty,
            !parts[1].contains(where: { $0 < 0x21 || $0 == 0x7F })
        else { return nil }
        let version = parts[2]
        let http11: Bool
        if version.elementsEqual("HTTP/1.1".utf8) {
            http11 = true
        } else if version.elementsEqual("HTTP/1.0".utf8) {
            http11 = false
        } else {
            return nil
        }
        var headers = WireHeaders()
        headers.fields.reserveCapacity(lines.count - 1)
        var contentLength: Int? = nil
        var chunked = false
        var transferEncoding = false
        var connectionClose = false
        var connectionKeepAlive = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: 0x3A) else { return nil }
            let name = line[line.startIndex..<colon]
            // No obs-fold, no whitespace inside or before the name.
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { return nil }
            var valueStart = colon + 1
            var valueEnd = line.endIndex
            while valueStart < valueEnd, line[valueStart] == 0x20 || line[valueStart] == 0x09 { valueStart += 1 }
            while valueEnd > valueStart, line[valueEnd - 1] == 0x20 || line[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            let value = line[valueStart..<valueEnd]
            guard !value.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else { return nil }
            let nameText = String(decoding: name, as: UTF8.self)
            let lower = nameText.lowercased()
            if lower == "content-length" {
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                    let length = Int(String(decoding: value, as: UTF8.self))
                else { return nil }
                if let contentLength, contentLength != length { return nil }
                contentLength = length
            } else if lower == "transfer-encoding" {
                transferEncoding = true
                let codings = String(decoding: value, as: UTF8.self).lowercased().split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                // Only `chunked`, and last: anything else cannot be framed safely.
                guard codings == ["chunked"] else { return nil }
                chunked = true
            } else if lower == "connection" {
                for option in String(decoding: value, as: UTF8.self).lowercased().split(separator: ",") {
                    switch option.trimmingCharacters(in: .whitespaces) {
                    case "close": connectionClose = true
                    case "keep-alive": connectionKeepAlive = true
                    default: break
                    }
                }
            }
            headers.fields.append(WireField(name: nameText, value: Array(value)))
        }
        if transferEncoding, contentLength != nil { return nil }  // request smuggling shape: refuse
        let framing: Framing = chunked ? .chunked : contentLength.map { .length($0) } ?? .none
        let keepAlive = http11 ? !connectionClose : connectionKeepAlive && !connectionClose
        return ParsedHead(
            method: String(decoding: parts[0], as: UTF8.self), target: Array(parts[1]), headers: headers,
            keepAlive: keepAlive, framing: framing)
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    /// Reads body bytes of the pending request; `true` when the request is complete.
    private func readBody(context: ChannelHandlerContext) -> Bool {
        while true {
            switch body {
            case .none:
                return true
            case .length(let remaining):
                let count = min(remaining, buffer.readableBytes)
                guard count > 0 else { return false }
                take(count, context: context)
                body = remaining - count == 0 ? .none : .length(remaining: remaining - count)
                if failed { return false }
            case .chunkSize:
                guard let line = readLine() else {
                    if buffer.readableBytes > 1024 { fail(context: context, status: 400, "malformed chunk") }
                    return false
                }
                let sizeText = line.prefix { $0 != 0x3B }
                guard !sizeText.isEmpty, sizeText.count <= 8,
                    let size = Int(String(decoding: sizeText, as: UTF8.self), radix: 16)
                else {
                    fail(context: context, status: 400, "malformed chunk")
                    return false
                }
                body = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let count = min(remaining, buffer.readableBytes)
                guard count > 0 else { return false }
                take(count, context: context)
                if failed { return false }
                body = remaining - count == 0 ? .chunkDataEnd : .chunkData(remaining: remaining - count)
            case .chunkDataEnd:
                guard let line = readLine() else { return false }
                guard line.isEmpty else {
                    fail(context: context, status: 400, "malformed chunk")
                    return false
                }
                body = .chunkSize
            case .trailers:
                guard let line = readLine() else {
                    if buffer.readableBytes > limits.headBytes {
                        fail(context: context, status: 431, "trailers too large")
                    }
                    return false
                }
                if line.isEmpty { body = .none }  // trailer fields are read and dropped
            }
        }
    }

    /// Moves `count` body bytes from the buffer into the pending request (kept up to the inspection limit).
    private func take(_ count: Int, context: ChannelHandlerContext) {
        let slice = buffer.readSlice(length: count)!
        pending!.received += count
        if pending!.received > limits.maximumBodyBytes {
            fail(context: context, status: 413, "body over \(limits.maximumBodyBytes) bytes")
            return
        }
        if pending!.tooLarge { return }
        if pending!.body.count + count > limits.keptBodyBytes {
            pending!.tooLarge = true
            pending!.body = []
        } else {
            pending!.body.append(contentsOf: slice.readableBytesView)
        }
    }

    /// One CRLF-terminated line (without the CRLF), or `nil` when it is not complete yet.
    private func readLine() -> [UInt8]? {
        let view = buffer.readableBytesView
        var index = view.startIndex
        while index + 1 < view.endIndex {
            if view[index] == 0x0D, view[index + 1] == 0x0A {
                let line = Array(view[view.startIndex..<index])
                buffer.moveReaderIndex(forwardBy: index + 2 - view.startIndex)
                return line
            }
            index += 1
        }
        return nil
    }

    /// Answers a malformed or overdue request (after the responses already owed) and closes.
    private func fail(context: ChannelHandlerContext, status: Int, _ message: String) {
        guard !failed else { return }
        failed = true
        deadline?.cancel()
        deadline = nil
        buffer.clear()
        pendingFailure = ServerResponse.text(status, message)
        if owed.isEmpty { writeFailure(context: context) }
    }

    private var pendingFailure: ServerResponse?

    private func writeFailure(context: ChannelHandlerContext) {
        guard let response = pendingFailure else { return }
        pendingFailure = nil
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(Self.encode(response, isHead: false, keepAlive: false))).whenComplete {
            _ in channel.close(promise: nil)
        }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let response = unwrapOutboundIn(data)
        let request = owed.isEmpty ? (isHead: false, keepAlive: false) : owed.removeFirst()
        let last = owed.isEmpty
        let closing = !request.keepAlive || (quiescing && last)
        context.write(
            wrapOutboundOut(Self.encode(response, isHead: request.isHead, keepAlive: !closing)), promise: promise)
        guard last else { return }
        if closing {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
        } else if pendingFailure != nil {
            writeFailure(context: context)
        }
    }

    /// Status line, headers, `Content-Length`, `Connection`, body: one buffer.
    static func encode(_ response: ServerResponse, isHead: Bool, keepAlive: Bool) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(256 + response.body.count + response.headers.count * 48)
        out.writeString("HTTP/1.1 \(response.status) \(ServerResponse.reason(response.status))\r\n")
        for (name, value) in response.headers {
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeString("Content-Length: \(response.body.count)\r\n")
        out.writeString(keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n")
        if !isHead { out.writeBytes(response.body) }
        return out
    }
}
