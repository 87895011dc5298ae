import Crypto
import LiveTVAuthzCore

/// What validation answered and whether the answer came from the cache.
public struct TokenValidation: Sendable, Hashable {
    public var check: TokenCheck
    public var cacheHit: Bool

    public init(check: TokenCheck, cacheHit: Bool) {
        self.check = check
        self.cacheHit = cacheHit
    }
}

/// Proves inbound tokens against PMS. A protocol so the guard can be tested with a scripted validator.
public protocol TokenValidating: Sendable {
    func validate(_ token: PlexToken) async -> TokenValidation
}

/// Validates tokens against PMS with a positive cache and single-flight.
///
/// - The cache holds only *valid* answers, keyed by SHA-256 of the token (the raw token is never stored),
///   for `ttl`, bounded to `capacity` entries (least recently used evicted).
/// - Concurrent requests with the same uncached token share one PMS call (a guide grid opens dozens at
///   once); its answer is handed to every waiter.
/// - Invalid answers are not cached here (the per-source cooldown handles repeats); unavailable answers
///   are never cached anywhere.
public actor TokenValidator: TokenValidating {
    private let client: any PMSClient
    private let clock: any WallClock
    public let ttl: Duration
    private var cache: LRUCache<SHA256.Digest, Timestamp>
    private var inFlight: [SHA256.Digest: Task<TokenCheck, Never>] = [:]
    /// PMS calls made (metrics, tests).
    public private(set) var pmsCalls = 0

    public init(client: any PMSClient, clock: any WallClock, ttl: Duration = .seconds(300), capacity: Int = 10_000) {
        self.client = client
        self.clock = clock
        self.ttl = ttl
        self.cache = LRUCache(capacity: capacity)
    }

    public var cachedTokens: Int { cache.count }

    public func validate(_ token: PlexToken) async -> TokenValidation {
        let key = SHA256.hash(data: Array(token.value.utf8))
        if let expiry = cache.get(key) {
            if expiry > clock.now() { return TokenValidation(check: .valid, cacheHit: true) }
            cache.remove(key)
        }
        if let running = inFlight[key] {
            return TokenValidation(check: await running.value, cacheHit: false)
        }
        pmsCalls += 1
        let client = self.client
        let task = Task { await client.checkToken(token) }
        inFlight[key] = task
        let check = await task.value
        inFlight[key] = nil
        if check == .valid { cache.set(key, clock.now() + ttl) }
        return TokenValidation(check: check, cacheHit: false)
    }

    /// Forgets every cached answer (SIGHUP, when the owner token changed: a shared user's access may have
    /// changed with it).
    public func flush() {
        cache = LRUCache(capacity: cache.capacity)
    }
}
