import Foundation
import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzCore
import Testing

let userValue = "user0000000000000000"
let ownerValue = "ownr0000000000000000"
let otherValue = "othr0000000000000000"
let clientAddress = "203.0.113.77"

/// The service graph from the composition root, with a scripted PMS, a manual clock and a captured log.
struct Harness {
    let clock: ManualClock
    let pms: ScriptedPMS
    let log = CapturedLog()
    let application: AuthzApplication
    var validator: TokenValidator { application.validator }
    var state: any GuardStateStore { application.state }
    var audit: AuditLog { application.audit }
    var guardian: Guard { application.guardian }

    init(
        policy: AbusePolicy = AbusePolicy(), pms: ScriptedPMS = ScriptedPMS([userValue: .valid]),
        mode: ElevationMode = .liveTV, clock: ManualClock = ManualClock(),
        configure: (inout Configuration) -> Void = { _ in }
    ) {
        self.pms = pms
        self.clock = clock
        var configuration = Configuration.testing(policy: policy, mode: mode)
        configure(&configuration)
        application = try! AuthzApplication(
            configuration: configuration,
            dependencies: .testing(clock: clock, pms: pms, log: log))
    }

    func decide(
        _ target: String, method: String = "GET", from address: String = clientAddress, headers: [(String, String)] = []
    ) async -> AuthzDecision {
        let fields =
            [HTTPField(name: "X-Forwarded-For", value: address)] + headers.map { HTTPField(name: $0.0, value: $0.1) }
        return await guardian.decide(
            AuthzRequest(method: method, target: target, headers: fields, peer: PeerFacts(trustedFrontend: true)))
    }
}

@Suite("Guard")
struct GuardTests {
    @Test func validUserTokenIsElevatedAndAudited() async {
        let h = Harness()
        let d = await h.decide("/livetv/dvrs?X-Plex-Token=\(userValue)")
        #expect(d.elevate && !d.rejected)
        #expect(d.outcome == .elevatedLiveTV)
        #expect(d.upstreamTarget == "/livetv/dvrs")
        #expect(h.log.outcomes() == ["elevated_live_tv"])
        #expect(h.pms.callCount == 1)
        // Cached: the second request does not ask PMS.
        _ = await h.decide("/media/providers?X-Plex-Token=\(userValue)")
        #expect(h.pms.callCount == 1)
        #expect(h.audit.emitSummary(now: h.clock.now()).contains("elevated=2 deny_missing=0"))
    }

    @Test func nonCandidatesAreNeverAuditedValidatedOrBlocked() async {
        let h = Harness(policy: AbusePolicy(threshold: 1))
        _ = await h.decide("/livetv/dvrs")  // blocks the source at once
        let d = await h.decide("/library/sections?X-Plex-Token=\(otherValue)")
        #expect(!d.elevate && !d.rejected && d.outcome == nil)
        #expect(d.upstreamToken?.value == otherValue)
        #expect(h.pms.callCount == 0)
        #expect(h.log.outcomes() == ["deny_missing_token", "bad_actor_blocked"])
    }

    @Test func unauthorizedTokenIsDeniedThenCooledDownWithoutPMS() async {
        let h = Harness()
        let first = await h.decide("/livetv/dvrs?X-Plex-Token=\(otherValue)")
        #expect(!first.elevate && first.outcome == .denyUnauthorizedToken)
        #expect(first.upstreamTarget == "/livetv/dvrs?X-Plex-Token=\(otherValue)")
        #expect(first.upstreamToken?.value == otherValue)
        let second = await h.decide("/livetv/dvrs?X-Plex-Token=\(otherValue)")
        #expect(second.outcome == .denyAuthCooldown)
        #expect(h.pms.callCount == 1)
        // Another source with the same token is asked about again (cooldown is per source+token).
        _ = await h.decide("/livetv/dvrs?X-Plex-Token=\(otherValue)", from: "198.51.100.5")
        #expect(h.pms.callCount == 2)
        // After two minutes PMS is asked again.
        h.clock.advance(.seconds(121))
        _ = await h.decide("/livetv/dvrs?X-Plex-Token=\(otherValue)")
        #expect(h.pms.callCount == 3)
    }

