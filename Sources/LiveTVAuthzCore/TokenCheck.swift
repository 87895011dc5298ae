/// What PMS said about a token (elevation-rules §7).
public enum TokenCheck: Sendable, Hashable, CustomStringConvertible {
    /// 2xx from `/library/sections`: the token works on this server.
    case valid
    /// 401 or 403: PMS does not accept it.
    case invalid(status: Int)
    /// Any other status (a redirect included), a timeout or a connection error: unknown, so never
    /// elevated, never cached, never counted as abuse.
    case unavailable(Unavailability)

    public var description: String {
        switch self {
        case .valid: return "valid"
        case .invalid(let status): return "rejected by PMS (HTTP \(status))"
        case .unavailable(let why): return "PMS unavailable: \(why)"
        }
    }
}

/// Why PMS could not say whether a token is valid.
public enum Unavailability: Sendable, Hashable, CustomStringConvertible {
    case timeout(Duration)
    case status(Int)
    case connection(String)

    /// The metrics label.
    public var kind: String {
        switch self {
        case .timeout: return "timeout"
        case .status: return "status"
        case .connection: return "connection"
        }
    }

    public var description: String {
        switch self {
        case .timeout(let limit): return "timeout after \(GoDuration.format(limit))"
        case .status(let code): return "HTTP \(code)"
        case .connection(let what): return what
        }
    }
}
