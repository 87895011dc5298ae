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

    func load(_ environment: [String: String], flags: Configuration.Flags = Configuration.Flags()) -> Result<
        Configuration, Configuration.Problems
    > {
        Configuration.load(flags: flags, environment: environment)
    }

    @Test func defaultsMatchTheOriginalProxy() throws {
        let config = try load(owner).get()
        #expect(config.listeners == [.unix(path: "/run/plex-livetv-authz/authz.sock")])
        #expect(config.pmsURL.description == "http://127.0.0.1:32400")
        #expect(
            config.abuse
                == AbusePolicy(
                    threshold: 5, window: .seconds(300), blockDuration: .seconds(1800), cooldown: .seconds(120)))
        #expect(config.auditSummaryInterval == .seconds(300))
        #expect(config.validationTimeout == .seconds(3))
        #expect(config.cacheTTL == .seconds(300) && config.cacheSize == 10_000)
        #expect(config.mode == .liveTV)
        #expect(config.socketMode == 0o660)
    }

    @Test func ownerTokenVariablesAreTriedInTheOriginalOrder() throws {
        #expect(
            try load(["PLEX_TOKEN": "d", "IPTV_TUNERR_PMS_TOKEN": "c", "PLEX_OWNER_TOKEN": "b"]).get().ownerToken.value
                == "b")
        #expect(try load(["PLEX_TOKEN": "d", "IPTV_TUNERR_PMS_TOKEN": "c"]).get().ownerToken.value == "c")
        #expect(try load(["PLEX_TOKEN": "d"]).get().ownerToken.value == "d")
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
        var flags = Configuration.Flags()
        flags.abuseThreshold = "9"
        let config = try load(environment, flags: flags).get()
        #expect(config.abuse.threshold == 9)
        #expect(config.abuse.window == .seconds(600) && config.abuse.blockDuration == .seconds(3600))
        #expect(config.abuse.cooldown == nil)
        #expect(config.auditSummaryInterval == nil)
        #expect(config.abuseStateFile == "/var/lib/x/blocks.json")
        #expect(config.pmsURL.authority == "plex.lan:32400")
        #expect(config.listeners == [.unix(path: "/tmp/a.sock"), .tcp(host: "127.0.0.1", port: 33241)])
    }

    @Test func zeroMeansTheDefault() throws {
        var environment = owner
        environment["IPTV_TUNERR_PROXY_BAD_AUTH_COOLDOWN"] = "0"
        environment["IPTV_TUNERR_PROXY_ABUSE_THRESHOLD"] = "0"
        let config = try load(environment).get()
        #expect(config.abuse.cooldown == .seconds(120) && config.abuse.threshold == 5)
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
        let file = directory + "/owner"
        try "ownr0000000000000000\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        var flags = Configuration.Flags()
        flags.ownerTokenFile = file
        guard case .failure(let problems) = load([:], flags: flags) else {
            Issue.record("a world-readable token file was accepted")
            return
        }
        #expect(problems.description.contains("readable by group or others"))
        chmod(file, 0o600)
        let config = try load([:], flags: flags).get()
        #expect(config.ownerToken.value == "ownr0000000000000000")
        #expect(config.ownerTokenFile == file)
    }
}
