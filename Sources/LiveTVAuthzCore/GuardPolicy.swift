/// What the guard's policy decided about one classified request: the audit outcome, the proof for an
/// elevation, whether the service rejects it, and what it does to the abuse and playback state.
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
    /// The rule reported when it is not the classifier's (`tracked-segment`, `tracked-timeline`, `no-token`).
    public let rule: ElevationRule?
    /// What happens to the tracked playback session the request starts or names.
    public let tracking: TrackingEffect
    /// Tokenless player media (§12.3): no audit line, not counted, only the summary's `deny_missing_media`.
    public let missingMedia: Bool

    init(
        _ outcome: AuditOutcome?, proof: TokenProof? = nil, rejected: Bool = false, countsAsFailure: Bool = false,
        startsCooldown: Bool = false, reason: String? = nil, rule: ElevationRule? = nil,
        tracking: TrackingEffect = .none, missingMedia: Bool = false
    ) {
        self.outcome = outcome
        self.proof = proof
        self.rejected = rejected
        self.countsAsFailure = countsAsFailure
        self.startsCooldown = startsCooldown
        self.reason = reason
        self.rule = rule
        self.tracking = tracking
        self.missingMedia = missingMedia
    }

    /// Not a candidate: preserved, no audit, never counted, never blocked.
    public static let notCandidate = GuardJudgement(nil)

    /// Whether an audit line is written (candidates, but not tokenless player media).
    public var writesAuditLine: Bool { outcome != nil && !missingMedia }
}

