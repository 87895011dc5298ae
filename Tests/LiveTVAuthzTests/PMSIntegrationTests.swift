import FakePMS
import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzCore
import NIOPosix
import Testing

/// The guard against a real HTTP fake PMS on a loopback ephemeral port.
@Suite("Guard against a real HTTP fake PMS")
struct PMSIntegrationTests {
    func withGuard(
        config: FakePMSConfig = FakePMSConfig(), timeout: Duration = .seconds(3),
        _ body: (Guard, FakePMSServer, CapturedLog) async throws -> Void
    ) async throws {
        try await Self.withApplication(config: config, timeout: timeout) { application, server, log in
            try await body(application.guardian, server, log)
        }
    }

    /// The whole service graph (real PMS client, abuse threshold 2) against a fake PMS on a loopback port.
    static func withApplication(
        config: FakePMSConfig = FakePMSConfig(), timeout: Duration = .seconds(3), port: Int = 0,
        _ body: (AuthzApplication, FakePMSServer, CapturedLog) async throws -> Void
    ) async throws {
        let server = try await FakePMSServer.start(pms: FakePMS(config: config), port: port)
        let log = CapturedLog()
        var configuration = Configuration.testing(owner: config.ownerToken, policy: AbusePolicy(threshold: 2))
        configuration.set(Settings.pmsURL, PMSURL("http://127.0.0.1:\(server.port)")!)
        configuration.set(Settings.validationTimeout, timeout)
        let application = try AuthzApplication(
            configuration: configuration, dependencies: .testing(clock: SystemClock(), pms: nil, log: log))
        do {
            try await body(application, server, log)
        } catch {
            await application.shutdown()
            await server.shutdown()
            throw error
        }
        await application.shutdown()
        await server.shutdown()
    }

    func request(_ target: String, headers: [HTTPField] = []) -> AuthzRequest {
        AuthzRequest(
            method: "GET", target: target,
            headers: [HTTPField(name: "X-Forwarded-For", value: "203.0.113.8")] + headers,
            peer: PeerFacts(trustedFrontend: true))
    }

    @Test func sharedUserIsValidatedOverHTTPWithAHeaderToken() async throws {
        try await withGuard { guardian, server, log in
            let elevated = await guardian.decide(request("/livetv/dvrs?X-Plex-Token=user0000000000000000"))
            #expect(elevated.elevate)
            #expect(elevated.upstreamTarget == "/livetv/dvrs")
            let probe = try #require(server.pms.last(path: "/library/sections"))
            // The token travelled as a header, not in the URL PMS logs.
            #expect(probe.headerTokens == ["USER"] && probe.queryTokens.isEmpty && probe.status == 200)
            let fake = await guardian.decide(request("/livetv/dvrs?X-Plex-Token=othr0000000000000000"))
            #expect(!fake.elevate && fake.outcome == .denyUnauthorizedToken)
            #expect(server.pms.last(path: "/library/sections")?.status == 401)
            let random = await guardian.decide(
                request("/livetv/dvrs", headers: [HTTPField(name: "X-Plex-Token", value: "random-garbage")]))
            #expect(!random.elevate && random.outcome == .denyUnauthorizedToken)
            #expect(
                log.outcomes() == [
                    "elevated_live_tv", "deny_unauthorized_token", "deny_unauthorized_token", "bad_actor_blocked",
                ])
            #expect(server.pms.requests(path: "/library/sections").count == 3)
        }
    }

    @Test func slowPMSTimesOutAndNeverElevatesOrBlocks() async throws {
        var config = FakePMSConfig()
        config.validationDelayMs = 2_000
        try await withGuard(config: config, timeout: .milliseconds(200)) { guardian, _, log in
            for _ in 0..<3 {
                let decision = await guardian.decide(request("/livetv/dvrs?X-Plex-Token=user0000000000000000"))
                #expect(!decision.elevate && !decision.rejected)
                #expect(decision.outcome == .denyValidationUnavailable)
                #expect(decision.reason.contains("timeout"))
            }
            #expect(log.outcomes() == Array(repeating: "deny_validation_unavailable", count: 3))
        }
    }

    @Test func pmsDownIsUnavailableAtOnceNotAfterTheTimeout() async throws {
        let client = PMSHTTPClient.make(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        // Bind-and-close to find a port nothing listens on.
        let server = try await FakePMSServer.start(pms: FakePMS())
        let port = server.port
        await server.shutdown()
        let pms = HTTPPMSClient(
            baseURL: PMSURL("http://127.0.0.1:\(port)")!, timeout: .seconds(30), client: client,
            logger: CapturedLog().logger)
        let started = ContinuousClock.now
        let check = await pms.checkToken(PlexToken("user0000000000000000")!)
        // A refused connection is an answer: no retrying until the validation timeout (30 s here, so a loaded
        // CI machine's slowness is never mistaken for it).
        #expect(ContinuousClock.now - started < .seconds(10))
        if case .unavailable(.connection) = check {
        } else {
            Issue.record("expected a connection failure, got \(check)")
        }
        try await client.shutdown()
    }

    @Test func aRedirectingPMSNeverValidatesAToken() async throws {
        var config = FakePMSConfig()
        // Where the redirect points answers 200 to anyone: following it would validate every token.
        config.redirectValidationTo = "http://127.0.0.1:9/identity?X-Plex-Token=whatever"
        try await withGuard(config: config) { guardian, server, log in
            server.pms.update { $0.redirectValidationTo = "http://127.0.0.1:\(server.port)/identity?secret=1" }
            for token in ["user0000000000000000", "othr0000000000000000", "made-up-token-123456"] {
                let decision = await guardian.decide(request("/livetv/dvrs?X-Plex-Token=\(token)"))
                #expect(!decision.elevate && !decision.rejected)
                #expect(decision.outcome == .denyValidationUnavailable)
                #expect(decision.reason.contains("HTTP 302 redirect to 127.0.0.1:\(server.port), not followed"))
            }
            #expect(server.pms.requests(path: "/identity").isEmpty, "the redirect was followed")
            let warnings = log.all.filter { $0.contains("PMS answered token validation with HTTP 302") }
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains("127.0.0.1:\(server.port)") == true)
            #expect(!log.all.joined().contains("secret=1") && !log.all.joined().contains("user0000000000000000"))
            // Unavailable is not invalid: nothing counted, so the source is not blocked (threshold 2).
            #expect(!(await guardian.decide(request("/livetv/dvrs?X-Plex-Token=othr0000000000000000"))).rejected)
        }
    }
}
