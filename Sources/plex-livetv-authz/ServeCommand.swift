import ArgumentParser
import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzPostgres

/// `serve`: the decision service. Its options are the settings table's (`Settings.serve`).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "Run the decision service for a frontend (nginx auth_request, Envoy ext_authz, Traefik/Caddy forward auth).",
        usage: "plex-livetv-authz serve [--option VALUE ...]",
        discussion: """
            Every option can also come from the environment variable named beside it; a flag wins over its \
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
            the owner token file (and flushes the validation cache when the token changed); it never stops \
            the service.

            Decision endpoints (frontend key or socket): /v1/nginx, /v1/forward, /v1/traefik, /v1/envoy/...; \
            with --grpc-listen also envoy.service.auth.v3.Authorization/Check. Block management (same \
            trust): /v1/blocks, /v1/blocks/unblock (see `plex-livetv-authz blocks`). Operator pages (no key, \
            no secrets): /healthz, /readyz, /metrics, /status.

            A first rollout: --shadow decides and audits everything but lends nothing and blocks nobody.

            \(SettingsHelp.options(Settings.serve))
            """)

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var arguments: [String] = []

    func run() async throws {
        let configuration = try CommandSettings.load(arguments, settings: Settings.serve) { $0.serveProblems() }
            .configuration
        var dependencies = AuthzDependencies()
        dependencies.logger = CommandSettings.bootstrapLogging(configuration)
        if let url = configuration[Settings.stateStore] {
            dependencies.stateStore = PostgresGuardState(
                url: url, policy: configuration.abusePolicy, playback: configuration.playbackPolicy,
                clock: dependencies.clock, logger: dependencies.logger)
        }
        let application = try AuthzApplication(configuration: configuration, dependencies: dependencies)
        do {
            try await application.run()
        } catch {
            dependencies.logger.critical("stopped: \(error)")
            throw ExitCode(1)
        }
    }
}
