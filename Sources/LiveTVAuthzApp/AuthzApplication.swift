import AsyncHTTPClient
import LiveTVAuthz
import LiveTVAuthzCore
import LiveTVAuthzGRPC
import LiveTVAuthzHTTP
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// What the service graph is built from besides its configuration. Production defaults; tests and
/// benchmarks replace the parts they script (clock, PMS, audit sink, state store).
public struct AuthzDependencies: Sendable {
    public var clock: any WallClock = SystemClock()
    /// Answers token validations; `nil` builds the real PMS client for the configured `--pms-url`.
    public var pms: (any PMSClient)? = nil
    /// Where audit lines go (standard error by default, whatever the log level).
    public var auditSink: any AuditSink = BufferedAuditSink()
    /// The guard's state; `nil` keeps it in memory (and in the state file when one is configured).
    public var stateStore: (any GuardStateStore)? = nil
    public var logger = Logger(label: "plex-livetv-authz")
    public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    /// Whether `run()` traps SIGTERM/SIGINT for a graceful shutdown (the command line does; in-process
    /// tests stop the service group themselves).
    public var handlesSignals = true

    public init() {}
}

/// The one composition root: the whole service graph from a configuration and its dependencies. `serve`,
/// `explain --pms-url`, the tests and the benchmarks all build the service here, so a new setting or a
/// new part is wired in one place.
public final class AuthzApplication: Sendable {
    public let configuration: Configuration
    public let owner: OwnerTokenHolder
    public let guardian: Guard
    public let validator: TokenValidator
    public let state: any GuardStateStore
    public let audit: AuditLog
    public let metrics: ServiceMetrics
    public let registry: PrometheusCollectorRegistry
    public let readiness: Readiness
    public let trust: FrontendTrust
    public let httpServer: AuthzServer?
    public let grpcServers: [GRPCAuthzServer]
    /// Every long-running part, in start order (the listeners last, so they drain first on SIGTERM).
    public let services: [any Service]
    /// Held while the application lives: no second service, and no `blocks` edit, on the same state file.
    let stateFileLock: StateFileLock?
    private let dependencies: AuthzDependencies
    /// The HTTP client of the real PMS client (none when a PMS client is injected).
    private let httpClient: HTTPClient?

