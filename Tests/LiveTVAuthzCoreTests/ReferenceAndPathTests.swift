import LiveTVAuthzCore
import Testing

@Suite("Path safety (§2)")
struct PathSafetyTests {
    @Test(arguments: [
        "/", "/livetv/dvrs", "/livetv/dvrs/", "/livetv/a.b", "/livetv/...", "/livetv/a%3Fb", "/:/timeline",
        "/tv.plex.providers.epg.xmltv:135/grid", "/livetv/a%41b", "/livetv/a+b", "/livetv/%2541",
    ])
    func safe(_ path: String) {
        #expect(PathSafety.check(path.utf8) == nil)
    }

    @Test(arguments: [
        ("livetv/dvrs", UnsafePathReason.notOriginForm),
        ("*", .notOriginForm),
        ("", .notOriginForm),
        ("/livetv/../x", .dotSegment(depth: 0)),
        ("/livetv/%2e%2e/x", .dotSegment(depth: 1)),
        ("/livetv/%252e%252e/x", .dotSegment(depth: 2)),
        ("/livetv/%25252e/x", .dotSegment(depth: 3)),
        ("/livetv/.", .dotSegment(depth: 0)),
        ("/livetv//x", .emptySegment(depth: 0)),
        ("/livetv/a\\b", .backslash(depth: 0)),
        ("/livetv/a%2fb", .encodedSeparator(depth: 0)),
        ("/livetv/a%255Cb", .encodedSeparator(depth: 1)),
        ("/livetv/a%00", .forbiddenByte(depth: 1)),
        ("/livetv/a%2509", .forbiddenByte(depth: 2)),
        ("/livetv/a%zz", .malformedEscape(depth: 0)),
        ("/livetv/a%25zz", .malformedEscape(depth: 1)),
        ("/livetv/a%25%7A%7A", .malformedEscape(depth: 1)),
        ("/livetv/%25%32%35", .malformedEscape(depth: 2)),
    ])
    func unsafe(_ path: String, _ reason: UnsafePathReason) {
        #expect(PathSafety.check(path.utf8) == reason)
    }

    @Test func decodingIsNotCapped() {
        // Twelve encoding layers of "..": still found.
        var segment = "%2e%2e"
        for _ in 0..<11 { segment = segment.replacingOccurrences(of: "%", with: "%25") }
        #expect(PathSafety.check("/livetv/\(segment)/library".utf8) == .dotSegment(depth: 12))
    }
}

@Suite("Live TV references (§5)")
struct LiveTVReferenceTests {
    let matcher = LiveTVReferenceMatcher(machineIdentifier: machineID, pmsAuthority: "plex.lan:32400")
    let anyMachine = LiveTVReferenceMatcher()

    @Test(arguments: [
        "/livetv/sessions/abc",
        "/livetv/sessions/abc?x=1",
        "/tv.plex.providers.epg.xmltv:135/metadata/1",
        "tv.plex.xmltv://movie/Live%3A%20NBA",
        "tv.plex.providers.epg.xmltv:135",
        "server://\(machineID)/com.plexapp.plugins.library/livetv/sessions/abc",
        "SERVER://\(machineID.uppercased())/livetv/sessions/abc",
        "/com.plexapp.plugins.library/livetv/sessions/abc",
        "http://127.0.0.1:32400/livetv/sessions/abc",
        "https://localhost/livetv/sessions/abc",
        "http://[::1]:32400/livetv/sessions/abc",
        "HTTP://PLEX.LAN:32400/livetv/sessions/abc",
        "%2Flivetv%2Fsessions%2Fabc",
        "%252Flivetv%252Fsessions%252Fabc",
        "%25252525252Flivetv%2Fx".replacingOccurrences(of: "%25252525252F", with: "%2525252F"),
        "tv.plex.xmltv%253A%252F%252Fmovie%252Fx",
    ])
    func references(_ value: String) {
        #expect(matcher.isReference(value.utf8), "\(value)")
    }

    @Test(arguments: [
        "/library/metadata/9?x=/livetv/",
        "/library/livetv/x",
        "/LIVETV/sessions/abc",
        "TV.PLEX.XMLTV://movie/x",
        "x/livetv/sessions",
        "com.plexapp.agents.imdb://tt1234567",
        "server://otherid/com.plexapp.plugins.library/livetv/sessions/abc",
        "server:///livetv/sessions/abc",
        "http://elsewhere.example/livetv/sessions/abc",
        "http://127.0.0.1.evil.example/livetv/x",
        "http://user@127.0.0.1/livetv/x",
        "http://plex.lan:1234/livetv/x",
        "http://localhost:abc/livetv/x",
        "/livetv/../library/sections",
        "/livetv/sessions/%2e%2e/%2e%2e/library",
        "/livetv/sessions/a%2Fb",
        "/livetv//x",
        "/livetv/x%zz",
        "tv.plex.xmltv://movie/../../library",
        "tv.plex.xmltv://movie/%2e%2e/x",
        "tv.plex.xmltv://movie/a%2Fb",
        "tv.plex.xmltv://movie/a%5cb",
        "tv.plex.xmltv://movie/a%00b",
        "tv.plex.xmltv://movie/a%250ab",
        "tv.plex.xmltv://movie/a\u{7F}b",
        "%2525252525252Flivetv%2Fx",
        "/com.plexapp.plugins.libraryX/livetv/x",
        "",
    ])
    func notReferences(_ value: String) {
        #expect(!matcher.isReference(value.utf8), "\(value)")
    }

    @Test func anyMachineIdentifierWithoutConfiguration() {
        #expect(anyMachine.isReference("server://whatever/livetv/sessions/a".utf8))
        #expect(!anyMachine.isReference("server:///livetv/sessions/a".utf8))
        #expect(!anyMachine.isReference("http://plex.lan:32400/livetv/sessions/a".utf8))
    }

    @Test func laterLayersNeverRescueAnEarlierFailure() {
        // Layer 0 already starts with /livetv/ and fails §2 (malformed escape); a decoded layer must not count.
        #expect(!matcher.isReference("/livetv/%zz%2Flivetv%2Fx".utf8))
        // Four rounds: a value encoded five times (plus the query's form step) is not looked at.
        var value = "/livetv/x"
        for _ in 0..<4 {
            value = value.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
        }
        #expect(matcher.isReference(value.utf8))
        value = value.replacingOccurrences(of: "%", with: "%25")
        #expect(!matcher.isReference(value.utf8))
    }

    @Test(arguments: [
        ("https://app.plex.tv/desktop/#!/live-tv", false),
        ("https://app.plex.tv/desktop/#!/livetv/guide", true),
        ("https://x/#!/server/m/tv.plex.providers.epg.xmltv:135", true),
        ("https://x/?g=TV.PLEX.XMLTV%3A%2F%2Fmovie", true),
        ("https://app.plex.tv/", false),
        ("", false),
    ])
    func refererPages(_ referer: String, _ expected: Bool) {
        #expect(LiveTVReferenceMatcher.isLiveTVPage(referer.utf8) == expected)
    }
}
