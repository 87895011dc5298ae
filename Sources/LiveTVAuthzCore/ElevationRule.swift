/// The stable rule ids of elevation-rules.md. Decisions, `explain` output, audit lines, metrics and tests
/// all use these strings.
public enum ElevationRule: String, Sendable, Hashable, CaseIterable {
    // Refusals, in reporting order (elevation-rules §4 and fine print 11).
    case unsafePath = "unsafe-path"
    case tokenSmuggling = "token-smuggling"
    case bodyUnseen = "body-unseen"
    /// A candidate whose token is in the query, asked by a frontend that cannot remove query parameters
    /// (Traefik): the owner token would reach Plex beside the user's.
    case queryTokenKept = "query-token-kept"
    case noToken = "no-token"
    // Surfaces, in table order: the first matching row wins (fine print 3).
    case livetv
    case livetvTune = "livetv-tune"
    case providers
    case grabbers
    case epgProvider = "epg-provider"
    case subscriptionsRead = "subscriptions-read"
    case subscriptionsTemplate = "subscriptions-template"
    case subscriptionsWrite = "subscriptions-write"
    case subscriptionsTeardown = "subscriptions-teardown"
    case transcode
    case playQueue = "play-queue"
    case timeline
    case rootReferer = "root-referer"
    /// Every request but `OPTIONS` in `all` mode.
    case all
    // Tracked playback (§12.2): decided by the guard from a tracked session, never by the classifier.
    /// A media read of a tracked session, from its source, with its user's token or none.
    case trackedSegment = "tracked-segment"
    /// A keep-alive (timeline, progress, scrobble, transcode ping/stop) naming a tracked session.
    case trackedTimeline = "tracked-timeline"
    /// Not a candidate.
    case none

    /// The surfaces of the §4 table in row order.
    public static let surfaces: [ElevationRule] = [
        .livetv, .livetvTune, .providers, .grabbers, .epgProvider, .subscriptionsRead, .subscriptionsTemplate,
        .subscriptionsWrite, .subscriptionsTeardown, .transcode, .playQueue, .timeline, .rootReferer,
    ]

    /// The rules only the guard reports (from tracked sessions); the classifier never does.
    public static let guardOnly: [ElevationRule] = [.trackedSegment, .trackedTimeline]

    /// Surfaces that browse the guide and DVR (audit field `discovery`).
    public var isDiscovery: Bool {
        switch self {
        case .livetv, .providers, .grabbers, .epgProvider, .subscriptionsRead, .subscriptionsTemplate, .rootReferer:
            return true
        default:
            return false
        }
    }

    /// Surfaces that start, keep or tear down playback (audit field `stream`).
    public var isStream: Bool {
        switch self {
        case .livetvTune, .transcode, .playQueue, .timeline, .subscriptionsTeardown, .trackedSegment,
            .trackedTimeline:
            return true
        default: return false
        }
    }
}

/// Which requests may be candidates (CLI `--mode`, env `PLEX_LIVETV_AUTHZ_MODE`).
public enum ElevationMode: String, Sendable, Hashable, CaseIterable {
    /// The §4 table (default).
    case liveTV = "live-tv"
    /// Guide and DVR browsing only: no streams, no writes.
    case discoveryOnly = "discovery-only"
    /// Every request but `OPTIONS`: the blunt compatibility mode, still gated by validation, §2 and §6.
    case all

    /// Whether the mode allows a surface.
    func allows(_ surface: ElevationRule) -> Bool {
        switch self {
        case .liveTV: return surface != .all
        case .all: return surface == .all
        case .discoveryOnly:
            switch surface {
            case .livetv, .providers, .grabbers, .epgProvider, .subscriptionsRead, .subscriptionsTemplate,
                .rootReferer:
                return true
            default:
                return false
            }
        }
    }
}
