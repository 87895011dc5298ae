import LiveTVAuthzCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The settings table: every setting of every command, declared once. A command lists the settings it
/// takes (`Settings.serve`, `Settings.plexAccess`, …); `--help`, the loader and `docs/configuration.md`
/// read the declarations.
public enum Settings {
    // MARK: Listeners and frontend trust

    public static let listen = Setting<[ListenAddress]>.list(
        "listen", env: ["PLEX_LIVETV_AUTHZ_LISTEN"], default: [.unix(path: "/run/plex-livetv-authz/authz.sock")],
        defaultText: "unix:/run/plex-livetv-authz/authz.sock", metavar: "ADDRESS", group: .listeners,
        help: "Where frontends ask for decisions: unix:/path or host:port (HTTP/1.1 and h2c).",
        expectation: "is neither unix:/absolute/path nor host:port", convert: ListenAddress.init)

    public static let grpcListen = Setting<[ListenAddress]>.list(
        "grpc-listen", env: ["PLEX_LIVETV_AUTHZ_GRPC_LISTEN"], default: [], defaultText: "off", metavar: "ADDRESS",
        group: .listeners,
        help:
            "Envoy ext_authz over gRPC (envoy.service.auth.v3.Authorization/Check, h2c) on unix:/path or host:port. Same trust rules as --listen; over TCP the key travels as x-plexauthz-key metadata.",
        expectation: "is neither unix:/absolute/path nor host:port", convert: ListenAddress.init)

    public static let socketMode = Setting<mode_t>.value(
        "socket-mode", env: ["PLEX_LIVETV_AUTHZ_SOCKET_MODE"], default: 0o660, defaultText: "660", metavar: "OCTAL",
        group: .listeners,
        help: "File mode of Unix sockets. The frontend's group needs write access; others never get any.",
        expectation: "must be an octal mode without access for others, e.g. 660"
    ) { text in
        guard let mode = mode_t(text, radix: 8), mode <= 0o777, mode & 0o007 == 0 else { return nil }
        return mode
    }

    public static let socketGroup = Setting<String?>.text(
        "socket-group", env: ["PLEX_LIVETV_AUTHZ_SOCKET_GROUP"], metavar: "GROUP", group: .listeners,
        help: "Group of Unix sockets: the frontend's (www-data for Debian's nginx).",
        defaultText: "the service's group")

    public static let frontendKeyFile = Setting<FrontendKeySource?>(
        "frontend-key-file", env: ["PLEX_LIVETV_AUTHZ_FRONTEND_KEY_FILE"], default: nil, defaultText: "none",
        arity: .value(metavar: "FILE"), group: .listeners,
        help:
            "File (mode 0600) holding the frontend key that TCP listeners require in X-Plexauthz-Key (at least 16 visible ASCII characters)."
    ) { texts in
        let path = texts.last ?? ""
        do {
            guard let key = FrontendKey(try SecretFile.read(path)) else {
                return .failure(SettingProblem("the key in \(path) must be at least 16 visible ASCII characters"))
            }
            return .success(FrontendKeySource(key: key, path: path))
        } catch {
            return .failure(SettingProblem("\(error)"))
        }
    }

    public static let frontendKey = Setting<FrontendKey?>(
        "frontend-key", flag: false, env: ["PLEX_LIVETV_AUTHZ_FRONTEND_KEY"], default: nil, defaultText: "none",
        arity: .value(metavar: "KEY"), group: .listeners,
        help: "The frontend key itself, from the environment (never a flag: it would show in process listings)."
    ) { texts in
        guard let key = FrontendKey(texts.last ?? "") else {
            return .failure(SettingProblem("the key must be at least 16 visible ASCII characters"))
        }
        return .success(key)
    }

