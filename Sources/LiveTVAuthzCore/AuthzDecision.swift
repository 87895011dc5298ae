/// Elevation-rules §6: the target the frontend must forward.
public enum UpstreamRewrite {
    /// The original target with every `X-Plex-Token` query value (exact name) replaced by `token`,
    /// percent-encoded; every other byte (order, encoding, other parameters) unchanged. A bare
    /// `X-Plex-Token` without `=` gets one, so no carrier is left holding anything but `token`.
    public static func replacingQueryTokens(in target: RequestTarget, with token: PlexToken) -> String {
        guard target.hasQuery else { return target.original }
        let encoded = PercentDecoding.encodeComponent(token.value.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(target.bytes.count + encoded.count)
        var copied = 0
        let query = target.query
        for component in query.components where query.rawName(component).elementsEqual(TokenLocation.exactName) {
            output.append(contentsOf: target.bytes[copied..<component.nameEnd])
            output.append(0x3D)
            output.append(contentsOf: encoded)
            copied = component.end
        }
        output.append(contentsOf: target.bytes[copied...])
        return String(decoding: output, as: UTF8.self)
    }
}

/// The final answer about one request.
public struct AuthzDecision: Sendable {
    /// Whether the frontend sends the owner token upstream.
    public var elevate: Bool
    /// The rule that decided (see `ElevationRule`).
    public var rule: ElevationRule
    /// The audit outcome, for elevation candidates only (`nil` means: no audit line).
    public var outcome: AuditOutcome?
    /// The service rejects the request (HTTP 403): a blocked source on a candidate. Never set by `make`.
    public var rejected: Bool = false
    /// The request-target to forward: the original, with token values replaced when elevated.
    public var upstreamTarget: String
    /// The token to send upstream in the `X-Plex-Token` header: the owner's when elevated, else the
    /// inbound token, else none (the header is removed).
    public var upstreamToken: PlexToken?
    /// Why, in words (built on demand: the hot path never formats text).
    public var reason: String { reasonOverride ?? classification.reason.description }
    /// A reason set by the guard (validation outcome), replacing the classifier's.
    public var reasonOverride: String?
    /// The classification the decision rests on.
    public var classification: Classification

    /// The query string the frontend must install (`?` + query, or just `?`), for Caddy 2.6.2's rewrite.
    public var upstreamQuery: String {
        guard let mark = upstreamTarget.utf8.firstIndex(of: 0x3F) else { return "?" }
        return String(upstreamTarget[mark...])
    }

    /// The decision for a classified request, given what token validation said about it.
    ///
    /// `tokenValid` is the only way in to an elevation: the caller must have proven the inbound token
    /// against this PMS (or matched it to the owner token). Everything else preserves the request.
    public static func make(
        _ classification: Classification, tokenValid: Bool, ownerToken: PlexToken, outcome: AuditOutcome?,
        reason: String? = nil
    ) -> AuthzDecision {
        let elevate = classification.mayElevate && tokenValid
        let target: String
        if elevate {
            target = UpstreamRewrite.replacingQueryTokens(in: classification.target, with: ownerToken)
        } else {
            target = classification.target.original
        }
        return AuthzDecision(
            elevate: elevate,
            rule: classification.rule,
            outcome: outcome,
            upstreamTarget: target,
            upstreamToken: elevate ? ownerToken : classification.token.token,
            reasonOverride: reason,
            classification: classification)
    }
}

/// The audit outcomes operators grep for (`outcome=` in `plexlabelproxy_audit:` lines).
public enum AuditOutcome: String, Sendable, Hashable, CaseIterable {
    case elevatedLiveTV = "elevated_live_tv"
    case denyMissingToken = "deny_missing_token"
    case denyUnauthorizedToken = "deny_unauthorized_token"
    case denyAuthCooldown = "deny_auth_cooldown"
    case denyValidationUnavailable = "deny_validation_unavailable"
    case badActorBlocked = "bad_actor_blocked"
    case blockedBadActor = "blocked_bad_actor"
}
