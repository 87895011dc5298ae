/// Abuse limits (elevation-rules §8; env `IPTV_TUNERR_PROXY_ABUSE_*`, `IPTV_TUNERR_PROXY_BAD_AUTH_COOLDOWN`).
public struct AbusePolicy: Sendable, Hashable {
    /// Failures inside one window that block a source (default 5).
    public var threshold: Int
    /// The fixed window, counted from a source's first failure (default 5 min).
    public var window: Duration
    /// How long a block lasts (default 30 min).
    public var blockDuration: Duration
    /// How long a denied source+token pair is denied without asking PMS again (default 2 min); `nil`
    /// disables the cooldown.
    public var cooldown: Duration?

    public init(
        threshold: Int = 5, window: Duration = .seconds(300), blockDuration: Duration = .seconds(1800),
        cooldown: Duration? = .seconds(120)
    ) {
        self.threshold = threshold
        self.window = window
        self.blockDuration = blockDuration
        self.cooldown = cooldown
    }
}

/// One source's failure window and block, as kept in memory and in the state file (keyed by the
/// source fingerprint, never the address).
public struct SourceRecord: Sendable, Hashable {
    public var failures: Int
    public var windowStart: Timestamp
    public var blockedUntil: Timestamp?

    public init(failures: Int, windowStart: Timestamp, blockedUntil: Timestamp?) {
        self.failures = failures
        self.windowStart = windowStart
        self.blockedUntil = blockedUntil
    }
}

/// What a counted failure did.
public enum FailureOutcome: Sendable, Hashable {
    /// Counted; `failures` so far in the current window.
    case counted(failures: Int)
    /// This failure crossed the threshold: the source is blocked until `until` (`bad_actor_blocked`).
    case blocked(failures: Int, until: Timestamp)
    /// The source was already blocked; nothing changes.
    case alreadyBlocked
}

/// The abuse blocker and auth cooldown as a value: no clock, no locks, no I/O. The runtime keeps one
/// behind a lock (or a shared store) and passes `now` in.
public struct AbuseBlocker: Sendable {
    public let policy: AbusePolicy
    /// Per-source failure windows and blocks, by source fingerprint.
    public private(set) var sources: [String: SourceRecord] = [:]
    /// Denied token fingerprints per source fingerprint, with the end of their cooldown.
    private var cooldowns: [String: [String: Timestamp]] = [:]
    private var cooldownCount = 0

    /// Memory bounds: an attacker with many addresses must not grow the state without limit.
    public var maximumSources = 100_000
    public var maximumCooldowns = 100_000

    public init(policy: AbusePolicy) {
        self.policy = policy
    }

    /// Restores persisted records, dropping every expired one (an old failure window, an ended block).
    public init(policy: AbusePolicy, restoring records: [String: SourceRecord], now: Timestamp) {
        self.policy = policy
        for (source, record) in records where Self.isLive(record, policy: policy, now: now) {
            sources[source] = record
        }
    }

    /// Whether the source is blocked at `now`.
    public func isBlocked(_ source: String, at now: Timestamp) -> Bool {
        guard let until = sources[source]?.blockedUntil else { return false }
        return until > now
    }

    /// Number of sources blocked at `now`.
    public func activeBlocks(at now: Timestamp) -> Int {
        sources.values.reduce(0) { $0 + (($1.blockedUntil ?? Timestamp(unixNanoseconds: .min)) > now ? 1 : 0) }
    }

    /// Whether the source+token pair was denied recently enough to be denied again without PMS.
    public func isCoolingDown(source: String, token: String, at now: Timestamp) -> Bool {
        guard let until = cooldowns[source]?[token] else { return false }
        return until > now
    }