    public static let allowFrontend = Setting<[String]>.list(
        "allow-frontend", env: ["PLEX_LIVETV_AUTHZ_ALLOW_FRONTENDS"], default: [], defaultText: "loopback only",
        metavar: "ADDRESS", group: .listeners,
        help: "A non-loopback frontend address allowed on TCP listeners (it must still present the key).",
        expectation: "is not an IP address"
    ) { text in
        let address = text.trimmingASCIIWhitespace()
        return address.isEmpty || address.contains("/") ? nil : address
    }

    // MARK: Plex Media Server

    public static let pmsURL = Setting<PMSURL>.value(
        "pms-url", env: ["IPTV_TUNERR_PMS_URL"], default: PMSURL("http://127.0.0.1:32400")!,
        defaultText: "http://127.0.0.1:32400", metavar: "URL", group: .plex,
        help: "Plex Media Server base URL: tokens are validated here, and references to it count as this server.",
        expectation: "is not an http(s)://host[:port] URL", convert: PMSURL.init)

    public static let ownerTokenFile = Setting<OwnerTokenSource?>(
        "owner-token-file", env: ["PLEX_LIVETV_AUTHZ_OWNER_TOKEN_FILE"], default: nil, defaultText: "none",
        arity: .value(metavar: "FILE"), group: .plex,
        help:
            "File (mode 0600) with the owner token (PlexOnlineToken in Plex's Preferences.xml); re-read on SIGHUP."
    ) { texts in
        let path = texts.last ?? ""
        do {
            return .success(OwnerTokenSource(token: try SecretFile.token(at: path), path: path))
        } catch {
            return .failure(SettingProblem("\(error)"))
        }
    }

    public static let ownerToken = Setting<PlexToken?>(
        "owner-token", flag: false,
        env: ["IPTV_TUNERR_PMS_OWNER_TOKEN", "PLEX_OWNER_TOKEN", "IPTV_TUNERR_PMS_TOKEN", "PLEX_TOKEN"], default: nil,
        defaultText: "none", arity: .value(metavar: "TOKEN"), group: .plex,
        help:
            "The owner token from the environment (the original proxy's variables, first set wins), e.g. from a systemd EnvironmentFile. Used when no token file is given."
    ) { texts in
        guard let token = PlexToken(texts.last ?? "") else {
            return .failure(SettingProblem("the token must be 1-4096 visible ASCII characters"))
        }
        return .success(token)
    }

    public static let validationTimeout = Setting<Duration>.duration(
        "validation-timeout", env: ["PLEX_LIVETV_AUTHZ_VALIDATION_TIMEOUT"], default: .seconds(3), group: .plex,
        help: "How long a token validation (GET /library/sections) may take before PMS counts as unavailable.")

    public static let readinessInterval = Setting<Duration>.duration(
        "readiness-interval", env: ["PLEX_LIVETV_AUTHZ_READINESS_INTERVAL"], default: .seconds(30), group: .plex,
        help: "How often PMS /identity is probed; /readyz fails after two missed probes.")

