/// One header field exactly as the frontend reported it: original name case, original order, duplicates kept.
public struct HTTPField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// What the service knows about the original request's body.
///
/// Only Envoy can forward bodies; nginx, Caddy and Traefik only say whether there was one. A mutating
/// candidate whose body exists but was not seen is never elevated (rule `body-unseen`), because the
/// evidence that would justify the owner token might be contradicted inside it.
public enum RequestBody: Sendable, Hashable {
    /// The request had no body (or an empty one).
    case none
    /// The body was forwarded to the service: its bytes and its `Content-Type` (if any).
    case seen(bytes: [UInt8], contentType: String?)
    /// The request had a body the service could not see.
    case unseen

    /// Bodies larger than this are never inspected (and never truncated): they count as unseen.
    public static let inspectionLimit = 64 * 1024

    /// The body as the classifier treats it: a seen body over the limit is unseen, an empty one is none.
    var effective: RequestBody {
        switch self {
        case .seen(let bytes, _) where bytes.isEmpty: return .none
        case .seen(let bytes, _) where bytes.count > Self.inspectionLimit: return .unseen
        default: return self
        }
    }
}

/// Where the request came from, as far as this service can know.
public struct PeerFacts: Sendable, Hashable {
    /// Whether the party that asked this service is an authenticated frontend (Unix socket peer, or a
    /// TCP peer that is loopback/allow-listed and presented the frontend key). Forwarding headers are
    /// honoured only when this is true.
    public var trustedFrontend: Bool
    /// The address of the frontend's own client when the frontend reports it outside the headers
    /// (Envoy's `source.address`). `nil` means: take the rightmost `X-Forwarded-For` entry.
    public var reportedClientAddress: String?
    /// The address of the party that connected to this service (`nil` for a Unix socket). Used as the
    /// source only when forwarded facts cannot be trusted.
    public var connectionAddress: String?

    public init(trustedFrontend: Bool, reportedClientAddress: String? = nil, connectionAddress: String? = nil) {
        self.trustedFrontend = trustedFrontend
        self.reportedClientAddress = reportedClientAddress
        self.connectionAddress = connectionAddress
    }
}

/// One client request as the frontend saw it. Adapters build it; the core judges it.
public struct AuthzRequest: Sendable, Hashable {
    /// The method exactly as sent (case-sensitive).
    public var method: String
    /// The raw request-target (path plus optional query) as bytes, never normalised, parsed once.
    public var target: RequestTarget
    /// The original request's header fields in order.
    public var headers: [HTTPField]
    /// The original request's body, as far as the service knows it.
    public var body: RequestBody
    /// Peer and trust facts for source identity.
    public var peer: PeerFacts
    /// Whether the frontend can forward the target the decision names (its query without `X-Plex-Token`).
    /// When it cannot (Traefik forwards the client's target unchanged), a candidate whose token is in the
    /// query is never elevated (rule `query-token-kept`): the owner token would travel beside the user's.
    public var frontendRemovesQueryTokens = true

    public init(
        method: String, target: String, headers: [HTTPField] = [], body: RequestBody = .none,
        peer: PeerFacts = PeerFacts(trustedFrontend: false)
    ) {
        self.init(method: method, target: RequestTarget(target), headers: headers, body: body, peer: peer)
    }

    public init(
        method: String, target: RequestTarget, headers: [HTTPField] = [], body: RequestBody = .none,
        peer: PeerFacts = PeerFacts(trustedFrontend: false)
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.peer = peer
    }

    /// Values of every header whose name equals `lowercasedName` case-insensitively, in order.
    public func headerValues(_ lowercasedName: String) -> [String] {
        let needle = Array(lowercasedName.utf8)
        return headers.compactMap { $0.name.utf8.equalsLowercased(needle) ? $0.value : nil }
    }

    /// The first value of a header, if any.
    public func firstHeader(_ lowercasedName: String) -> String? {
        let needle = Array(lowercasedName.utf8)
        return headers.first { $0.name.utf8.equalsLowercased(needle) }?.value
    }
}