/// What a judgement does to playback tracking.
public enum TrackingEffect: Sendable, Hashable {
    case none
    /// An elevated stream start: track a session for this source and user token.
    case start
    /// A request of a tracked session: mark it seen, learn the keys it names.
    case touch
    /// The session ends (stop, teardown, its user token no longer valid).
    case end
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

/// The tracked playback session a request names, as the guard found it (§12.2).
public enum TrackedMatch: Sendable, Hashable {
    /// No playback facts, or no live session is named.
    case none
    /// A session is named: whether the request comes from its source, how its token relates, and whether
    /// the session's user token is proven valid right now (a PMS answer still inside the cache's TTL).
    case session(sameSource: Bool, token: TrackedToken, proven: Bool)
}

/// How a request's token relates to a tracked session's user token.
public enum TrackedToken: Sendable, Hashable {
    case trackedUser
    case owner
    case absent
    /// Another token (another user's, or one PMS never saw).
    case other
}

/// The next step of the guard for one request.
public enum GuardStep: Sendable, Hashable {
    /// Decided without PMS.
    case decided(GuardJudgement)
    /// Ask PMS (through the validation cache) about the inbound token, then call `GuardPolicy.conclude`.
    case validate
}

/// Elevation-rules §7, §8 and §12 as a pure function of what the guard knows: classification × playback
/// facts × tracked session × blocked × token state × PMS answer. The runtime gathers the facts (state
/// store, validator) and carries out the judgement (audit line, failure count, cooldown, tracking); every
/// decision is made here.
public enum GuardPolicy {
    /// The first step, before PMS: decided, or PMS must be asked.
    public static func evaluate(
        _ classification: Classification, playback: PlaybackFacts? = nil, tracked: TrackedMatch = .none,
        blocked: Bool, token: InboundTokenState
    ) -> GuardStep {
        if let playback, let step = evaluateTracked(classification, playback, tracked, blocked: blocked) {
            return step
        }
        // §12.3: a player's tokenless media is not abuse, tracked or not.
        if let playback, playback.isMedia, token == .missing {
            if blocked, classification.surface != nil {
                return .decided(GuardJudgement(.blockedBadActor, rejected: true, reason: "source is blocked; no token"))
            }
            return .decided(missingMedia)
        }
        guard classification.surface != nil else { return .decided(.notCandidate) }
        switch token {
        case .missing:
            if blocked {
                return .decided(GuardJudgement(.blockedBadActor, rejected: true, reason: "source is blocked; no token"))
            }
            return .decided(GuardJudgement(.denyMissingToken, countsAsFailure: true))
        case .owner:
            return .decided(
                GuardJudgement(
                    .elevatedLiveTV, proof: .ownerToken, reason: "the owner's own token",
                    tracking: playback?.kind == .teardown ? .end : .none))
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
    public static func conclude(
        _ classification: Classification, playback: PlaybackFacts? = nil, tracked: TrackedMatch = .none,
        blocked: Bool, check: TokenCheck
    ) -> GuardJudgement {
        if let playback, case .session(true, .trackedUser, _) = tracked,
            playback.kind == .liveMedia
                || playback.kind == .transcodeMedia || playback.kind == .keepAlive
        {
            let rule: ElevationRule = playback.isMedia ? .trackedSegment : .trackedTimeline
            switch check {
            case .valid, .assumedValid:
                return GuardJudgement(
                    .elevatedLiveTV, proof: check == .assumedValid ? .assumedForExplain : .pmsValidated,
                    reason: "request of a tracked playback session", rule: rule,
                    tracking: playback.stops ? .end : .touch)
            case .invalid:
                // The share was revoked: tracking ends.
                return GuardJudgement(
                    .denyUnauthorizedToken, countsAsFailure: true, startsCooldown: true, reason: "\(check)", rule: rule,
                    tracking: .end)
            case .unavailable:
                return GuardJudgement(.denyValidationUnavailable, reason: "\(check)", rule: rule)
            }
        }
        guard classification.surface != nil else { return .notCandidate }
        switch check {
        case .valid, .assumedValid:
            // A valid token passes even from a blocked source (§8). An elevated stream start of a user
            // (not the owner's own token) begins tracking; a teardown ends it.
            let tracking: TrackingEffect =
                playback?.kind == .streamStart ? .start : playback?.kind == .teardown ? .end : .none
            return GuardJudgement(
                .elevatedLiveTV, proof: check == .assumedValid ? .assumedForExplain : .pmsValidated,
                tracking: tracking)
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

    /// §12.2 for a request that names a tracked session; `nil` when the ordinary rules apply.
    static func evaluateTracked(
        _ classification: Classification, _ playback: PlaybackFacts, _ tracked: TrackedMatch, blocked: Bool
    ) -> GuardStep? {
        guard playback.kind == .liveMedia || playback.kind == .transcodeMedia || playback.kind == .keepAlive,
            case .session(let sameSource, let token, let proven) = tracked
        else { return nil }
        let rule: ElevationRule = playback.isMedia ? .trackedSegment : .trackedTimeline
        if !sameSource || token == .other {
            if blocked {
                return .decided(
                    GuardJudgement(
                        .blockedBadActor, rejected: true, reason: "source is blocked; tracked session mismatch",
                        rule: rule))
            }
            return .decided(
                GuardJudgement(
                    .denySessionMismatch, countsAsFailure: true,
                    reason: sameSource
                        ? "names a tracked playback session of another token"
                        : "names a tracked playback session of another source",
                    rule: rule))
        }
        switch token {
        case .owner:
            return .decided(
                GuardJudgement(
                    .elevatedLiveTV, proof: .ownerToken, reason: "the owner's own token", rule: rule,
                    tracking: playback.stops ? .end : .touch))
        case .trackedUser:
            return .validate
        case .absent:
            // Media may come without a token (players cannot add one to segment URLs): elevated while the
            // session's user token is proven (the last PMS answer for it is inside the cache's TTL, so a
            // revoked share stops within that TTL). Keep-alives must carry the user's token; without one
            // they are not elevated, nor counted.
            guard playback.isMedia, proven else { return .decided(missingMedia) }
            return .decided(
                GuardJudgement(
                    .elevatedLiveTV, proof: .trackedSession,
                    reason: "tokenless media of a tracked playback session, its user token proven", rule: rule,
                    tracking: playback.stops ? .end : .touch))
        case .other:
            return nil  // handled above
        }
    }

    static let missingMedia = GuardJudgement(
        .denyMissingToken, reason: "player request without a token, of no tracked playback session", rule: .noToken,
        missingMedia: true)
}
