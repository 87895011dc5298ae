import LiveTVAuthzCore
import Testing

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
