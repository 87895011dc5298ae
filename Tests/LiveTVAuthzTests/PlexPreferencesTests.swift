import LiveTVAuthz
import Testing

@Suite("PMS preferences policy")
struct PlexPreferencesTests {
    @Test(arguments: [
        ("https://media.example.com", "443", "https://media.example.com:443"),
        ("https://media.example.com:443/", "443", "https://media.example.com:443"),
        ("https://Media.Example.com:8443", "8443", "https://media.example.com:8443"),
        ("http://[2001:db8::7]", "80", "http://[2001:db8::7]:80"),
        ("http://[2001:db8::443]:32401", "32401", "http://[2001:db8::443]:32401"),
    ])
    func thePublicURLIsWrittenWithItsPort(_ url: String, _ port: String, _ connection: String) throws {
        let policy = PreferencePolicy(publicURL: try #require(PMSURL(url)))
        #expect(
            policy.wanted.map(\.id) == [
                "RelayEnabled", "ManualPortMappingMode", "ManualPortMappingPort", "customConnections",
            ])
        #expect(policy.wanted.map(\.value) == ["0", "1", port, connection])
    }

    @Test func typedJSONValuesCompareAsPlexWritesThem() throws {
        let body = #"""
            {"MediaContainer":{"size":4,"Setting":[
              {"id":"RelayEnabled","type":"bool","value":false},
              {"id":"ManualPortMappingMode","type":"int","value":1},
              {"id":"ManualPortMappingPort","type":"int","value":443},
              {"id":"customConnections","type":"text","value":"https://media.example.com:443"},
              {"id":"FriendlyName","type":"text","value":"plex"}]}}
            """#
        let values = try PreferencePolicy.values(fromJSON: Array(body.utf8))
        #expect(values["RelayEnabled"] == "0" && values["ManualPortMappingMode"] == "1")
        let policy = PreferencePolicy(publicURL: PMSURL("https://media.example.com")!)
        #expect(policy.drift(from: values).isEmpty)
        var drifted = values
        drifted["RelayEnabled"] = "1"
        drifted["customConnections"] = nil
        let drift = policy.drift(from: drifted)
        #expect(drift.map(\.id) == ["RelayEnabled", "customConnections"])
        #expect(drift.last?.description == #"customConnections: (not set) -> "https://media.example.com:443""#)
        #expect(
            PreferencePolicy.query(fixing: drift)
                == "RelayEnabled=0&customConnections=https%3A%2F%2Fmedia.example.com%3A443")
    }

    @Test func somethingElseThanPrefsIsAnError() {
        #expect(throws: PreferenceError.self) { try PreferencePolicy.values(fromJSON: Array("<html>".utf8)) }
        #expect(throws: PreferenceError.self) { try PreferencePolicy.values(fromJSON: Array(#"{"a":1}"#.utf8)) }
    }
}
