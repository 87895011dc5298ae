/// What PMS said about a token (elevation-rules §7).
public enum TokenCheck: Sendable, Hashable, CustomStringConvertible {
    /// 2xx from `/library/sections`: the token works on this server.
    case valid
    /// `explain` without a PMS: every token is taken as valid, to show what the rules would do (the
    /// resulting proof says so). The service never produces this answer.
    case assumedValid
    /// 401 or 403: PMS does not accept it.
    case invalid(status: Int)
    /// Any other status (a redirect included), a timeout or a connection error: unknown, so never
    /// elevated, never cached, never counted as abuse.
    case unavailable(Unavailability)

    public var description: String {
        switch self {
        case .valid: return "valid"
        case .assumedValid: return "assumed valid (explain)"
        case .invalid(let status): return "rejected by PMS (HTTP \(status))"
        case .unavailable(let why): return "PMS unavailable: \(why)"
        }
    }
}

/// Why PMS could not say whether a token is valid.
public enum Unavailability: Sendable, Hashable, CustomStringConvertible {
    case timeout(Duration)
    case status(Int)
    /// A 3xx: never followed (the token would be re-sent to wherever it points, and only a 2xx from
    /// `/library/sections` itself proves anything). Only the `Location` host is kept, never its query.
    case redirect(status: Int, locationHost: String?)
    case connection(String)
    /// A 2xx whose body is not a MediaContainer: something other than PMS answered (a login page, a
    /// catch-all proxy), so the status proves nothing.
    case unexpectedBody
    /// Too many different tokens are already waiting for PMS: answered at once instead of queueing more.
    case overloaded(pending: Int)

    /// Every metrics label, for series that start at zero.
    public static let kinds = ["timeout", "status", "redirect", "connection", "body", "overload"]

    /// The metrics label.
    public var kind: String {
        switch self {
        case .timeout: return "timeout"
        case .status: return "status"
        case .redirect: return "redirect"
        case .connection: return "connection"
        case .unexpectedBody: return "body"
        case .overloaded: return "overload"
        }
    }

    public var description: String {
        switch self {
        case .timeout(let limit): return "timeout after \(GoDuration.format(limit))"
        case .status(let code): return "HTTP \(code)"
        case .redirect(let code, let host): return "HTTP \(code) redirect to \(host ?? "an unnamed host"), not followed"
        case .connection(let what): return what
        case .unexpectedBody: return "a 2xx answer that is not a MediaContainer"
        case .overloaded(let pending): return "\(pending) validations already waiting for PMS"
        }
    }
}
