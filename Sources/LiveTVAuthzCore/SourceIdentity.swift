/// Who a request comes from, for abuse blocking and audit (elevation-rules §8). Holds the address only to
/// fingerprint it: its `description` is the fingerprint, so it cannot reach a log raw.
public struct SourceIdentity: Sendable, Hashable, CustomStringConvertible {
    /// `sha256:` + 16 hex of the normalised address; the key of every blocker and state-file entry.
    public let fingerprint: String
    /// Number of trusted `X-Forwarded-For` entries seen (0 when forwarding headers were not trusted).
    public let forwardedForCount: Int
    /// Whether a trusted `CF-Connecting-IP` decided the source.
    public let cfConnectingIP: Bool
    /// Whether the source address is loopback (a local tool, or no forwarding facts at all).
    public let isLoopback: Bool

    public var description: String { fingerprint }

    /// Used when nothing at all is known about the peer.
    public static let unknownAddress = "unknown"

    public init(address: String, forwardedForCount: Int, cfConnectingIP: Bool) {
        let normalised = PeerAddress.normalise(address)
        self.fingerprint = Fingerprint.of(normalised)
        self.forwardedForCount = forwardedForCount
        self.cfConnectingIP = cfConnectingIP
        self.isLoopback = PeerAddress.isLoopback(normalised: normalised)
    }

    /// Derives the source of a request under the trust rules:
    /// - untrusted asker: every forwarding header is ignored, the connection address is the source;
    /// - the frontend's own client (Envoy `source.address`, else the rightmost `X-Forwarded-For` entry) is
    ///   the direct peer; if it is not loopback it is the source;
    /// - behind a local hop (loopback direct peer): `CF-Connecting-IP` when the next hop to the left is
    ///   absent or loopback, else the rightmost non-loopback `X-Forwarded-For` entry (never the leftmost,
    ///   which the client writes), else the direct peer.
    public static func resolve(_ request: AuthzRequest) -> SourceIdentity {
        let peer = request.peer
        guard peer.trustedFrontend else {
            return SourceIdentity(
                address: peer.connectionAddress ?? unknownAddress, forwardedForCount: 0, cfConnectingIP: false)
        }
        var chain: [String] = []
        for value in request.headerValues("x-forwarded-for") {
            for entry in value.split(separator: ",") {
                let trimmed = entry.trimmingASCIIWhitespace()
                if !trimmed.isEmpty { chain.append(trimmed) }
            }
        }
        let forwardedForCount = chain.count
        if let reported = peer.reportedClientAddress?.trimmingASCIIWhitespace(), !reported.isEmpty,
            chain.last.map(PeerAddress.normalise) != PeerAddress.normalise(reported)
        {
            chain.append(reported)
        }
        guard let direct = chain.last else {
            return SourceIdentity(
                address: peer.connectionAddress ?? unknownAddress, forwardedForCount: 0, cfConnectingIP: false)
        }
        guard PeerAddress.isLoopback(normalised: PeerAddress.normalise(direct)) else {
            return SourceIdentity(address: direct, forwardedForCount: forwardedForCount, cfConnectingIP: false)
        }
        let leftHops = chain.dropLast()
        if let cf = request.firstHeader("cf-connecting-ip")?.trimmingASCIIWhitespace(), !cf.isEmpty,
            leftHops.last.map({ PeerAddress.isLoopback(normalised: PeerAddress.normalise($0)) }) ?? true
        {
            return SourceIdentity(address: cf, forwardedForCount: forwardedForCount, cfConnectingIP: true)
        }
        if let hop = leftHops.last(where: { !PeerAddress.isLoopback(normalised: PeerAddress.normalise($0)) }) {
            return SourceIdentity(address: hop, forwardedForCount: forwardedForCount, cfConnectingIP: false)
        }
        return SourceIdentity(address: direct, forwardedForCount: forwardedForCount, cfConnectingIP: false)
    }
}

/// Address rules shared by source identity and the listeners' peer checks: one notion of loopback.
public enum PeerAddress {
    /// Lower-cased, brackets and a trailing port removed (`[::1]:80` → `::1`, `1.2.3.4:5` → `1.2.3.4`),
    /// IPv4-mapped IPv6 reduced to IPv4, so one client has one fingerprint however a hop wrote it.
    public static func normalise(_ address: String) -> String {
        // The common case, a dotted IPv4 address, is already normal (every decision asks).
        if !address.isEmpty, address.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E }) { return address }
        var text = address.trimmingASCIIWhitespace().lowercased()
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            text = String(text[text.index(after: text.startIndex)..<close])
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            text = String(text[..<colon])
        }
        if text.hasPrefix("::ffff:"), text.dropFirst(7).contains(".") { text = String(text.dropFirst(7)) }
        return text
    }

    /// `127.0.0.0/8`, `::1` and `localhost`, for an already normalised address. (A Unix-socket peer has no
    /// address: it never reaches here.)
    static func isLoopback(normalised: String) -> Bool {
        guard normalised.hasPrefix("127.") else { return normalised == "::1" || normalised == "localhost" }
        let octets = normalised.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Whether an address as a peer or a hop wrote it (`127.0.0.1`, `[::1]:80`, `::ffff:127.0.0.1`) is loopback.
    public static func isLoopback(_ address: String) -> Bool {
        isLoopback(normalised: normalise(address))
    }
}

extension StringProtocol {
    func trimmingASCIIWhitespace() -> String {
        let bytes = Array(utf8)[...].trimmedBytes()
        return String(decoding: bytes, as: UTF8.self)
    }
}
