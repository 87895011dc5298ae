import LiveTVAuthzCore
import Synchronization

/// The owner token, replaceable at run time (SIGHUP re-reads the token file).
public final class OwnerTokenHolder: Sendable {
    private let token: Mutex<PlexToken>

    public init(_ token: PlexToken) {
        self.token = Mutex(token)
    }

    public var current: PlexToken { token.withLock { $0 } }

    /// Replaces the token; returns whether it changed.
    @discardableResult
    public func replace(with token: PlexToken) -> Bool {
        self.token.withLock { current in
            defer { current = token }
            return !current.constantTimeEquals(token)
        }
    }
}

/// Decides every request: classification, source identity, abuse state, token validation, audit.
///
/// Every decision is made by the pure `GuardPolicy` (core); the guard only gathers its facts (state
/// store, validator) and carries out its judgement (audit lines, failure counts, cooldowns). A denial
/// preserves the request (the user's own token goes upstream); only a blocked source on a candidate is
/// rejected (`decision.rejected`, HTTP 403).
public final class Guard: Sendable {
    private let classifierBox: Mutex<LiveTVClassifier>
    /// The classifier in use (its machine identifier may be learnt from PMS after start).
    public var classifier: LiveTVClassifier { classifierBox.withLock { $0 } }
    public let owner: OwnerTokenHolder
    /// The abuse limits (for the `bad_actor_blocked` line; the store enforces them).
    public let policy: AbusePolicy
    private let validator: any TokenValidating
    private let state: any GuardStateStore
    private let audit: AuditLog
    private let clock: any WallClock
    private let metrics: ServiceMetrics

    public init(
        classifier: LiveTVClassifier, owner: OwnerTokenHolder, policy: AbusePolicy, validator: any TokenValidating,
        state: any GuardStateStore, audit: AuditLog, clock: any WallClock, metrics: ServiceMetrics = .none
    ) {
        self.metrics = metrics
        self.classifierBox = Mutex(classifier)
        self.owner = owner
        self.policy = policy
        self.validator = validator
        self.state = state
        self.audit = audit
        self.clock = clock
    }

    /// Pins `server://` references to this PMS's machine identifier once it is known.
    public func setMachineIdentifier(_ identifier: String) {
        classifierBox.withLock { $0.references.machineIdentifier = Array(identifier.lowercased().utf8) }
    }

    public func decide(_ request: AuthzRequest) async -> AuthzDecision {
        let decision = await judge(request)
        metrics.recordDecision(decision)
        return decision
    }

    private func judge(_ request: AuthzRequest) async -> AuthzDecision {
        let classification = classifier.classify(request)
        // Not a candidate (or refused before any token question): preserved, no audit, never blocked.
        guard classification.surface != nil else { return .preserving(classification) }
        let ownerToken = owner.current
        let source = SourceIdentity.resolve(request)
        let now = clock.now()
        let blocked = await state.isBlocked(source: source.fingerprint, at: now)
        let token = classification.token.token
        let tokenState: InboundTokenState
        if let token {
            if token.constantTimeEquals(ownerToken) {
                tokenState = .owner
            } else if await state.isCoolingDown(source: source.fingerprint, token: token.fingerprint, at: now) {
                tokenState = .coolingDown
            } else {
                tokenState = .unproven
            }
        } else {
            tokenState = .missing
        }

        let judgement: GuardJudgement
        switch GuardPolicy.evaluate(classification, blocked: blocked, token: tokenState) {
        case .decided(let decided):
            judgement = decided
        case .validate:
            judgement = GuardPolicy.conclude(classification, blocked: blocked, check: await validate(token!))
        }
        return await carryOut(judgement, classification, request: request, source: source, now: now, owner: ownerToken)
    }

    /// Asks the validator (cache, single-flight, PMS) and records what it cost.
    private func validate(_ token: PlexToken) async -> TokenCheck {
        let started = ContinuousClock.now
        let validation = await validator.validate(token)
        audit.recordCache(hit: validation.cacheHit)
        if validation.cacheHit {
            metrics.cacheHits.increment()
        } else {
            metrics.cacheMisses.increment()
            metrics.validationDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        }
        if case .unavailable(let why) = validation.check { metrics.recordPMSError(why.kind) }
        return validation.check
    }

    /// The judgement's effects: the cooldown, the audit line, the failure count (and the block it may cause).
    private func carryOut(
        _ judgement: GuardJudgement, _ classification: Classification, request: AuthzRequest, source: SourceIdentity,
        now: Timestamp, owner: PlexToken
    ) async -> AuthzDecision {
        let tokenFingerprint = classification.token.token?.fingerprint ?? Fingerprint.missing
        if judgement.startsCooldown {
            await state.recordDenial(source: source.fingerprint, token: tokenFingerprint, at: now)
        }
        let decision = AuthzDecision(classification, judgement: judgement, ownerToken: owner)
        guard let outcome = judgement.outcome else { return decision }
        audit.record(
            AuditEvent(
                outcome: outcome, method: request.method, target: classification.target,
                surface: classification.surface, rule: decision.rule, source: source,
                tokenFingerprint: tokenFingerprint, reason: decision.reason))
        if judgement.countsAsFailure,
            case .blocked(let failures, let until) = await state.recordFailure(source: source.fingerprint, at: now)
        {
            audit.record(
                AuditEvent(
                    outcome: .badActorBlocked, method: request.method, target: classification.target,
                    surface: classification.surface, rule: decision.rule, source: source,
                    tokenFingerprint: tokenFingerprint,
                    reason: "\(failures) failed Live TV elevation attempts within \(GoDuration.format(policy.window))",
                    block: (failures, policy.window, until - now)))
        }
        return decision
    }
}