    /// The configuration must carry an owner token (`Configuration.serveProblems()` says so first).
    public init(configuration: Configuration, dependencies: AuthzDependencies = AuthzDependencies()) throws {
        guard let ownerToken = configuration.ownerToken else {
            throw ConfigurationProblems(list: configuration.requireOwnerToken())
        }
        let config = configuration
        let clock = dependencies.clock
        let logger = dependencies.logger
        self.configuration = config
        self.dependencies = dependencies
        registry = PrometheusCollectorRegistry()
        let board = StatusBoard(clock: clock)
        metrics = ServiceMetrics(factory: PrometheusMetricsFactory(registry: registry), board: board)
        let pmsURL = config[Settings.pmsURL]
        let pms: any PMSClient
        if let injected = dependencies.pms {
            pms = injected
            httpClient = nil
        } else {
            let client = PMSHTTPClient.make(eventLoopGroup: dependencies.eventLoopGroup)
            httpClient = client
            pms = HTTPPMSClient(
                baseURL: pmsURL, timeout: config[Settings.validationTimeout], client: client, logger: logger)
        }
        validator = TokenValidator(
            client: pms, clock: clock, ttl: config[Settings.cacheTTL], capacity: config[Settings.cacheSize])
        audit = AuditLog(sink: dependencies.auditSink, since: clock.now(), format: config[Settings.logFormat])
        owner = OwnerTokenHolder(ownerToken)

        // Abuse state: a shared store when given, else memory plus the optional state file.
        var services: [any Service] = []
        var stateFileLock: StateFileLock? = nil
        let policy = config.abusePolicy
        if let store = dependencies.stateStore {
            state = store
            // A shared store runs (connections, notifications) as long as the service.
            if let service = store as? any Service { services.append(service) }
        } else {
            var restored = GuardSnapshot()
            let stateFile = config[Settings.abuseStateFile].map(AbuseStateFile.init(path:))
            if let stateFile {
                // One service per state file; `blocks` edits the file only when no service holds this.
                do {
                    stateFileLock = try StateFileLock(stateFile: stateFile.path)
                } catch {
                    throw AuthzApplicationError(description: "\(error)")
                }
                stateFile.removeStaleTemporaries(logger: logger)
                restored = stateFile.load(
                    policy: policy, playback: config.playbackPolicy, now: clock.now(), logger: logger)
                if !restored.sources.isEmpty || !restored.sessions.isEmpty {
                    logger.notice(
                        "restored \(restored.sources.count) abuse record(s) and \(restored.sessions.count) playback session(s) from \(stateFile.path)"
                    )
                }
            }
            let writerBox = AbuseStateWriterBox()
            let memory = InMemoryGuardState(
                blocker: AbuseBlocker(policy: policy, restoring: restored.sources, now: clock.now()),
                tracker: PlaybackTracker(policy: config.playbackPolicy, restoring: restored.sessions, now: clock.now()),
                onChange: { writerBox.markDirty() }, healthy: { writerBox.isHealthy })
            if let stateFile {
                let writer = AbuseStateWriter(file: stateFile, logger: logger) { memory.snapshot(at: clock.now()) }
                writerBox.set(writer)
                services.append(AbuseStateService(writer: writer))
            }
            state = memory
        }

        // Until PMS names its machine identifier, server:// references match nothing.
        let references = LiveTVReferenceMatcher(
            machineIdentifier: config[Settings.machineID] ?? "unknown-until-pms-answers-identity",
            pmsAuthority: pmsURL.authority)
        let neutralizer: OwnerHistoryNeutralizer? =
            config[Settings.neutralizeOwnerHistory]
            ? OwnerHistoryNeutralizer(pms: pms, owner: owner, metrics: metrics, logger: logger) : nil
        if let neutralizer { services.append(neutralizer) }
        let guardian = Guard(
            classifier: LiveTVClassifier(mode: config[Settings.mode], references: references), owner: owner,
            policy: policy, validator: validator, state: state, audit: audit, clock: clock, metrics: metrics,
            history: neutralizer, shadow: config[Settings.shadow])
        self.guardian = guardian
        let readiness = Readiness(interval: config[Settings.readinessInterval], clock: clock)
        self.readiness = readiness
        let trust = FrontendTrust(key: config.frontendKey, allowedFrontends: Set(config[Settings.allowFrontend]))
        self.trust = trust
        let metrics = self.metrics
        let permissions = UnixSocketPermissions(mode: config[Settings.socketMode], group: config[Settings.socketGroup])

        if let interval = config[Settings.auditSummaryInterval] {
            services.append(AuditSummaryService(audit: audit, interval: interval, clock: clock))
        }
        let pinned = config[Settings.machineID] != nil
        services.append(
            PMSIdentityService(
                client: pms, pms: pmsURL, interval: config[Settings.readinessInterval], clock: clock, logger: logger
            ) { identifier, time in
                readiness.recordIdentity(at: time)
                if !pinned, let identifier { guardian.setMachineIdentifier(identifier) }
            })
        services.append(
            GaugeService(state: state, validator: validator, metrics: metrics, clock: clock, readiness: readiness))
        let validator = self.validator
        services.append(
            ReloadService(
                ownerTokenFile: config[Settings.ownerTokenFile]?.path, owner: owner, logger: logger,
                onOwnerTokenChange: { validator.flush() }))

        grpcServers = config[Settings.grpcListen].map {
            GRPCAuthzServer(
                address: $0, guard: guardian, trust: trust, permissions: permissions,
                limiter: ConnectionLimiter(
                    limit: config[Settings.maxConnections], perPeerLimit: config[Settings.maxConnectionsPerPeer]),
                idleTimeout: config[Settings.idleTimeout], metrics: metrics, logger: logger)
        }
        services.append(contentsOf: grpcServers as [any Service])
        let listeners = config[Settings.listen]
        if listeners.isEmpty {
            httpServer = nil
        } else {
            var settings = ServerSettings(listeners: listeners)
            settings.socketPermissions = permissions
            settings.idleTimeout = config[Settings.idleTimeout]
            settings.maximumConnections = config[Settings.maxConnections]
            settings.maximumConnectionsPerPeer = config[Settings.maxConnectionsPerPeer]
            settings.requestDeadline = config[Settings.requestTimeout]
            let decisions = DecisionService(
                guard: guardian, trust: trust, metrics: metrics,
                operators: OperatorEndpoints(
                    readiness: readiness, registry: registry,
                    status: { [state, metrics] in
                        StatusPage.render(
                            StatusPage.Facts(
                                board: board.snapshot(), pmsReachable: readiness.isReady, pmsURL: pmsURL.description,
                                mode: config[Settings.mode].rawValue, shadow: config[Settings.shadow],
                                activeBlocks: state.activeBlocks(at: clock.now()),
                                trackedSessions: state.trackedSessions(at: clock.now()),
                                stateStore: config[Settings.stateStore]?.description
                                    ?? (config[Settings.abuseStateFile] ?? "this process's memory"),
                                stateStoreHealthy: state.isHealthy))
                    },
                    beforeScrape: { [state, metrics, validator] in
                        GaugeService.refresh(
                            state: state, validator: validator, metrics: metrics, clock: clock, readiness: readiness)
                    },
                    stateHealthy: { [state] in state.isHealthy }),
                blocks: BlockAdministration(state: state, audit: audit, policy: policy, clock: clock), logger: logger)
            let server = AuthzServer(
                settings: settings, service: decisions, trust: trust, metrics: metrics, logger: logger,
                group: dependencies.eventLoopGroup)
            httpServer = server
            services.append(server)  // last in, first out: listeners drain before the state is flushed
        }
        self.services = services
        self.stateFileLock = stateFileLock
    }

    /// Runs every service until SIGTERM/SIGINT (or the group is shut down), then releases the PMS client.
    public func run() async throws {
        let logger = dependencies.logger
        logger.notice(
            "plex-livetv-authz starting: mode \(configuration[Settings.mode].rawValue), PMS \(configuration[Settings.pmsURL]), owner token \(owner.current.fingerprint)"
        )
        let group = ServiceGroup(
            configuration: .init(
                services: services, gracefulShutdownSignals: dependencies.handlesSignals ? [.sigterm, .sigint] : [],
                logger: logger))
        // systemd (Type=notify): started once every listener is bound.
        let ready = Task { [httpServer, grpcServers] in
            await httpServer?.waitUntilListening()
            for server in grpcServers { await server.waitUntilListening() }
            guard !Task.isCancelled else { return }
            SystemdNotifier.notify("READY=1\nSTATUS=deciding")
        }
        let result = await Result { try await group.run() }
        ready.cancel()
        SystemdNotifier.notify("STOPPING=1")
        await shutdown()
        try result.get()
    }

    /// Releases the PMS client and writes out the buffered audit lines (after `run`, or when only the guard
    /// was used, as `explain` does).
    public func shutdown() async {
        try? await httpClient?.shutdown()
        dependencies.auditSink.close()
    }
}

/// The service cannot be built from this configuration (beyond the settings' own problems).
public struct AuthzApplicationError: Error, CustomStringConvertible {
    public let description: String
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing body, so clean-up can run before the error is rethrown.
    public init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
