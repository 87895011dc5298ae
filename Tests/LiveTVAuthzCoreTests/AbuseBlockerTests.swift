import LiveTVAuthzCore
import Testing

@Suite("Abuse blocker (§8)")
struct AbuseBlockerTests {
    let start = Timestamp(unixSeconds: 1_800_000_000)
    let policy = AbusePolicy()  // 5 in 5m, block 30m, cooldown 2m

    @Test func fiveFailuresInsideTheWindowBlockForThirtyMinutes() {
        var blocker = AbuseBlocker(policy: policy)
        for i in 1...4 {
            #expect(blocker.recordFailure(source: "s", at: start + .seconds(i * 10)) == .counted(failures: i))
        }
        let fifth = start + .seconds(299)
        #expect(blocker.recordFailure(source: "s", at: fifth) == .blocked(failures: 5, until: fifth + .seconds(1800)))
        #expect(blocker.isBlocked("s", at: fifth + .seconds(1799)))
        #expect(!blocker.isBlocked("s", at: fifth + .seconds(1800)))
        #expect(!blocker.isBlocked("other", at: fifth))
        #expect(blocker.recordFailure(source: "s", at: fifth + .seconds(1)) == .alreadyBlocked)
        #expect(blocker.activeBlocks(at: fifth) == 1)
    }

    /// An operator's unblock forgets the block, the window and the denied tokens' cooldowns of that source
    /// only; forgetting everyone empties the blocker.
    @Test func forgettingASourceLiftsItsBlockAndCooldownsOnly() {
        var blocker = AbuseBlocker(policy: policy)
        for source in ["s", "t"] {
            blocker.recordDenial(source: source, token: "bad", at: start)
            for i in 1...5 { _ = blocker.recordFailure(source: source, at: start + .seconds(i)) }
        }
        let now = start + .seconds(10)
        let forgot = blocker.forget("s")
        #expect(forgot)
        #expect(!blocker.isBlocked("s", at: now) && !blocker.isCoolingDown(source: "s", token: "bad", at: now))
        let again = blocker.recordFailure(source: "s", at: now)
        #expect(again == .counted(failures: 1))
        #expect(blocker.isBlocked("t", at: now) && blocker.isCoolingDown(source: "t", token: "bad", at: now))
        let unknown = blocker.forget("unknown")
        #expect(!unknown)
        let all = blocker.forgetAll()
        #expect(all == 2)
        #expect(blocker.sources.isEmpty && !blocker.isBlocked("t", at: now))
    }

    @Test func theWindowIsFixedFromTheFirstFailure() {
        var blocker = AbuseBlocker(policy: policy)
        for i in 0..<4 { _ = blocker.recordFailure(source: "s", at: start + .seconds(i)) }
        // Exactly one window after the first failure, a new window starts: no block.
        #expect(blocker.recordFailure(source: "s", at: start + .seconds(300)) == .counted(failures: 1))
        for i in 1..<4 { _ = blocker.recordFailure(source: "s", at: start + .seconds(300 + i)) }
        #expect(
            blocker.recordFailure(source: "s", at: start + .seconds(599))
                == .blocked(failures: 5, until: start + .seconds(599 + 1800)))
    }

    @Test func afterABlockEndsCountingStartsAfresh() {
        var blocker = AbuseBlocker(policy: AbusePolicy(threshold: 2))
        _ = blocker.recordFailure(source: "s", at: start)
        _ = blocker.recordFailure(source: "s", at: start)
        let after = start + .seconds(1800)
        #expect(blocker.recordFailure(source: "s", at: after) == .counted(failures: 1))
    }

    @Test func cooldownExpiresAndCanBeDisabled() {
        var blocker = AbuseBlocker(policy: policy)
        blocker.recordDenial(source: "s", token: "t", at: start)
        #expect(blocker.isCoolingDown(source: "s", token: "t", at: start + .seconds(119)))
        #expect(!blocker.isCoolingDown(source: "s", token: "t", at: start + .seconds(120)))
        #expect(!blocker.isCoolingDown(source: "other", token: "t", at: start))
        #expect(!blocker.isCoolingDown(source: "s", token: "u", at: start))
        var disabled = AbuseBlocker(policy: AbusePolicy(cooldown: nil))
        disabled.recordDenial(source: "s", token: "t", at: start)
        #expect(!disabled.isCoolingDown(source: "s", token: "t", at: start))
    }

    @Test func aBlockKeepsDeniedTokensDeniedUntilItEnds() {
        var blocker = AbuseBlocker(policy: AbusePolicy(threshold: 2, cooldown: nil))
        _ = blocker.recordFailure(source: "s", at: start)
        _ = blocker.recordFailure(source: "s", at: start)
        blocker.recordDenial(source: "s", token: "t", at: start + .seconds(5))
        #expect(blocker.isCoolingDown(source: "s", token: "t", at: start + .seconds(1799)))
        #expect(!blocker.isCoolingDown(source: "s", token: "t", at: start + .seconds(1800)))
        var withCooldown = AbuseBlocker(policy: AbusePolicy(threshold: 2))
        withCooldown.recordDenial(source: "s", token: "t", at: start)
        _ = withCooldown.recordFailure(source: "s", at: start)
        _ = withCooldown.recordFailure(source: "s", at: start)
        #expect(withCooldown.isCoolingDown(source: "s", token: "t", at: start + .seconds(1799)))
    }

    @Test func restoringDropsExpiredRecords() {
        let records = [
            "live-block": SourceRecord(failures: 5, windowStart: start, blockedUntil: start + .seconds(1800)),
            "ended-block": SourceRecord(failures: 5, windowStart: start, blockedUntil: start + .seconds(10)),
            "open-window": SourceRecord(failures: 2, windowStart: start, blockedUntil: nil),
            "old-window": SourceRecord(failures: 2, windowStart: start + .seconds(-400), blockedUntil: nil),
        ]
        let blocker = AbuseBlocker(policy: policy, restoring: records, now: start + .seconds(60))
        #expect(Set(blocker.sources.keys) == ["live-block", "open-window"])
        #expect(blocker.isBlocked("live-block", at: start + .seconds(60)))
    }

    @Test func memoryStaysBoundedUnderManySources() {
        var blocker = AbuseBlocker(policy: policy)
        blocker.maximumSources = 100
        blocker.maximumCooldowns = 50
        for i in 0..<1_000 {
            _ = blocker.recordFailure(source: "s\(i)", at: start)
            blocker.recordDenial(source: "s\(i)", token: "t", at: start)
        }
        #expect(blocker.sources.count <= 100)
    }
}
