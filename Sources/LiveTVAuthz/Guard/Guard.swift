import LiveTVAuthzCore
import NIOConcurrencyHelpers

/// The owner token, replaceable at run time (SIGHUP re-reads the token file).
public final class OwnerTokenHolder: Sendable {
    private let token: NIOLockedValueBox<PlexToken>

    public init(_ token: PlexToken) {
        self.token = NIOLockedValueBox(token)
    }

    public var current: PlexToken { token.withLockedValue { $0 } }

    /// Replaces the token; returns whether it changed.
    @discardableResult
    public func replace(with token: PlexToken) -> Bool {
        self.token.withLockedValue { current in
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
    private let classifierBox: NIOLockedValueBox<LiveTVClassifier>
    /// The classifier in use (its machine identifier may be learnt from PMS after start).
    public var classifier: LiveTVClassifier { classifierBox.withLockedValue { $0 } }
    public let owner: OwnerTokenHolder
    /// The abuse limits (for the `bad_actor_blocked` line; the store enforces them).
    public let policy: AbusePolicy
    private let validator: any TokenValidating
    private let state: any GuardStateStore
    private let audit: AuditLog
    private let clock: any WallClock
    private let metrics: ServiceMetrics
    private let history: (any PlaybackHistoryObserver)?
    /// Shadow mode: decide, count and audit as usual, answer with the user's own token, never block.
    public let shadow: Bool

    public init(
        classifier: LiveTVClassifier, owner: OwnerTokenHolder, policy: AbusePolicy, validator: any TokenValidating,
        state: any GuardStateStore, audit: AuditLog, clock: any WallClock, metrics: ServiceMetrics = .none,
        history: (any PlaybackHistoryObserver)? = nil, shadow: Bool = false
    ) {
        self.shadow = shadow
        self.metrics = metrics
        self.history = history
        self.classifierBox = NIOLockedValueBox(classifier)
        self.owner = owner
        self.policy = policy
        self.validator = validator
        self.state = state
        self.audit = audit
        self.clock = clock
    }

    /// Pins `server://` references to this PMS's machine identifier once it is known.
    public func setMachineIdentifier(_ identifier: String) {
        classifierBox.withLockedValue { $0.references.machineIdentifier = Array(identifier.lowercased().utf8) }
    }

    /// A decision, or the facts gathered so far when PMS must still be asked about the inbound token.
    public enum Progress: Sendable {
        case decided(AuthzDecision)
        case pending(Pending)
    }

    /// A candidate waiting for PMS's answer about its token.
    public struct Pending: Sendable {
        let facts: Facts
        let token: PlexToken
    }

    /// What the guard gathered about one candidate (or playback request).
    struct Facts: Sendable {
        let request: AuthzRequest
        let classification: Classification
        let playback: PlaybackFacts?
        let session: TrackedSession?
        let tracked: TrackedMatch
        let source: SourceIdentity
        let now: Timestamp
        let blocked: Bool
        let owner: PlexToken
        /// The inbound token's fingerprint (or `missing`), computed once: the cooldown, tracking, the audit
        /// line and the status page all name the token by it.
        let tokenFingerprint: String
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
        let playback = PlaybackFacts.extract(request, classification)
        // Not a candidate nor a playback request (or refused before any token question): preserved, no
        // audit, never blocked.
        guard classification.surface != nil || playback != nil else {
            return .decided(record(.preserving(classification)))
        }
        let ownerToken = owner.current
        let source = SourceIdentity.resolve(request)
        let now = clock.now()
        let blocked = state.isBlocked(source: source.fingerprint, at: now)
        let token = classification.token.token
        let tokenFingerprint = token?.fingerprint ?? Fingerprint.missing
        // §12: the tracked session a media request, keep-alive or teardown names.
        var session: TrackedSession? = nil
        var tracked = TrackedMatch.none
        if let playback, playback.kind != .streamStart,
            let named = state.trackedSession(named: playback.probes, at: now)
        {
            session = named
            let relation: TrackedToken
            if let token {
                relation =
                    token.constantTimeEquals(ownerToken)
                    ? .owner : tokenFingerprint == named.userToken ? .trackedUser : .other
            } else {
                relation = .absent
            }
            tracked = .session(
                sameSource: named.source == source.fingerprint, token: relation, proven: named.provenUntil > now)
        }
        let facts = Facts(
            request: request, classification: classification, playback: playback, session: session, tracked: tracked,
            source: source, now: now, blocked: blocked, owner: ownerToken, tokenFingerprint: tokenFingerprint)
        let tokenState: InboundTokenState
        if let token {
            if token.constantTimeEquals(ownerToken) {
                tokenState = .owner
            } else if state.isCoolingDown(source: source.fingerprint, token: tokenFingerprint, at: now) {
                tokenState = .coolingDown
            } else {
                tokenState = .unproven
            }
        } else {
            tokenState = .missing
        }
        switch GuardPolicy.evaluate(
            classification, playback: playback, tracked: tracked, blocked: blocked, token: tokenState)
        {
        case .decided(let judgement):
            return .decided(carryOut(judgement, facts, validation: nil))
        case .validate:
            let pending = Pending(facts: facts, token: token!)
            if let cached = validator.cachedValidation(pending.token) { return .decided(conclude(pending, cached)) }
            return .pending(pending)
        }
    }

    /// Asks PMS (through the validator's single-flight) and finishes the decision.
    public func complete(_ pending: Pending) async -> AuthzDecision {
        let started = ContinuousClock.now
        let validation = await validator.validate(pending.token)
        if !validation.cacheHit { metrics.recordValidation(ContinuousClock.now - started) }
        return conclude(pending, validation)
    }

    private func conclude(_ pending: Pending, _ validation: TokenValidation) -> AuthzDecision {
        audit.recordCache(hit: validation.cacheHit)
        metrics.recordCache(hit: validation.cacheHit)
        if case .unavailable(let why) = validation.check { metrics.recordPMSError(why.kind) }
        let facts = pending.facts
        let judgement = GuardPolicy.conclude(
            facts.classification, playback: facts.playback, tracked: facts.tracked, blocked: facts.blocked,
            check: validation.check)
        return carryOut(judgement, facts, validation: validation)
    }

    /// The judgement's effects: the cooldown, tracking, the audit line, the failure count (and the block it
    /// may cause), the owner-history work.
    private func carryOut(_ judgement: GuardJudgement, _ facts: Facts, validation: TokenValidation?) -> AuthzDecision {
        let classification = facts.classification
        let request = facts.request
        let source = facts.source
        let now = facts.now
        let tokenFingerprint = facts.tokenFingerprint
        if judgement.startsCooldown {
            state.recordDenial(source: source.fingerprint, token: tokenFingerprint, at: now)
        }
        let decision = AuthzDecision(classification, judgement: judgement, ownerToken: facts.owner)
        track(judgement.tracking, facts, tokenFingerprint: tokenFingerprint, validation: validation)
        // In shadow mode the owner token never went upstream: nothing to neutralise.
        if decision.elevate, !shadow, decision.rule == .trackedTimeline, let playback = facts.playback,
            let token = classification.token.token, let history
        {
            history.trackedKeepAlive(target: classification.target, userToken: token, isScrobble: playback.isScrobble)
        }
        if judgement.missingMedia {
            audit.recordMissingMedia()
            return record(decision, tokenFingerprint: tokenFingerprint)
        }
        guard let outcome = judgement.outcome else { return record(decision, tokenFingerprint: tokenFingerprint) }
        // A tracked rule is the request's surface for the audit fields (live_tv, stream).
        let surface = ElevationRule.guardOnly.contains(decision.rule) ? decision.rule : classification.surface
        var event = AuditEvent(
            outcome: outcome, method: request.method, target: classification.target,
            surface: surface, rule: decision.rule, source: source,
            tokenFingerprint: tokenFingerprint, reason: decision.reason)
        event.shadow = shadow
        audit.record(event)
        if judgement.countsAsFailure {
            let audit = self.audit
            let window = policy.window
            let shadow = self.shadow
            state.recordFailure(source: source.fingerprint, at: now) { failures, until in
                var blocked = AuditEvent(
                    outcome: .badActorBlocked, method: request.method, target: classification.target,
                    surface: surface, rule: decision.rule, source: source,
                    tokenFingerprint: tokenFingerprint,
                    reason: "\(failures) failed Live TV elevation attempts within \(GoDuration.format(window))",
                    block: (failures, window, until - now))
                blocked.shadow = shadow
                audit.record(blocked)
            }
        }
        return record(decision, tokenFingerprint: tokenFingerprint)
    }

    /// Starts, touches or ends the tracked playback session (§12.1).
    private func track(
        _ effect: TrackingEffect, _ facts: Facts, tokenFingerprint: String, validation: TokenValidation?
    ) {
        switch effect {
        case .none:
            return
        case .start:
            guard let playback = facts.playback, !playback.ownKeys.isEmpty else { return }
            state.startTracking(
                source: facts.source.fingerprint, userToken: tokenFingerprint, keys: playback.ownKeys,
                provenUntil: validation?.validUntil ?? facts.now, at: facts.now)
        case .touch:
            guard let session = facts.session else { return }
            state.touchTracking(
                session.id, learning: facts.playback?.ownKeys ?? [], provenUntil: validation?.validUntil, at: facts.now)
        case .end:
            if let session = facts.session { state.endTracking(session.id) }
        }
    }

    /// Counts the decision as made; in shadow mode answers with the user's own token instead.
    private func record(_ decision: AuthzDecision, tokenFingerprint: String? = nil) -> AuthzDecision {
        metrics.recordDecision(decision, tokenFingerprint: tokenFingerprint)
        return shadow && (decision.elevate || decision.rejected) ? .shadowing(decision) : decision
    }
}

/// Told about every elevated tracked keep-alive (timeline, progress, scrobble), for owner-history
/// neutralisation (§12.4). Must not block: the decision is waiting.
public protocol PlaybackHistoryObserver: Sendable {
    func trackedKeepAlive(target: RequestTarget, userToken: PlexToken, isScrobble: Bool)
}
