import AsyncHTTPClient
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LiveTVAuthz
import LiveTVAuthzCore
import LiveTVAuthzEnvoy
import LiveTVAuthzGRPC
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One frontend-trust layer behind both listener kinds: the same table of transports and keys gives the
/// same verdict over HTTP and over gRPC, and both kinds of socket file get the same directory and mode.
@Suite("Frontend trust, HTTP and gRPC alike", .serialized)
struct FrontendTrustTests {
    enum Listener: String, CaseIterable { case httpUnix, httpTCP, grpcUnix, grpcTCP }
    enum Presented: String, CaseIterable { case none, wrong, right }

    /// Unix sockets need no key (the file mode is the authentication); TCP needs the right one.
    static func expectElevated(_ listener: Listener, _ key: Presented) -> Bool {
        switch listener {
        case .httpUnix, .grpcUnix: return true
        case .httpTCP, .grpcTCP: return key == .right
        }
    }

    @Test func theSameTableOverEveryListener() async throws {
        try await InProcessService.with(grpc: true) { s in
            for listener in Listener.allCases {
                for presented in Presented.allCases {
                    let key: String? =
                        switch presented {
                        case .none: nil
                        case .wrong: "wrong-key-wrong-key-wrong-key"
                        case .right: frontendKey
                        }
                    let elevated = try await ask(s, listener, key: key)
                    #expect(
                        elevated == Self.expectElevated(listener, presented),
                        "\(listener.rawValue) with \(presented.rawValue) key")
                }
            }
            for socket in [s.socket, s.grpcSocket] {
                var status = stat()
                #expect(stat(socket, &status) == 0 && status.st_mode & 0o777 == 0o660, "\(socket)")
            }
            var directory = stat()
            #expect(stat(s.directory, &directory) == 0 && directory.st_mode & 0o777 == 0o750)
        }
    }

    /// Whether a shared user's Live TV request came back elevated through this listener.
    func ask(_ s: InProcessService, _ listener: Listener, key: String?) async throws -> Bool {
        let target = "/livetv/dvrs?X-Plex-Token=\(userToken)"
        switch listener {
        case .httpUnix, .httpTCP:
            let base =
                listener == .httpTCP
                ? "http://127.0.0.1:\(s.tcpPort)"
                : "http+unix://\(s.socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
            var request = HTTPClientRequest(url: base + "/v1/nginx")
            request.headers.add(name: "X-Original-Method", value: "GET")
            request.headers.add(name: "X-Original-URI", value: target)
            if let key { request.headers.add(name: "X-Plexauthz-Key", value: key) }
            let response = try await s.client.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 16)
            let elevated = response.headers.first(name: "X-Plexauthz-Decision") == "elevated"
            if response.status != .ok {
                #expect(!response.headers.contains { $0.name.lowercased().hasPrefix("x-plex") })
            }
            return elevated
        case .grpcUnix, .grpcTCP:
            let request = Envoy_Service_Auth_V3_CheckRequest.with {
                $0.attributes.request.http.method = "GET"
                $0.attributes.request.http.path = target
            }
            if listener == .grpcTCP {
                return try await check(.ipv4(address: "127.0.0.1", port: s.grpcPort!), request, key: key)
            }
            return try await check(.unixDomainSocket(path: s.grpcSocket), request, key: key)
        }
    }

    func check(_ target: some ResolvableTarget, _ request: Envoy_Service_Auth_V3_CheckRequest, key: String?)
        async throws -> Bool
    {
        try await withGRPCClient(transport: .http2NIOPosix(target: target, transportSecurity: .plaintext)) { client in
            var metadata = Metadata()
            if let key { metadata.addString(key, forKey: "x-plexauthz-key") }
            let answer = try await Envoy_Service_Auth_V3_Authorization.Client(wrapping: client).check(
                request, metadata: metadata)
            if answer.status.code != 0 {
                let bytes: [UInt8] = try answer.serializedBytes()
                #expect(!bytes.contains(Array(ownerToken.utf8)))
            }
            return answer.status.code == 0 && answer.okResponse.headers.first?.header.value == ownerToken
        }
    }

    @Test(arguments: [
        (ListenerTransport.unixSocket, String?.none, FrontendTrust.Verdict.trusted),
        (.tcp(peer: "127.0.0.1"), frontendKey, .trusted),
        (.tcp(peer: "::1"), frontendKey, .trusted),
        (.tcp(peer: "::ffff:127.0.0.1"), frontendKey, .trusted),
        (.tcp(peer: "127.0.0.1"), nil, .wrongKey),
        (.tcp(peer: "127.0.0.1"), frontendKey + "x", .wrongKey),
        (.tcp(peer: "192.0.2.7"), frontendKey, .trusted),  // allow-listed
        (.tcp(peer: "192.0.2.8"), frontendKey, .peerNotAllowed),
        (.tcp(peer: "127.1.2.3.4"), frontendKey, .peerNotAllowed),
        (.tcp(peer: nil), frontendKey, .peerNotAllowed),
    ])
    func verdicts(_ transport: ListenerTransport, _ key: String?, _ expected: FrontendTrust.Verdict) {
        let trust = FrontendTrust(key: FrontendKey(frontendKey), allowedFrontends: ["192.0.2.7"])
        #expect(trust.authenticate(transport, presentedKey: key) == expected)
        // Without a configured key no TCP request is ever trusted.
        let keyless = FrontendTrust(key: nil, allowedFrontends: [])
        if case .tcp = transport { #expect(keyless.authenticate(transport, presentedKey: key) != .trusted) }
    }
}
