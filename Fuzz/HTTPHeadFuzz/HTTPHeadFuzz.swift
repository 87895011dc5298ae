import FuzzReplay
import LiveTVAuthzCore
import NIOCore
import NIOEmbedded

@testable import LiveTVAuthzHTTP

/// The decision server's HTTP/1.1 codec (heads, framing, chunked bodies, pipelining) on arbitrary bytes,
/// with the nginx adapter and a decision behind it, in an `EmbeddedChannel`.
///
/// Invariants: never a trap; the bytes written back are a sequence of well-formed responses (status line,
/// `name: value` lines without a bare CR or LF, a `Content-Length` that frames the body); at most one
/// response per request and nothing after a `Connection: close`; the answer does not depend on how the bytes
/// were split into reads; every decision satisfies `DecisionInvariants`.
let httpHeadFuzz: FuzzTarget = { data, size in
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = exchange([bytes[...]])
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) * bytes.count / 256
    precondition(exchange([bytes[..<split], bytes[split...]]) == whole, "the answer depends on how reads were split")
    let bytewise = bytes.count <= 128 ? exchange(bytes.indices.map { bytes[$0...$0] }) : whole
    precondition(bytewise == whole, "the answer differs when the bytes arrive one at a time")
    checkResponses(whole)
    return 0
}

/// Feeds the reads into a fresh channel and returns every byte written back.
func exchange(_ reads: [ArraySlice<UInt8>]) -> [UInt8] {
    let channel = EmbeddedChannel()
    try! channel.pipeline.syncOperations.addHandlers([
        HTTP1DecisionCodec(limits: HTTP1Limits(headBytes: 4096, keptBodyBytes: 1024, maximumBodyBytes: 16 * 1024)),
        FuzzDecisionHandler(),
    ])
    try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    for read in reads where channel.isActive {
        _ = try? channel.writeInbound(ByteBuffer(bytes: read))
        channel.embeddedEventLoop.run()
    }
    var out: [UInt8] = []
    while let buffer = try? channel.readOutbound(as: ByteBuffer.self) { out += buffer.readableBytesView }
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return out
}

/// Parses the bytes written back as HTTP/1.1 responses and checks their shape.
func checkResponses(_ out: [UInt8]) {
    var rest = out[...]
    while !rest.isEmpty {
        guard let end = rest.firstRange(of: [0x0D, 0x0A, 0x0D, 0x0A]) else {
            preconditionFailure("a response head without its end")
        }
        // Every line ends in CR LF; the head's last CR LF is part of the end marker.
        let head = rest[..<(end.lowerBound + 2)]
        let lines = head.split(separator: 0x0A, omittingEmptySubsequences: true)
        precondition(lines[0].starts(with: Array("HTTP/1.1 ".utf8)), "a response without a status line")
        var length: Int?
        var closes = false
        for line in lines.dropFirst() {
            precondition(line.last == 0x0D, "a header line with a bare LF")
            let text = line.dropLast()
            precondition(!text.contains(0x0D), "a header value with a bare CR")
            guard let colon = text.firstIndex(of: 0x3A), text[colon...].starts(with: [0x3A, 0x20]) else {
                preconditionFailure("a header line that is not `name: value`")
            }
            let name = String(decoding: text[..<colon], as: UTF8.self).lowercased()
            let value = String(decoding: text[(colon + 2)...], as: UTF8.self)
            if name == "content-length" { length = Int(value) }
            if name == "connection", value == "close" { closes = true }
        }
        guard let length, end.upperBound + length <= rest.endIndex else {
            preconditionFailure("a response whose Content-Length does not frame its body")
        }
        rest = rest[(end.upperBound + length)...]
        precondition(!closes || rest.isEmpty, "bytes after a response that closes the connection")
    }
}

/// What `/v1/nginx` does, minus the guard's I/O: adapt, decide as if the token were valid, answer.
final class FuzzDecisionHandler: ChannelInboundHandler {
    typealias InboundIn = WireRequest
    typealias OutboundOut = ServerResponse

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let wire = unwrapInboundIn(data)
        let response: ServerResponse
        do {
            let request = try NginxAdapter.request(wire)
            var decision: AuthzDecision?
            for mode in DecisionInvariants.modes { decision = DecisionInvariants.check(request, mode: mode) }
            response = ServerResponse(status: 200, headers: DecisionHeaders.allow(decision!))
        } catch {
            response = ServerResponse.text(400, error.description)
        }
        context.writeAndFlush(wrapOutboundOut(response), promise: nil)
    }
}

@main
struct HTTPHeadFuzz {
    static func main() { FuzzMain.run(httpHeadFuzz) }
}
