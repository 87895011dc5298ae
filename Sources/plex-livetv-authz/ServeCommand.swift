import ArgumentParser
import AsyncHTTPClient
import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import LiveTVAuthzGRPC
import LiveTVAuthzHTTP
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

/// Duration options parse their value unconditionally: Go durations may be negative (`-1s` is the
/// documented way to disable the cooldown and the summary) and a value must never be taken for a flag.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "Run the decision service for a frontend (nginx auth_request, Envoy ext_authz, Traefik/Caddy forward auth).",
        discussion: """
            Every option can also come from the environment variable named in its help; a flag wins over its \
            variable. Durations are Go durations (30s, 5m, 1h30m); zero or unset means the default, and a \
            negative cooldown or summary interval disables that feature. All configuration errors are \
            reported together, each naming its flag and variable; the exit status is then 2.

            The owner token never goes on the command line (it would show in process listings): put it in a \
            0600 file (--owner-token-file) or in IPTV_TUNERR_PMS_OWNER_TOKEN / PLEX_OWNER_TOKEN / \
            IPTV_TUNERR_PMS_TOKEN / PLEX_TOKEN (first set wins), e.g. from a systemd EnvironmentFile.

            Answers carry the owner token, so the channel to the frontend is a secret channel: the default \
            listener is a Unix socket (mode 0660, give it the frontend's group with --socket-group); a TCP \
            listener always requires the frontend key (X-Plexauthz-Key) and serves loopback peers only unless \
            --allow-frontend names others.

            Signals: SIGTERM/SIGINT drain in-flight requests and write the abuse state file; SIGHUP re-reads \
            the owner token file.

            Endpoints: /v1/nginx, /v1/forward, /v1/envoy/..., /healthz, /readyz, /metrics; with --grpc-listen \
            also envoy.service.auth.v3.Authorization/Check.
            """)

    @Option(
        name: .customLong("listen"),
        help:
            "unix:/path or host:port; repeatable. Env PLEX_LIVETV_AUTHZ_LISTEN (comma-separated). Default unix:/run/plex-livetv-authz/authz.sock."
    )
    var listen: [String] = []
    @Option(
        name: .customLong("grpc-listen"),
        help:
            "Envoy ext_authz gRPC (envoy.service.auth.v3.Authorization/Check, h2c) on unix:/path or host:port; repeatable. Same trust rules and frontend key (metadata x-plexauthz-key) as --listen. Env PLEX_LIVETV_AUTHZ_GRPC_LISTEN. Default: off."
    )
    var grpcListen: [String] = []
    @Option(help: "Octal mode of a Unix socket. Env PLEX_LIVETV_AUTHZ_SOCKET_MODE. Default 660.")
    var socketMode: String?
    @Option(help: "Group of a Unix socket (the frontend's, e.g. www-data). Env PLEX_LIVETV_AUTHZ_SOCKET_GROUP.")
    var socketGroup: String?
    @Option(
        help:
            "File (0600) with the frontend key for TCP listeners. Env PLEX_LIVETV_AUTHZ_FRONTEND_KEY_FILE, or the key itself in PLEX_LIVETV_AUTHZ_FRONTEND_KEY."
    )
    var frontendKeyFile: String?
    @Option(
        name: .customLong("allow-frontend"),
        help:
            "A non-loopback frontend address allowed on TCP listeners; repeatable. Env PLEX_LIVETV_AUTHZ_ALLOW_FRONTENDS (comma-separated)."
    )
    var allowFrontend: [String] = []
    @Option(
        name: .customLong("pms-url"),
        help: "Plex Media Server base URL. Env IPTV_TUNERR_PMS_URL. Default http://127.0.0.1:32400.")
    var pmsURL: String?
    @Option(help: "File (0600) with the owner token, re-read on SIGHUP. Env PLEX_LIVETV_AUTHZ_OWNER_TOKEN_FILE.")
    var ownerTokenFile: String?
    @Option(help: "live-tv (default), discovery-only or all. Env PLEX_LIVETV_AUTHZ_MODE.")
    var mode: String?
    @Option(
        help:
            "PMS machine identifier for server:// references. Env PLEX_LIVETV_AUTHZ_MACHINE_ID. Default: read from PMS /identity."
    )
    var machineId: String?
    @Option(
        parsing: .unconditional, help: "Token validation timeout. Env PLEX_LIVETV_AUTHZ_VALIDATION_TIMEOUT. Default 3s."
    )
    var validationTimeout: String?
    @Option(
        parsing: .unconditional,
        help: "How long a valid token stays cached. Env PLEX_LIVETV_AUTHZ_CACHE_TTL. Default 5m.")
    var cacheTTL: String?
    @Option(help: "Most tokens cached (least recently used evicted). Env PLEX_LIVETV_AUTHZ_CACHE_SIZE. Default 10000.")
    var cacheSize: String?
    @Option(help: "Failures that block a source. Env IPTV_TUNERR_PROXY_ABUSE_THRESHOLD. Default 5.")
    var abuseThreshold: String?
    @Option(
        parsing: .unconditional,
        help: "Window the failures are counted in. Env IPTV_TUNERR_PROXY_ABUSE_WINDOW. Default 5m.")
    var abuseWindow: String?
    @Option(
        parsing: .unconditional,
        help: "How long a block lasts. Env IPTV_TUNERR_PROXY_ABUSE_BLOCK_DURATION. Default 30m.")
    var abuseBlockDuration: String?
    @Option(help: "JSON file keeping blocks across restarts (absolute path). Env IPTV_TUNERR_PROXY_ABUSE_STATE_FILE.")
    var abuseStateFile: String?
    @Option(
        parsing: .unconditional,
        help:
            "Deny a source+token pair without asking PMS for this long after a denial; negative disables. Env IPTV_TUNERR_PROXY_BAD_AUTH_COOLDOWN. Default 2m."
    )
    var badAuthCooldown: String?
    @Option(
        parsing: .unconditional,
        help:
            "Interval of the plexlabelproxy_audit_summary line; negative disables. Env IPTV_TUNERR_PROXY_AUDIT_SUMMARY_INTERVAL. Default 5m."
    )
    var auditSummaryInterval: String?
    @Option(
        parsing: .unconditional,
        help: "Close keep-alive connections idle this long. Env PLEX_LIVETV_AUTHZ_IDLE_TIMEOUT. Default 60s.")
    var idleTimeout: String?
    @Option(help: "Most open connections. Env PLEX_LIVETV_AUTHZ_MAX_CONNECTIONS. Default 1024.")
    var maxConnections: String?
    @Option(
        parsing: .unconditional,
        help: "How often PMS /identity is probed for /readyz. Env PLEX_LIVETV_AUTHZ_READINESS_INTERVAL. Default 30s.")
    var readinessInterval: String?
    @Option(
        help: "trace, debug, info, notice, warning, error, critical. Env PLEX_LIVETV_AUTHZ_LOG_LEVEL. Default info.")
    var logLevel: String?

    func run() async throws {
        var flags = Configuration.Flags()
        flags.listen = listen
        flags.grpcListen = grpcListen
        flags.socketMode = socketMode
        flags.socketGroup = socketGroup
        flags.frontendKeyFile = frontendKeyFile
        flags.allowFrontend = allowFrontend
        flags.pmsURL = pmsURL
        flags.ownerTokenFile = ownerTokenFile
        flags.mode = mode
        flags.machineID = machineId
        flags.validationTimeout = validationTimeout
        flags.cacheTTL = cacheTTL
        flags.cacheSize = cacheSize
        flags.abuseThreshold = abuseThreshold
        flags.abuseWindow = abuseWindow
        flags.abuseBlockDuration = abuseBlockDuration
        flags.abuseStateFile = abuseStateFile
        flags.badAuthCooldown = badAuthCooldown
        flags.auditSummaryInterval = auditSummaryInterval
        flags.idleTimeout = idleTimeout
        flags.maxConnections = maxConnections
        flags.readinessInterval = readinessInterval
        flags.logLevel = logLevel
        switch Configuration.load(flags: flags, environment: ProcessInfo.processInfo.environment) {
        case .failure(let problems):
            for problem in problems.list {
                FileHandle.standardError.write(Data("configuration error: \(problem)\n".utf8))
            }
            throw ExitCode(2)
        case .success(let config):
            try await Runner(config: config).run()
        }
    }
}

