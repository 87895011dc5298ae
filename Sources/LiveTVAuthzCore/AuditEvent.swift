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
    /// Decided in shadow mode: computed and counted, but the answer preserved the user's token.
    public var shadow = false

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
    public var line: String { AuditField.logfmt(Self.prefix, fields) }

    /// The same fields as one JSON object (`--log-format json`), `"log":"plexlabelproxy_audit"` first.
    public var json: String { AuditField.json("plexlabelproxy_audit", fields) }

    /// The fields in their order; `shadow=true` is added only in shadow mode, so lines stay those of the
    /// original proxy otherwise.
    public var fields: [(String, AuditField)] {
        let liveTV = surface != nil && surface != .all
        var fields: [(String, AuditField)] = [
            ("outcome", .bare(outcome.rawValue)), ("method", .bare(Self.escapeToken(method.utf8))),
            ("path", .bare(Self.escapeToken(target.path))), ("live_tv", .flag(liveTV)),
            ("discovery", .flag(surface?.isDiscovery ?? false)), ("stream", .flag(surface?.isStream ?? false)),
            ("source", .bare(source.fingerprint)), ("forwarded_for_count", .number(source.forwardedForCount)),
            ("cf_connecting_ip", .flag(source.cfConnectingIP)), ("token_fp", .bare(tokenFingerprint)),
            ("rule", .bare(rule.rawValue)),
        ]
        if let block {
            fields += [
                ("failures", .number(block.failures)), ("window", .bare(GoDuration.format(block.window))),
                ("blocked_for", .bare(GoDuration.format(block.blockedFor))),
            ]
        }
        if shadow { fields.append(("shadow", .flag(true))) }
        fields.append(("reason", .quoted(reason)))
        return fields
    }

    /// Percent-escapes every byte that could split a line or forge a field: controls, space, `"`, `\`,
    /// `%`, DEL and non-ASCII. An empty value is written as `-`.
    public static func escapeToken(_ bytes: some Collection<UInt8>) -> String {
        guard !bytes.isEmpty else { return "-" }
        let safe: (UInt8) -> Bool = { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C && $0 != 0x25 }
        // Every audited request has a path; almost none needs escaping.
        if bytes.allSatisfy(safe) { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: PercentEscaping.escape(bytes) { !safe($0) }, as: UTF8.self)
    }

    /// A double-quoted value with `"`, `\` and control bytes escaped.
    public static func quote(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F && $0 != 0x22 && $0 != 0x5C }) { return "\"" + text + "\"" }
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
    public var summaryLine: String { AuditField.logfmt(AuditEvent.summaryPrefix, summaryFields) }

    /// The summary as one JSON object (`--log-format json`).
    public var summaryJSON: String { AuditField.json("plexlabelproxy_audit_summary", summaryFields) }

    public var summaryFields: [(String, AuditField)] {
        let top = perSource.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(5)
            .map { "\($0.key):\($0.value)" }.joined(separator: ",")
        return [
            ("since", .bare(since.rfc3339)), ("elevated", .number(elevated)), ("deny_missing", .number(denyMissing)),
            ("deny_unauthorized", .number(denyUnauthorized)), ("deny_auth_cooldown", .number(denyAuthCooldown)),
            ("deny_unavailable", .number(denyUnavailable)), ("auth_cache_hit", .number(cacheHits)),
            ("auth_cache_miss", .number(cacheMisses)), ("blocked_sources", .number(blockedSources)),
            ("blocked_requests", .number(blockedRequests)), ("deny_missing_media", .number(denyMissingMedia)),
            ("deny_session_mismatch", .number(denySessionMismatch)), ("top_sources", .literalQuoted(top)),
        ]
    }
}

/// An operator's action on the guard's state (`blocks unblock`): an audit line of its own,
/// `plexlabelproxy_audit: outcome=operator_unblock source=sha256:… count=1`.
public struct OperatorAuditEvent: Sendable {
    public var action: String
    /// A source fingerprint, or `all`.
    public var source: String
    public var count: Int

    public init(action: String, source: String, count: Int) {
        self.action = action
        self.source = source
        self.count = count
    }

    public var fields: [(String, AuditField)] {
        [("outcome", .bare(action)), ("source", .bare(AuditEvent.escapeToken(source.utf8))), ("count", .number(count))]
    }
    public var line: String { AuditField.logfmt(AuditEvent.prefix, fields) }
    public var json: String { AuditField.json("plexlabelproxy_audit", fields) }
}

/// One field value of an audit or summary line, written as logfmt (the original proxy's lines) or JSON.
public enum AuditField: Sendable, Equatable {
    /// Already safe text (escaped paths, ids, fingerprints): bare in logfmt, a string in JSON.
    case bare(String)
    /// Free text: quoted and escaped in logfmt.
    case quoted(String)
    /// Text quoted as it is in logfmt (no escaping needed: fingerprints and counts).
    case literalQuoted(String)
    case flag(Bool)
    case number(Int)

    var logfmt: String {
        switch self {
        case .bare(let text): text
        case .quoted(let text): AuditEvent.quote(text)
        case .literalQuoted(let text): "\"\(text)\""
        case .flag(let flag): String(flag)
        case .number(let number): String(number)
        }
    }

    var json: String {
        switch self {
        case .bare(let text), .quoted(let text), .literalQuoted(let text): Self.jsonString(text)
        case .flag(let flag): String(flag)
        case .number(let number): String(number)
        }
    }

    static func logfmt(_ prefix: String, _ fields: [(String, AuditField)]) -> String {
        var text = prefix
        text.reserveCapacity(384)
        for (name, value) in fields {
            text.append(" ")
            text.append(name)
            text.append("=")
            text.append(value.logfmt)
        }
        return text
    }

    static func json(_ kind: String, _ fields: [(String, AuditField)]) -> String {
        var text = "{\"log\":\(jsonString(kind))"
        for (name, value) in fields { text += ",\(jsonString(name)):\(value.json)" }
        return text + "}"
    }

    /// A JSON string: `"`, `\\` and control characters escaped, everything else as it is.
    public static func jsonString(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }
}
