import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

@Suite("explain contract")
struct ExplainerTests {
    let explainer = Explainer(classifier: LiveTVClassifier(), ownerToken: PlexToken("OWNER")!)

    @Test func elevatedLineIsByteExact() {
        let answer = explainer.answer(line: #"{"method":"GET","target":"/livetv/dvrs?X-Plex-Token=abc"}"#)
        #expect(!answer.failed)
        #expect(
            answer.text
                == #"{"elevate":true,"rule":"livetv","upstreamTarget":"/livetv/dvrs","upstreamToken":"OWNER"}"#
        )
    }

    @Test func preservedAndTokenlessLinesAreByteExact() {
        #expect(
            explainer.answer(line: #"{"method":"GET","target":"/library/sections?X-Plex-Token=abc"}"#).text
                == #"{"elevate":false,"rule":"none","upstreamTarget":"/library/sections?X-Plex-Token=abc","upstreamToken":"abc"}"#
        )
        #expect(
            explainer.answer(line: #"{"method":"GET","target":"/livetv/dvrs"}"#).text
                == #"{"elevate":false,"rule":"no-token","upstreamTarget":"/livetv/dvrs","upstreamToken":null}"#)
    }

    @Test func headersAsPairsKeepOrderAndDuplicates() {
        let line =
            #"{"method":"GET","target":"/","headers":[["Referer","https://app.plex.tv/"],["Referer","https://x/livetv/"],["X-Plex-Token","abc"]]}"#
        #expect(explainer.answer(line: line).text.hasPrefix(#"{"elevate":false,"rule":"none","#))
        let swapped =
            #"{"method":"GET","target":"/","headers":[["Referer","https://x/livetv/"],["X-Plex-Token","abc"]]}"#
        #expect(
            explainer.answer(line: swapped).text
                == #"{"elevate":true,"rule":"root-referer","upstreamTarget":"/","upstreamToken":"OWNER"}"#)
    }

    @Test func headersAsObjectBodyAndBodyPresent() {
        let withBody =
            #"{"method":"POST","target":"/playQueues?X-Plex-Token=abc","headers":{"Content-Type":"application/x-www-form-urlencoded"},"body":"uri=%2Flivetv%2Fsessions%2Fx"}"#
        #expect(explainer.answer(line: withBody).text.hasPrefix(#"{"elevate":true,"rule":"play-queue","#))
        let typed =
            #"{"method":"POST","target":"/playQueues?X-Plex-Token=abc","body":"{\"uri\":\"/livetv/x\"}","contentType":"application/json"}"#
        #expect(explainer.answer(line: typed).text.hasPrefix(#"{"elevate":true,"rule":"play-queue","#))
        let unseen = #"{"method":"POST","target":"/playQueues?uri=%2Flivetv%2Fx&X-Plex-Token=abc","bodyPresent":true}"#
        #expect(explainer.answer(line: unseen).text.hasPrefix(#"{"elevate":false,"rule":"body-unseen","#))
    }

    @Test func outputEscapesControlBytesAndQuotesButNotSlashes() {
        // The control byte goes upstream percent-escaped (§6: bytes that cannot travel in a header); the
        // quote and backslash are JSON-escaped, the slashes are not.
        let line = #"{"method":"GET","target":"/x\"y\u0001\\z?X-Plex-Token=a"}"#
        #expect(
            explainer.answer(line: line).text
                == #"{"elevate":false,"rule":"unsafe-path","upstreamTarget":"/x\"y%01\\z?X-Plex-Token=a","upstreamToken":"a"}"#
        )
        var json = JSONLine()
        json.field("text", "a\u{01}\n\"/")
        #expect(json.finished() == #"{"text":"a\u0001\n\"/"}"#)
    }

    @Test(arguments: [
        ("not json", "not valid JSON"),
        ("[1,2]", "expected a JSON object"),
        (#"{"target":"/"}"#, #"missing string field \"method\""#),
        (#"{"method":"GET"}"#, #"missing string field \"target\""#),
        (#"{"method":1,"target":"/"}"#, #"missing string field \"method\""#),
        (#"{"method":"GET","target":"/","headers":"x"}"#, #"\"headers\" must be an array of pairs or an object"#),
        (
            #"{"method":"GET","target":"/","headers":[["a"]]}"#,
            #"\"headers\" entries must be [name, value] string pairs"#
        ),
        (#"{"method":"GET","target":"/","body":5}"#, #"\"body\" must be a string"#),
    ])
    func badLinesGetAnErrorLine(_ line: String, _ message: String) {
        let answer = explainer.answer(line: line)
        #expect(answer.failed)
        #expect(answer.text == #"{"error":"\#(message)"}"#)
    }

    /// The realistic Plex Web session: which of its 56 requests borrow the owner token.
    @Test func plexWebSessionGolden() throws {
        let lines = try String(contentsOf: fixtures.appendingPathComponent("plex-web-session.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        let rules = lines.map { line -> String in
            let request = try! Explainer.parseRequest(String(line))
            return explainer.decideAssumingValidToken(request).rule.rawValue
        }
        let expected: [Int: String] = [
            3: "providers", 16: "livetv", 17: "providers", 18: "epg-provider", 19: "epg-provider", 20: "epg-provider",
            24: "subscriptions-read", 25: "root-referer", 26: "livetv-tune", 27: "transcode", 28: "transcode",
            29: "transcode", 30: "play-queue", 33: "livetv", 34: "no-token", 35: "timeline", 36: "timeline",
            38: "subscriptions-teardown", 39: "subscriptions-template", 40: "subscriptions-write",
            41: "subscriptions-read", 42: "subscriptions-read",
        ]
        #expect(rules.count == 56)
        for (index, rule) in rules.enumerated() {
            #expect(rule == expected[index + 1] ?? "none", "line \(index + 1)")
        }
    }
}

@Suite("PMS URL")
struct PMSURLTests {
    @Test(arguments: [
        ("http://127.0.0.1:32400", "127.0.0.1:32400", 32400),
        ("HTTP://Plex.LAN:32400/", "plex.lan:32400", 32400),
        ("https://plex.example.com", "plex.example.com", 443),
        ("http://[::1]:32400", "[::1]:32400", 32400),
    ])
    func valid(_ text: String, _ authority: String, _ port: Int) throws {
        let url = try #require(PMSURL(text))
        #expect(url.authority == authority)
        #expect(url.port == port)
    }

    @Test(arguments: [
        "127.0.0.1:32400", "ftp://x", "http://", "http://x:0", "http://x:99999", "http://x/path", "http://u@x",
        "http://x:abc",
    ])
    func invalid(_ text: String) {
        #expect(PMSURL(text) == nil)
    }
}
