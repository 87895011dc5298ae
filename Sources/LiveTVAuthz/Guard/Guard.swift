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
///
/// `begin` decides without suspending whenever it can (a non-candidate, a cached token, the owner's token,
/// every denial that needs no PMS answer); only a token PMS must still be asked about comes back as
/// `pending`, for `complete` to await. `decide` does both.
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

    /// A decision, or the facts gathered so far when PMS must still be asked about the inbound token.
    public enum Progress: Sendable {
        case decided(AuthzDecision)
        case pending(Pending)
    }

    /// A candidate waiting for PMS's answer about its token.
    public struct Pending: Sendable {
        let request: AuthzRequest
        let classification: Classification
        let source: SourceIdentity
        let now: Timestamp
        let blocked: Bool
        let owner: PlexToken
        let token: PlexToken
    }

    /// The whole decision (waits for PMS when it must).
    public func decide(_ request: AuthzRequest) async -> AuthzDecision {
        switch begin(request) {
        case .decided(let decision): return decision
        case .pending(let pending): return await complete(pending)
        }
    }

    /// Decides without suspending when nothing needs waiting for.
    public func begin(_ request: AuthzRequest) -> Progress {
        let classification = classifier.classify(request)
        // Not a candidate (or refused before any token question): preserved, no audit, never blocked.
        guard classification.surface != nil else { return .decided(record(.preserving(classification))) }
        let ownerToken = owner.current
        let source = SourceIdentity.resolve(request)
        let now = clock.now()
        let blocked = state.isBlocked(source: source.fingerprint, at: now)
        let token = classification.token.token
        let tokenState: InboundTokenState
        if let token {
            if token.constantTimeEquals(ownerToken) {
                tokenState = .owner
            } else if state.isCoolingDown(source: source.fingerprint, token: token.fingerprint, at: now) {
                tokenState = .coolingDown
            } else {
                tokenState = .unproven
            }
        } else {
            tokenState = .missing
        }
        switch GuardPolicy.evaluate(classification, blocked: blocked, token: tokenState) {
        case .decided(let judgement):
            return .decided(
                carryOut(judgement, classification, request: request, source: source, now: now, owner: ownerToken))
        case .validate:
            let pending = Pending(
                request: request, classification: classification, source: source, now: now, blocked: blocked,
                owner: ownerToken, token: token!)
            if let cached = validator.cachedValidation(pending.token) { return .decided(conclude(pending, cached)) }
            return .pending(pending)
        }
    }

    /// Asks PMS (through the validator's single-flight) and finishes the decision.
    public func complete(_ pending: Pending) async -> AuthzDecision {
        let started = ContinuousClock.now
        let validation = await validator.validate(pending.token)
        if !validation.cacheHit {
            metrics.validationDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        }
        return conclude(pending, validation)
    }

    private func conclude(_ pending: Pending, _ validation: TokenValidation) -> AuthzDecision {
        audit.recordCache(hit: validation.cacheHit)
        if validation.cacheHit { metrics.cacheHits.increment() } else { metrics.cacheMisses.increment() }
        if case .unavailable(let why) = validation.check { metrics.recordPMSError(why.kind) }
        let judgement = GuardPolicy.conclude(pending.classification, blocked: pending.blocked, check: validation.check)
        return carryOut(
            judgement, pending.classification, request: pending.request, source: pending.source, now: pending.now,
            owner: pending.owner)
    }

    /// The judgement's effects: the cooldown, the audit line, the failure count (and the block it may cause).
    private func carryOut(
        _ judgement: GuardJudgement, _ classification: Classification, request: AuthzRequest, source: SourceIdentity,
        now: Timestamp, owner: PlexToken
    ) -> AuthzDecision {
        let tokenFingerprint = classification.token.token?.fingerprint ?? Fingerprint.missing
        if judgement.startsCooldown {
            state.recordDenial(source: source.fingerprint, token: tokenFingerprint, at: now)
        }
        let decision = AuthzDecision(classification, judgement: judgement, ownerToken: owner)
        guard let outcome = judgement.outcome else { return record(decision) }
        audit.record(
            AuditEvent(
                outcome: outcome, method: request.method, target: classification.target,
                surface: classification.surface, rule: decision.rule, source: source,
                tokenFingerprint: tokenFingerprint, reason: decision.reason))
        if judgement.countsAsFailure {
            let audit = self.audit
            let window = policy.window
            state.recordFailure(source: source.fingerprint, at: now) { failures, until in
                audit.record(
                    AuditEvent(
                        outcome: .badActorBlocked, method: request.method, target: classification.target,
                        surface: classification.surface, rule: decision.rule, source: source,
                        tokenFingerprint: tokenFingerprint,
                        reason: "\(failures) failed Live TV elevation attempts within \(GoDuration.format(window))",
                        block: (failures, window, until - now)))
            }
        }
        return record(decision)
    }

    private func record(_ decision: AuthzDecision) -> AuthzDecision {
        metrics.recordDecision(decision)
        return decision
    }
}
