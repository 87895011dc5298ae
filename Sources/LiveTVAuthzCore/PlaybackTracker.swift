/// A live playback session the service elevated the start of (elevation-rules §12.1). Keyed by
/// fingerprints only: the source, the user's token, the session keys.
public struct TrackedSession: Sendable, Hashable {
    /// Stable id (a fingerprint of its first key, source, user and start).
    public var id: String
    /// Source fingerprint: only requests from this source are tracked-elevated.
    public var source: String
    /// The user's token fingerprint.
    public var userToken: String
    public var keys: Set<PlaybackKey>
    public var started: Timestamp
    public var lastSeen: Timestamp
    /// Until when the user token is proven valid: the expiry of the last PMS answer for it (the validation
    /// cache's TTL). Tokenless media is elevated only before this instant; a tokened request of the
    /// session, validated again, moves it on. No raw token is kept anywhere.
    public var provenUntil: Timestamp

    public init(
        id: String, source: String, userToken: String, keys: Set<PlaybackKey>, started: Timestamp, lastSeen: Timestamp,
        provenUntil: Timestamp
    ) {
        self.id = id
        self.source = source
        self.userToken = userToken
        self.keys = keys
        self.started = started
        self.lastSeen = lastSeen
        self.provenUntil = provenUntil
    }
}

/// Limits of playback tracking.
public struct PlaybackPolicy: Sendable, Hashable {
    /// Most sessions tracked at once (the least recently seen goes first).
    public var maximumSessions: Int
    /// A session unseen this long is forgotten.
    public var idleExpiry: Duration

    public init(maximumSessions: Int = 1_000, idleExpiry: Duration = .seconds(6 * 3600)) {
        self.maximumSessions = maximumSessions
        self.idleExpiry = idleExpiry
    }
}

/// The tracked playback sessions as a value: no clock, no locks, no I/O (like `AbuseBlocker`).
public struct PlaybackTracker: Sendable {
    public let policy: PlaybackPolicy
    public private(set) var sessions: [String: TrackedSession] = [:]
    private var index: [PlaybackKey: String] = [:]

    public init(policy: PlaybackPolicy) {
        self.policy = policy
    }

    /// Restores persisted sessions, dropping expired ones.
    public init(policy: PlaybackPolicy, restoring restored: [TrackedSession], now: Timestamp) {
        self.policy = policy
        for session in restored where now - session.lastSeen < policy.idleExpiry {
            insert(session)
        }
    }

    /// The live session one of `probes` names, if any.
    public func session(named probes: Set<PlaybackKey>, at now: Timestamp) -> TrackedSession? {
        for probe in probes.sorted() {
            if let id = index[probe], let session = sessions[id], now - session.lastSeen < policy.idleExpiry {
                return session
            }
        }
        return nil
    }

    /// Starts (or refreshes) tracking for an elevated stream start. A stream start whose keys name a
    /// session of the same source and user extends that session; one that names another's session
    /// starts its own (the keys move to the newer session).
    @discardableResult
    public mutating func start(
        source: String, userToken: String, keys: Set<PlaybackKey>, provenUntil: Timestamp, at now: Timestamp
    ) -> String? {
        guard let first = keys.sorted().first else { return nil }
        if let existing = session(named: keys, at: now), existing.source == source, existing.userToken == userToken {
            touch(existing.id, learning: keys, provenUntil: provenUntil, at: now)
            return existing.id
        }
        if sessions.count >= policy.maximumSessions { prune(now: now) }
        if sessions.count >= policy.maximumSessions,
            let oldest = sessions.values.min(by: { $0.lastSeen < $1.lastSeen })
        {
            remove(oldest.id)
        }
        // Unique per start: another user's session for the same keys must not share its id.
        let id = Fingerprint.of("\(first.fingerprint)|\(source)|\(userToken)|\(now.unixNanoseconds)")
        let session = TrackedSession(
            id: id, source: source, userToken: userToken, keys: keys, started: now, lastSeen: now,
            provenUntil: provenUntil)
        remove(session.id)
        insert(session)
        return session.id
    }

    /// Marks a session seen and adds the keys a request of it named (a tune's session uuid is learnt from
    /// the first later request that names it together with a tracked identifier).
    public mutating func touch(
        _ id: String, learning keys: Set<PlaybackKey> = [], provenUntil: Timestamp? = nil, at now: Timestamp
    ) {
        guard var session = sessions[id] else { return }
        session.lastSeen = max(session.lastSeen, now)
        if let provenUntil { session.provenUntil = max(session.provenUntil, provenUntil) }
        for key in keys where index[key] == nil || index[key] == id {
            session.keys.insert(key)
            index[key] = id
        }
        sessions[id] = session
    }

    /// A session as another replica's store reported it (a shared store's mirror): replaces this id's.
    public mutating func apply(_ session: TrackedSession) {
        remove(session.id)
        if sessions.count >= policy.maximumSessions,
            let oldest = sessions.values.min(by: { $0.lastSeen < $1.lastSeen })
        {
            remove(oldest.id)
        }
        insert(session)
    }

    /// Ends a session (stop, teardown, or its token no longer valid).
    public mutating func remove(_ id: String) {
        guard let session = sessions.removeValue(forKey: id) else { return }
        for key in session.keys where index[key] == id { index[key] = nil }
    }

    /// Drops idle sessions.
    public mutating func prune(now: Timestamp) {
        for session in sessions.values where now - session.lastSeen >= policy.idleExpiry { remove(session.id) }
    }

    private mutating func insert(_ session: TrackedSession) {
        sessions[session.id] = session
        for key in session.keys { index[key] = session.id }
    }
}
