import FuzzReplay
import LiveTVAuthzCore

/// Source identity from forwarding facts (elevation-rules §8) on arbitrary headers and addresses.
///
/// Input: a flags byte (trusted frontend, reported client address present, connection address present), the
/// reported address line, the connection address line, then header lines `name:value`. Invariants:
/// - the identity is a fingerprint (`sha256:` + 16 hex), never an address;
/// - an untrusted asker's headers are ignored: its identity is its connection address;
/// - the client writes the left of `X-Forwarded-For`: a new leftmost entry never moves the source away from
///   a non-loopback direct peer, and headers other than `X-Forwarded-For` / `CF-Connecting-IP` never count;
/// - resolving is deterministic.
let forwardedIdentityFuzz: FuzzTarget = { data, size in
    var input = FuzzInput(data, size)
    let flags = input.byte()
    let reportedLine = String(decoding: input.line(), as: UTF8.self)
    let connectionLine = String(decoding: input.line(), as: UTF8.self)
    var headers: [HTTPField] = []
    while !input.isEmpty {
        let line = input.line()
        let colon = line.firstIndex(of: 0x3A) ?? line.endIndex
        // Most names are the ones that matter, so the fuzzer need not find them.
        let rawName = String(decoding: line[..<colon], as: UTF8.self)
        let name =
            rawName.count == 1
            ? ["X-Forwarded-For", "CF-Connecting-IP", "x-forwarded-for"][Int(line.first! % 3)] : rawName
        headers.append(
            HTTPField(name: name, value: String(decoding: line[min(colon + 1, line.endIndex)...], as: UTF8.self)))
    }
    let peer = PeerFacts(
        trustedFrontend: flags & 1 != 0, reportedClientAddress: flags & 2 != 0 ? reportedLine : nil,
        connectionAddress: flags & 4 != 0 ? connectionLine : nil)
    let request = AuthzRequest(method: "GET", target: "/livetv/dvrs", headers: headers, peer: peer)
    let identity = SourceIdentity.resolve(request)

    let fingerprint = identity.fingerprint
    precondition(fingerprint.hasPrefix("sha256:") && fingerprint.utf8.count == 23, "not a fingerprint: \(fingerprint)")
    precondition(
        fingerprint.utf8.dropFirst(7).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) },
        "not a fingerprint: \(fingerprint)")
    precondition(identity.description == fingerprint, "the identity prints something other than its fingerprint")
    precondition(SourceIdentity.resolve(request) == identity, "resolving is not deterministic")

    if !peer.trustedFrontend {
        let own = SourceIdentity(
            address: peer.connectionAddress ?? SourceIdentity.unknownAddress, forwardedForCount: 0,
            cfConnectingIP: false)
        precondition(identity == own, "an untrusted asker's forwarding headers were honoured")
        return 0
    }
    var unrelated = request
    unrelated.headers.append(HTTPField(name: "X-Real-IP", value: "203.0.113.66"))
    unrelated.headers.insert(HTTPField(name: "Forwarded", value: "for=203.0.113.66"), at: 0)
    precondition(
        SourceIdentity.resolve(unrelated).fingerprint == fingerprint, "a non-forwarding header moved the source")

    // The direct peer: Envoy's reported address, else the rightmost X-Forwarded-For entry.
    let chain = request.headerValues("x-forwarded-for").flatMap { $0.split(separator: ",") }.map {
        String($0).trimmingASCII()
    }.filter { !$0.isEmpty }
    let reported = peer.reportedClientAddress?.trimmingASCII()
    let direct = reported.flatMap { $0.isEmpty ? nil : $0 } ?? chain.last
    if let direct, !PeerAddress.isLoopback(direct),
        let first = request.headers.firstIndex(where: {
            $0.name.lowercased() == "x-forwarded-for"
        })
    {
        var spoofed = request
        spoofed.headers[first].value = "198.51.100.7, 127.0.0.1, " + spoofed.headers[first].value
        precondition(
            SourceIdentity.resolve(spoofed).fingerprint == fingerprint,
            "a client-written leftmost X-Forwarded-For entry moved the source away from a non-loopback direct peer")
    }
    return 0
}

extension String {
    fileprivate func trimmingASCII() -> String {
        let bytes = Array(utf8)
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
        guard let start = bytes.firstIndex(where: { !isSpace($0) }), let end = bytes.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(decoding: bytes[start...end], as: UTF8.self)
    }
}

@main
struct ForwardedIdentityFuzz {
    static func main() { FuzzMain.run(forwardedIdentityFuzz) }
}
