/// What the guard's policy decided about one classified request: the audit outcome, the proof for an
/// elevation, whether the service rejects it, and what it does to the abuse state.
public struct GuardJudgement: Sendable, Hashable {
    /// The audit outcome (`nil` for non-candidates: no audit line).
    public let outcome: AuditOutcome?
    /// The proof that allows an elevation; `nil` for every denial.
    public let proof: TokenProof?
    /// The service answers 403 (a blocked source on a candidate).
    public let rejected: Bool
    /// The failure counts toward the source's abuse threshold.
    public let countsAsFailure: Bool
    /// The source+token pair starts (or keeps) its cooldown: PMS is not asked about it again for a while.
    public let startsCooldown: Bool
    /// The audit line's reason when it is not the classifier's.
    public let reason: String?

    init(
        _ outcome: AuditOutcome?, proof: TokenProof? = nil, rejected: Bool = false, countsAsFailure: Bool = false,
        startsCooldown: Bool = false, reason: String? = nil
    ) {
        self.outcome = outcome
        self.proof = proof
        self.rejected = rejected
        self.countsAsFailure = countsAsFailure
        self.startsCooldown = startsCooldown
        self.reason = reason
    }

    /// Not a candidate: preserved, no audit, never counted, never blocked.
    public static let notCandidate = GuardJudgement(nil)
}

/// What the guard knows about a candidate's inbound token before PMS is asked.
public enum InboundTokenState: Sendable, Hashable {
    /// No usable token.
    case missing
    /// The owner's own token.
    case owner
    /// This source had this token denied recently (elevation-rules §8 cooldown).
    case coolingDown
    /// Any other token: PMS (or its cache) must be asked.
    case unproven
}

/// The next step of the guard for one request.
public enum GuardStep: Sendable, Hashable {
    /// Decided without PMS.
    case decided(GuardJudgement)
    /// Ask PMS (through the validation cache), then call `GuardPolicy.conclude`.
    case validate
}

/// Elevation-rules §7 and §8 as a pure function of what the guard knows: classification × blocked ×
/// token state × PMS answer. The runtime gathers the facts (state store, validator) and carries out the
/// judgement (audit line, failure count, cooldown); every decision is made here.
public enum GuardPolicy {
    /// The first step, before PMS: decided, or PMS must be asked.
    public static func evaluate(_ classification: Classification, blocked: Bool, token: InboundTokenState) -> GuardStep
    {
        guard classification.surface != nil else { return .decided(.notCandidate) }
        switch token {
        case .missing:
            if blocked {
                return .decided(GuardJudgement(.blockedBadActor, rejected: true, reason: "source is blocked; no token"))
            }
            return .decided(GuardJudgement(.denyMissingToken, countsAsFailure: true))
        case .owner:
            return .decided(GuardJudgement(.elevatedLiveTV, proof: .ownerToken, reason: "the owner's own token"))
        case .coolingDown:
            if blocked {
                return .decided(
                    GuardJudgement(.blockedBadActor, rejected: true, reason: "source is blocked; token already denied"))
            }
            return .decided(
                GuardJudgement(
                    .denyAuthCooldown, countsAsFailure: true,
                    reason: "token denied recently for this source; PMS not asked"))
        case .unproven:
            return .validate
        }
    }

    /// The second step, with PMS's answer about the inbound token.
    public static func conclude(_ classification: Classification, blocked: Bool, check: TokenCheck) -> GuardJudgement {
        guard classification.surface != nil else { return .notCandidate }
        switch check {
        case .valid:
            // A valid token passes even from a blocked source (§8).
            return GuardJudgement(.elevatedLiveTV, proof: .pmsValidated)
        case .invalid:
            if blocked {
                return GuardJudgement(
                    .blockedBadActor, rejected: true, startsCooldown: true, reason: "source is blocked; \(check)")
            }
            return GuardJudgement(
                .denyUnauthorizedToken, countsAsFailure: true, startsCooldown: true, reason: "\(check)")
        case .unavailable:
            // Unknown is not invalid: not cached, not counted, and not rejected (§7).
            return GuardJudgement(.denyValidationUnavailable, reason: "\(check)")
        }
    }
}
