import LiveTVAuthzCore
import Testing

private func request(
    peer: PeerFacts, headers: [(String, String)] = []
) -> AuthzRequest {
    AuthzRequest(
        method: "GET", target: "/livetv/dvrs", headers: headers.map { HTTPField(name: $0.0, value: $0.1) }, peer: peer)
}

private let trusted = PeerFacts(trustedFrontend: true, connectionAddress: nil)
private func fp(_ address: String) -> String { Fingerprint.of(address) }

@Suite("Source identity (§8)")
struct SourceIdentityTests {
    @Test func untrustedAskerIgnoresEveryForwardingHeader() {
        let source = SourceIdentity.resolve(
            request(
                peer: PeerFacts(trustedFrontend: false, connectionAddress: "192.0.2.7"),
                headers: [("X-Forwarded-For", "203.0.113.9"), ("CF-Connecting-IP", "198.51.100.1")]))
        #expect(source.fingerprint == fp("192.0.2.7"))
        #expect(source.forwardedForCount == 0)
        #expect(!source.cfConnectingIP)
    }

    @Test func nonLoopbackDirectPeerIsTheSourceAndSpoofedHeadersChangeNothing() {
        let plain = SourceIdentity.resolve(request(peer: trusted, headers: [("X-Forwarded-For", "203.0.113.9")]))
        let spoofed = SourceIdentity.resolve(
            request(
                peer: trusted,
                headers: [("X-Forwarded-For", "10.9.9.9, 203.0.113.9"), ("CF-Connecting-IP", "198.51.100.1")]))
        #expect(plain.fingerprint == fp("203.0.113.9"))
        #expect(spoofed.fingerprint == plain.fingerprint)
        #expect(!spoofed.cfConnectingIP)
        #expect(spoofed.forwardedForCount == 2)
    }

    @Test func cloudflaredOnLoopbackUsesCFConnectingIP() {
        let source = SourceIdentity.resolve(
            request(peer: trusted, headers: [("X-Forwarded-For", "127.0.0.1"), ("CF-Connecting-IP", "198.51.100.1")]))
        #expect(source.fingerprint == fp("198.51.100.1"))
        #expect(source.cfConnectingIP)
        let twoLocalHops = SourceIdentity.resolve(
            request(
                peer: trusted, headers: [("X-Forwarded-For", "::1, 127.0.0.1"), ("CF-Connecting-IP", "198.51.100.1")]))
        #expect(twoLocalHops.fingerprint == fp("198.51.100.1"))
    }

    @Test func cfConnectingIPIsIgnoredWhenTheNextHopIsNotLoopback() {
        let source = SourceIdentity.resolve(
            request(
                peer: trusted,
                headers: [("X-Forwarded-For", "203.0.113.9, 127.0.0.1"), ("CF-Connecting-IP", "198.51.100.1")]))
        #expect(source.fingerprint == fp("203.0.113.9"))
        #expect(!source.cfConnectingIP)
    }

    @Test func behindALocalHopTheRightmostNonLoopbackEntryWinsNeverTheLeftmost() {
        let source = SourceIdentity.resolve(
            request(
                peer: trusted, headers: [("X-Forwarded-For", "6.6.6.6, 203.0.113.9"), ("X-Forwarded-For", "127.0.0.1")])
        )
        #expect(source.fingerprint == fp("203.0.113.9"))
        #expect(source.forwardedForCount == 3)
    }

    @Test func onlyLoopbackMeansTheDirectPeer() {
        let source = SourceIdentity.resolve(request(peer: trusted, headers: [("X-Forwarded-For", "127.0.0.1")]))
        #expect(source.fingerprint == fp("127.0.0.1"))
        #expect(source.isLoopback)
    }

