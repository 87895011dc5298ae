import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle

/// Guard state shared by replicas through PostgreSQL.
///
/// The guard reads state on every candidate and must not wait for a database, so every read is answered
/// from a local mirror (the same `AbuseBlocker` and `PlaybackTracker` values the in-memory store uses).
/// Writes change the mirror at once where they can and go to the database from a background queue; every
/// change is announced with `NOTIFY plexauthz_state`, which every replica (this one included) `LISTEN`s
/// to and applies to its mirror, so a block made on one replica is seen by the others within one
/// notification round trip. After a reconnect the mirror is reloaded from the tables.
///
/// Counting failures is one atomic `INSERT … ON CONFLICT DO UPDATE`: two replicas counting at once never
/// lose an update, and exactly one statement crosses the threshold (it is the one that sets
/// `blocked_until` to its own `now + block`), so `bad_actor_blocked` is written once.
///
/// The database down or slow (an operation not done within `operationTimeout`): the store says so
/// (`isHealthy`, `/readyz/state`, the log), counts failures in its local mirror (blocks then apply on this
/// replica only), keeps cooldowns and playbacks locally, and reconnects with back-off. Nothing about
/// elevation depends on it: a valid token is proven by PMS, never by this state.
public final class PostgresGuardState: GuardStateStore, Service {
    public let url: StateStoreURL
    let client: PostgresClient
    let policy: AbusePolicy
    let logger: Logger
    let clock: any WallClock
    let operationTimeout: Duration
    /// Touches of a tracked session are shared at most this often (new keys at once).
    let touchInterval: Duration = .seconds(30)

    /// Every read is answered here; every change lands here too (the in-memory store, never persisted).
    private let mirror: InMemoryGuardState
    private let idleExpiry: Duration
    private let healthy = NIOLockedValueBox(false)
    /// Whether the `LISTEN` connection is up (health needs it: without it, changes would go unseen).
    private let listening = NIOLockedValueBox(false)
    private let sharedTouch = NIOLockedValueBox<[String: Timestamp]>([:])
    private let operations: AsyncStream<Operation>
    private let enqueue: AsyncStream<Operation>.Continuation

    static let channel = "plexauthz_state"
    static let schemaVersion = 1

    enum Operation: Sendable {
        case failure(source: String, now: Timestamp, onBlock: @Sendable (Int, Timestamp) -> Void)
        case cooldown(source: String, token: String, until: Timestamp)
        case session(TrackedSession)
        case endSession(String)
        case forget(String?)
    }

    public init(
        url: StateStoreURL, policy: AbusePolicy, playback: PlaybackPolicy, clock: any WallClock, logger: Logger,
        operationTimeout: Duration = .seconds(2)
    ) {
        self.url = url
        self.policy = policy
        self.clock = clock
        self.logger = logger
        self.operationTimeout = operationTimeout
        var configuration: PostgresClient.Configuration
        if let directory = url.socketDirectory {
            configuration = PostgresClient.Configuration(
                unixSocketPath: "\(directory)/.s.PGSQL.\(url.port)", username: url.user, password: url.password,
                database: url.database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch url.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(.makeClientConfiguration())
            case .require: tls = .require(.makeClientConfiguration())
            }
            configuration = PostgresClient.Configuration(
                host: url.host ?? "localhost", port: url.port, username: url.user, password: url.password,
                database: url.database, tls: tls)
        }
        configuration.options.connectTimeout = operationTimeout
        configuration.options.maximumConnections = 4
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        mirror = InMemoryGuardState(blocker: AbuseBlocker(policy: policy), tracker: PlaybackTracker(policy: playback))
        idleExpiry = playback.idleExpiry
        (operations, enqueue) = AsyncStream.makeStream(of: Operation.self, bufferingPolicy: .bufferingNewest(10_000))
    }

    // MARK: GuardStateStore (reads from the mirror, never waiting)

    public var isHealthy: Bool { healthy.withLockedValue { $0 } }

    public func isBlocked(source: String, at now: Timestamp) -> Bool { mirror.isBlocked(source: source, at: now) }

    public func isCoolingDown(source: String, token: String, at now: Timestamp) -> Bool {
        mirror.isCoolingDown(source: source, token: token, at: now)
    }

    public func activeBlocks(at now: Timestamp) -> Int { mirror.activeBlocks(at: now) }

    public func trackedSession(named probes: Set<PlaybackKey>, at now: Timestamp) -> TrackedSession? {
        mirror.trackedSession(named: probes, at: now)
    }

    public func trackedSessions(at now: Timestamp) -> Int { mirror.trackedSessions(at: now) }

    public func snapshot(at now: Timestamp) -> GuardSnapshot { mirror.snapshot(at: now) }

    // MARK: GuardStateStore (writes: the mirror now, the database in the background)

