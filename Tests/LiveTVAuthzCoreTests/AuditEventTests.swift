import Foundation
import LiveTVAuthzCore
import Testing

@Suite("Audit lines (§9)")
struct AuditEventTests {
    /// Fingerprints are compared across restarts, state files and log searches: they must stay exactly
    /// `sha256:` + the first 16 hex digits of SHA-256 of the trimmed value (as `sha256sum` prints it).
    @Test func fingerprintsAreTheKnownDigestsOfTheTrimmedValue() {
        #expect(Fingerprint.of("203.0.113.9") == "sha256:d861b7e91033ebc1")
        #expect(Fingerprint.of(" \t203.0.113.9 \t") == "sha256:d861b7e91033ebc1")
        #expect(Fingerprint.of("") == "sha256:e3b0c44298fc1c14")
        #expect(Fingerprint.of("   ") == "sha256:e3b0c44298fc1c14")
        #expect(PlexToken("user0000000000000000")!.fingerprint == "sha256:a16b006064c93e5d")
        #expect(Fingerprint.of("eyJ" + String(repeating: "a", count: 300)) == "sha256:fd971f6327f6ee3c")
    }

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

    /// `--log-format json`: the same fields and values, one object, nothing that can split it; shadow mode
    /// adds `shadow=true` before the reason and nothing otherwise.
    @Test(arguments: [false, true])
    func jsonCarriesTheLinesFieldsAndShadowIsMarked(_ shadow: Bool) throws {
        var event = AuditEvent(
            outcome: .denyMissingToken, method: "GET", target: RequestTarget("/livetv/a\nb?X-Plex-Token=t"),
            surface: .livetv, rule: .noToken, source: source, tokenFingerprint: Fingerprint.missing,
            reason: "a \"quoted\"\nreason\u{1}")
        event.shadow = shadow
        #expect(event.line.contains(" shadow=true reason=") == shadow)
        let json = event.json
        #expect(!json.contains("\n"))
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
        #expect(object["log"] as? String == "plexlabelproxy_audit")
        #expect(object["outcome"] as? String == "deny_missing_token")
        #expect(object["path"] as? String == "/livetv/a%0Ab")
        #expect(object["reason"] as? String == "a \"quoted\"\nreason\u{1}")
        #expect(object["live_tv"] as? Bool == true && object["forwarded_for_count"] as? Int == 2)
        #expect((object["shadow"] as? Bool) == (shadow ? true : nil))
        #expect(Set(object.keys) == Set(["log"] + event.fields.map(\.0)))
        var counters = AuditCounters(since: Timestamp(unixSeconds: 1_800_000_000))
        counters.record(.denyMissingToken, source: "sha256:a")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(counters.summaryJSON.utf8)) as? [String: Any])
        #expect(summary["log"] as? String == "plexlabelproxy_audit_summary" && summary["deny_missing"] as? Int == 1)
        #expect(summary["top_sources"] as? String == "sha256:a:1")
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
                == "plexlabelproxy_audit_summary: since=2027-01-15T08:00:00Z elevated=1 deny_missing=1 deny_unauthorized=3 deny_auth_cooldown=1 deny_unavailable=1 auth_cache_hit=7 auth_cache_miss=2 blocked_sources=1 blocked_requests=1 deny_missing_media=0 deny_session_mismatch=0 top_sources=\"sha256:b:3,sha256:a:2,sha256:e:1\""
        )
    }
}
