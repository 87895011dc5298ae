import FakePMS
import Foundation
import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzCore
import NIOConcurrencyHelpers
import Testing

/// One way PMS can fail, scripted on the fake.
struct PMSFault: Sendable, CustomTestStringConvertible {
    let name: String
    let kind: String
    /// Text the decision's reason must carry.
    let reason: String
    var timeout: Duration = .seconds(3)
    let apply: @Sendable (inout FakePMSConfig) -> Void

    var testDescription: String { name }

    static let all: [PMSFault] = [
        PMSFault(
            name: "slower than the timeout", kind: "timeout", reason: "timeout after 200ms",
            timeout: .milliseconds(200), apply: { $0.validationDelayMs = 1_500 }),
        PMSFault(name: "HTTP 500", kind: "status", reason: "HTTP 500", apply: { $0.validationStatus = 500 }),
        PMSFault(name: "HTTP 503", kind: "status", reason: "HTTP 503", apply: { $0.validationStatus = 503 }),
        PMSFault(
            name: "connection reset", kind: "connection", reason: "PMS unavailable",
            apply: { $0.resetPaths = ["/library/sections"] }),
        PMSFault(
            name: "connection closed without an answer", kind: "connection", reason: "PMS unavailable",
            apply: { $0.abortPaths = ["/library/sections"] }),
        PMSFault(
            name: "200 with a login page", kind: "body", reason: "not a MediaContainer",
            apply: { $0.validationBody = "<html><body><form action=/login>Sign in</form></body></html>" }),
        PMSFault(
            name: "200 with other JSON", kind: "body", reason: "not a MediaContainer",
            apply: { $0.validationBody = #"{"status":"ok","MediaContainer":null}"# }),
        PMSFault(
            name: "redirect", kind: "redirect", reason: "not followed",
            apply: { $0.redirectValidationTo = "http://127.0.0.1:9/login" }),
    ]
}

/// PMS failing while the service decides: never an elevation while PMS cannot answer, never an abuse count,
/// recovery on the first request after PMS is back, bounded waiting work, a metric and a log line per kind.
@Suite("PMS faults")
struct PMSFaultTests {
    static let config = FakePMSConfig()

    func request(_ token: String, source: String = "203.0.113.8") -> AuthzRequest {
        AuthzRequest(
            method: "GET", target: "/livetv/dvrs?X-Plex-Token=\(token)",
            headers: [HTTPField(name: "X-Forwarded-For", value: source)], peer: PeerFacts(trustedFrontend: true))
    }

    static func pmsErrors(_ application: AuthzApplication, kind: String) -> Int {
        let text = application.registry.emitToString()
        let prefix = "plexauthz_pms_errors_total{kind=\"\(kind)\"} "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return -1 }
        return Int(Double(line.dropFirst(prefix.count)) ?? -1)
    }

    @Test(arguments: PMSFault.all)
    func aFaultNeverElevatesNeverCountsAndTheFirstRequestAfterItRecovers(_ fault: PMSFault) async throws {
        try await PMSIntegrationTests.withApplication(timeout: fault.timeout) { application, server, log in
            server.pms.update(fault.apply)
            let guardian = application.guardian
            // Valid, entitled and made-up tokens, three rounds from one source: nine unanswered validations,
            // far past the abuse threshold (2) if any of them counted.
            let tokens = [Self.config.userToken, Self.config.userTunerToken, "made-up-token-0000001"]
            for _ in 0..<3 {
                for token in tokens {
                    let decision = await guardian.decide(request(token))
                    #expect(!decision.elevate && !decision.rejected, "\(fault.name): \(decision.outcome)")
                    #expect(decision.outcome == .denyValidationUnavailable, "\(fault.name): \(decision.outcome)")
                    #expect(decision.reason.contains(fault.reason), "\(fault.name): \(decision.reason)")
                }
            }
            #expect(Self.pmsErrors(application, kind: fault.kind) == 9, "\(fault.name)")
            #expect(log.outcomes().allSatisfy { $0 == "deny_validation_unavailable" }, "\(log.outcomes())")
            #expect(!log.outcomes().contains("bad_actor_blocked"))
            if fault.kind == "body" || fault.kind == "redirect" {
                #expect(
                    log.all.contains { $0.contains("tokens stay unproven") }, "no operator log line for \(fault.name)")
            }
            let everything = log.all.joined(separator: "\n")
            #expect(!tokens.contains { everything.contains($0) } && !everything.contains("203.0.113.8"))

            // PMS is back: the very next request is validated and elevated (nothing unavailable was cached).
            server.pms.update { $0 = FakePMSConfig() }
            let recovered = await guardian.decide(request(Self.config.userToken))
            #expect(recovered.elevate, "\(fault.name): first request after recovery: \(recovered.outcome)")
            let fake = await guardian.decide(request("made-up-token-0000001"))
            #expect(fake.outcome == .denyUnauthorizedToken)
        }
    }