    /// Counts a failure (missing token, unauthorized token, cooldown hit) on a candidate.
    public mutating func recordFailure(source: String, at now: Timestamp) -> FailureOutcome {
        var record = sources[source] ?? SourceRecord(failures: 0, windowStart: now, blockedUntil: nil)
        if let until = record.blockedUntil {
            if until > now { return .alreadyBlocked }
            record = SourceRecord(failures: 0, windowStart: now, blockedUntil: nil)
        }
        if record.failures == 0 || now - record.windowStart >= policy.window {
            record.failures = 0
            record.windowStart = now
        }
        record.failures = record.failures < Int.max ? record.failures + 1 : record.failures
        if record.failures >= policy.threshold {
            let until = now + policy.blockDuration
            record.blockedUntil = until
            store(source, record, now: now)
            // Tokens this source already had denied stay denied, without PMS, for the whole block.
            if var tokens = cooldowns[source] {
                for (token, end) in tokens where end < until { tokens[token] = until }
                cooldowns[source] = tokens
            }
            return .blocked(failures: record.failures, until: until)
        }
        store(source, record, now: now)
        return .counted(failures: record.failures)
    }

    /// Starts the cooldown for a denied source+token pair. While the source is blocked the pair stays
    /// denied until the block ends, even with the cooldown disabled.
    public mutating func recordDenial(source: String, token: String, at now: Timestamp) {
        var until = policy.cooldown.map { now + $0 } ?? now
        if let blockedUntil = sources[source]?.blockedUntil, blockedUntil > until { until = blockedUntil }
        guard until > now else { return }
        if cooldownCount >= maximumCooldowns { pruneCooldowns(now: now) }
        guard cooldownCount < maximumCooldowns || cooldowns[source]?[token] != nil else { return }
        if cooldowns[source, default: [:]].updateValue(until, forKey: token) == nil { cooldownCount += 1 }
    }

    /// A record as another replica's store reported it (a shared store's mirror).
    public mutating func apply(_ source: String, _ record: SourceRecord, now: Timestamp) {
        store(source, record, now: now)
    }

    /// A cooldown another replica started (a shared store's mirror); never shortens one.
    public mutating func applyCooldown(source: String, token: String, until: Timestamp) {
        if let current = cooldowns[source]?[token], current >= until { return }
        if cooldowns[source, default: [:]].updateValue(until, forKey: token) == nil { cooldownCount += 1 }
    }

    /// When the source+token pair's cooldown ends, if it has one.
    public func cooldownEnd(source: String, token: String) -> Timestamp? { cooldowns[source]?[token] }

    /// An operator's unblock: forgets the source's failures, block and cooldowns. Whether there was any.
    @discardableResult
    public mutating func forget(_ source: String) -> Bool {
        let had = sources.removeValue(forKey: source) != nil
        if let tokens = cooldowns.removeValue(forKey: source) { cooldownCount -= tokens.count }
        return had
    }

    /// An operator's unblock of everyone: the number of sources forgotten.
    @discardableResult
    public mutating func forgetAll() -> Int {
        defer {
            sources = [:]
            cooldowns = [:]
            cooldownCount = 0
        }
        return sources.count
    }

    /// Drops expired windows, blocks and cooldowns.
    public mutating func prune(now: Timestamp) {
        sources = sources.filter { Self.isLive($0.value, policy: policy, now: now) }
        pruneCooldowns(now: now)
    }

    private mutating func pruneCooldowns(now: Timestamp) {
        var count = 0
        var kept: [String: [String: Timestamp]] = [:]
        for (source, tokens) in cooldowns {
            let live = tokens.filter { $0.value > now }
            if !live.isEmpty {
                kept[source] = live
                count += live.count
            }
        }
        cooldowns = kept
        cooldownCount = count
    }

    private mutating func store(_ source: String, _ record: SourceRecord, now: Timestamp) {
        if sources[source] == nil, sources.count >= maximumSources {
            prune(now: now)
            if sources.count >= maximumSources {
                // Still full of live records: forget the oldest unblocked windows first.
                let evictable = sources.filter { $0.value.blockedUntil == nil }.sorted {
                    $0.value.windowStart < $1.value.windowStart
                }
                for (key, _) in evictable.prefix(max(1, maximumSources / 10)) { sources[key] = nil }
            }
            if sources.count >= maximumSources { return }
        }
        sources[source] = record
    }

    static func isLive(_ record: SourceRecord, policy: AbusePolicy, now: Timestamp) -> Bool {
        if let until = record.blockedUntil { return until > now }
        return record.failures > 0 && now - record.windowStart < policy.window
    }
}
