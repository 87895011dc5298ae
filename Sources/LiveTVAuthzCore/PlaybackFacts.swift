/// One session key a playback request names, fingerprinted (the state file and a shared store hold only
/// fingerprints; a client identifier is a device id, not something to keep in the clear).
public struct PlaybackKey: Sendable, Hashable, Comparable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// `/livetv/sessions/<uuid>` (from a `path`, `uri` or `key` value, or a media path).
        case uuid
        /// `X-Plex-Session-Identifier` (also `X-Plex-Playback-Session-Id` / `X-Plex-Session-Id`).
        case sessionIdentifier = "session-identifier"
        /// `X-Plex-Client-Identifier`.
        case clientIdentifier = "client-identifier"
        /// The transcode `session=` value.
        case transcodeSession = "transcode-session"
        /// `playQueueID`.
        case playQueue = "play-queue"
    }

    public let kind: Kind
    /// `sha256:` + 16 hex of the value.
    public let fingerprint: String

    public init(_ kind: Kind, fingerprint: String) {
        self.kind = kind
        self.fingerprint = fingerprint
    }

    init?(_ kind: Kind, value: some Collection<UInt8>) {
        let trimmed = Array(value)[...].trimmedBytes()
        guard !trimmed.isEmpty, trimmed.count <= 256 else { return nil }
        self.init(kind, fingerprint: Fingerprint.of(String(decoding: trimmed, as: UTF8.self)))
    }

    public static func < (lhs: PlaybackKey, rhs: PlaybackKey) -> Bool {
        (lhs.kind.rawValue, lhs.fingerprint) < (rhs.kind.rawValue, rhs.fingerprint)
    }
}