    @Test func aHungPMSBoundsTheValidationsWaitingForIt() async throws {
        var config = FakePMSConfig()
        config.validationDelayMs = 1_500
        try await PMSIntegrationTests.withApplication(config: config, timeout: .seconds(5)) { application, server, _ in
            let validator = application.validator
            let peak = NIOLockedValueBox(0)
            let sampling = Task {
                while !Task.isCancelled {
                    let pending = validator.pendingValidations
                    peak.withLockedValue { $0 = max($0, pending) }
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            // 1,000 invented tokens at once, each from its own source (so blocking plays no part).
            let outcomes = await withTaskGroup(of: AuthzDecision.self) { group in
                for index in 0..<1_000 {
                    let request = request(
                        "invented-\(index)-token", source: "10.1.\(index / 250).\(index % 250 + 1)")
                    group.addTask { await application.guardian.decide(request) }
                }
                return await group.reduce(into: [AuthzDecision]()) { $0.append($1) }
            }
            sampling.cancel()
            #expect(outcomes.allSatisfy { !$0.elevate })
            let overloaded = outcomes.filter { $0.reason.contains("validations already waiting for PMS") }
            #expect(overloaded.count >= 1_000 - validator.maximumPending, "\(overloaded.count) answered at once")
            #expect(overloaded.allSatisfy { $0.outcome == .denyValidationUnavailable })
            #expect(peak.withLockedValue { $0 } <= validator.maximumPending)
            #expect(server.pms.requests(path: "/library/sections").count <= validator.maximumPending)
            #expect(Self.pmsErrors(application, kind: "overload") == overloaded.count)
            // Nothing waits once PMS has answered, and a real token is validated as usual.
            #expect(validator.pendingValidations == 0)
            #expect((await application.guardian.decide(request(config.userToken, source: "203.0.113.9"))).elevate)
        }
    }

    /// A guide grid opens dozens of requests with a token nobody has validated yet: one PMS call for all.
    @Test func aThousandConcurrentRequestsWithOneNewTokenCostOnePMSValidation() async throws {
        var config = FakePMSConfig()
        config.validationDelayMs = 100
        try await PMSIntegrationTests.withApplication(config: config) { application, server, _ in
            let started = ContinuousClock.now
            let decisions = await withTaskGroup(of: AuthzDecision.self) { group in
                for index in 0..<1_000 {
                    let request = request(config.userToken, source: "10.2.\(index / 250).\(index % 250 + 1)")
                    group.addTask { await application.guardian.decide(request) }
                }
                return await group.reduce(into: [AuthzDecision]()) { $0.append($1) }
            }
            let elapsed = ContinuousClock.now - started
            #expect(decisions.count == 1_000 && decisions.allSatisfy(\.elevate))
            #expect(server.pms.requests(path: "/library/sections").count == 1)
            #expect(application.validator.pmsCalls == 1)
            print(
                "cold validation: 1,000 concurrent requests, one new token, PMS 100 ms: 1 PMS call, last answer after \(elapsed)"
            )
        }
    }

    @Test func pmsRestartingUnderLoadNeverElevatesUnprovenTokensAndRecovers() async throws {
        try await PMSIntegrationTests.withApplication { application, server, log in
            let port = server.port
            let phase = NIOLockedValueBox("up")
            let seen = NIOLockedValueBox<[String: [String]]>([:])
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            let token = worker % 2 == 0 ? Self.config.userToken : "made-up-token-00000\(worker)"
                            while !Task.isCancelled {
                                let began = phase.withLockedValue { $0 }
                                let decision = await application.guardian.decide(
                                    request(token, source: "198.51.100.\(worker + 1)"))
                                // Labelled by the phase it began and ended in: "down" means PMS was away throughout.
                                let ended = phase.withLockedValue { $0 }
                                let now = began == ended ? began : "\(began)-\(ended)"
                                let who = worker % 2 == 0 ? "user" : "invented"
                                let label =
                                    "\(who):" + (decision.elevate ? "elevated" : decision.outcome?.rawValue ?? "none")
                                seen.withLockedValue { $0[now, default: []].append(label) }
                                try? await Task.sleep(for: .milliseconds(2))
                            }
                        }
                    }
                }
            }
            // The valid token proven (and cached) before PMS goes away: no validation of it is in flight.
            for _ in 0..<500 where !seen.withLockedValue({ $0["up", default: []].contains("user:elevated") }) {
                try await Task.sleep(for: .milliseconds(20))
            }
            await server.shutdown()
            // A restarted PMS may have changed who has access: the cache is flushed (SIGHUP does the same).
            application.validator.flush()
            phase.withLockedValue { $0 = "down" }
            // Down until some decisions of the valid token began and ended while PMS was away (on a loaded
            // machine an unavailable validation can take most of a second).
            try await Task.sleep(for: .milliseconds(600))
            for _ in 0..<500 where !seen.withLockedValue({ $0["down", default: []].contains { $0.hasPrefix("user:") } }) {
                try await Task.sleep(for: .milliseconds(20))
            }
            phase.withLockedValue { $0 = "restarting" }
            // Its port may be briefly taken by another suite's outgoing connection: retry as a restarting PMS would.
            var restarted: FakePMSServer?
            for _ in 0..<50 where restarted == nil {
                restarted = try? await FakePMSServer.start(pms: FakePMS(), port: port)
                if restarted == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let back = try #require(restarted, "the fake PMS could not bind its port again")
            phase.withLockedValue { $0 = "back" }
            try await Task.sleep(for: .milliseconds(600))
            load.cancel()
            await load.value
            await back.shutdown()

            let byPhase = seen.withLockedValue { $0 }
            let down = byPhase["down", default: []]
            let after = byPhase["back", default: []]
            // Decisions that started while PMS was down: the flushed token can only be unavailable.
            #expect(!down.isEmpty && !after.isEmpty)
            #expect(!down.contains("user:elevated"), "\(Set(down).sorted())")
            #expect(down.contains("user:deny_validation_unavailable"), "\(Set(down).sorted())")
            // The valid token is never refused or called invalid, an invented one never elevated; the valid one
            // is elevated again once PMS is back. (The invented tokens' sources are blocked for PMS's own 401
            // answers, never for PMS being away.)
            let all = byPhase.values.flatMap { $0 }
            #expect(!all.contains("user:blocked_bad_actor") && !all.contains("user:deny_unauthorized_token"))
            #expect(!all.contains("invented:elevated"))
            #expect(after.contains("user:elevated"), "\(Set(after).sorted())")
            #expect(!log.all.joined().contains(Self.config.userToken))
        }
    }
}