/// Wires the configured service together and runs it until SIGTERM.
struct Runner {
    let config: Configuration

    func run() async throws {
        let level = config.logLevel
        LoggingSystem.bootstrap { _ in PlainLogHandler(level: level) }
        let logger = Logger(label: "plex-livetv-authz")
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let metrics = ServiceMetrics(factory: factory)
        let clock = SystemClock()
        let http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(1), read: .seconds(10))))

        var restored: [String: SourceRecord] = [:]
        var writer: AbuseStateWriter? = nil
        let writerBox = WriterBox()
        if let path = config.abuseStateFile {
            let file = AbuseStateFile(path: path)
            restored = file.load(policy: config.abuse, now: clock.now(), logger: logger)
            if !restored.isEmpty { logger.notice("restored \(restored.count) abuse record(s) from \(path)") }
        }
        let state = InMemoryGuardState(
            blocker: AbuseBlocker(policy: config.abuse, restoring: restored, now: clock.now())
        ) {
            writerBox.markDirty()
        }
        if let path = config.abuseStateFile {
            let stateWriter = AbuseStateWriter(file: AbuseStateFile(path: path), logger: logger) {
                state.snapshot(at: clock.now())
            }
            writerBox.set(stateWriter)
            writer = stateWriter
        }
        let validator = TokenValidator(
            client: HTTPPMSClient(baseURL: config.pmsURL, timeout: config.validationTimeout, client: http),
            clock: clock,
            ttl: config.cacheTTL, capacity: config.cacheSize)
        let audit = AuditLog(logger: logger, since: clock.now())
        let owner = OwnerTokenHolder(config.ownerToken)
        // Until PMS names its machine identifier, server:// references match nothing.
        let references = LiveTVReferenceMatcher(
            machineIdentifier: config.machineIdentifier ?? "unknown-until-pms-answers-identity",
            pmsAuthority: config.pmsURL.authority)
        let guardian = Guard(
            classifier: LiveTVClassifier(mode: config.mode, references: references), owner: owner, policy: config.abuse,
            validator: validator, state: state, audit: audit, clock: clock, metrics: metrics)
        let readiness = Readiness(interval: config.readinessInterval, clock: clock)
        let decisions = DecisionService(
            guard: guardian, frontendKey: config.frontendKey.flatMap(FrontendKey.init), metrics: metrics,
            registry: registry,
            readiness: readiness, logger: logger)
        var settings = ServerSettings(listeners: config.listeners)
        settings.socketMode = config.socketMode
        settings.socketGroup = config.socketGroup
        settings.allowedFrontends = Set(config.allowedFrontends)
        settings.idleTimeout = config.idleTimeout
        settings.maximumConnections = config.maximumConnections
        let server = AuthzServer(settings: settings, service: decisions, metrics: metrics, logger: logger)
        let keyCheck: (@Sendable (String?) -> Bool)?
        if let key = config.frontendKey.flatMap(FrontendKey.init) {
            keyCheck = { presented in key.matches(presented) }
        } else {
            keyCheck = nil
        }
        var grpcServers: [GRPCAuthzServer] = []
        for address in config.grpcListeners {
            var isUnix = false
            if case .unix = address { isUnix = true }
            let service = EnvoyAuthorizationService(
                guard: guardian, isUnixSocket: isUnix, frontendKey: keyCheck,
                allowedFrontends: Set(config.allowedFrontends), metrics: metrics, logger: logger)
            grpcServers.append(
                GRPCAuthzServer(
                    address: address, service: service, socketMode: config.socketMode, socketGroup: config.socketGroup,
                    logger: logger))
        }

        let pinned = config.machineIdentifier != nil
        var services: [any Service] = []
        if let writer { services.append(AbuseStateService(writer: writer)) }
        if let interval = config.auditSummaryInterval {
            services.append(AuditSummaryService(audit: audit, interval: interval, clock: clock))
        }
        services.append(
            PMSIdentityService(
                client: http, pms: config.pmsURL, interval: config.readinessInterval, timeout: config.validationTimeout,
                clock: clock, logger: logger
            ) { identifier, time in
                readiness.recordIdentity(at: time)
                if !pinned, let identifier { guardian.setMachineIdentifier(identifier) }
            })
        services.append(GaugeService(state: state, validator: validator, metrics: metrics, clock: clock))
        if let path = config.ownerTokenFile {
            services.append(OwnerTokenReloadService(path: path, owner: owner, logger: logger))
        }
        services.append(contentsOf: grpcServers as [any Service])
        services.append(server)  // last in, first out: listeners drain before the state is flushed
        logger.notice(
            "plex-livetv-authz starting: mode \(config.mode.rawValue), PMS \(config.pmsURL), owner token \(owner.current.fingerprint)"
        )
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let result = await Result(catching: { try await group.run() })
        try? await http.shutdown()
        if case .failure(let error) = result {
            logger.critical("stopped: \(error)")
            throw ExitCode(1)
        }
    }
}

/// Lets the state's change callback reach the writer created after it.
final class WriterBox: Sendable {
    private let writer = Mutex<AbuseStateWriter?>(nil)
    func set(_ value: AbuseStateWriter) { writer.withLock { $0 = value } }
    func markDirty() { writer.withLock { $0 }?.markDirty() }
}

/// Keeps the gauges (active blocks, cached tokens) current.
struct GaugeService: Service {
    let state: InMemoryGuardState
    let validator: TokenValidator
    let metrics: ServiceMetrics
    let clock: any WallClock

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            metrics.activeBlocks.record(state.activeBlocks(at: clock.now()))
            metrics.cacheEntries.record(await validator.cachedTokens)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
            } catch {
                return
            }
        }
    }
}
