import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Configuration")
struct ConfigurationTests {
    let owner = ["IPTV_TUNERR_PMS_OWNER_TOKEN": "ownr0000000000000000"]

    func load(_ environment: [String: String], _ arguments: [String] = []) -> Result<
        Configuration, ConfigurationProblems
    > {
        ConfigurationLoader.load(arguments: arguments, environment: environment, settings: Settings.serve) {
            $0.serveProblems()
        }.map(\.configuration)
    }

    @Test(arguments: [
        ("postgres://plexauthz:s%40cret@db.lan:6543/authz?sslmode=require", "postgres://plexauthz@db.lan:6543/authz"),
        ("postgresql://u@127.0.0.1/plexauthz", "postgres://u@127.0.0.1:5432/plexauthz"),
        ("postgres://u@[::1]:5433/d?sslmode=disable", "postgres://u@::1:5433/d"),
        ("postgres://u@/d?host=/run/postgresql", "postgres://u@/run/postgresql/.s.PGSQL.5432/d"),
    ])
    func stateStoreURLsParseAndNeverPrintThePassword(_ text: String, _ shown: String) throws {
        let url = try #require(StateStoreURL(text))
        #expect(url.description == shown)
        #expect(!url.description.contains("cret"))
        if text.contains("s%40cret") { #expect(url.password == "s@cret" && url.tls == .require && url.port == 6543) }
    }

    @Test(arguments: [
        "mysql://u@h/d", "postgres://u@h", "postgres://u@h/", "postgres://u@h:0/d", "postgres://u@h:99999/d",
        "postgres://u@h/d?sslmode=maybe", "postgres://u@/d", "postgres://u@h/d?host=relative", "postgres://u@h/a/b",
        "postgres://u@h/d?unknown=1",
    ])
    func badStateStoreURLsAreRefused(_ text: String) {
        #expect(StateStoreURL(text) == nil)
    }

    @Test func aStateStoreAndAStateFileAreOneTooMany() {
        let result = load(
            owner.merging(
                [
                    "PLEX_LIVETV_AUTHZ_STATE_STORE": "postgres://u@h/d",
                    "IPTV_TUNERR_PROXY_ABUSE_STATE_FILE": "/var/lib/x/blocks.json",
                ], uniquingKeysWith: { $1 }))
        guard case .failure(let problems) = result else {
            Issue.record("accepted both")
            return
        }
        #expect(
            problems.list.contains { "\($0)".contains("give one: the shared store keeps the state the file would") })
    }