    public func recordFailure(
        source: String, at now: Timestamp, onBlock: @escaping @Sendable (Int, Timestamp) -> Void
    ) {
        // The database counts (atomically, for every replica); without it, this replica counts alone.
        guard isHealthy else { return countLocally(source: source, now: now, onBlock: onBlock) }
        enqueue.yield(.failure(source: source, now: now, onBlock: onBlock))
    }

    public func recordDenial(source: String, token: String, at now: Timestamp) {
        mirror.recordDenial(source: source, token: token, at: now)
        if let until = mirror.cooldownEnd(source: source, token: token) {
            share(.cooldown(source: source, token: token, until: until))
        }
    }

    public func startTracking(
        source: String, userToken: String, keys: Set<PlaybackKey>, provenUntil: Timestamp, at now: Timestamp
    ) {
        mirror.startTracking(source: source, userToken: userToken, keys: keys, provenUntil: provenUntil, at: now)
        guard let session = mirror.trackedSession(named: keys, at: now) else { return }
        sharedTouch.withLockedValue { $0[session.id] = now }
        share(.session(session))
    }

    public func touchTracking(_ id: String, learning keys: Set<PlaybackKey>, provenUntil: Timestamp?, at now: Timestamp)
    {
        let before = mirror.session(id: id)?.keys.count
        mirror.touchTracking(id, learning: keys, provenUntil: provenUntil, at: now)
        guard let session = mirror.session(id: id) else { return }
        let learnt = session.keys.count != before
        let due = sharedTouch.withLockedValue { shared in
            guard learnt || shared[id].map({ now - $0 >= touchInterval }) ?? true else { return false }
            shared[id] = now
            return true
        }
        if due { share(.session(session)) }
    }

    public func endTracking(_ id: String) {
        mirror.endTracking(id)
        sharedTouch.withLockedValue { $0[id] = nil }
        share(.endSession(id))
    }

    public func forget(source: String?) -> Int {
        let count = mirror.forget(source: source)
        share(.forget(source))
        return count
    }

    private func share(_ operation: Operation) {
        if isHealthy { enqueue.yield(operation) }
    }

    private func countLocally(
        source: String, now: Timestamp, onBlock: @escaping @Sendable (Int, Timestamp) -> Void
    ) {
        mirror.recordFailure(source: source, at: now, onBlock: onBlock)
    }