    public static let machineID = Setting<String?>.value(
        "machine-id", env: ["PLEX_LIVETV_AUTHZ_MACHINE_ID"], default: nil, defaultText: "read from PMS /identity",
        metavar: "ID", group: .plex,
        help: "PMS machine identifier that server:// references must name.",
        expectation: "is not a machine identifier"
    ) { text in
        !text.isEmpty && text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) ? text : nil
    }

    // MARK: Decisions

    public static let mode = Setting<ElevationMode>.value(
        "mode", env: ["PLEX_LIVETV_AUTHZ_MODE"], default: .liveTV, defaultText: "live-tv", metavar: "MODE",
        group: .decisions,
        help:
            "live-tv (the Live TV surfaces), discovery-only (guide and DVR browsing, no streams or writes) or all (every request but OPTIONS and the credential surfaces; still validated).",
        expectation: "must be live-tv, discovery-only or all", convert: ElevationMode.init(rawValue:))

    public static let cacheTTL = Setting<Duration>.duration(
        "cache-ttl", env: ["PLEX_LIVETV_AUTHZ_CACHE_TTL"], default: .seconds(300), group: .decisions,
        help: "How long a token PMS accepted stays valid without asking again.")

    public static let cacheSize = Setting<Int>.count(
        "cache-size", env: ["PLEX_LIVETV_AUTHZ_CACHE_SIZE"], default: 10_000, range: 1...10_000_000, group: .decisions,
        help: "Most valid tokens cached (least recently used evicted).")

    // MARK: Abuse blocking and audit

    public static let abuseThreshold = Setting<Int>.count(
        "abuse-threshold", env: ["IPTV_TUNERR_PROXY_ABUSE_THRESHOLD"], default: 5, range: 1...1_000_000,
        group: .abuse, help: "Failed Live TV elevation attempts inside one window that block a source.")

    public static let abuseWindow = Setting<Duration>.duration(
        "abuse-window", env: ["IPTV_TUNERR_PROXY_ABUSE_WINDOW"], default: .seconds(300), group: .abuse,
        help: "The window failures are counted in, from a source's first failure.")

    public static let abuseBlockDuration = Setting<Duration>.duration(
        "abuse-block-duration", env: ["IPTV_TUNERR_PROXY_ABUSE_BLOCK_DURATION"], default: .seconds(1800),
        group: .abuse, help: "How long a blocked source stays blocked.")

    public static let badAuthCooldown = Setting<Duration?>.disablableDuration(
        "bad-auth-cooldown", env: ["IPTV_TUNERR_PROXY_BAD_AUTH_COOLDOWN"], default: .seconds(120), group: .abuse,
        help: "After PMS rejects a token, deny that source+token pair this long without asking PMS again.")

    public static let abuseStateFile = Setting<String?>.text(
        "abuse-state-file", env: ["IPTV_TUNERR_PROXY_ABUSE_STATE_FILE"], metavar: "FILE", absolutePath: true,
        group: .abuse,
        help: "JSON file that keeps blocks and failure windows across restarts (absolute path; written 0600).",
        defaultText: "none (memory only)")

    public static let auditSummaryInterval = Setting<Duration?>.disablableDuration(
        "audit-summary-interval", env: ["IPTV_TUNERR_PROXY_AUDIT_SUMMARY_INTERVAL"], default: .seconds(300),
        group: .abuse, help: "Interval of the plexlabelproxy_audit_summary line.")

    // MARK: Live playback

    public static let playbackSessions = Setting<Int>.count(
        "playback-sessions", env: ["PLEX_LIVETV_AUTHZ_PLAYBACK_SESSIONS"], default: 1_000, range: 1...1_000_000,
        group: .playback,
        help:
            "Most Live TV playback sessions tracked at once (the least recently seen is forgotten first). A tracked session's player requests (segments without a token, timelines) are elevated from its source."
    )

    public static let playbackIdleTimeout = Setting<Duration>.duration(
        "playback-idle-timeout", env: ["PLEX_LIVETV_AUTHZ_PLAYBACK_IDLE_TIMEOUT"], default: .seconds(6 * 3600),
        group: .playback, help: "A tracked playback session unseen this long is forgotten.")

    public static let neutralizeOwnerHistory = Setting<Bool>.toggle(
        "neutralize-owner-history", env: ["IPTV_TUNERR_PLEX_NEUTRALIZE_OWNER_HISTORY"], group: .playback,
        help:
            "Tracked timelines and scrobbles reach Plex under the owner's token, so the owner's history fills with other people's viewing. With this on, the service unscrobbles each such item for the owner and replays the timeline or scrobble with the viewer's own token, in the background (4 at a time, 10 s each; dropped and counted when the queue is full)."
    )

    // MARK: Connections and operations

    public static let idleTimeout = Setting<Duration>.duration(
        "idle-timeout", env: ["PLEX_LIVETV_AUTHZ_IDLE_TIMEOUT"], default: .seconds(60), group: .operations,
        help: "Close keep-alive connections idle this long.")

    public static let maxConnections = Setting<Int>.count(
        "max-connections", env: ["PLEX_LIVETV_AUTHZ_MAX_CONNECTIONS"], default: 1024, range: 1...1_000_000,
        group: .operations,
        help:
            "Most open connections per listener (HTTP and gRPC alike); a connection over the cap is closed at once, and a flood on one listener never takes another's capacity."
    )

    public static let maxConnectionsPerPeer = Setting<Int>.count(
        "max-connections-per-peer", env: ["PLEX_LIVETV_AUTHZ_MAX_CONNECTIONS_PER_PEER"], default: 256,
        range: 1...1_000_000, group: .operations,
        help: "Most open connections from one TCP peer address on one listener (Unix sockets have no peer address).")

    public static let requestTimeout = Setting<Duration>.duration(
        "request-timeout", env: ["PLEX_LIVETV_AUTHZ_REQUEST_TIMEOUT"], default: .seconds(10), group: .operations,
        help:
            "A whole decision request (head and body) must arrive within this time from its first byte; a peer trickling bytes is answered 408 and closed."
    )

    public static let logLevel = Setting<Logger.Level>.value(
        "log-level", env: ["PLEX_LIVETV_AUTHZ_LOG_LEVEL"], default: .info, defaultText: "info", metavar: "LEVEL",
        group: .operations,
        help:
            "Operational log level: trace, debug, info, notice, warning, error or critical. Audit lines are written whatever the level.",
        expectation: "must be trace, debug, info, notice, warning, error or critical"
    ) { Logger.Level(rawValue: $0.lowercased()) }

    public static let stateStore = Setting<StateStoreURL?>.value(
        "state-store", env: ["PLEX_LIVETV_AUTHZ_STATE_STORE"], default: nil,
        defaultText: "none (this process's memory and --abuse-state-file)", metavar: "URL", group: .state,
        help:
            "Share blocks, cooldowns and tracked playbacks with other replicas through PostgreSQL: postgres://user:password@host:5432/database?sslmode=disable|prefer|require, or postgres://user@/database?host=/run/postgresql for a Unix socket. Put it in the environment (the password would show in process listings). Replaces --abuse-state-file.",
        expectation:
            "is not a postgres://user[:password]@host[:port]/database[?sslmode=…] or postgres://user@/database?host=/socket/dir URL"
    ) { StateStoreURL($0).map { Optional($0) } }

    public static let logFormat = Setting<LogFormat>.value(
        "log-format", env: ["PLEX_LIVETV_AUTHZ_LOG_FORMAT"], default: .logfmt, defaultText: "logfmt", metavar: "FORMAT",
        group: .operations,
        help:
            "logfmt: one text line per message, audit lines exactly as the original proxy wrote them (plexlabelproxy_audit: outcome=…). json: one JSON object per line, audit and summary lines with the same fields (\"log\":\"plexlabelproxy_audit\", \"outcome\":…), operational messages as {\"level\":…,\"message\":…}.",
        expectation: "must be logfmt or json"
    ) { LogFormat(rawValue: $0.lowercased()) }

    public static let shadow = Setting<Bool>.toggle(
        "shadow", env: ["PLEX_LIVETV_AUTHZ_SHADOW"], group: .decisions,
        help:
            "Shadow mode, for a first rollout: every decision is made, validated, counted and audited as usual (audit lines gain shadow=true), but the answer always keeps the user's own token and never blocks. Turn it off once the audit shows what you expect."
    )

    // MARK: Tools (enforce-prefs, validate)

    public static let publicURL = Setting<PMSURL?>.value(
        "public-url", env: ["PLEX_LIVETV_AUTHZ_PUBLIC_URL"], default: nil, defaultText: "required",
        metavar: "URL", group: .tools,
        help:
            "enforce-prefs: the URL clients use to reach your frontend, e.g. https://media.example.com:443. Plex advertises it (customConnections) and maps its port manually (ManualPortMappingMode=1, ManualPortMappingPort), with Relay off.",
        expectation: "is not an http(s)://host[:port] URL"
    ) { PMSURL($0).map { Optional($0) } }

    public static let dryRun = Setting<Bool>.toggle(
        "dry-run", env: [], group: .tools, help: "enforce-prefs: report the drift, change nothing.")

    public static let frontendURL = Setting<PMSURL?>.value(
        "frontend-url", env: ["PLEX_LIVETV_AUTHZ_FRONTEND_URL"], default: nil, defaultText: "required",
        metavar: "URL", group: .tools,
        help: "validate: the frontend as clients reach it, e.g. https://media.example.com.",
        expectation: "is not an http(s)://host[:port] URL"
    ) { PMSURL($0).map { Optional($0) } }

    public static let userTokenFile = Setting<PlexToken?>(
        "user-token-file", env: ["PLEX_LIVETV_AUTHZ_USER_TOKEN_FILE"], default: nil, defaultText: "none",
        arity: .value(metavar: "FILE"), group: .tools,
        help:
            "validate: file (mode 0600) with the token of a shared user who is not in Plex Home, to check that Live TV works for them and their libraries stay their own."
    ) { texts in
        do {
            return .success(try SecretFile.token(at: texts.last ?? ""))
        } catch {
            return .failure(SettingProblem("\(error)"))
        }
    }

    public static let directPMSURL = Setting<PMSURL?>.value(
        "direct-pms-url", env: ["PLEX_LIVETV_AUTHZ_DIRECT_PMS_URL"], default: nil, defaultText: "none",
        metavar: "URL", group: .tools,
        help:
            "validate: PMS as the outside would reach it directly (e.g. http://203.0.113.7:32400); it must not answer.",
        expectation: "is not an http(s)://host[:port] URL"
    ) { PMSURL($0).map { Optional($0) } }

    public static let service = Setting<ListenAddress>.value(
        "service", env: ["PLEX_LIVETV_AUTHZ_SERVICE"], default: .unix(path: "/run/plex-livetv-authz/authz.sock"),
        defaultText: "unix:/run/plex-livetv-authz/authz.sock", metavar: "ADDRESS", group: .tools,
        help:
            "blocks: the running service, as unix:/path or host:port (one of its --listen addresses; over TCP it needs the frontend key, from --frontend-key-file or PLEX_LIVETV_AUTHZ_FRONTEND_KEY).",
        expectation: "is neither unix:/absolute/path nor host:port", convert: ListenAddress.init)

    public static let json = Setting<Bool>.toggle(
        "json", env: [], group: .tools, help: "blocks list: one JSON array instead of the table.")

    public static let all = Setting<Bool>.toggle(
        "all", env: [], group: .tools, help: "blocks unblock: every source instead of one fingerprint.")

    // MARK: Commands

    /// `serve`: everything.
    public static let serve: [any AnySetting] = [
        listen, grpcListen, socketMode, socketGroup, frontendKeyFile, frontendKey, allowFrontend,
        pmsURL, ownerTokenFile, ownerToken, validationTimeout, readinessInterval, machineID,
        mode, cacheTTL, cacheSize,
        abuseThreshold, abuseWindow, abuseBlockDuration, badAuthCooldown, abuseStateFile, auditSummaryInterval,
        playbackSessions, playbackIdleTimeout, neutralizeOwnerHistory, idleTimeout, maxConnections,
        maxConnectionsPerPeer, requestTimeout, logLevel, logFormat, shadow, stateStore,
    ]

    /// Commands that talk to PMS as the owner take PMS and the owner token exactly as `serve` does.
    public static let plexAccess: [any AnySetting] = [pmsURL, ownerTokenFile, ownerToken, validationTimeout, logLevel]

    /// `enforce-prefs`.
    public static let enforcePrefs: [any AnySetting] = plexAccess + [publicURL, dryRun]

    /// `blocks list` / `blocks unblock`: the running service, or its state file when it is stopped.
    public static let blocks: [any AnySetting] = [
        service, frontendKeyFile, frontendKey, abuseStateFile, abuseThreshold, abuseWindow, abuseBlockDuration,
        badAuthCooldown, json, all,
    ]

    /// `validate`: no owner token; PMS only to read the user's own view.
    public static let validate: [any AnySetting] = [
        frontendURL, userTokenFile, pmsURL, directPMSURL, validationTimeout,
    ]
}

