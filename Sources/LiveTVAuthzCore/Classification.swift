/// Why the classifier reached its rule: the text of `explain` and of the audit line's `reason=`.
public enum ClassificationReason: Sendable, Hashable, CustomStringConvertible {
    case unsafePath(UnsafePathReason)
    case tokenSmuggling
    case bodyUnseen(ElevationRule)
    case queryTokenKept(ElevationRule)
    case noToken(ElevationRule, unusable: Bool, hopByHop: Bool)
    case matched(ElevationRule)
    case notCandidate(NearMiss?)

    public var description: String {
        switch self {
        case .unsafePath(let reason):
            return "unsafe path: \(reason)"
        case .tokenSmuggling:
            return "a query parameter decodes to x-plex-token but is not spelled X-Plex-Token"
        case .bodyUnseen(let surface):
            return "\(surface.rawValue) request has a body the service could not inspect"
        case .queryTokenKept(let surface):
            return "\(surface.rawValue) candidate with its token in the query, from a frontend that cannot remove it"
        case .noToken(let surface, let unusable, let hopByHop):
            let detail =
                unusable
                ? "the token is not usable (blank inside, control or non-ASCII bytes, or too long)"
                : hopByHop ? "the only token is in a header that Connection marks hop-by-hop" : "no X-Plex-Token"
            return "\(surface.rawValue) candidate without a token: \(detail)"
        case .matched(let surface):
            return Self.matchText(surface)
        case .notCandidate(nil):
            return "not a Live TV surface"
        case .notCandidate(let nearMiss?):
            return nearMiss.description
        }
    }

    static func matchText(_ surface: ElevationRule) -> String {
        switch surface {
        case .livetv: return "read under /livetv/"
        case .livetvTune: return "POST to a channel tune endpoint (stream start)"
        case .providers: return "read of /media/providers"
        case .grabbers: return "read under /media/grabbers/"
        case .epgProvider: return "read under the XMLTV guide provider"
        case .subscriptionsRead: return "read of DVR subscriptions"
        case .subscriptionsTemplate: return "subscription template read with Live TV evidence"
        case .subscriptionsWrite: return "subscription change whose every evidence key is a Live TV reference"
        case .subscriptionsTeardown: return "DELETE of a numbered subscription with a playback session id"
        case .transcode: return "transcode helper whose every path value is a Live TV reference"
        case .playQueue: return "play queue whose every uri/path value is a Live TV reference"
        case .timeline: return "timeline whose every key value is a Live TV reference"
        case .rootReferer: return "server root or identity read from a Live TV page (Referer)"
        case .all: return "all mode: every request but OPTIONS is a candidate"
        default: return surface.rawValue
        }
    }
}

/// The closest surface a non-candidate came to, so `explain` can say why it missed.
public enum NearMiss: Sendable, Hashable, CustomStringConvertible {
    /// The path fits the surface but the method does not.
    case method(ElevationRule, String)
    /// The path and method fit, but no inspected parameter was present.
    case evidenceMissing(ElevationRule)
    /// An inspected parameter (or body) is not a Live TV reference.
    case evidenceNotLiveTV(ElevationRule)
    /// The surface exists but the mode excludes it.
    case mode(ElevationRule, ElevationMode)
    /// A credential or configuration surface (fine print 12): never elevated, in any mode.
    case credentialSurface

    public var description: String {
        switch self {
        case .method(let surface, let method):
            return
                "path fits \(surface.rawValue) but method \(method.isEmpty ? "(empty)" : method) is not elevated there"
        case .evidenceMissing(let surface):
            return "path fits \(surface.rawValue) but carries no Live TV evidence"
        case .evidenceNotLiveTV(let surface):
            return "path fits \(surface.rawValue) but a parameter or body value is not a Live TV reference"
        case .mode(let surface, let mode):
            return "\(surface.rawValue) is not elevated in \(mode.rawValue) mode"
        case .credentialSurface:
            return "credential or configuration surface: never elevated, in any mode"
        }
    }
}

/// The classifier's verdict on one request, before any token validation.
public struct Classification: Sendable {
    /// What the request is, in one value: refused outright, a candidate on a surface, or not a candidate.
    public let verdict: Verdict
    /// Why.
    public let reason: ClassificationReason
    /// The token facts.
    public let token: TokenLocation
    /// The parsed target (reused by the rewrite).
    public let target: RequestTarget

    /// The classifier's three answers.
    public enum Verdict: Sendable, Hashable {
        /// Refused (`unsafe-path`, `token-smuggling`, `body-unseen` before any surface question,
        /// `query-token-kept` for a candidate): never elevated, never audited, never counted.
        case refused(ElevationRule)
        /// An elevation candidate on this surface. Only candidates are audited, counted for abuse, or blocked.
        case candidate(ElevationRule)
        /// Not a Live TV surface: the inbound token is preserved.
        case notCandidate
    }

    /// The matched surface for candidates (including `no-token` ones), `nil` otherwise.
    public var surface: ElevationRule? {
        if case .candidate(let surface) = verdict { return surface }
        return nil
    }

    /// The rule a decision reports: the refusal, `no-token` for a candidate without a usable token, the
    /// surface, or `none`.
    public var rule: ElevationRule {
        switch verdict {
        case .refused(let rule): return rule
        case .candidate(let surface): return token.token == nil ? .noToken : surface
        case .notCandidate: return .none
        }
    }

    /// A candidate with a usable token: elevated once the token is proven valid.
    public var mayElevate: Bool { surface != nil && token.token != nil }
}
