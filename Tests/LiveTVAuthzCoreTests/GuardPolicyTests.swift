import Testing

@testable import LiveTVAuthzCore

/// The guard's policy (elevation-rules §7, §8) as a table: classification × blocked × token state × PMS
/// answer → judgement. No async, no store, no clock: the runtime only carries these out.
@Suite("Guard policy (§7, §8)")
struct GuardPolicyTests {
    static let candidate = classifier().classify(AuthzRequest(method: "GET", target: "/livetv/dvrs?\(tok)"))
    static let library = classifier().classify(AuthzRequest(method: "GET", target: "/library/sections?\(tok)"))

    struct Row: CustomTestStringConvertible, Sendable {
        var blocked: Bool
        var token: InboundTokenState
        var check: TokenCheck?
        var outcome: AuditOutcome
        var proof: TokenProof?
        var rejected = false
        var counts = false
        var cooldown = false
        var testDescription: String {
            "blocked=\(blocked) \(token) \(check.map { "\($0)" } ?? "-") → \(outcome.rawValue)"
        }
    }

    static let rows: [Row] = [
        Row(blocked: false, token: .missing, check: nil, outcome: .denyMissingToken, counts: true),
        Row(blocked: true, token: .missing, check: nil, outcome: .blockedBadActor, rejected: true),
        Row(blocked: false, token: .owner, check: nil, outcome: .elevatedLiveTV, proof: .ownerToken),
        Row(blocked: true, token: .owner, check: nil, outcome: .elevatedLiveTV, proof: .ownerToken),
        Row(blocked: false, token: .coolingDown, check: nil, outcome: .denyAuthCooldown, counts: true),
        Row(blocked: true, token: .coolingDown, check: nil, outcome: .blockedBadActor, rejected: true),
        Row(blocked: false, token: .unproven, check: .valid, outcome: .elevatedLiveTV, proof: .pmsValidated),
        Row(blocked: true, token: .unproven, check: .valid, outcome: .elevatedLiveTV, proof: .pmsValidated),
        Row(
            blocked: false, token: .unproven, check: .invalid(status: 401), outcome: .denyUnauthorizedToken,
            counts: true, cooldown: true),
        Row(
            blocked: true, token: .unproven, check: .invalid(status: 403), outcome: .blockedBadActor, rejected: true,
            cooldown: true),
        Row(blocked: false, token: .unproven, check: .unavailable(.status(302)), outcome: .denyValidationUnavailable),
        Row(
            blocked: true, token: .unproven, check: .unavailable(.timeout(.seconds(3))),
            outcome: .denyValidationUnavailable),
    ]

    @Test(arguments: rows)
    func judgement(_ row: Row) {
        let judgement: GuardJudgement
        switch GuardPolicy.evaluate(Self.candidate, blocked: row.blocked, token: row.token) {
        case .decided(let decided):
            #expect(row.check == nil, "decided without asking PMS")
            judgement = decided
        case .validate:
            let check = try! #require(row.check, "PMS must be asked")
            judgement = GuardPolicy.conclude(Self.candidate, blocked: row.blocked, check: check)
        }
        #expect(judgement.outcome == row.outcome)
        #expect(judgement.proof == row.proof)
        #expect(judgement.rejected == row.rejected)
        #expect(judgement.countsAsFailure == row.counts)
        #expect(judgement.startsCooldown == row.cooldown)
        let decision = AuthzDecision(Self.candidate, judgement: judgement, ownerToken: ownerToken)
        // Only a proof elevates; a rejection never does.
        #expect(decision.elevate == (row.proof != nil))
        #expect(decision.elevate ? decision.upstreamToken == ownerToken : decision.upstreamToken != ownerToken)
        #expect(!(decision.rejected && decision.elevate))
    }

    @Test func nonCandidatesAreNeverJudged() {
        for blocked in [false, true] {
            for token in [InboundTokenState.missing, .owner, .coolingDown, .unproven] {
                #expect(GuardPolicy.evaluate(Self.library, blocked: blocked, token: token) == .decided(.notCandidate))
            }
            #expect(GuardPolicy.conclude(Self.library, blocked: blocked, check: .valid) == .notCandidate)
        }
        let decision = AuthzDecision(Self.library, judgement: .notCandidate, ownerToken: ownerToken)
        #expect(!decision.elevate && decision.outcome == nil && decision.upstreamToken?.value == userToken)
    }

    @Test func aProofCannotElevateARefusedRequest() {
        let smuggled = classifier().classify(
            AuthzRequest(method: "GET", target: "/livetv/dvrs?\(tok)&x-plex-token=\(userToken)"))
        let judgement = GuardPolicy.conclude(smuggled, blocked: false, check: .valid)
        #expect(judgement == .notCandidate)
        #expect(!AuthzDecision.assumingValidToken(smuggled, ownerToken: ownerToken).elevate)
    }
}

@Suite("Percent-decoding layers")
struct DecodingLayerTests {
    @Test func untilStableWalksEveryLayerAndStopsAtAMalformedEscape() {
        let layers = PercentDecodingProbe.layers("%252e%252e", untilStable: true)
        #expect(layers == ["%252e%252e", "%2e%2e", ".."])
        #expect(PercentDecodingProbe.layers("%25zz", untilStable: true) == ["%25zz", "%zz"])
        #expect(PercentDecodingProbe.layers("plain", untilStable: true) == ["plain"])
    }

    @Test func roundsAreCappedWhereTheRuleSaysSo() {
        let five = "%2525252525252F"
        #expect(PercentDecodingProbe.layers(five, untilStable: false).count == 5)  // the value and four rounds
        #expect(PercentDecodingProbe.layers(five, untilStable: true).last == "/")
    }
}

/// The decoding layers as text.
enum PercentDecodingProbe {
    static func layers(_ value: String, untilStable: Bool) -> [String] {
        PercentDecoding.layers(
            of: Array(value.utf8)[...], style: .path,
            depth: untilStable ? .untilStable : .rounds(LiveTVReferenceMatcher.maximumDecodingRounds)
        ).map { String(decoding: $0.bytes, as: UTF8.self) }
    }
}