    @Test func defaultsMatchTheOriginalProxy() throws {
        let config = try load(owner).get()
        #expect(config[Settings.listen] == [.unix(path: "/run/plex-livetv-authz/authz.sock")])
        #expect(config[Settings.pmsURL].description == "http://127.0.0.1:32400")
        #expect(
            config.abusePolicy
                == AbusePolicy(
                    threshold: 5, window: .seconds(300), blockDuration: .seconds(1800), cooldown: .seconds(120)))
        #expect(config[Settings.auditSummaryInterval] == .seconds(300))
        #expect(config[Settings.validationTimeout] == .seconds(3))
        #expect(config[Settings.cacheTTL] == .seconds(300) && config[Settings.cacheSize] == 10_000)
        #expect(config[Settings.mode] == .liveTV)
        #expect(config[Settings.socketMode] == 0o660)
        #expect(config[Settings.logLevel] == .info)
    }

    @Test func ownerTokenVariablesAreTriedInTheOriginalOrder() throws {
        #expect(
            try load(["PLEX_TOKEN": "d", "IPTV_TUNERR_PMS_TOKEN": "c", "PLEX_OWNER_TOKEN": "b"]).get().ownerToken?.value
                == "b")
        #expect(try load(["PLEX_TOKEN": "d", "IPTV_TUNERR_PMS_TOKEN": "c"]).get().ownerToken?.value == "c")
        #expect(try load(["PLEX_TOKEN": "d"]).get().ownerToken?.value == "d")
    }

    @Test func seedVariablesAndFlagsOverrideDefaults() throws {
        var environment = owner
        environment["IPTV_TUNERR_PROXY_ABUSE_THRESHOLD"] = "7"
        environment["IPTV_TUNERR_PROXY_ABUSE_WINDOW"] = "10m"
        environment["IPTV_TUNERR_PROXY_ABUSE_BLOCK_DURATION"] = "1h"
        environment["IPTV_TUNERR_PROXY_BAD_AUTH_COOLDOWN"] = "-1s"
        environment["IPTV_TUNERR_PROXY_AUDIT_SUMMARY_INTERVAL"] = "-1s"
        environment["IPTV_TUNERR_PROXY_ABUSE_STATE_FILE"] = "/var/lib/x/blocks.json"
        environment["IPTV_TUNERR_PMS_URL"] = "http://plex.lan:32400"
        environment["PLEX_LIVETV_AUTHZ_LISTEN"] = "unix:/tmp/a.sock, 127.0.0.1:33241"
        environment["PLEX_LIVETV_AUTHZ_FRONTEND_KEY"] = "0123456789abcdef0123"
        let config = try load(environment, ["--abuse-threshold", "9", "--log-level=ERROR"]).get()
        #expect(config[Settings.abuseThreshold] == 9)
        #expect(config.isGiven(Settings.abuseThreshold) && config.sources["abuse-threshold"] == "--abuse-threshold")
        #expect(config.sources["abuse-window"] == "IPTV_TUNERR_PROXY_ABUSE_WINDOW")
        #expect(config[Settings.abuseWindow] == .seconds(600) && config[Settings.abuseBlockDuration] == .seconds(3600))
        #expect(config[Settings.badAuthCooldown] == nil)
        #expect(config[Settings.auditSummaryInterval] == nil)
        #expect(config[Settings.abuseStateFile] == "/var/lib/x/blocks.json")
        #expect(config[Settings.pmsURL].authority == "plex.lan:32400")
        #expect(config[Settings.listen] == [.unix(path: "/tmp/a.sock"), .tcp(host: "127.0.0.1", port: 33241)])
        #expect(config[Settings.logLevel] == .error)
    }

    @Test func repeatedFlagsNegativeValuesAndUnknownOptions() throws {
        let config = load(
            owner, ["--listen", "unix:/tmp/b.sock", "--listen=127.0.0.1:9", "--bad-auth-cooldown", "-1s"])
        guard case .failure(let problems) = config else {
            Issue.record("a TCP listener without a key was accepted")
            return
        }
        #expect(problems.description.contains("a TCP listener (127.0.0.1:9) needs the frontend key"))
        guard case .failure(let unknown) = load(owner, ["--abuse-treshold", "3", "--mode"]) else {
            Issue.record("an unknown option was accepted")
            return
        }
        #expect(unknown.description.contains("--abuse-treshold: unknown option (did you mean --abuse-threshold?)"))
        #expect(unknown.description.contains("--mode / PLEX_LIVETV_AUTHZ_MODE: needs a value"))
        guard case .failure(let twice) = load(owner, ["--mode", "all", "--mode", "live-tv"]) else {
            Issue.record("a single-value option given twice was accepted")
            return
        }
        #expect(twice.description.contains("given more than once"))
        // Secrets have no flag: a token on the command line would show in process listings.
        guard case .failure(let flagged) = load([:], ["--owner-token", "ownr0000000000000000"]) else {
            Issue.record("--owner-token was accepted as a flag")
            return
        }
        #expect(flagged.description.contains("--owner-token: unknown option"))
    }

    @Test func zeroMeansTheDefault() throws {
        var environment = owner
        environment["IPTV_TUNERR_PROXY_BAD_AUTH_COOLDOWN"] = "0"
        environment["IPTV_TUNERR_PROXY_ABUSE_THRESHOLD"] = "0"
        let config = try load(environment).get()
        #expect(config[Settings.badAuthCooldown] == .seconds(120) && config[Settings.abuseThreshold] == 5)
    }

    @Test func everyProblemIsReportedAtOnceNamingFlagAndVariable() {
        let environment = [
            "IPTV_TUNERR_PROXY_ABUSE_WINDOW": "5 minutes",
            "IPTV_TUNERR_PROXY_ABUSE_THRESHOLD": "many",
            "IPTV_TUNERR_PROXY_ABUSE_BLOCK_DURATION": "-5m",
            "IPTV_TUNERR_PMS_URL": "plex:32400",
            "PLEX_LIVETV_AUTHZ_LISTEN": "0.0.0.0:33241,nonsense",
            "PLEX_LIVETV_AUTHZ_MODE": "everything",
        ]
        guard case .failure(let problems) = load(environment) else {
            Issue.record("expected failure")
            return
        }
        let text = problems.description
        for expected in [
            "--abuse-window / IPTV_TUNERR_PROXY_ABUSE_WINDOW: \"5 minutes\" is not a Go duration",
            "--abuse-threshold / IPTV_TUNERR_PROXY_ABUSE_THRESHOLD",
            "--abuse-block-duration / IPTV_TUNERR_PROXY_ABUSE_BLOCK_DURATION: must be positive",
            "--pms-url / IPTV_TUNERR_PMS_URL",
            "--listen / PLEX_LIVETV_AUTHZ_LISTEN: \"nonsense\"",
            "--mode / PLEX_LIVETV_AUTHZ_MODE",
            "IPTV_TUNERR_PMS_OWNER_TOKEN",
            "a TCP listener (0.0.0.0:33241) needs the frontend key",
            "--allow-frontend / PLEX_LIVETV_AUTHZ_ALLOW_FRONTENDS",
        ] {
            #expect(text.contains(expected), "missing: \(expected)\n\(text)")
        }
        #expect(problems.list.count == 9)
    }

    @Test func secretFilesMustBePrivate() throws {
        let directory = NSTemporaryDirectory() + "plexauthz-config-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/owner"
        try "ownr0000000000000000\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        guard case .failure(let problems) = load([:], ["--owner-token-file", file]) else {
            Issue.record("a world-readable token file was accepted")
            return
        }
        #expect(problems.description.contains("readable by group or others"))
        chmod(file, 0o600)
        let config = try load([:], ["--owner-token-file", file]).get()
        #expect(config.ownerToken?.value == "ownr0000000000000000")
        #expect(config[Settings.ownerTokenFile]?.path == file)
    }

    /// Every setting of the table is in `serve --help` text and in docs/configuration.md, and the docs are
    /// exactly what the table renders (run `make docs` after changing a setting).
    @Test func helpAndDocsComeFromTheTable() throws {
        let help = SettingsHelp.options(Settings.serve)
        for setting in Settings.serve {
            #expect(help.contains(setting.hasFlag ? "--\(setting.name)" : setting.variables[0]), "\(setting.name)")
            for variable in setting.variables { #expect(help.contains(variable), "\(variable)") }
        }
        let docs = try String(
            contentsOf: repositoryRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let rendered = SettingsHelp.markdown(commands: documentedCommands)
        #expect(docs == rendered, "docs/configuration.md is stale: run `make docs`")
    }
}

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The commands `settings --markdown` documents (the same list the command prints).
let documentedCommands: [(name: String, settings: [any AnySetting])] = SettingsHelp.documentedCommands
