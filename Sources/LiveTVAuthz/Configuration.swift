import Foundation
import LiveTVAuthzCore
import Logging

/// Everything `serve` needs, validated. Loaded from flags, then environment variables (the original
/// proxy's names where it had one), then defaults; every problem is collected before anything starts.
public struct Configuration: Sendable {
    /// Where to listen (`--listen`, `PLEX_LIVETV_AUTHZ_LISTEN`).
    public var listeners: [ListenAddress] = [.unix(path: "/run/plex-livetv-authz/authz.sock")]
    /// Envoy ext_authz gRPC listeners (`--grpc-listen`, `PLEX_LIVETV_AUTHZ_GRPC_LISTEN`); none by default.
    public var grpcListeners: [ListenAddress] = []
    /// Unix socket mode (`--socket-mode`, `PLEX_LIVETV_AUTHZ_SOCKET_MODE`, octal).
    public var socketMode: mode_t = 0o660
    /// Unix socket group (`--socket-group`, `PLEX_LIVETV_AUTHZ_SOCKET_GROUP`).
    public var socketGroup: String?
    /// The frontend key for TCP listeners (file or `PLEX_LIVETV_AUTHZ_FRONTEND_KEY`).
    public var frontendKey: String?
    /// Non-loopback frontends allowed on TCP listeners.
    public var allowedFrontends: [String] = []
    /// The Plex Media Server (`--pms-url`, `IPTV_TUNERR_PMS_URL`).
    public var pmsURL = PMSURL("http://127.0.0.1:32400")!
    /// The owner token (file, or the original proxy's env variables).
    public var ownerToken: PlexToken
    /// The file the owner token came from (re-read on SIGHUP), if any.
    public var ownerTokenFile: String?
    public var mode: ElevationMode = .liveTV
    /// PMS machine identifier; learnt from `/identity` when not set.
    public var machineIdentifier: String?
    public var validationTimeout: Duration = .seconds(3)
    public var cacheTTL: Duration = .seconds(300)
    public var cacheSize = 10_000
    public var abuse = AbusePolicy()
    public var abuseStateFile: String?
    /// `nil` disables the summary line.
    public var auditSummaryInterval: Duration? = .seconds(300)
    public var idleTimeout: Duration = .seconds(60)
    public var maximumConnections = 1024
    public var readinessInterval: Duration = .seconds(30)
    public var logLevel: Logger.Level = .info