    // MARK: Service

    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            group.addTask { await self.listen() }
            group.addTask { await self.work() }
            group.addTask { await self.cleanUp() }
            group.addTask { await self.probe() }
            try? await gracefulShutdown()
            enqueue.finish()
            group.cancelAll()
        }
    }

    /// Keeps a `LISTEN` open; on every (re)connect: schema, full reload, then notifications. Back-off 0.5 s
    /// doubling to 10 s.
    private func listen() async {
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await self.migrate(connection)
                    try await connection.listen(on: Self.channel) { notifications in
                        try await self.reload(connection)
                        self.listening.withLockedValue { $0 = true }
                        self.setHealthy(true)
                        delay = .milliseconds(500)
                        for try await notification in notifications { self.apply(notification.payload) }
                    }
                }
            } catch {
                listening.withLockedValue { $0 = false }
                if Task.isCancelled { return }
                setHealthy(false, because: error)
            }
            listening.withLockedValue { $0 = false }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(10))
        }
    }

    private func setHealthy(_ value: Bool, because error: (any Error)? = nil) {
        let changed = healthy.withLockedValue { healthy in
            defer { healthy = value }
            return healthy != value
        }
        guard changed else { return }
        if value {
            logger.notice("state store \(url): connected, sharing blocks, cooldowns and playbacks")
        } else {
            logger.warning(
                "state store \(url): unreachable (\(error.map { String(describing: $0).prefix(200) } ?? "?")); deciding on this replica's state until it is back"
            )
        }
    }

    /// Carries out queued writes in order; a write that fails or takes too long is done locally instead.
    private func work() async {
        for await operation in operations {
            do {
                try await withTimeout(operationTimeout) { try await self.execute(operation) }
            } catch {
                setHealthy(false, because: error)
                if case .failure(let source, let now, let onBlock) = operation {
                    countLocally(source: source, now: now, onBlock: onBlock)
                }
            }
        }
    }

    /// A write that timed out marks the store unhealthy while its `LISTEN` connection may still be up:
    /// every 2 s, such a store tries `SELECT 1` and is healthy again when it answers in time.
    private func probe() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(2))
            guard !isHealthy, listening.withLockedValue({ $0 }) else { continue }
            if (try? await withTimeout(operationTimeout, { try await self.client.query("SELECT 1") })) != nil {
                setHealthy(true)
            }
        }
    }

    /// Drops expired rows every minute (each replica; the statements are idempotent).
    private func cleanUp() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(60))
            let current = clock.now()
            sharedTouch.withLockedValue { $0 = $0.filter { $0.value + idleExpiry > current } }
            guard isHealthy else { continue }
            let now = current.unixNanoseconds
            let window = policy.window.nanoseconds
            _ = try? await withTimeout(operationTimeout) {
                try await self.client.query(
                    "DELETE FROM plexauthz_sources WHERE coalesce(blocked_until, 0) <= \(now) AND window_start + \(window) <= \(now)"
                )
                try await self.client.query("DELETE FROM plexauthz_cooldowns WHERE until <= \(now)")
                try await self.client.query("DELETE FROM plexauthz_sessions WHERE expires <= \(now)")
            }
        }
    }

    // MARK: The database

    /// Schema version 1, created once under an advisory lock (replicas may start together).
    func migrate(_ connection: PostgresConnection) async throws {
        try await connection.query("SELECT pg_advisory_lock(727274)", logger: logger)
        do {
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS plexauthz_schema (version integer NOT NULL)", logger: logger)
            var current = 0
            for try await version in try await connection.query(
                "SELECT coalesce(max(version), 0) FROM plexauthz_schema", logger: logger
            ).decode(Int.self) {
                current = version
            }
            if current < 1 {
                for statement in Self.schemaV1 {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO plexauthz_schema (version) VALUES (1)", logger: logger)
                logger.notice("state store \(url): schema created (version 1)")
            } else if current > Self.schemaVersion {
                logger.warning(
                    "state store \(url): schema version \(current) is newer than this service's \(Self.schemaVersion)")
            }
            try await connection.query("SELECT pg_advisory_unlock(727274)", logger: logger)
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(727274)", logger: logger)
            throw error
        }
    }

    /// Fingerprints only: sources and tokens as `sha256:` fingerprints, times as Unix nanoseconds.
    static let schemaV1 = [
        """
        CREATE TABLE IF NOT EXISTS plexauthz_sources (
            source text PRIMARY KEY, failures integer NOT NULL, window_start bigint NOT NULL,
            blocked_until bigint)
        """,
        """
        CREATE TABLE IF NOT EXISTS plexauthz_cooldowns (
            source text NOT NULL, token text NOT NULL, until bigint NOT NULL, PRIMARY KEY (source, token))
        """,
        """
        CREATE TABLE IF NOT EXISTS plexauthz_sessions (
            id text PRIMARY KEY, body text NOT NULL, expires bigint NOT NULL)
        """,
    ]

    /// The mirror from the tables (after a (re)connect: notifications sent meanwhile were missed).
    func reload(_ connection: PostgresConnection) async throws {
        let now = clock.now()
        var sources: [(String, SourceRecord)] = []
        for try await (source, failures, start, until) in try await connection.query(
            "SELECT source, failures, window_start, blocked_until FROM plexauthz_sources", logger: logger
        ).decode((String, Int, Int64, Int64?).self) {
            sources.append(
                (
                    source,
                    SourceRecord(
                        failures: failures, windowStart: Timestamp(unixNanoseconds: start),
                        blockedUntil: until.map { Timestamp(unixNanoseconds: $0) })
                ))
        }
        var cooldowns: [(String, String, Int64)] = []
        for try await row in try await connection.query(
            "SELECT source, token, until FROM plexauthz_cooldowns WHERE until > \(now.unixNanoseconds)",
            logger: logger
        ).decode((String, String, Int64).self) {
            cooldowns.append(row)
        }
        var sessions: [TrackedSession] = []
        for try await body in try await connection.query(
            "SELECT body FROM plexauthz_sessions WHERE expires > \(now.unixNanoseconds)", logger: logger
        ).decode(String.self) {
            if let snapshot = try? GuardStateCodec.decode(Array(body.utf8)) { sessions += snapshot.sessions }
        }
        for (source, record) in sources { mirror.mirror(source: source, record: record, at: now) }
        for (source, token, until) in cooldowns {
            mirror.mirror(cooldown: source, token: token, until: Timestamp(unixNanoseconds: until))
        }
        for session in sessions { mirror.mirror(session: session) }
    }

    func execute(_ operation: Operation) async throws {
        switch operation {
        case .failure(let source, let now, let onBlock):
            let (failures, start, until) = try await countFailure(source: source, now: now)
            let record = SourceRecord(
                failures: failures, windowStart: start, blockedUntil: until)
            mirror.mirror(source: source, record: record, at: now)
            try await notify("S", GuardStateCodec.encode(GuardSnapshot(sources: [source: record])))
            // Exactly one statement sets blocked_until to its own now + block: that one crossed the line.
            if let until, until == now + policy.blockDuration { onBlock(failures, until) }
        case .cooldown(let source, let token, let until):
            try await client.query(
                """
                INSERT INTO plexauthz_cooldowns (source, token, until) VALUES (\(source), \(token), \(until.unixNanoseconds))
                ON CONFLICT (source, token) DO UPDATE SET until = greatest(plexauthz_cooldowns.until, excluded.until)
                """, logger: logger)
            try await notify("C", Array("\(source) \(token) \(until.unixNanoseconds)".utf8))
        case .session(let session):
            let body = String(decoding: GuardStateCodec.encode(GuardSnapshot(sessions: [session])), as: UTF8.self)
            let expires = (session.lastSeen + idleExpiry).unixNanoseconds
            try await client.query(
                """
                INSERT INTO plexauthz_sessions (id, body, expires) VALUES (\(session.id), \(body), \(expires))
                ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires = excluded.expires
                """, logger: logger)
            try await notify("T", Array(body.utf8))
        case .endSession(let id):
            try await client.query("DELETE FROM plexauthz_sessions WHERE id = \(id)", logger: logger)
            try await notify("E", Array(id.utf8))
        case .forget(let source):
            if let source {
                try await client.query("DELETE FROM plexauthz_sources WHERE source = \(source)", logger: logger)
                try await client.query("DELETE FROM plexauthz_cooldowns WHERE source = \(source)", logger: logger)
            } else {
                try await client.query("DELETE FROM plexauthz_sources", logger: logger)
                try await client.query("DELETE FROM plexauthz_cooldowns", logger: logger)
            }
            try await notify("F", Array((source ?? "*").utf8))
        }
    }

    /// One atomic statement: the row is locked for its update, so concurrent failures from any replica are
    /// all counted, and the threshold is crossed by exactly one of them.
    func countFailure(source: String, now: Timestamp) async throws -> (Int, Timestamp, Timestamp?) {
        let at = now.unixNanoseconds
        let window = policy.window.nanoseconds
        let block = policy.blockDuration.nanoseconds
        let threshold = policy.threshold
        let rows = try await client.query(
            """
            INSERT INTO plexauthz_sources AS s (source, failures, window_start, blocked_until)
            VALUES (\(source), 1, \(at), CASE WHEN 1 >= \(threshold) THEN \(at) + \(block) ELSE NULL END)
            ON CONFLICT (source) DO UPDATE SET
              failures = CASE
                WHEN s.blocked_until > \(at) THEN s.failures
                WHEN s.blocked_until IS NOT NULL OR s.window_start + \(window) <= \(at) THEN 1
                ELSE s.failures + 1 END,
              window_start = CASE
                WHEN s.blocked_until > \(at) THEN s.window_start
                WHEN s.blocked_until IS NOT NULL OR s.window_start + \(window) <= \(at) THEN \(at)
                ELSE s.window_start END,
              blocked_until = CASE
                WHEN s.blocked_until > \(at) THEN s.blocked_until
                WHEN s.blocked_until IS NOT NULL OR s.window_start + \(window) <= \(at) THEN
                  CASE WHEN 1 >= \(threshold) THEN \(at) + \(block) ELSE NULL END
                WHEN s.failures + 1 >= \(threshold) THEN \(at) + \(block)
                ELSE NULL END
            RETURNING failures, window_start, blocked_until
            """, logger: logger)
        for try await (failures, start, until) in rows.decode((Int, Int64, Int64?).self) {
            return (
                failures, Timestamp(unixNanoseconds: start), until.map { Timestamp(unixNanoseconds: $0) }
            )
        }
        throw StoreError("no row returned for a failure")
    }

    private func notify(_ kind: String, _ body: [UInt8]) async throws {
        let payload = kind + String(decoding: body, as: UTF8.self)
        try await client.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger)
    }

    /// A change announced by some replica (this one included): applied to the mirror.
    func apply(_ payload: String) {
        guard let kind = payload.first else { return }
        let body = String(payload.dropFirst())
        let now = clock.now()
        switch kind {
        case "S":
            guard let snapshot = try? GuardStateCodec.decode(Array(body.utf8)) else { return }
            for (source, record) in snapshot.sources { mirror.mirror(source: source, record: record, at: now) }
        case "C":
            let parts = body.split(separator: " ")
            guard parts.count == 3, let until = Int64(parts[2]) else { return }
            mirror.mirror(
                cooldown: String(parts[0]), token: String(parts[1]), until: Timestamp(unixNanoseconds: until))
        case "T":
            guard let snapshot = try? GuardStateCodec.decode(Array(body.utf8)) else { return }
            for session in snapshot.sessions { mirror.mirror(session: session) }
        case "E":
            mirror.endTracking(body)
        case "F":
            _ = mirror.forget(source: body == "*" ? nil : body)
        default:
            logger.debug("state store: unknown notification kind \(kind)")
        }
    }
}

struct StoreError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`, or throws when it has not finished within `limit` (the body is cancelled).
func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw StoreError("no answer within \(limit)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
