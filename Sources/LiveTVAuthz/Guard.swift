import LiveTVAuthzCore
import Synchronization

/// The owner token, replaceable at run time (SIGHUP re-reads the token file).
public final class OwnerTokenHolder: Sendable {
    private let token: Mutex<PlexToken>

    public init(_ token: PlexToken) {
        self.token = Mutex(token)
    }

    public var current: PlexToken { token.withLock { $0 } }

    public func replace(with token: PlexToken) {
        self.token.withLock { $0 = token }
    }
}

/// Decides every request: classification, source identity, abuse state, token validation, audit.
///
/// The only path to an elevated decision goes through `TokenCheck.valid` or an exact match with the
/// owner token. A denial preserves the request (the user's own token goes upstream); only a blocked source
/// on a candidate is rejected (`decision.rejected`, HTTP 403).
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
        let ownerToken = owner.current
        // Not a candidate (or refused before any token question): preserved, no audit, never blocked.
        guard let surface = classification.surface else {
            return AuthzDecision.make(classification, tokenValid: false, ownerToken: ownerToken, outcome: nil)
        }
        let source = SourceIdentity.resolve(request)
        let now = clock.now()
        let blocked = await state.isBlocked(source: source.fingerprint, at: now)

        func finish(_ outcome: AuditOutcome, valid: Bool, reason: String, countFailure: Bool) async -> AuthzDecision {
            var decision = AuthzDecision.make(
                classification, tokenValid: valid, ownerToken: ownerToken, outcome: outcome, reason: reason)
            decision.rejected = outcome == .blockedBadActor
            let tokenFingerprint = classification.token.token?.fingerprint ?? Fingerprint.missing
            audit.record(
                AuditEvent(
                    outcome: outcome, method: request.method, target: classification.target, surface: surface,
                    rule: decision.rule, source: source, tokenFingerprint: tokenFingerprint, reason: reason))
            if countFailure,
                case .blocked(let failures, let until) = await state.recordFailure(source: source.fingerprint, at: now)
            {
                audit.record(
                    AuditEvent(
                        outcome: .badActorBlocked, method: request.method, target: classification.target,
                        surface: surface, rule: decision.rule, source: source, tokenFingerprint: tokenFingerprint,
                        reason:
                            "\(failures) failed Live TV elevation attempts within \(GoDuration.format(policy.window))",
                        block: (failures, policy.window, until - now)))
            }
            return decision
        }

        guard let token = classification.token.token else {
            if blocked {
                return await finish(
                    .blockedBadActor, valid: false, reason: "source is blocked; no token", countFailure: false)
            }
            return await finish(
                .denyMissingToken, valid: false, reason: classification.reason.description, countFailure: true)
        }
        if token.constantTimeEquals(ownerToken) {
            return await finish(.elevatedLiveTV, valid: true, reason: "the owner's own token", countFailure: false)
        }
        let tokenFingerprint = token.fingerprint
        if await state.isCoolingDown(source: source.fingerprint, token: tokenFingerprint, at: now) {
            if blocked {
                return await finish(
                    .blockedBadActor, valid: false, reason: "source is blocked; token already denied",
                    countFailure: false)
            }
            return await finish(
                .denyAuthCooldown, valid: false, reason: "token denied recently for this source; PMS not asked",
                countFailure: true)
        }
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
        switch validation.check {
        case .valid:
            return await finish(
                .elevatedLiveTV, valid: true, reason: classification.reason.description, countFailure: false)
        case .invalid:
            await state.recordDenial(source: source.fingerprint, token: tokenFingerprint, at: now)
            if blocked {
                return await finish(
                    .blockedBadActor, valid: false, reason: "source is blocked; \(validation.check)",
                    countFailure: false)
            }
            return await finish(.denyUnauthorizedToken, valid: false, reason: "\(validation.check)", countFailure: true)
        case .unavailable:
            return await finish(
                .denyValidationUnavailable, valid: false, reason: "\(validation.check)", countFailure: false)
        }
    }
}