    /// A problem with one setting, naming its flag and environment variable.
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let setting: String
        public let message: String
        public var description: String { "\(setting): \(message)" }
    }

    /// The flags as given on the command line (`nil` = not given).
    public struct Flags: Sendable {
        public var listen: [String] = []
        public var grpcListen: [String] = []
        public var socketMode: String?
        public var socketGroup: String?
        public var frontendKeyFile: String?
        public var allowFrontend: [String] = []
        public var pmsURL: String?
        public var ownerTokenFile: String?
        public var mode: String?
        public var machineID: String?
        public var validationTimeout: String?
        public var cacheTTL: String?
        public var cacheSize: String?
        public var abuseThreshold: String?
        public var abuseWindow: String?
        public var abuseBlockDuration: String?
        public var abuseStateFile: String?
        public var badAuthCooldown: String?
        public var auditSummaryInterval: String?
        public var idleTimeout: String?
        public var maxConnections: String?
        public var readinessInterval: String?
        public var logLevel: String?

        public init() {}
    }

    init(ownerToken: PlexToken) {
        self.ownerToken = ownerToken
    }

    /// Every problem found, in the order of the settings.
    public struct Problems: Error, CustomStringConvertible {
        public let list: [Problem]
        public var description: String { list.map(\.description).joined(separator: "\n") }
    }

    /// Loads and validates; returns every problem at once.
    public static func load(flags: Flags, environment: [String: String]) -> Result<Configuration, Problems> {
        var problems: [Problem] = []
        func value(_ flag: String?, _ variables: [String]) -> (String, String)? {
            if let flag, !flag.isEmpty { return (flag, "flag") }
            for variable in variables {
                if let text = environment[variable], !text.trimmingCharacters(in: .whitespaces).isEmpty {
                    return (text.trimmingCharacters(in: .whitespaces), variable)
                }
            }
            return nil
        }
        func problem(_ flag: String, _ variables: [String], _ message: String) {
            let names = (["--\(flag)"] + variables).joined(separator: " / ")
            problems.append(Problem(setting: names, message: message))
        }
        /// A Go duration; zero or unset means the default; negative disables when allowed, else an error.
        func duration(
            _ flag: String, _ given: String?, _ variable: String, default fallback: Duration, negativeDisables: Bool
        ) -> Duration? {
            guard let (text, _) = value(given, [variable]) else { return fallback }
            guard let parsed = GoDuration.parse(text) else {
                problem(flag, [variable], "\"\(text)\" is not a Go duration (examples: 30s, 5m, 1h30m, -1s)")
                return fallback
            }
            if parsed == .zero { return fallback }
            if parsed < .zero {
                if negativeDisables { return nil }
                problem(flag, [variable], "must be positive, got \(text)")
                return fallback
            }
            return parsed
        }
        func integer(
            _ flag: String, _ given: String?, _ variable: String, default fallback: Int, range: ClosedRange<Int>
        ) -> Int {
            guard let (text, _) = value(given, [variable]) else { return fallback }
            guard let parsed = Int(text), range.contains(parsed) else {
                problem(
                    flag, [variable],
                    "\"\(text)\" must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                return fallback
            }
            return parsed == 0 ? fallback : parsed
        }

        // Owner token: a file (re-read on SIGHUP) or the original proxy's variables, in its order.
        let tokenVariables = ["IPTV_TUNERR_PMS_OWNER_TOKEN", "PLEX_OWNER_TOKEN", "IPTV_TUNERR_PMS_TOKEN", "PLEX_TOKEN"]
        var owner: PlexToken? = nil
        var ownerFile: String? = nil
        if let (path, _) = value(flags.ownerTokenFile, ["PLEX_LIVETV_AUTHZ_OWNER_TOKEN_FILE"]) {
            ownerFile = path
            do { owner = try OwnerTokenFile.read(path) } catch {
                problem("owner-token-file", ["PLEX_LIVETV_AUTHZ_OWNER_TOKEN_FILE"], "\(error)")
            }
        } else if let (text, variable) = value(nil, tokenVariables) {
            owner = PlexToken(text)
            if owner == nil {
                problem("owner-token-file", [variable], "the token must be 1-4096 visible ASCII characters")
            }
        } else {
            problem(
                "owner-token-file", ["PLEX_LIVETV_AUTHZ_OWNER_TOKEN_FILE"] + tokenVariables,
                "the owner token is required (PlexOnlineToken in Plex's Preferences.xml); put it in a 0600 file")
        }
        var config = Configuration(ownerToken: owner ?? PlexToken("unset")!)
        config.ownerTokenFile = ownerFile

        // Listeners and frontend trust.
        var listenTexts = flags.listen
        if listenTexts.isEmpty, let (text, _) = value(nil, ["PLEX_LIVETV_AUTHZ_LISTEN"]) {
            listenTexts = text.split(separator: ",").map(String.init)
        }
        if !listenTexts.isEmpty {
            config.listeners = []
            for text in listenTexts {
                if let address = ListenAddress(text) {
                    config.listeners.append(address)
                } else {
                    problem(
                        "listen", ["PLEX_LIVETV_AUTHZ_LISTEN"],
                        "\"\(text)\" is neither unix:/absolute/path nor host:port")
                }
            }
        }
        var grpcTexts = flags.grpcListen
        if grpcTexts.isEmpty, let (text, _) = value(nil, ["PLEX_LIVETV_AUTHZ_GRPC_LISTEN"]) {
            grpcTexts = text.split(separator: ",").map(String.init)
        }
        for text in grpcTexts {
            if let address = ListenAddress(text) {
                config.grpcListeners.append(address)
            } else {
                problem(
                    "grpc-listen", ["PLEX_LIVETV_AUTHZ_GRPC_LISTEN"],
                    "\"\(text)\" is neither unix:/absolute/path nor host:port")
            }
        }
        if let (text, _) = value(flags.socketMode, ["PLEX_LIVETV_AUTHZ_SOCKET_MODE"]) {
            if let mode = mode_t(text, radix: 8), mode <= 0o777, mode & 0o007 == 0 {
                config.socketMode = mode
            } else {
                problem(
                    "socket-mode", ["PLEX_LIVETV_AUTHZ_SOCKET_MODE"],
                    "\"\(text)\" must be an octal mode without access for others, e.g. 660")
            }
        }
        config.socketGroup = value(flags.socketGroup, ["PLEX_LIVETV_AUTHZ_SOCKET_GROUP"])?.0
        if let (path, _) = value(flags.frontendKeyFile, ["PLEX_LIVETV_AUTHZ_FRONTEND_KEY_FILE"]) {
            do { config.frontendKey = try OwnerTokenFile.readSecret(path) } catch {
                problem("frontend-key-file", ["PLEX_LIVETV_AUTHZ_FRONTEND_KEY_FILE"], "\(error)")
            }
        } else if let (text, _) = value(nil, ["PLEX_LIVETV_AUTHZ_FRONTEND_KEY"]) {
            config.frontendKey = text
        }
        if let key = config.frontendKey, key.utf8.count < 16 || !key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            problem(
                "frontend-key-file", ["PLEX_LIVETV_AUTHZ_FRONTEND_KEY_FILE", "PLEX_LIVETV_AUTHZ_FRONTEND_KEY"],
                "the key must be at least 16 visible ASCII characters")
        }
        config.allowedFrontends = flags.allowFrontend
        if config.allowedFrontends.isEmpty, let (text, _) = value(nil, ["PLEX_LIVETV_AUTHZ_ALLOW_FRONTENDS"]) {
            config.allowedFrontends = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let tcp = (config.listeners + config.grpcListeners).filter {
            if case .tcp = $0 { return true } else { return false }
        }
        if !tcp.isEmpty, config.frontendKey == nil {
            problem(
                "frontend-key-file", ["PLEX_LIVETV_AUTHZ_FRONTEND_KEY_FILE", "PLEX_LIVETV_AUTHZ_FRONTEND_KEY"],
                "a TCP listener (\(tcp.map(\.description).joined(separator: ", "))) needs the frontend key: the answers carry the owner token"
            )
        }
        if tcp.contains(where: { !$0.isLocal }), config.allowedFrontends.isEmpty {
            problem(
                "allow-frontend", ["PLEX_LIVETV_AUTHZ_ALLOW_FRONTENDS"],
                "a non-loopback TCP listener needs an explicit list of frontend addresses")
        }

        // Plex and decisions.
        if let (text, _) = value(flags.pmsURL, ["IPTV_TUNERR_PMS_URL"]) {
            if let url = PMSURL(text) {
                config.pmsURL = url
            } else {
                problem("pms-url", ["IPTV_TUNERR_PMS_URL"], "\"\(text)\" is not an http(s)://host[:port] URL")
            }
        }
        if let (text, _) = value(flags.mode, ["PLEX_LIVETV_AUTHZ_MODE"]) {
            if let mode = ElevationMode(rawValue: text) {
                config.mode = mode
            } else {
                problem("mode", ["PLEX_LIVETV_AUTHZ_MODE"], "\"\(text)\" must be live-tv, discovery-only or all")
            }
        }
        if let (text, _) = value(flags.machineID, ["PLEX_LIVETV_AUTHZ_MACHINE_ID"]) {
            if !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
                config.machineIdentifier = text
            } else {
                problem("machine-id", ["PLEX_LIVETV_AUTHZ_MACHINE_ID"], "\"\(text)\" is not a machine identifier")
            }
        }
        config.validationTimeout = duration(
            "validation-timeout", flags.validationTimeout, "PLEX_LIVETV_AUTHZ_VALIDATION_TIMEOUT", default: .seconds(3),
            negativeDisables: false)!
        config.cacheTTL = duration(
            "cache-ttl", flags.cacheTTL, "PLEX_LIVETV_AUTHZ_CACHE_TTL", default: .seconds(300), negativeDisables: false)!
        config.cacheSize = integer(
            "cache-size", flags.cacheSize, "PLEX_LIVETV_AUTHZ_CACHE_SIZE", default: 10_000, range: 0...10_000_000)

        // Abuse and audit (the original proxy's names and semantics).
        config.abuse.threshold = integer(
            "abuse-threshold", flags.abuseThreshold, "IPTV_TUNERR_PROXY_ABUSE_THRESHOLD", default: 5,
            range: 0...1_000_000)
        config.abuse.window = duration(
            "abuse-window", flags.abuseWindow, "IPTV_TUNERR_PROXY_ABUSE_WINDOW", default: .seconds(300),
            negativeDisables: false)!
        config.abuse.blockDuration = duration(
            "abuse-block-duration", flags.abuseBlockDuration, "IPTV_TUNERR_PROXY_ABUSE_BLOCK_DURATION",
            default: .seconds(1800), negativeDisables: false)!
        config.abuse.cooldown = duration(
            "bad-auth-cooldown", flags.badAuthCooldown, "IPTV_TUNERR_PROXY_BAD_AUTH_COOLDOWN", default: .seconds(120),
            negativeDisables: true)
        config.abuseStateFile = value(flags.abuseStateFile, ["IPTV_TUNERR_PROXY_ABUSE_STATE_FILE"])?.0
        if let path = config.abuseStateFile, !path.hasPrefix("/") {
            problem("abuse-state-file", ["IPTV_TUNERR_PROXY_ABUSE_STATE_FILE"], "\"\(path)\" must be an absolute path")
        }
        config.auditSummaryInterval = duration(
            "audit-summary-interval", flags.auditSummaryInterval, "IPTV_TUNERR_PROXY_AUDIT_SUMMARY_INTERVAL",
            default: .seconds(300), negativeDisables: true)

        // Connections and operations.
        config.idleTimeout = duration(
            "idle-timeout", flags.idleTimeout, "PLEX_LIVETV_AUTHZ_IDLE_TIMEOUT", default: .seconds(60),
            negativeDisables: false)!
        config.maximumConnections = integer(
            "max-connections", flags.maxConnections, "PLEX_LIVETV_AUTHZ_MAX_CONNECTIONS", default: 1024,
            range: 0...1_000_000)
        config.readinessInterval = duration(
            "readiness-interval", flags.readinessInterval, "PLEX_LIVETV_AUTHZ_READINESS_INTERVAL",
            default: .seconds(30), negativeDisables: false)!
        if let (text, _) = value(flags.logLevel, ["PLEX_LIVETV_AUTHZ_LOG_LEVEL"]) {
            if let level = Logger.Level(rawValue: text.lowercased()) {
                config.logLevel = level
            } else {
                problem(
                    "log-level", ["PLEX_LIVETV_AUTHZ_LOG_LEVEL"],
                    "\"\(text)\" must be trace, debug, info, notice, warning, error or critical")
            }
        }
        return problems.isEmpty ? .success(config) : .failure(Problems(list: problems))
    }
}
