import LiveTVAuthzCore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Elevation-rules §12.4 (`--neutralize-owner-history`): tracked timelines and scrobbles reach PMS under
/// the owner's token, so the owner's "continue watching" and watched marks fill with other people's
/// viewing. For each elevated tracked keep-alive this replays the request with the viewer's own token (so
/// the viewer's history advances), and after a scrobble unscrobbles the item for the owner
/// (`/:/unscrobble?key=<ratingKey>&identifier=com.plexapp.plugins.library`, as python-plexapi's
/// `markUnplayed` sends it).
///
/// Off the request path: `trackedKeepAlive` only enqueues. At most `concurrency` calls run at once, each
/// bounded by `timeout`; when `capacity` jobs are waiting a new one is dropped and counted. No token is
/// ever logged; tokens travel in the `X-Plex-Token` header only.
public final class OwnerHistoryNeutralizer: PlaybackHistoryObserver, Service {
    enum Job: Sendable {
        case replay(PMSRequest)
        case unscrobble(ratingKey: String)

        var name: String {
            switch self {
            case .replay: return "replay"
            case .unscrobble: return "unscrobble"
            }
        }
    }

    private let pms: any PMSClient
    private let owner: OwnerTokenHolder
    private let metrics: ServiceMetrics
    private let logger: Logger
    let concurrency: Int
    let capacity: Int
    let timeout: Duration
    /// How long after the scrobble the owner's mark is removed (PMS must have recorded it first).
    let unscrobbleDelay: Duration
    private let queue: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation
    private let waiting = NIOLockedValueBox(0)

    public init(
        pms: any PMSClient, owner: OwnerTokenHolder, metrics: ServiceMetrics, logger: Logger, concurrency: Int = 4,
        capacity: Int = 256, timeout: Duration = .seconds(10), unscrobbleDelay: Duration = .seconds(2)
    ) {
        self.pms = pms
        self.owner = owner
        self.metrics = metrics
        self.logger = logger
        self.concurrency = concurrency
        self.capacity = capacity
        self.timeout = timeout
        self.unscrobbleDelay = unscrobbleDelay
        (queue, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    public func trackedKeepAlive(target: RequestTarget, userToken: PlexToken, isScrobble: Bool) {
        let replayTarget = Self.replayTarget(target)
        enqueue(.replay(PMSRequest(target: replayTarget, token: userToken)))
        if isScrobble, let ratingKey = Self.ratingKey(in: target) { enqueue(.unscrobble(ratingKey: ratingKey)) }
    }

    /// The request as it is replayed for the viewer: without any `X-Plex-Token` (the viewer's goes in the
    /// header) and without a `key` that names the live session (`/livetv/sessions/…`): the viewer has no
    /// tuner, and their history needs only the item (`ratingKey`, `time`, `state`), not the tuner session.
    static func replayTarget(_ target: RequestTarget) -> String {
        let withoutTokens = RequestTarget(bytes: UpstreamRewrite.removingQueryTokens(from: target))
        guard withoutTokens.hasQuery else { return withoutTokens.wire }
        let query = withoutTokens.query
        var kept: [String] = []
        for component in query.components {
            let isLiveKey =
                query.nameEquals(component, Array("key".utf8))
                && PlaybackFacts.namesLiveSession(query.decodedValue(component))
            if !isLiveKey {
                kept.append(String(decoding: withoutTokens.bytes[component.start..<component.end], as: UTF8.self))
            }
        }
        let path = String(decoding: withoutTokens.path, as: UTF8.self)
        return PercentEscaping.headerSafe(Array((kept.isEmpty ? path : path + "?" + kept.joined(separator: "&")).utf8))
    }

    /// The scrobble's `key` (the rating key itself).
    static func ratingKey(in target: RequestTarget) -> String? {
        let query = target.query
        for component in query.components where query.nameEquals(component, Array("key".utf8)) {
            let value = String(decoding: query.decodedValue(component), as: UTF8.self)
            if !value.isEmpty { return value }
        }
        return nil
    }

    func enqueue(_ job: Job) {
        let accepted = waiting.withLockedValue { count -> Bool in
            guard count < capacity else { return false }
            count += 1
            return true
        }
        guard accepted else {
            metrics.recordBackgroundJob(job.name, result: "dropped")
            return
        }
        continuation.yield(job)
    }

    public func run() async {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for await job in queue {
                    if running >= concurrency {
                        await group.next()
                        running -= 1
                    }
                    running += 1
                    group.addTask { await self.perform(job) }
                }
            }
        } onGracefulShutdown: {
            self.finish()
        }
    }

    /// Stops taking jobs (the group waits for the running ones).
    public func finish() { continuation.finish() }

    func perform(_ job: Job) async {
        waiting.withLockedValue { $0 -= 1 }
        let status: Int?
        switch job {
        case .replay(let request):
            status = await pms.send(request, timeout: timeout)
        case .unscrobble(let ratingKey):
            try? await Task.sleep(for: unscrobbleDelay)
            let key = PercentEscaping.escape(ratingKey) { byte in
                !((byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A))
            }
            status = await pms.send(
                PMSRequest(
                    target: "/:/unscrobble?key=\(key)&identifier=com.plexapp.plugins.library", token: owner.current),
                timeout: timeout)
        }
        let done = status.map { (200..<300).contains($0) } ?? false
        metrics.recordBackgroundJob(job.name, result: done ? "done" : "failed")
        if !done {
            logger.debug("owner-history \(job.name) got \(status.map { "HTTP \($0)" } ?? "no answer")")
        }
    }
}