    @Test func envoyReportedAddressIsTheDirectPeer() {
        let envoy = PeerFacts(trustedFrontend: true, reportedClientAddress: "203.0.113.9")
        #expect(SourceIdentity.resolve(request(peer: envoy)).fingerprint == fp("203.0.113.9"))
        let appended = SourceIdentity.resolve(
            request(peer: envoy, headers: [("X-Forwarded-For", "6.6.6.6, 203.0.113.9")]))
        #expect(appended.fingerprint == fp("203.0.113.9"))
        let local = PeerFacts(trustedFrontend: true, reportedClientAddress: "127.0.0.1")
        let viaTunnel = SourceIdentity.resolve(request(peer: local, headers: [("CF-Connecting-IP", "198.51.100.1")]))
        #expect(viaTunnel.fingerprint == fp("198.51.100.1"))
    }

    @Test func oneClientOneFingerprintHoweverItIsWritten() {
        let forms = [
            "203.0.113.9", " 203.0.113.9 ", "203.0.113.9:51234", "::ffff:203.0.113.9", "[::ffff:203.0.113.9]:80",
        ]
        let prints = Set(
            forms.map { SourceIdentity(address: $0, forwardedForCount: 0, cfConnectingIP: false).fingerprint })
        #expect(prints.count == 1)
        #expect(SourceIdentity(address: "[::1]:8080", forwardedForCount: 0, cfConnectingIP: false).isLoopback)
        #expect(SourceIdentity(address: "127.8.9.10", forwardedForCount: 0, cfConnectingIP: false).isLoopback)
        #expect(!SourceIdentity(address: "127.0.0.1.evil", forwardedForCount: 0, cfConnectingIP: false).isLoopback)
    }

    @Test(arguments: [
        ("127.0.0.1", true), ("127.9.8.7", true), ("[::1]:8080", true), ("::1", true), ("::ffff:127.0.0.1", true),
        ("localhost", true), ("127.evil.example", false), ("127.0.0.1.evil", false), ("128.0.0.1", false),
        ("203.0.113.9", false), ("", false),
    ])
    func oneNotionOfLoopbackForPeersAndHops(_ address: String, _ expected: Bool) {
        #expect(PeerAddress.isLoopback(address) == expected)
    }

    @Test func descriptionIsTheFingerprintOnly() {
        let source = SourceIdentity(address: "203.0.113.9", forwardedForCount: 1, cfConnectingIP: false)
        #expect("\(source)" == fp("203.0.113.9"))
        #expect(!"\(source)".contains("203.0.113.9"))
    }
}

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

@Suite("Audit lines (§9)")
struct AuditEventTests {
    let source = SourceIdentity(address: "203.0.113.9", forwardedForCount: 2, cfConnectingIP: false)

