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
