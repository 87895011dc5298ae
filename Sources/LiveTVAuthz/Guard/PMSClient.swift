import AsyncHTTPClient
import Foundation
import LiveTVAuthzCore
import Logging
import NIOCore
import NIOHTTP1

/// The PMS calls the service makes. A protocol so tests can script PMS.
public protocol PMSClient: Sendable {
    /// `GET /library/sections` with the token in the `X-Plex-Token` header.
    func checkToken(_ token: PlexToken) async -> TokenCheck
    /// `GET /identity` (no token): the machine identifier ("" when PMS answered without one), or `nil`
    /// when PMS did not answer 200 (readiness).
    func identity() async -> String?
    /// Sends a request of the service's own (owner-history neutralisation); its status, or `nil`.
    func send(_ request: PMSRequest, timeout: Duration) async -> Int?
}

/// The real PMS client: one shared AsyncHTTPClient (made by `PMSHTTPClient.make`: redirects never
/// followed, a refused connection fails at once) with its connection pool.
public final class HTTPPMSClient: PMSClient {
    public let baseURL: PMSURL
    public let timeout: Duration
    private let client: HTTPClient
    private let redirects: RateLimitedLog
    private let bodies: RateLimitedLog

    public init(baseURL: PMSURL, timeout: Duration, client: HTTPClient, logger: Logger) {
        self.baseURL = baseURL
        self.timeout = timeout
        self.client = client
        self.redirects = RateLimitedLog(logger: logger, interval: nil)
        self.bodies = RateLimitedLog(logger: logger, interval: nil)
    }

    static let bodyPrefixLength = 512

    /// Whether the start of a `/library/sections` body is PMS's MediaContainer, as JSON
    /// (`{"MediaContainer":…`) or XML (`<?xml …?>` optional, then `<MediaContainer`).
    static func isMediaContainer(_ start: [UInt8]) -> Bool {
        var text = Substring(String(decoding: start, as: UTF8.self))
        text = text.drop { $0.isWhitespace }
        if text.hasPrefix("<?xml"), let end = text.range(of: "?>") {
            text = text[end.upperBound...].drop { $0.isWhitespace }
        }
        if text.hasPrefix("<MediaContainer") { return true }
        guard text.hasPrefix("{") else { return false }
        return text.dropFirst().drop { $0.isWhitespace }.hasPrefix("\"MediaContainer\"")
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
            // Keep the start (to see what answered), drain the rest so the pooled connection can be reused.
            var start: [UInt8] = []
            for try await part in response.body where start.count < Self.bodyPrefixLength {
                start += part.readableBytesView.prefix(Self.bodyPrefixLength - start.count)
            }
            let status = Int(response.status.code)
            switch status {
            case 200..<300:
                guard Self.isMediaContainer(start) else {
                    bodies.warning(
                        "PMS answered token validation with HTTP \(status) but no MediaContainer: PLEX_URL may point at something other than PMS; tokens stay unproven"
                    )
                    return .unavailable(.unexpectedBody)
                }
                return .valid
            case 401, 403: return .invalid(status: status)
            case 300..<400:
                // Elevation-rules §7: only a 2xx from /library/sections itself proves a token. Following the
                // redirect would re-send the token and judge whatever answers there.
                let host = Self.host(ofLocation: response.headers.first(name: "Location"))
                redirects.warning(
                    "PMS answered token validation with HTTP \(status) to \(host ?? "a relative location"); not followed, tokens stay unproven"
                )
                return .unavailable(.redirect(status: status, locationHost: host))
            default: return .unavailable(.status(status))
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return .unavailable(.timeout(timeout))
        } catch {
            return .unavailable(.connection(String(describing: error)))
        }
    }

    public func identity() async -> String? {
        var request = HTTPClientRequest(url: "\(baseURL)/identity")
        request.headers.add(name: "Accept", value: "application/json")
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            let body = try await response.body.collect(upTo: 64 * 1024)
            guard response.status.code == 200 else { return nil }
            return Self.machineIdentifier(in: String(buffer: body)) ?? ""
        } catch {
            return nil
        }
    }

    /// The host of an absolute `Location` (never its path or query, which may carry a token); `nil` for a
    /// relative one.
    static func host(ofLocation location: String?) -> String? {
        guard let location, let scheme = location.range(of: "://") else { return nil }
        let authority = location[scheme.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let host = authority.split(separator: "@").last.map(String.init) ?? ""
        return host.isEmpty ? nil : host
    }

    /// `machineIdentifier` from the JSON or XML form of `/identity`.
    static func machineIdentifier(in text: String) -> String? {
        for pattern in [#""machineIdentifier"\s*:\s*"([0-9A-Za-z-]+)""#, #"machineIdentifier="([0-9A-Za-z-]+)""#] {
            if let range = text.range(of: pattern, options: .regularExpression) {
                let match = String(text[range])
                if let open = match.dropLast().lastIndex(of: "\"") {
                    return String(match[match.index(after: open)..<match.index(before: match.endIndex)])
                }
            }
        }
        return nil
    }
}

/// The one HTTP client the service uses for PMS (validation and the `/identity` probe).
public enum PMSHTTPClient {
    /// Redirects are never followed (a 3xx would re-send the token elsewhere and let whatever answers there
    /// validate it), and a refused connection fails at once instead of being retried until the deadline.
    public static func make(eventLoopGroup: any EventLoopGroup) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(1), read: .seconds(10)))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
    }
}

/// A request the service itself sends to PMS on someone's behalf (owner-history neutralisation).
public struct PMSRequest: Sendable, Hashable {
    public var method: String
    /// Path and query, already encoded, without any token.
    public var target: String
    /// Sent in the `X-Plex-Token` header only.
    public var token: PlexToken

    public init(method: String = "GET", target: String, token: PlexToken) {
        self.method = method
        self.target = target
        self.token = token
    }
}

extension PMSClient {
    /// Sends `request`; its status, or `nil` when PMS did not answer in time. Clients that cannot (a
    /// scripted PMS that does not care) answer `nil`.
    public func send(_ request: PMSRequest, timeout: Duration) async -> Int? { nil }
}

extension HTTPPMSClient {
    public func send(_ request: PMSRequest, timeout: Duration) async -> Int? {
        var outgoing = HTTPClientRequest(url: "\(baseURL)\(request.target)")
        outgoing.method = HTTPMethod(rawValue: request.method)
        outgoing.headers.add(name: "X-Plex-Token", value: request.token.value)
        outgoing.headers.add(name: "X-Plex-Product", value: "plex-livetv-authz")
        do {
            let response = try await client.execute(outgoing, timeout: .nanoseconds(timeout.nanoseconds))
            for try await _ in response.body {}
            return Int(response.status.code)
        } catch {
            return nil
        }
    }
}
