/// One audit line (elevation-rules §9). The prefix and field names are those of the original proxy, so
/// operators' `journalctl -g 'plexlabelproxy_audit'` and `-g 'outcome=deny_'` searches keep working.
///
/// Nothing raw goes in: the path is escaped and has no query (the token lives there), the source and the
/// token appear only as fingerprints.
public struct AuditEvent: Sendable {
    public static let prefix = "plexlabelproxy_audit:"
    public static let summaryPrefix = "plexlabelproxy_audit_summary:"

    public var outcome: AuditOutcome
    public var method: String
    public var target: RequestTarget
    public var surface: ElevationRule?
    public var rule: ElevationRule
    public var source: SourceIdentity
    /// `sha256:…` of the inbound token, or `missing`.
    public var tokenFingerprint: String
    public var reason: String
    /// For `bad_actor_blocked`: the failures that crossed the threshold, the window and the block.
    public var block: (failures: Int, window: Duration, blockedFor: Duration)?

    public init(
        outcome: AuditOutcome, method: String, target: RequestTarget, surface: ElevationRule?, rule: ElevationRule,
        source: SourceIdentity, tokenFingerprint: String, reason: String,
        block: (failures: Int, window: Duration, blockedFor: Duration)? = nil
    ) {
        self.outcome = outcome
        self.method = method
        self.target = target
        self.surface = surface
        self.rule = rule
        self.source = source
        self.tokenFingerprint = tokenFingerprint
        self.reason = reason
        self.block = block
    }

    /// The line, e.g. `plexlabelproxy_audit: outcome=elevated_live_tv method=GET path=/livetv/dvrs …`.
    public var line: String {
        let liveTV = surface != nil && surface != .all
        var text = Self.prefix
        text += " outcome=\(outcome.rawValue)"
        text += " method=\(Self.escapeToken(method.utf8))"
        text += " path=\(Self.escapeToken(target.path))"
        text += " live_tv=\(liveTV) discovery=\(surface?.isDiscovery ?? false) stream=\(surface?.isStream ?? false)"
        text += " source=\(source.fingerprint) forwarded_for_count=\(source.forwardedForCount)"
        text += " cf_connecting_ip=\(source.cfConnectingIP) token_fp=\(tokenFingerprint) rule=\(rule.rawValue)"
        if let block {
            text += " failures=\(block.failures) window=\(GoDuration.format(block.window))"
            text += " blocked_for=\(GoDuration.format(block.blockedFor))"
        }
        text += " reason=\(Self.quote(reason))"
        return text
    }

    /// Percent-escapes every byte that could split a line or forge a field: controls, space, `"`, `\`,
    /// `%`, DEL and non-ASCII. An empty value is written as `-`.
    public static func escapeToken(_ bytes: some Collection<UInt8>) -> String {
        guard !bytes.isEmpty else { return "-" }
        let escaped = PercentEscaping.escape(bytes) {
            !($0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C && $0 != 0x25)
        }
        return String(decoding: escaped, as: UTF8.self)
    }

    /// A double-quoted value with `"`, `\` and control bytes escaped.
    public static func quote(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                output += "\\x" + (hex.count == 1 ? "0" : "") + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }
}

/// The counters behind the periodic `plexlabelproxy_audit_summary:` line; reset after each line.
public struct AuditCounters: Sendable {
    public var since: Timestamp
    public var elevated = 0
    public var denyMissing = 0
    public var denyUnauthorized = 0
    public var denyAuthCooldown = 0
    public var denyUnavailable = 0
    public var cacheHits = 0
    public var cacheMisses = 0
    public var blockedSources = 0
    public var blockedRequests = 0
    /// Tokenless player media of no tracked session (§12.3): never an audit line, only this count.
    public var denyMissingMedia = 0
    public var denySessionMismatch = 0
    /// Denials and rejections per source fingerprint (bounded; the totals stay exact).
    public private(set) var perSource: [String: Int] = [:]
    public static let maximumTrackedSources = 10_000

    public init(since: Timestamp) {
        self.since = since
    }

    public mutating func record(_ outcome: AuditOutcome, source: String) {
        switch outcome {
        case .elevatedLiveTV: elevated += 1
        case .denyMissingToken: denyMissing += 1
        case .denyUnauthorizedToken: denyUnauthorized += 1
        case .denyAuthCooldown: denyAuthCooldown += 1
        case .denyValidationUnavailable: denyUnavailable += 1
        case .badActorBlocked: blockedSources += 1
        case .blockedBadActor: blockedRequests += 1
        case .denySessionMismatch: denySessionMismatch += 1
        }
        switch outcome {
        case .denyMissingToken, .denyUnauthorizedToken, .denyAuthCooldown, .blockedBadActor, .denySessionMismatch:
            if perSource[source] != nil || perSource.count < Self.maximumTrackedSources {
                perSource[source, default: 0] += 1
            }
        default:
            break
        }
    }

    /// The summary line; `top_sources` lists at most five sources by denials, most first.
    public var summaryLine: String {
        let top = perSource.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(5)
            .map { "\($0.key):\($0.value)" }.joined(separator: ",")
        return "\(AuditEvent.summaryPrefix) since=\(since.rfc3339) elevated=\(elevated) deny_missing=\(denyMissing)"
            + " deny_unauthorized=\(denyUnauthorized) deny_auth_cooldown=\(denyAuthCooldown)"
            + " deny_unavailable=\(denyUnavailable) auth_cache_hit=\(cacheHits) auth_cache_miss=\(cacheMisses)"
            + " blocked_sources=\(blockedSources) blocked_requests=\(blockedRequests)"
            + " deny_missing_media=\(denyMissingMedia) deny_session_mismatch=\(denySessionMismatch) top_sources=\"\(top)\""
    }
}