    @Test func fiveFailuresBlockThenOnlyBadTokensAreRejected() async {
        let h = Harness()
        for i in 0..<4 {
            let d = await h.decide(i % 2 == 0 ? "/livetv/dvrs" : "/livetv/dvrs?X-Plex-Token=\(otherValue)")
            #expect(!d.rejected)
        }
        let fifth = await h.decide("/livetv/dvrs")
        #expect(fifth.outcome == .denyMissingToken && !fifth.rejected)
        #expect(h.log.outcomes().last == "bad_actor_blocked")
        #expect(h.log.auditLines.last!.contains("failures=5 window=5m0s blocked_for=30m0s"))
        let callsBefore = h.pms.callCount
        // Missing and already-denied tokens: rejected, PMS not asked.
        let missing = await h.decide("/livetv/dvrs")
        #expect(missing.rejected && missing.outcome == .blockedBadActor && !missing.elevate)
        let denied = await h.decide("/livetv/dvrs?X-Plex-Token=\(otherValue)")
        #expect(denied.rejected && denied.outcome == .blockedBadActor)
        h.clock.advance(.seconds(600))  // past the cooldown, still inside the block
        let deniedLater = await h.decide("/livetv/dvrs?X-Plex-Token=\(otherValue)")
        #expect(deniedLater.rejected)
        #expect(h.pms.callCount == callsBefore)
        // A valid token and the owner token still pass; non-candidates are untouched.
        #expect(await h.decide("/livetv/dvrs?X-Plex-Token=\(userValue)").elevate)
        #expect(await h.decide("/livetv/dvrs?X-Plex-Token=\(ownerValue)").elevate)
        #expect(!(await h.decide("/library/sections")).rejected)
        // Another source is not affected.
        #expect(!(await h.decide("/livetv/dvrs", from: "198.51.100.5")).rejected)
        // The block ends after thirty minutes.
        h.clock.advance(.seconds(1201))
        let after = await h.decide("/livetv/dvrs")
        #expect(!after.rejected && after.outcome == .denyMissingToken)
        #expect(h.log.outcomes().filter { $0 == "bad_actor_blocked" }.count == 1)
    }

    @Test func spoofedForwardingFromAnUntrustedPeerCannotDodgeABlock() async {
        let h = Harness(policy: AbusePolicy(threshold: 2))
        func untrusted(_ spoof: String) async -> AuthzDecision {
            await h.guardian.decide(
                AuthzRequest(
                    method: "GET", target: "/livetv/dvrs",
                    headers: [
                        HTTPField(name: "X-Forwarded-For", value: spoof),
                        HTTPField(name: "CF-Connecting-IP", value: spoof),
                    ],
                    peer: PeerFacts(trustedFrontend: false, connectionAddress: "192.0.2.50")))
        }
        _ = await untrusted("1.1.1.1")
        _ = await untrusted("2.2.2.2")
        #expect(await untrusted("3.3.3.3").rejected)
    }

    @Test func pmsUnavailableNeverElevatesNeverBlocksNeverCaches() async {
        let pms = ScriptedPMS([:], fallback: .unavailable(.timeout(.seconds(3))))
        let h = Harness(policy: AbusePolicy(threshold: 2), pms: pms)
        for _ in 0..<5 {
            let d = await h.decide("/livetv/dvrs?X-Plex-Token=\(userValue)")
            #expect(!d.elevate && !d.rejected && d.outcome == .denyValidationUnavailable)
            #expect(d.upstreamToken?.value == userValue)
        }
        #expect(pms.callCount == 5)
        #expect(await h.state.activeBlocks(at: h.clock.now()) == 0)
        pms.set(userValue, .valid)
        #expect(await h.decide("/livetv/dvrs?X-Plex-Token=\(userValue)").elevate)
    }

    @Test func ownerTokenNeedsNoPMSCall() async {
        let h = Harness()
        let d = await h.decide("/livetv/dvrs?X-Plex-Token=\(ownerValue)")
        #expect(d.elevate && d.outcome == .elevatedLiveTV)
        #expect(h.pms.callCount == 0)
    }

