import Foundation
import LiveTVAuthzCore
import NIOHTTP1

/// What a decision subrequest looked like on the wire, before any adapter reads it.
public struct WireRequest: Sendable {
    /// The subrequest's own method (nginx always sends GET; Envoy HTTP mode sends the client's).
    public var method: String
    /// The subrequest's own target (`/v1/nginx`, `/v1/envoy/livetv/dvrs?…`).
    public var uri: String
    public var headers: HTTPHeaders
    /// The subrequest's body, if any was read (only Envoy HTTP mode sends one).
    public var body: [UInt8]
    /// The body was longer than the inspection limit and was not kept.
    public var bodyTooLarge: Bool

    /// The connection's own peer address is added by `DecisionService`, which knows the transport.
    public init(method: String, uri: String, headers: HTTPHeaders, body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.bodyTooLarge = bodyTooLarge
    }
}

/// A subrequest that does not describe the original request: a frontend configuration error.
public struct AdapterError: Error, Equatable, CustomStringConvertible {
    public let description: String
}

/// Headers the service reads for itself and never treats as the client's own.
enum ControlHeaders {
    static let frontendKey = "x-plexauthz-key"
    static let names: Set<String> = [
        "x-plexauthz-key", "x-original-uri", "x-original-method", "x-original-content-length",
        "x-original-transfer-encoding", "x-original-connection", "content-length", "transfer-encoding", "host",
        "connection", "keep-alive", "x-forwarded-method", "x-forwarded-uri", "x-forwarded-host",
        "x-forwarded-proto", "x-envoy-auth-partial-body", "x-envoy-expected-rq-timeout-ms",
        "x-envoy-internal",
    ]
}

/// nginx `auth_request` (`/v1/nginx`): the original request is described by `X-Original-Method` and
/// `X-Original-URI` (`$request_uri`); the client's headers arrive as they are (the subrequest shares
/// them), its `Connection` header as `X-Original-Connection`, its body only as a size
/// (`X-Original-Content-Length`, `X-Original-Transfer-Encoding`); the client address is the rightmost
/// `X-Forwarded-For` entry (`$proxy_add_x_forwarded_for`).
public enum NginxAdapter {
    public static func request(_ wire: WireRequest) throws(AdapterError) -> AuthzRequest {
        let method = try required(
            wire, "X-Original-Method", "nginx subrequest", hint: " (proxy_set_header X-Original-Method $request_method)"
        )
        let target = try required(
            wire, "X-Original-URI", "nginx subrequest", hint: " (proxy_set_header X-Original-URI $request_uri)")
        return AuthzRequest(
            method: method, target: target, headers: clientHeaders(wire.headers),
            body: declaredBody(wire.headers),
            peer: PeerFacts(trustedFrontend: true))
    }
}

/// Traefik `forwardAuth` and Caddy `forward_auth` (`/v1/forward`): `X-Forwarded-Method` and
/// `X-Forwarded-Uri` describe the original request; the client's headers are forwarded (hop-by-hop ones
/// already removed by the frontend); body presence from the forwarded `Content-Length` /
/// `Transfer-Encoding` (Caddy: `header_up`) or the `X-Original-*` pair.
public enum ForwardAuthAdapter {
    public static func request(_ wire: WireRequest) throws(AdapterError) -> AuthzRequest {
        let method = try required(wire, "X-Forwarded-Method", "forward-auth subrequest")
        let target = try required(wire, "X-Forwarded-Uri", "forward-auth subrequest")
        var body = declaredBody(wire.headers)
        if body == .none,
            hasBody(
                length: wire.headers.first(name: "Content-Length"),
                encoding: wire.headers.first(name: "Transfer-Encoding"))
        {
            body = .unseen
        }
        return AuthzRequest(
            method: method, target: target, headers: clientHeaders(wire.headers), body: body,
            peer: PeerFacts(trustedFrontend: true))
    }
}

/// Envoy `ext_authz` in HTTP mode (`path_prefix: /v1/envoy`): the subrequest's method and target are the
/// client's (minus the prefix); allow-listed headers only; the body when `with_request_body` sends it.
public enum EnvoyHTTPAdapter {
    public static let prefix = "/v1/envoy"

