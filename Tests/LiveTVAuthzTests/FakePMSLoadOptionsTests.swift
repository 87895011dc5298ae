import FakePMS
import Testing

/// The fake PMS options the benchmarks use: many valid tokens by prefix, and counts without a request log.
@Suite("Fake PMS load options")
struct FakePMSLoadOptionsTests {
    static func sections(_ pms: FakePMS, token: String) -> Int {
        pms.handle(FakeRequest(method: "GET", target: "/library/sections?X-Plex-Token=\(token)", headers: [])).status
    }

    @Test func aTokenPrefixMakesEveryTokenWithItASharedUserAndNoOther() {
        let pms = FakePMS()
        #expect(Self.sections(pms, token: "bench000001") == 401)
        pms.update { $0.userTokenPrefix = "bench" }
        #expect(Self.sections(pms, token: "bench000001") == 200)
        #expect(Self.sections(pms, token: "bench999999") == 200)
        #expect(Self.sections(pms, token: "xbench000001") == 401)
        // A shared user, not the owner: the owner-only endpoints stay closed.
        let prefs = pms.handle(FakeRequest(method: "GET", target: "/:/prefs?X-Plex-Token=bench1", headers: []))
        #expect(prefs.status == 403)
        pms.update { $0.userTokenPrefix = "" }
        #expect(Self.sections(pms, token: "bench000001") == 401)
    }

    @Test func withoutTheRequestLogOnlyCountsAreKept() {
        let pms = FakePMS()
        _ = Self.sections(pms, token: "user0000000000000000")
        #expect(pms.requests().count == 1)
        pms.update { $0.recordRequests = false }
        for _ in 0..<3 { _ = Self.sections(pms, token: "user0000000000000000") }
        #expect(pms.requests().count == 1)
        #expect(pms.counts["/library/sections"] == 4)
        pms.resetRequests()
        #expect(pms.counts.isEmpty)
    }
}
