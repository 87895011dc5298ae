import AsyncHTTPClient
import LiveTVAuthzCore
import NIOCore
import NIOHTTP1

/// What PMS said about a token (elevation-rules §7).
public enum TokenCheck: Sendable, Hashable, CustomStringConvertible {
    /// 2xx from `/library/sections`: the token works on this server.
    case valid
    /// 401 or 403: PMS does not accept it.
    case invalid(status: Int)
    /// Any other status, a timeout or a connection error: unknown, so never elevated, never cached,
    /// never counted as abuse.
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

/// The PMS calls the service makes. A protocol so tests can script PMS.
public protocol PMSClient: Sendable {
    /// `GET /library/sections` with the token in the `X-Plex-Token` header.
    func checkToken(_ token: PlexToken) async -> TokenCheck
}

/// The real PMS client: one shared AsyncHTTPClient with its connection pool.
public final class HTTPPMSClient: PMSClient {
    public let baseURL: PMSURL
    public let timeout: Duration
    private let client: HTTPClient

    public init(baseURL: PMSURL, timeout: Duration, client: HTTPClient) {
        self.baseURL = baseURL
        self.timeout = timeout
        self.client = client
    }

    public func checkToken(_ token: PlexToken) async -> TokenCheck {
        var request = HTTPClientRequest(url: "\(baseURL)/library/sections")
        request.method = .GET
        // Header, not query: keeps the token out of PMS's request log lines.
        request.headers.add(name: "X-Plex-Token", value: token.value)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "X-Plex-Product", value: "plex-livetv-authz")
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            // Drain the body so the pooled connection can be reused.
            for try await _ in response.body {}
            switch response.status.code {
            case 200..<300: return .valid
            case 401, 403: return .invalid(status: Int(response.status.code))
            default: return .unavailable(.status(Int(response.status.code)))
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return .unavailable(.timeout(timeout))
        } catch {
            return .unavailable(.connection(String(describing: error)))
        }
    }
}