/// The owner token read from a file (the path is kept for SIGHUP reloads).
public struct OwnerTokenSource: Sendable {
    public let token: PlexToken
    public let path: String
}

/// The frontend key read from a file.
public struct FrontendKeySource: Sendable {
    public let key: FrontendKey
    public let path: String
}

extension Configuration {
    /// The owner token: the file's, else the environment's.
    public var ownerToken: PlexToken? { self[Settings.ownerTokenFile]?.token ?? self[Settings.ownerToken] }

    /// The frontend key: the file's, else the environment's.
    public var frontendKey: FrontendKey? { self[Settings.frontendKeyFile]?.key ?? self[Settings.frontendKey] }

    /// The abuse limits.
    public var abusePolicy: AbusePolicy {
        AbusePolicy(
            threshold: self[Settings.abuseThreshold], window: self[Settings.abuseWindow],
            blockDuration: self[Settings.abuseBlockDuration], cooldown: self[Settings.badAuthCooldown])
    }

    /// Sets the four abuse settings from a policy (tests and tools that build a configuration by hand).
    public mutating func set(abusePolicy policy: AbusePolicy) {
        set(Settings.abuseThreshold, policy.threshold)
        set(Settings.abuseWindow, policy.window)
        set(Settings.abuseBlockDuration, policy.blockDuration)
        set(Settings.badAuthCooldown, policy.cooldown)
    }

