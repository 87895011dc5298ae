import Crypto
import LiveTVAuthzCore
import NIOConcurrencyHelpers

/// What validation answered, whether the answer came from the cache, and until when a valid answer holds.
public struct TokenValidation: Sendable, Hashable {
    public var check: TokenCheck
    public var cacheHit: Bool
    /// For a valid answer: when its cache entry expires (a tracked session's tokenless media is elevated
    /// only until then).
    public var validUntil: Timestamp?

    public init(check: TokenCheck, cacheHit: Bool, validUntil: Timestamp? = nil) {
        self.check = check
        self.cacheHit = cacheHit
        self.validUntil = validUntil
    }
}

/// Proves inbound tokens against PMS. A protocol so the guard can be tested with a scripted validator.
public protocol TokenValidating: Sendable {
    /// The cached answer, without waiting (`nil`: PMS must be asked).
    func cachedValidation(_ token: PlexToken) -> TokenValidation?
    func validate(_ token: PlexToken) async -> TokenValidation
}

/// Validates tokens against PMS with a positive cache and single-flight.
///
/// - The cache holds only *valid* answers, keyed by SHA-256 of the token (the raw token is never stored),
///   for `ttl`, bounded to `capacity` entries (least recently used evicted). It is read without
///   suspending, so a cached token costs the request path one lock.
/// - Concurrent requests with the same uncached token share one PMS call (a guide grid opens dozens at
///   once); its answer is handed to every waiter.
/// - Invalid answers are not cached here (the per-source cooldown handles repeats); unavailable answers
///   are never cached anywhere.
/// - At most `maximumPending` different tokens wait for PMS at once. A slow or hung PMS plus a client that
///   invents tokens would otherwise grow the waiting work without bound; past the cap a new token is
///   answered `unavailable(.overloaded)` at once (never elevated, never counted as abuse), while tokens
///   already waiting, and every cached one, are unaffected.
public final class TokenValidator: TokenValidating {
    private struct State {
        /// Expiry and answer (`.valid`, or `explain`'s `.assumedValid`) per token.
        var cache: LRUCache<TokenKey, CachedAnswer>
        var inFlight: [TokenKey: Task<TokenCheck, Never>] = [:]
        var pmsCalls = 0
    }

    private let client: any PMSClient
    private let clock: any WallClock
    public let ttl: Duration
    public let maximumPending: Int
    private let state: NIOLockedValueBox<State>

    public init(
        client: any PMSClient, clock: any WallClock, ttl: Duration = .seconds(300), capacity: Int = 10_000,
        maximumPending: Int = 256
    ) {
        self.client = client
        self.clock = clock
        self.ttl = ttl
        self.maximumPending = maximumPending
        self.state = NIOLockedValueBox(State(cache: LRUCache(capacity: capacity)))
    }

    /// Different tokens waiting for PMS right now.
    public var pendingValidations: Int { state.withLockedValue { $0.inFlight.count } }

    public var cachedTokens: Int { state.withLockedValue { $0.cache.count } }

    /// PMS calls made (metrics, tests).
    public var pmsCalls: Int { state.withLockedValue { $0.pmsCalls } }

    public func cachedValidation(_ token: PlexToken) -> TokenValidation? {
        cached(TokenKey(token))
    }

    private func cached(_ key: TokenKey) -> TokenValidation? {
        let now = clock.now()
        return state.withLockedValue { state in
            guard let entry = state.cache.get(key) else { return nil }
            if entry.expiry > now {
                return TokenValidation(check: entry.check, cacheHit: true, validUntil: entry.expiry)
            }
            state.cache.remove(key)
            return nil
        }
    }

    public func validate(_ token: PlexToken) async -> TokenValidation {
        let key = TokenKey(token)
        if let hit = cached(key) { return hit }
        let client = self.client
        let limit = maximumPending
        let waiting = state.withLockedValue { state -> (task: Task<TokenCheck, Never>, joined: Bool)? in
            if let running = state.inFlight[key] { return (running, true) }
            guard state.inFlight.count < limit else { return nil }
            state.pmsCalls += 1
            let task = Task { await client.checkToken(token) }
            state.inFlight[key] = task
            return (task, false)
        }
        guard let (task, joined) = waiting else {
            return TokenValidation(check: .unavailable(.overloaded(pending: limit)), cacheHit: false)
        }
        let check = await task.value
        let proves = check == .valid || check == .assumedValid
        guard !joined else {
            return TokenValidation(check: check, cacheHit: false, validUntil: proves ? cachedUntil(key) : nil)
        }
        let expiry = clock.now() + ttl
        state.withLockedValue { state in
            state.inFlight[key] = nil
            if proves { state.cache.set(key, CachedAnswer(expiry: expiry, check: check)) }
        }
        return TokenValidation(check: check, cacheHit: false, validUntil: proves ? expiry : nil)
    }

    private func cachedUntil(_ key: TokenKey) -> Timestamp? {
        state.withLockedValue { $0.cache.peek(key)?.expiry }
    }

    /// Forgets every cached answer (SIGHUP, when the owner token changed: a shared user's access may have
    /// changed with it).
    public func flush() {
        state.withLockedValue { $0.cache = LRUCache(capacity: $0.cache.capacity) }
    }
}

struct CachedAnswer: Sendable {
    let expiry: Timestamp
    let check: TokenCheck
}

/// SHA-256 of a token, the cache's key (the raw token is never stored).
struct TokenKey: Hashable, Sendable {
    let words: (UInt64, UInt64, UInt64, UInt64)

    /// Every cached decision makes one: the token's bytes are hashed in place, no arrays.
    init(_ token: PlexToken) {
        words = Fingerprint.sha256(token.value).withUnsafeBytes { raw in
            (
                raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            )
        }
    }

    static func == (lhs: TokenKey, rhs: TokenKey) -> Bool { lhs.words == rhs.words }

    func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}