/// Elevation-rules §12: what a request says about live playback. Extracted only on the few playback
/// paths (a cheap prefix check first), so ordinary requests pay nothing.
public struct PlaybackFacts: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A read under `/livetv/sessions/<a>/<b>/…` (HLS playlists and segments).
        case liveMedia
        /// A read under `/video/:/transcode/universal/session/<tsid>/…` (DASH).
        case transcodeMedia
        /// `/:/timeline`, `/:/progress`, `/:/scrobble`, transcode `ping`/`stop`.
        case keepAlive
        /// An elevated stream start (`livetv-tune`, transcode `decision`/`start`, `play-queue`) begins tracking.
        case streamStart
        /// A subscription teardown (`DELETE /media/subscriptions/{id}`): decided by §4, ends the session.
        case teardown
    }

    public let kind: Kind
    /// The keys the request names itself (headers, query, `path`/`uri`/`key` values).
    public let ownKeys: Set<PlaybackKey>
    /// The keys that find a tracked session: the media path's parts, or `ownKeys`.
    public let probes: Set<PlaybackKey>
    /// The session ends with this request: timeline `state=stopped`, transcode `stop`, a teardown.
    public let stops: Bool
    /// A `/:/scrobble` (owner-history neutralisation, §12.4).
    public let isScrobble: Bool
    /// Whether this is media (a player's playlist or segment request).
    public var isMedia: Bool { kind == .liveMedia || kind == .transcodeMedia }

    static let liveSessions: [UInt8] = Array("/livetv/sessions/".utf8)
    static let transcodeSession: [UInt8] = Array("/video/:/transcode/universal/session/".utf8)
    static let transcodeUniversal: [UInt8] = Array("/video/:/transcode/universal/".utf8)
    static let keepAlivePaths: [[UInt8]] = ["/:/timeline", "/:/progress", "/:/scrobble"].map { Array($0.utf8) }
    static let scrobble: [UInt8] = Array("/:/scrobble".utf8)

    /// The facts of a classified request, or `nil` when it is not about playback.
    public static func extract(_ request: AuthzRequest, _ classification: Classification) -> PlaybackFacts? {
        if case .refused = classification.verdict { return nil }
        let method = request.method
        let isRead = method == "GET" || method == "HEAD"
        let path = request.target.path
        switch classification.surface {
        case .livetvTune?,
            .playQueue? where method == "POST":
            return PlaybackFacts(kind: .streamStart, request: request, stops: false)
        case .transcode?:
            let action = path.dropFirst(transcodeUniversal.count)
            if path.hasBytePrefix(transcodeUniversal),
                action.hasBytePrefix(Array("decision".utf8))
                    || action.hasBytePrefix(Array("start".utf8))
            {
                return PlaybackFacts(kind: .streamStart, request: request, stops: false)
            }
        case .subscriptionsTeardown?:
            return PlaybackFacts(kind: .teardown, request: request, stops: true)
        default:
            break
        }
        guard isRead else { return nil }
        if path.hasBytePrefix(liveSessions) {
            let parts = path.dropFirst(liveSessions.count).split(separator: 0x2F, omittingEmptySubsequences: false)
            guard let first = parts.first, !first.isEmpty else { return nil }
            var probes: [PlaybackKey?] = [
                PlaybackKey(.uuid, value: first), PlaybackKey(.sessionIdentifier, value: first),
            ]
            if parts.count > 1 {
                probes += [
                    PlaybackKey(.clientIdentifier, value: parts[1]), PlaybackKey(.transcodeSession, value: parts[1]),
                ]
            }
            return PlaybackFacts(kind: .liveMedia, request: request, probes: Set(probes.compactMap { $0 }))
        }
        if path.hasBytePrefix(transcodeSession) {
            let tsid = path.dropFirst(transcodeSession.count).prefix { $0 != 0x2F }
            guard let key = PlaybackKey(.transcodeSession, value: tsid) else { return nil }
            return PlaybackFacts(kind: .transcodeMedia, request: request, probes: [key])
        }
        if keepAlivePaths.contains(where: { path.elementsEqual($0) }) {
            // [hardened] A keep-alive that names library content (`key=/library/…`) is library playback
            // from the same client (it shares the client identifier with its Live TV session): never tracked.
            let query = request.target.query
            let namesLibrary = query.components.contains { component in
                query.nameEquals(component, Array("key".utf8))
                    && query.decodedValue(component).hasBytePrefix(Array("/library/".utf8))
            }
            if namesLibrary { return nil }
            let stopped = request.target.query.components.contains { component in
                request.target.query.nameEquals(component, Array("state".utf8))
                    && request.target.query.decodedValue(component).elementsEqual("stopped".utf8)
            }
            return PlaybackFacts(
                kind: .keepAlive, request: request, stops: stopped, isScrobble: path.elementsEqual(scrobble))
        }
        if path.hasBytePrefix(transcodeUniversal) {
            let action = path.dropFirst(transcodeUniversal.count)
            if action.elementsEqual("ping".utf8) || action.elementsEqual("stop".utf8) {
                return PlaybackFacts(kind: .keepAlive, request: request, stops: action.elementsEqual("stop".utf8))
            }
        }
        return nil
    }

    private init(
        kind: Kind, request: AuthzRequest, probes: Set<PlaybackKey>? = nil, stops: Bool = false,
        isScrobble: Bool = false
    ) {
        let own = Self.keys(of: request)
        self.kind = kind
        self.ownKeys = own
        self.probes = probes ?? own
        self.stops = stops
        self.isScrobble = isScrobble
    }

    static let headerKeys: [(name: [UInt8], kind: PlaybackKey.Kind)] = [
        (Array("x-plex-session-identifier".utf8), .sessionIdentifier),
        (Array("x-plex-playback-session-id".utf8), .sessionIdentifier),
        (Array("x-plex-session-id".utf8), .sessionIdentifier),
        (Array("x-plex-client-identifier".utf8), .clientIdentifier),
    ]
    static let queryOnlyKeys: [(name: [UInt8], kind: PlaybackKey.Kind)] = [
        (Array("session".utf8), .transcodeSession), (Array("playqueueid".utf8), .playQueue),
    ]
    static let referenceNames: [[UInt8]] = ["path", "uri", "key"].map { Array($0.utf8) }

    /// Every session key a request names: the identifier headers (also as query parameters), `session=`,
    /// `playQueueID`, and the `<uuid>` of a `/livetv/sessions/<uuid>` inside a `path`, `uri` or `key` value.
    static func keys(of request: AuthzRequest) -> Set<PlaybackKey> {
        var keys = Set<PlaybackKey>()
        for field in request.headers {
            for (name, kind) in headerKeys where field.name.utf8.equalsLowercased(name) {
                if let key = PlaybackKey(kind, value: field.value.utf8) { keys.insert(key) }
            }
        }
        let query = request.target.query
        for component in query.components {
            let name = query.decodedName(component)
            for (keyName, kind) in headerKeys + queryOnlyKeys where name.equalsLowercased(keyName) {
                if let key = PlaybackKey(kind, value: query.decodedValue(component)) { keys.insert(key) }
            }
            if referenceNames.contains(where: { name.equalsLowercased($0) }),
                let uuid = liveSessionUUID(in: query.decodedValue(component))
            {
                keys.insert(uuid)
            }
        }
        return keys
    }

    /// Whether a (form-decoded) parameter value names a live session (`/livetv/sessions/<uuid>`).
    public static func namesLiveSession(_ value: ArraySlice<UInt8>) -> Bool {
        liveSessionUUID(in: value) != nil
    }

    /// The `<uuid>` after `/livetv/sessions/` at one of the value's decoding layers (§5's four rounds).
    static func liveSessionUUID(in value: ArraySlice<UInt8>) -> PlaybackKey? {
        for (_, layer) in PercentDecoding.layers(of: value, style: .form, depth: .rounds(4)) {
            guard let start = firstRange(of: liveSessions, in: layer) else { continue }
            let uuid = layer[start...].prefix { $0 != 0x2F && $0 != 0x3F && $0 != 0x26 && $0 != 0x23 }
            return PlaybackKey(.uuid, value: uuid)
        }
        return nil
    }

    /// The index just after the first occurrence of `needle`.
    static func firstRange(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = haystack.startIndex
        while index + needle.count <= haystack.endIndex {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return index + needle.count }
            index += 1
        }
        return nil
    }
}
