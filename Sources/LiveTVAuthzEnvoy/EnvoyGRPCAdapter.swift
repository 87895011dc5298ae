import LiveTVAuthzCore
import SwiftProtobuf

/// Envoy `ext_authz` in gRPC mode: `CheckRequest` → `AuthzRequest`, `AuthzDecision` → `CheckResponse`.
/// Translation only; every rule lives in the core.
public enum EnvoyGRPCAdapter {
    /// gRPC status codes used in `CheckResponse.status` (google.rpc.Code).
    public enum Code {
        public static let ok: Int32 = 0
        public static let invalidArgument: Int32 = 3
        public static let permissionDenied: Int32 = 7
        public static let unauthenticated: Int32 = 16
    }

    /// A `CheckRequest` that does not describe an HTTP request.
    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads `attributes.request.http` and `attributes.source.address`.
    public static func request(_ check: Envoy_Service_Auth_V3_CheckRequest) throws(Malformed) -> AuthzRequest {
        guard check.hasAttributes, check.attributes.hasRequest, check.attributes.request.hasHTTP else {
            throw Malformed(description: "CheckRequest without attributes.request.http")
        }
        let http = check.attributes.request.http
        guard !http.method.isEmpty else { throw Malformed(description: "attributes.request.http.method is empty") }
        guard !http.path.isEmpty else { throw Malformed(description: "attributes.request.http.path is empty") }

        var headers: [HTTPField] = []
        if http.hasHeaderMap, !http.headerMap.headers.isEmpty {
            // Newer Envoy (encode_raw_headers): repeated headers kept, values as raw bytes.
            for header in http.headerMap.headers where !header.key.hasPrefix(":") {
                let value = header.rawValue.isEmpty ? header.value : String(decoding: header.rawValue, as: UTF8.self)
                headers.append(HTTPField(name: header.key, value: value))
            }
        } else {
            // The map form: lower-case keys, repeated headers already joined with ","; sorted for determinism.
            for (name, value) in http.headers.sorted(by: { $0.key < $1.key }) where !name.hasPrefix(":") {
                headers.append(HTTPField(name: name, value: value))
            }
        }

        let contentType = headers.first { $0.name.lowercased() == "content-type" }?.value
        let partial = headers.contains { $0.name.lowercased() == "x-envoy-auth-partial-body" && $0.value == "true" }
        let bodyBytes: [UInt8] = !http.rawBody.isEmpty ? Array(http.rawBody) : Array(http.body.utf8)
        let body: RequestBody
        if !bodyBytes.isEmpty {
            body = partial ? .unseen : .seen(bytes: bodyBytes, contentType: contentType)
        } else if http.size > 0 || (http.size < 0 && headers.contains { $0.name.lowercased() == "transfer-encoding" }) {
            // Envoy saw a body but did not send it (no with_request_body): never judged as absent.
            body = .unseen
        } else {
            body = .none
        }

        var client: String? = nil
        if check.attributes.hasSource, case .socketAddress(let socket)? = check.attributes.source.address.address {
            client = socket.address.isEmpty ? nil : socket.address
        }
        return AuthzRequest(
            method: http.method, target: http.path, headers: headers, body: body,
            peer: PeerFacts(trustedFrontend: true, reportedClientAddress: client))
    }

    /// The answer for a decision: OK with the header mutation (and, for an elevated request whose query
    /// carried a token, the removal of that query parameter), or PERMISSION_DENIED with 403 for a blocked
    /// source.
    public static func response(_ decision: AuthzDecision) -> Envoy_Service_Auth_V3_CheckResponse {
        var response = Envoy_Service_Auth_V3_CheckResponse()
        if decision.rejected {
            response.status = status(
                Code.permissionDenied, "source blocked after repeated failed Live TV authorizations")
            var denied = Envoy_Service_Auth_V3_DeniedHttpResponse()
            denied.status = Envoy_Type_V3_HttpStatus.with { $0.code = .forbidden }
            denied.headers = [headerOption("X-Plexauthz-Decision", "blocked")]
            response.deniedResponse = denied
            return response
        }
        response.status = status(Code.ok, "")
        var ok = Envoy_Service_Auth_V3_OkHttpResponse()
        if let token = decision.upstreamToken {
            // Overwrite, never append: exactly one X-Plex-Token header goes upstream.
            ok.headers = [headerOption("X-Plex-Token", token.value)]
        } else {
            ok.headersToRemove = ["x-plex-token"]
        }
        if decision.elevate, decision.classification.token.queryTokenParameters > 0 {
            // Elevation-rules §6: the owner token travels in the header only; every query carrier goes.
            ok.queryParametersToRemove = ["X-Plex-Token"]
        }
        response.okResponse = ok
        return response
    }

    /// A deny for input that cannot be judged: never an allow, whatever `failure_mode_allow` says.
    public static func refusal(code: Int32, _ message: String) -> Envoy_Service_Auth_V3_CheckResponse {
        var response = Envoy_Service_Auth_V3_CheckResponse()
        response.status = status(code, message)
        var denied = Envoy_Service_Auth_V3_DeniedHttpResponse()
        denied.status = Envoy_Type_V3_HttpStatus.with { $0.code = .forbidden }
        response.deniedResponse = denied
        return response
    }

    static func status(_ code: Int32, _ message: String) -> Google_Rpc_Status {
        Google_Rpc_Status.with {
            $0.code = code
            $0.message = message
        }
    }

    static func headerOption(_ name: String, _ value: String) -> Envoy_Config_Core_V3_HeaderValueOption {
        Envoy_Config_Core_V3_HeaderValueOption.with {
            $0.header = Envoy_Config_Core_V3_HeaderValue.with {
                $0.key = name
                $0.value = value
            }
            // `append` present and false means overwrite; `append_action` is left unset on purpose:
            // older Envoys ignore it here and its default would be "append".
            $0.append = Google_Protobuf_BoolValue(false)
        }
    }
}