    public static func request(_ wire: WireRequest) throws(AdapterError) -> AuthzRequest {
        guard wire.uri.hasPrefix(prefix) else { throw AdapterError(description: "not an Envoy check path") }
        let target = String(wire.uri.dropFirst(prefix.count))
        guard target.hasPrefix("/") else {
            throw AdapterError(description: "Envoy check without the original path (path_prefix must be /v1/envoy)")
        }
        let body: RequestBody
        if wire.bodyTooLarge || wire.headers.first(name: "x-envoy-auth-partial-body") == "true" {
            body = .unseen
        } else if !wire.body.isEmpty {
            body = .seen(bytes: wire.body, contentType: wire.headers.first(name: "Content-Type"))
        } else {
            body = declaredBody(wire.headers)
        }
        return AuthzRequest(
            method: wire.method, target: target, headers: clientHeaders(wire.headers), body: body,
            peer: PeerFacts(trustedFrontend: true))
    }
}

/// A header that describes the original request; its absence is a frontend configuration error.
func required(_ wire: WireRequest, _ name: String, _ what: String, hint: String = "") throws(AdapterError) -> String {
    guard let value = wire.headers.first(name: name), !value.isEmpty else {
        throw AdapterError(description: "\(what) without \(name)\(hint)")
    }
    return value
}

/// The client's own headers: everything but the service's control headers, in order; the client's
/// `Connection` header restored from `X-Original-Connection` when the frontend passed it.
func clientHeaders(_ headers: HTTPHeaders) -> [HTTPField] {
    var fields: [HTTPField] = []
    fields.reserveCapacity(headers.count)
    for (name, value) in headers where !ControlHeaders.names.contains(name.lowercased()) {
        fields.append(HTTPField(name: name, value: value))
    }
    for value in headers[canonicalForm: "X-Original-Connection"] {
        fields.append(HTTPField(name: "Connection", value: String(value)))
    }
    return fields
}

/// Body presence as declared by `X-Original-Content-Length` / `X-Original-Transfer-Encoding`.
func declaredBody(_ headers: HTTPHeaders) -> RequestBody {
    hasBody(
        length: headers.first(name: "X-Original-Content-Length"),
        encoding: headers.first(name: "X-Original-Transfer-Encoding"))
        ? .unseen : .none
}

/// A non-zero (or unparsable) length, or any transfer coding, means a body.
func hasBody(length: String?, encoding: String?) -> Bool {
    if let encoding, !encoding.trimmingCharacters(in: .whitespaces).isEmpty { return true }
    guard let length = length?.trimmingCharacters(in: .whitespaces), !length.isEmpty else { return false }
    return Int(length) != 0
}

/// The answer headers of elevation-contract "Allow": always all of them, values header-safe.
public enum DecisionHeaders {
    public static func allow(_ decision: AuthzDecision) -> [(String, String)] {
        let token = decision.upstreamToken?.value ?? ""
        return [
            ("X-Plexauthz-Decision", decision.elevate ? "elevated" : "preserved"),
            ("X-Plexauthz-Rule", decision.rule.rawValue),
            ("X-Plexauthz-Token", headerSafe(token)),
            ("X-Plexauthz-Uri", headerSafe(decision.upstreamTarget)),
            ("X-Plexauthz-Query", headerSafe(decision.upstreamQuery)),
            ("X-Plex-Token", headerSafe(token)),
            ("Cache-Control", "no-store"),
        ]
    }

    public static func blocked(_ decision: AuthzDecision) -> [(String, String)] {
        [
            ("X-Plexauthz-Decision", "blocked"), ("X-Plexauthz-Rule", decision.rule.rawValue),
            ("Cache-Control", "no-store"),
        ]
    }

    /// Percent-encodes what may not appear raw in a decision header: controls, space, DEL, non-ASCII, and
    /// `{` `}` (Caddy placeholders). Everything else, `%` included, is kept: the value is already a valid,
    /// encoded request-target.
    public static func headerSafe(_ value: String) -> String {
        PercentEscaping.escape(value) { $0 <= 0x20 || $0 >= 0x7F || $0 == 0x7B || $0 == 0x7D }
    }
}