    /// The playback-tracking limits.
    public var playbackPolicy: PlaybackPolicy {
        PlaybackPolicy(maximumSessions: self[Settings.playbackSessions], idleExpiry: self[Settings.playbackIdleTimeout])
    }

    /// The owner token is required: one problem naming every place it can come from.
    public func requireOwnerToken() -> [ConfigurationProblem] {
        guard ownerToken == nil else { return [] }
        return [
            ConfigurationProblem(
                setting: ([Settings.ownerTokenFile.names, Settings.ownerToken.names]).joined(separator: " / "),
                message:
                    "the owner token is required (PlexOnlineToken in Plex's Preferences.xml); put it in a 0600 file")
        ]
    }

    /// Cross-setting rules of `serve`: the owner token; the key for TCP listeners; an allow-list for
    /// non-loopback ones.
    public func serveProblems() -> [ConfigurationProblem] {
        var problems = requireOwnerToken()
        if isGiven(Settings.stateStore), isGiven(Settings.abuseStateFile) {
            problems.append(
                ConfigurationProblem(
                    setting: "\(Settings.stateStore.names) and \(Settings.abuseStateFile.names)",
                    message: "give one: the shared store keeps the state the file would"))
        }
        let tcp = (self[Settings.listen] + self[Settings.grpcListen]).filter {
            if case .tcp = $0 { return true } else { return false }
        }
        let keyNames = [Settings.frontendKeyFile.names, Settings.frontendKey.names].joined(separator: " / ")
        if !tcp.isEmpty, frontendKey == nil {
            problems.append(
                ConfigurationProblem(
                    setting: keyNames,
                    message:
                        "a TCP listener (\(tcp.map(\.description).joined(separator: ", "))) needs the frontend key: the answers carry the owner token"
                ))
        }
        if tcp.contains(where: { !$0.isLocal }), self[Settings.allowFrontend].isEmpty {
            problems.append(
                ConfigurationProblem(
                    Settings.allowFrontend, "a non-loopback TCP listener needs an explicit list of frontend addresses"))
        }
        return problems
    }
}
