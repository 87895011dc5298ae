import Foundation
import LiveTVAuthzCore

/// `plex-livetv-authz explain`: one request description in, one decision out, with the token assumed
/// valid for this server (or, with a guard, actually validated).
public struct Explainer: Sendable {
    public var classifier: LiveTVClassifier
    public var ownerToken: PlexToken

    public init(classifier: LiveTVClassifier, ownerToken: PlexToken) {
        self.classifier = classifier
        self.ownerToken = ownerToken
    }

    /// Errors in a request description line.
    public struct InputError: Error, CustomStringConvertible, Equatable {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// Parses one JSON line of the explain contract:
    /// `{"method":"GET","target":"/…","headers":[["Name","value"]] or {"Name":"value"},"body":"…",
    ///  "contentType":"…","bodyPresent":true,"peer":"127.0.0.1"}`.
    public static func parseRequest(_ line: String) throws(InputError) -> AuthzRequest {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [])
        } catch {
            throw InputError("not valid JSON")
        }
        guard let fields = object as? [String: Any] else { throw InputError("expected a JSON object") }
        guard let method = fields["method"] as? String else { throw InputError("missing string field \"method\"") }
        guard let target = fields["target"] as? String else { throw InputError("missing string field \"target\"") }
        var headers: [HTTPField] = []
        switch fields["headers"] {
        case nil, is NSNull:
            break
        case let pairs as [Any]:
            for pair in pairs {
                guard let pair = pair as? [Any], pair.count == 2, let name = pair[0] as? String,
                    let value = pair[1] as? String
                else { throw InputError("\"headers\" entries must be [name, value] string pairs") }
                headers.append(HTTPField(name: name, value: value))
            }
        case let object as [String: Any]:
            for (name, value) in object.sorted(by: { $0.key < $1.key }) {
                guard let value = value as? String else { throw InputError("header \"\(name)\" must be a string") }
                headers.append(HTTPField(name: name, value: value))
            }
        default:
            throw InputError("\"headers\" must be an array of pairs or an object")
        }
        let contentType = try optionalString(fields, "contentType")
        let body: RequestBody
        if let text = try optionalString(fields, "body") {
            let type = contentType ?? headers.first { $0.name.lowercased() == "content-type" }?.value
            body = .seen(bytes: Array(text.utf8), contentType: type)
        } else if (fields["bodyPresent"] as? Bool) == true {
            body = .unseen
        } else {
            body = .none
        }
        let peer = try optionalString(fields, "peer")
        return AuthzRequest(
            method: method, target: target, headers: headers, body: body,
            peer: PeerFacts(trustedFrontend: true, reportedClientAddress: peer))
    }

    private static func optionalString(_ fields: [String: Any], _ key: String) throws(InputError) -> String? {
        switch fields[key] {
        case nil, is NSNull: return nil
        case let value as String: return value
        default: throw InputError("\"\(key)\" must be a string")
        }
    }

    /// The decision for a request, assuming its inbound token is valid for this server.
    public func decideAssumingValidToken(_ request: AuthzRequest) -> AuthzDecision {
        AuthzDecision.assumingValidToken(classifier.classify(request), ownerToken: ownerToken)
    }

    /// The contract's answer line: `{"elevate":…,"rule":"…","upstreamTarget":"…","upstreamToken":…}`.
    /// With a guard (`withOutcome`), `"outcome"` (the audit outcome or null) and `"rejected"` follow.
    public static func answerLine(_ decision: AuthzDecision, withOutcome: Bool = false) -> String {
        var line = JSONLine()
        line.field("elevate", decision.elevate)
        line.field("rule", decision.rule.rawValue)
        line.field("upstreamTarget", decision.upstreamTarget)
        line.field("upstreamToken", decision.upstreamToken?.value)
        if withOutcome {
            line.field("outcome", decision.outcome?.rawValue)
            line.field("rejected", decision.rejected)
        }
        return line.finished()
    }

    /// Answers one input line with the full guard (token validation against PMS included).
    public static func answer(line: String, guard guardian: Guard) async -> (text: String, failed: Bool) {
        do {
            let request = try parseRequest(line)
            return (answerLine(await guardian.decide(request), withOutcome: true), false)
        } catch {
            return (JSONLine.error(error.description), true)
        }
    }

    /// Answers one input line; the flag says whether the line failed.
    public func answer(line: String) -> (text: String, failed: Bool) {
        do {
            let request = try Self.parseRequest(line)
            return (Self.answerLine(decideAssumingValidToken(request)), false)
        } catch {
            return (JSONLine.error(error.description), true)
        }
    }

    /// A human-readable account of one decision.
    public static func humanReport(
        _ request: AuthzRequest, _ decision: AuthzDecision, mode: ElevationMode
    ) -> String {
        let classification = decision.classification
        var lines: [String] = []
        lines.append("request:         \(request.method) \(request.target.wire)")
        lines.append("mode:            \(mode.rawValue)")
        lines.append("rule:            \(decision.rule.rawValue)")
        lines.append("candidate:       \(classification.surface.map { "yes (\($0.rawValue))" } ?? "no")")
        lines.append("why:             \(decision.reason)")
        let token = classification.token
        if let inbound = token.token, let carrier = token.carrier {
            lines.append("inbound token:   \(carrier.rawValue) (\(inbound.fingerprint))")
        } else {
            lines.append(
                "inbound token:   none\(token.hopByHopHeaderToken ? " (header token is hop-by-hop: ignored)" : "")")
        }
        if token.queryTokenParameters > 1 {
            lines.append(
                "                 \(token.queryTokenParameters) X-Plex-Token query parameters (all rewritten on elevation)"
            )
        }
        if let outcome = decision.outcome { lines.append("outcome:         \(outcome.rawValue)") }
        let verdict: String
        if decision.rejected {
            verdict = "REJECT: the source is blocked (HTTP 403)"
        } else if let proof = decision.proof {
            switch proof {
            case .pmsValidated: verdict = "ELEVATE: owner token upstream (token validated by PMS)"
            case .ownerToken: verdict = "ELEVATE: the owner's own token"
            case .trackedSession: verdict = "ELEVATE: owner token upstream (tracked playback session, its token proven)"
            case .assumedForExplain:
                verdict = "ELEVATE: owner token upstream, if the inbound token is valid for this server"
            }
        } else {
            verdict = "preserve: the inbound token goes upstream unchanged"
        }
        lines.append("decision:        \(verdict)")
        lines.append("upstream target: \(decision.upstreamTarget)")
        lines.append("upstream token:  \(decision.upstreamToken?.value ?? "(none: header removed)")")
        return lines.joined(separator: "\n")
    }
}