    @Test func lineHasTheOriginalFieldsInOrder() {
        let event = AuditEvent(
            outcome: .elevatedLiveTV, method: "GET", target: RequestTarget("/livetv/dvrs?X-Plex-Token=secret123"),
            surface: .livetv, rule: .livetv, source: source, tokenFingerprint: Fingerprint.of("secret123"),
            reason: "read under /livetv/")
        #expect(
            event.line
                == "plexlabelproxy_audit: outcome=elevated_live_tv method=GET path=/livetv/dvrs live_tv=true discovery=true stream=false source=\(Fingerprint.of("203.0.113.9")) forwarded_for_count=2 cf_connecting_ip=false token_fp=\(Fingerprint.of("secret123")) rule=livetv reason=\"read under /livetv/\""
        )
        #expect(!event.line.contains("secret123"))
        #expect(!event.line.contains("203.0.113.9"))
    }

    @Test func blockLineCarriesFailuresWindowAndDuration() {
        let event = AuditEvent(
            outcome: .badActorBlocked, method: "POST", target: RequestTarget("/livetv/dvrs/1/channels/2/tune"),
            surface: .livetvTune, rule: .livetvTune, source: source, tokenFingerprint: Fingerprint.missing,
            reason: "5 failures", block: (5, .seconds(300), .seconds(1800)))
        #expect(event.line.contains(" stream=true "))
        #expect(
            event.line.contains(
                " token_fp=missing rule=livetv-tune failures=5 window=5m0s blocked_for=30m0s reason=\"5 failures\""))
    }

    @Test(arguments: [
        "/livetv/a b outcome=elevated_live_tv", "/livetv/a\nplexlabelproxy_audit: outcome=elevated_live_tv",
        "/livetv/\"x\"", "/livetv/\\x", "/livetv/\u{1b}[31m", "/livetv/é",
    ])
    func pathsCannotSplitOrForgeALine(_ path: String) {
        let event = AuditEvent(
            outcome: .denyMissingToken, method: "GET\r\nX", target: RequestTarget(path + "?X-Plex-Token=t"),
            surface: .livetv,
            rule: .noToken, source: source, tokenFingerprint: Fingerprint.missing, reason: "a \"quoted\"\nreason")
        let line = event.line
        #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{1b}"))
        #expect(line.components(separatedBy: " outcome=").count == 2)
        #expect(line.components(separatedBy: "plexlabelproxy_audit: ").count == 2)
        #expect(line.components(separatedBy: " ").count == 14, "\(line)")
        #expect(line.hasSuffix("reason=\"a \\\"quoted\\\"\\x0areason\""))
    }

    @Test func summaryLineCountsAndRanksSources() {
        var counters = AuditCounters(since: Timestamp(unixSeconds: 1_800_000_000))
        for _ in 0..<3 { counters.record(.denyUnauthorizedToken, source: "sha256:b") }
        counters.record(.blockedBadActor, source: "sha256:a")
        counters.record(.denyMissingToken, source: "sha256:a")
        counters.record(.elevatedLiveTV, source: "sha256:c")
        counters.record(.badActorBlocked, source: "sha256:b")
        counters.record(.denyValidationUnavailable, source: "sha256:d")
        counters.record(.denyAuthCooldown, source: "sha256:e")
        counters.cacheHits = 7
        counters.cacheMisses = 2
        #expect(
            counters.summaryLine
                == "plexlabelproxy_audit_summary: since=2027-01-15T08:00:00Z elevated=1 deny_missing=1 deny_unauthorized=3 deny_auth_cooldown=1 deny_unavailable=1 auth_cache_hit=7 auth_cache_miss=2 blocked_sources=1 blocked_requests=1 top_sources=\"sha256:b:3,sha256:a:2,sha256:e:1\""
        )
    }
}

@Suite("Durations and time")
struct TimeTests {
    @Test(arguments: [
        ("5m", 300.0), ("30m", 1800), ("2m", 120), ("-1s", -1), ("1h30m", 5400), ("300ms", 0.3), ("1.5h", 5400),
        ("0", 0), ("2m0s", 120), ("10us", 0.00001), ("+5s", 5),
    ])
    func parses(_ text: String, _ seconds: Double) throws {
        let duration = try #require(GoDuration.parse(text))
        #expect(abs(Double(duration.nanoseconds) / 1e9 - seconds) < 1e-9)
    }

    @Test(arguments: ["", "5", "m", "5 m", "5min", "1d", "--1s", "abc", "1.2.3s", "9999999999h"])
    func refuses(_ text: String) {
        #expect(GoDuration.parse(text) == nil)
    }

    @Test(arguments: [
        (Duration.seconds(300), "5m0s"), (.seconds(1800), "30m0s"), (.seconds(5400), "1h30m0s"), (.seconds(2), "2s"),
        (.milliseconds(1500), "1.5s"), (.milliseconds(300), "300ms"), (.zero, "0s"), (.seconds(-1), "-1s"),
    ])
    func formatsLikeGo(_ duration: Duration, _ text: String) {
        #expect(GoDuration.format(duration) == text)
    }

    @Test func rfc3339() {
        #expect(Timestamp(unixSeconds: 0).rfc3339 == "1970-01-01T00:00:00Z")
        #expect(Timestamp(unixSeconds: 1_795_610_898).rfc3339 == "2026-11-25T12:48:18Z")
        #expect(Timestamp(unixSeconds: 951_782_400).rfc3339 == "2000-02-29T00:00:00Z")
    }
}
