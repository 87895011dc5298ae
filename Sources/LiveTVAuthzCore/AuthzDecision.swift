/// Elevation-rules §6: the target the frontend must forward.
public enum UpstreamRewrite {
    /// The target of an elevated request: every `&`-separated query component named exactly
    /// `X-Plex-Token` (whatever its value, empty and whitespace-only ones included) removed, the other
    /// components kept in order, byte for byte, joined by `&`; a query left empty loses its `?`. The
    /// owner token travels in the `X-Plex-Token` header only, so it never lands in a log of URLs.
    public static func removingQueryTokens(from target: RequestTarget) -> [UInt8] {
        guard target.hasQuery else { return target.bytes }
        let bytes = target.bytes
        var output: [UInt8] = Array(bytes[0..<target.pathEnd])
        output.reserveCapacity(bytes.count)
        var kept = 0
        var start = target.pathEnd + 1
        while start <= bytes.count {
            let end = bytes[start...].firstIndex(of: 0x26) ?? bytes.count
            let component = bytes[start..<end]
            let name = component.prefix { $0 != 0x3D }
            if !name.elementsEqual(TokenLocation.exactName) {
                output.append(kept == 0 ? 0x3F : 0x26)
                output.append(contentsOf: component)
                kept += 1
            }
            start = end + 1
        }
        return output
    }
}

/// What proves that an inbound token may borrow the owner token. An elevation cannot be made without one.
public enum TokenProof: Sendable, Hashable {
    /// PMS answered 2xx for this token on `/library/sections` (now, or within the positive cache's TTL).
    case pmsValidated
    /// The inbound token is the owner's own (compared in constant time): nothing is borrowed.
    case ownerToken
    /// A tokenless media request of a tracked playback session, from its source: the session's user token
    /// was proven valid against PMS (now, or within the cache's TTL) when this request was decided.
    case trackedSession
    /// `explain` without `--pms-url`: the token is *assumed* valid to show what the rules would do. The
    /// service never produces this proof.
    case assumedForExplain
}

/// The final answer about one request. Immutable: only the core's factories make one, and an elevation
/// needs a `TokenProof`, so no later layer can turn a denial into an elevation.
public struct AuthzDecision: Sendable {
    /// Whether the frontend sends the owner token upstream.
    public let elevate: Bool
    /// The rule that decided (see `ElevationRule`).
    public let rule: ElevationRule
    /// The audit outcome, for elevation candidates only (`nil` means: no audit line).
    public let outcome: AuditOutcome?
    /// The service rejects the request (HTTP 403): a blocked source on a candidate.
    public let rejected: Bool
    /// What proved the token, for an elevation; `nil` otherwise.
    public let proof: TokenProof?
    /// The request-target to forward, as it travels in a header (ASCII; unsafe bytes percent-escaped):
    /// the original, with its `X-Plex-Token` query components removed when elevated.
    public let upstreamTarget: String
    /// The token to send upstream in the `X-Plex-Token` header: the owner's when elevated, else the
    /// inbound token, else none (the header is removed).
    public let upstreamToken: PlexToken?
    /// The classification the decision rests on.
    public let classification: Classification
    /// A reason set by the guard (validation outcome), replacing the classifier's.
    private let reasonOverride: String?

    /// Why, in words (built on demand: the hot path never formats text).
    public var reason: String { reasonOverride ?? classification.reason.description }

    /// The query string the frontend must install (`?` + query, or just `?`), for Caddy 2.6.2's rewrite.
    public var upstreamQuery: String {
        guard let mark = upstreamTarget.utf8.firstIndex(of: 0x3F) else { return "?" }
        return String(upstreamTarget[mark...])
    }

    private init(
        classification: Classification, proof: TokenProof?, ownerToken: PlexToken?, outcome: AuditOutcome?,
        rejected: Bool, reason: String?, rule: ElevationRule? = nil
    ) {
        // A rejection never elevates; nothing elevates without a proof; a refused request (unsafe path,
        // smuggled carrier, unseen body) never does; and only a tracked rule elevates what is not a
        // candidate with a token.
        let tracked = rule.map(ElevationRule.guardOnly.contains) ?? false
        var eligible = classification.mayElevate || tracked
        if case .refused = classification.verdict { eligible = false }
        let owner = rejected || !eligible ? nil : proof.flatMap { _ in ownerToken }
        let elevate = owner != nil
        self.elevate = elevate
        self.rule = rule ?? classification.rule
        self.outcome = outcome
        self.rejected = rejected
        self.proof = elevate ? proof : nil
        self.classification = classification
        self.reasonOverride = reason
        if let owner {
            upstreamTarget = PercentEscaping.headerSafe(
                UpstreamRewrite.removingQueryTokens(from: classification.target))
            upstreamToken = owner
        } else {
            upstreamTarget = classification.target.wire
            upstreamToken = classification.token.token
        }
    }

    /// The decision the guard's policy reached for a classified request.
    public init(_ classification: Classification, judgement: GuardJudgement, ownerToken: PlexToken) {
        self.init(
            classification: classification, proof: judgement.proof, ownerToken: ownerToken,
            outcome: judgement.outcome, rejected: judgement.rejected, reason: judgement.reason, rule: judgement.rule)
    }

    /// The inbound token preserved: no elevation, no rejection, no audit.
    public static func preserving(_ classification: Classification) -> AuthzDecision {
        AuthzDecision(
            classification: classification, proof: nil, ownerToken: nil, outcome: nil,
            rejected: false, reason: nil)
    }

    /// Shadow mode's answer: the same rule, outcome and reason, but the inbound token preserved and never a
    /// rejection (what the guard decided is only audited and counted).
    public static func shadowing(_ decision: AuthzDecision) -> AuthzDecision {
        AuthzDecision(
            classification: decision.classification, proof: nil, ownerToken: nil, outcome: decision.outcome,
            rejected: false, reason: decision.reasonOverride, rule: decision.rule)
    }

    /// What the rules would decide if the inbound token were valid (`explain` without a PMS).
    public static func assumingValidToken(_ classification: Classification, ownerToken: PlexToken) -> AuthzDecision {
        AuthzDecision(
            classification: classification, proof: .assumedForExplain, ownerToken: ownerToken, outcome: nil,
            rejected: false, reason: nil)
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
    /// A request naming a tracked playback session from another source or with another token (§12.2).
    case denySessionMismatch = "deny_session_mismatch"
}
