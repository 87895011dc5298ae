import Foundation
import LiveTVAuthzCore

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
        "x-envoy-internal", "x-plexauthz-body",
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
        let target = try requiredBytes(
            wire, "X-Original-URI", "nginx subrequest", hint: " (proxy_set_header X-Original-URI $request_uri)")
        return AuthzRequest(
            method: method, target: RequestTarget(bytes: target), headers: clientHeaders(wire.headers),
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
        let target = try requiredBytes(wire, "X-Forwarded-Uri", "forward-auth subrequest")
        var body = declaredBody(wire.headers)
        if body == .none,
            hasBody(
                length: wire.headers.firstText("Content-Length"),
                encoding: wire.headers.firstText("Transfer-Encoding"))
        {
            body = .unseen
        }
        return AuthzRequest(
            method: method, target: RequestTarget(bytes: target), headers: clientHeaders(wire.headers), body: body,
            peer: PeerFacts(trustedFrontend: true))
    }
}

/// Traefik `forwardAuth` (`/v1/traefik`): described like `/v1/forward`, with two differences Traefik
/// forces. It forwards the client's own target whatever the answer says, so a candidate whose token is in
/// the query is never elevated (`query-token-kept`). And it cannot say whether the original request had a
/// body: only when its `forwardBody` sends the body along, which the shipped config announces with
/// `X-Plexauthz-Body: forwarded`, is the subrequest's body the original's; otherwise a `POST`, `PUT`,
/// `PATCH` or `DELETE` counts as having a body the service did not see.
public enum TraefikAdapter {
    public static let bodyMarker = "X-Plexauthz-Body"

    public static func request(_ wire: WireRequest) throws(AdapterError) -> AuthzRequest {
        let method = try required(wire, "X-Forwarded-Method", "Traefik forwardAuth subrequest")
        let target = try requiredBytes(wire, "X-Forwarded-Uri", "Traefik forwardAuth subrequest")
        let body: RequestBody
        if wire.headers.firstText(bodyMarker) == "forwarded" {
            body =
                wire.bodyTooLarge
                ? .unseen : .seen(bytes: wire.body, contentType: wire.headers.firstText("Content-Type"))
        } else {
            body = ["POST", "PUT", "PATCH", "DELETE"].contains(method) ? .unseen : .none
        }
        var request = AuthzRequest(
            method: method, target: RequestTarget(bytes: target), headers: clientHeaders(wire.headers), body: body,
            peer: PeerFacts(trustedFrontend: true))
        request.frontendRemovesQueryTokens = false
        return request
    }
}

/// Envoy `ext_authz` in HTTP mode (`path_prefix: /v1/envoy`): the subrequest's method and target are the
/// client's (minus the prefix); allow-listed headers only; the body when `with_request_body` sends it.
public enum EnvoyHTTPAdapter {
    public static let prefix = "/v1/envoy"

    public static func request(_ wire: WireRequest) throws(AdapterError) -> AuthzRequest {
        guard wire.target.starts(with: prefix.utf8) else {
            throw AdapterError(description: "not an Envoy check path")
        }
        let target = Array(wire.target.dropFirst(prefix.utf8.count))
        guard target.first == 0x2F else {
            throw AdapterError(description: "Envoy check without the original path (path_prefix must be /v1/envoy)")
        }
        let body: RequestBody
        if wire.bodyTooLarge || wire.headers.firstText("x-envoy-auth-partial-body") == "true" {
            body = .unseen
        } else if !wire.body.isEmpty {
            body = .seen(bytes: wire.body, contentType: wire.headers.firstText("Content-Type"))
        } else {
            body = declaredBody(wire.headers)
        }
        return AuthzRequest(
            method: wire.method, target: RequestTarget(bytes: target), headers: clientHeaders(wire.headers), body: body,
            peer: PeerFacts(trustedFrontend: true))
    }
}

/// A header that describes the original request; its absence is a frontend configuration error.
func required(_ wire: WireRequest, _ name: String, _ what: String, hint: String = "") throws(AdapterError) -> String {
    String(decoding: try requiredBytes(wire, name, what, hint: hint), as: UTF8.self)
}

/// The same, as the bytes the frontend sent (the original target is bytes, never repaired).
func requiredBytes(_ wire: WireRequest, _ name: String, _ what: String, hint: String = "") throws(AdapterError)
    -> [UInt8]
{
    guard let value = wire.headers.first(name), !value.isEmpty else {
        throw AdapterError(description: "\(what) without \(name)\(hint)")
    }
    return value
}

/// The client's own headers: everything but the service's control headers, in order; the client's
/// `Connection` header restored from `X-Original-Connection` when the frontend passed it.
func clientHeaders(_ headers: WireHeaders) -> [HTTPField] {
    var fields: [HTTPField] = []
    fields.reserveCapacity(headers.fields.count)
    var connection: [String] = []
    for field in headers.fields {
        let lower = field.name.lowercased()
        if lower == "x-original-connection" { connection.append(field.text) }
        if !ControlHeaders.names.contains(lower) { fields.append(HTTPField(name: field.name, value: field.text)) }
    }
    for value in connection { fields.append(HTTPField(name: "Connection", value: value)) }
    return fields
}

/// Body presence as declared by `X-Original-Content-Length` / `X-Original-Transfer-Encoding`.
func declaredBody(_ headers: WireHeaders) -> RequestBody {
    hasBody(
        length: headers.firstText("X-Original-Content-Length"),
        encoding: headers.firstText("X-Original-Transfer-Encoding"))
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
        // The target is already header-safe (`RequestTarget.wire`); a token is visible ASCII by
        // construction (`PlexToken`), with `{` `}` escaped for Caddy's placeholders.
        let token = PercentEscaping.escape(decision.upstreamToken?.value ?? "", where: PercentEscaping.isHeaderUnsafe)
        return [
            ("X-Plexauthz-Decision", decision.elevate ? "elevated" : "preserved"),
            ("X-Plexauthz-Rule", decision.rule.rawValue),
            ("X-Plexauthz-Token", token),
            ("X-Plexauthz-Uri", decision.upstreamTarget),
            ("X-Plexauthz-Query", decision.upstreamQuery),
            ("X-Plex-Token", token),
            ("Cache-Control", "no-store"),
        ]
    }

    public static func blocked(_ decision: AuthzDecision) -> [(String, String)] {
        [
            ("X-Plexauthz-Decision", "blocked"), ("X-Plexauthz-Rule", decision.rule.rawValue),
            ("Cache-Control", "no-store"),
        ]
    }
}