    @Test func auditLinesNeverHoldARawTokenOrAddress() async {
        let h = Harness(policy: AbusePolicy(threshold: 3))
        let cf = "198.51.100.200"
        _ = await h.decide("/livetv/dvrs?X-Plex-Token=\(userValue)")
        _ = await h.decide("/livetv/dvrs?X-Plex-Token=\(otherValue)")
        _ = await h.decide("/livetv/dvrs?X-Plex-Token=\(otherValue)")
        _ = await h.decide("/livetv/dvrs")
        _ = await h.decide("/livetv/dvrs")
        _ = await h.decide(
            "/livetv/dvrs?X-Plex-Token=\(ownerValue)", from: "127.0.0.1", headers: [("CF-Connecting-IP", cf)])
        _ = await h.decide("/livetv/dvrs", headers: [("X-Plex-Token", otherValue)])
        h.audit.emitSummary(now: h.clock.now())
        let everything = h.log.all.joined(separator: "\n")
        #expect(h.log.outcomes().count >= 7)
        for secret in [userValue, ownerValue, otherValue, clientAddress, cf, "127.0.0.1"] {
            #expect(!everything.contains(secret), "log leaks \(secret)")
        }
        #expect(everything.contains(PlexToken(otherValue)!.fingerprint))
        #expect(everything.contains("plexlabelproxy_audit_summary: since="))
    }

    @Test func summaryCountsCacheHitsAndResets() async {
        let h = Harness()
        _ = await h.decide("/livetv/dvrs?X-Plex-Token=\(userValue)")
        _ = await h.decide("/livetv/dvrs?X-Plex-Token=\(userValue)")
        let line = h.audit.emitSummary(now: h.clock.now())
        #expect(line.contains("auth_cache_hit=1 auth_cache_miss=1"))
        #expect(h.audit.emitSummary(now: h.clock.now()).contains("elevated=0"))
    }
}

@Suite("Token validator")
struct TokenValidatorTests {
    @Test func singleFlightShares1000ConcurrentCallsInOnePMSCall() async {
        let pms = ScriptedPMS([userValue: .valid], delay: .milliseconds(200))
        let validator = TokenValidator(client: pms, clock: ManualClock())
        let token = PlexToken(userValue)!
        let results = await withTaskGroup(of: TokenCheck.self) { group in
            for _ in 0..<1_000 { group.addTask { await validator.validate(token).check } }
            return await group.reduce(into: [TokenCheck]()) { $0.append($1) }
        }
        #expect(results.count == 1_000 && results.allSatisfy { $0 == .valid })
        #expect(pms.callCount == 1)
        #expect(await validator.pmsCalls == 1)
    }

    @Test func cacheExpiresAfterItsTTL() async {
        let pms = ScriptedPMS([userValue: .valid])
        let clock = ManualClock()
        let validator = TokenValidator(client: pms, clock: clock, ttl: .seconds(300))
        let token = PlexToken(userValue)!
        let first = clock.now()
        #expect(
            await validator.validate(token)
                == TokenValidation(check: .valid, cacheHit: false, validUntil: first + .seconds(300)))
        clock.advance(.seconds(299))
        #expect(await validator.validate(token).cacheHit)
        #expect(validator.cachedValidation(token)?.validUntil == first + .seconds(300))
        clock.advance(.seconds(1))
        #expect(validator.cachedValidation(token) == nil)
        #expect(
            await validator.validate(token)
                == TokenValidation(check: .valid, cacheHit: false, validUntil: first + .seconds(600)))
        #expect(pms.callCount == 2)
    }

    @Test func cacheIsBoundedLeastRecentlyUsedFirst() async {
        let pms = ScriptedPMS([:], fallback: .valid)
        let validator = TokenValidator(client: pms, clock: ManualClock(), capacity: 3)
        let tokens = (0..<4).map { PlexToken("token\($0)")! }
        for token in tokens.prefix(3) { _ = await validator.validate(token) }
        _ = await validator.validate(tokens[0])  // token0 is now the most recent
        _ = await validator.validate(tokens[3])  // evicts token1
        #expect(await validator.cachedTokens == 3)
        #expect(await validator.validate(tokens[0]).cacheHit)
        #expect(await validator.validate(tokens[2]).cacheHit)
        #expect(!(await validator.validate(tokens[1]).cacheHit))
    }

    @Test func invalidAndUnavailableAnswersAreNotCached() async {
        let pms = ScriptedPMS([userValue: .invalid(status: 401), otherValue: .unavailable(.status(500))])
        let validator = TokenValidator(client: pms, clock: ManualClock())
        for _ in 0..<2 {
            #expect(await validator.validate(PlexToken(userValue)!).check == .invalid(status: 401))
            #expect(await validator.validate(PlexToken(otherValue)!).check == .unavailable(.status(500)))
        }
        #expect(pms.callCount == 4)
    }
}
