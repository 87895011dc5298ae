import AsyncHTTPClient
import FakePMS
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LiveTVAuthz
import LiveTVAuthzCore
import LiveTVAuthzEnvoy
import LiveTVAuthzGRPC
import Logging
import ServiceLifecycle
import SwiftProtobuf
import Testing

private func checkRequest(
    method: String = "GET", path: String, headers: [String: String] = [:], source: String = "203.0.113.9"
) -> Envoy_Service_Auth_V3_CheckRequest {
    Envoy_Service_Auth_V3_CheckRequest.with {
        $0.attributes.request.http.method = method
        $0.attributes.request.http.path = path
        $0.attributes.request.http.headers = headers
        $0.attributes.source.address.socketAddress.address = source
    }
}

@Suite("Envoy gRPC adapter")
struct EnvoyGRPCAdapterTests {
    @Test func readsPathHeadersSourceAndSkipsPseudoHeaders() throws {
        let request = try EnvoyGRPCAdapter.request(
            checkRequest(path: "/livetv/dvrs?x=1", headers: [":path": "/evil", "x-plex-token": "abc", "referer": "r"]))
        #expect(request.method == "GET" && request.target.wire == "/livetv/dvrs?x=1")
        #expect(request.headers.map(\.name) == ["referer", "x-plex-token"])
        #expect(request.peer.reportedClientAddress == "203.0.113.9" && request.peer.trustedFrontend)
        #expect(request.body == .none)
    }

    @Test func headerMapKeepsRepeatedHeadersInOrder() throws {
        var check = checkRequest(path: "/")
        check.attributes.request.http.headerMap.headers = [
            .with {
                $0.key = "referer"
                $0.rawValue = Data("https://app.plex.tv/".utf8)
            },
            .with {
                $0.key = "referer"
                $0.value = "https://x/livetv/"
            },
        ]
        let request = try EnvoyGRPCAdapter.request(check)
        #expect(request.headers.map(\.value) == ["https://app.plex.tv/", "https://x/livetv/"])
    }

    @Test(arguments: [
        (Data("uri=x".utf8), "", Int64(5), [("content-type", "application/x-www-form-urlencoded")], "seen"),
        (Data(), "uri=x", Int64(5), [], "seen"),
        (Data("uri=x".utf8), "", Int64(900), [("x-envoy-auth-partial-body", "true")], "unseen"),
        (Data(), "", Int64(120), [], "unseen"),
        (Data(), "", Int64(-1), [("transfer-encoding", "chunked")], "unseen"),
        (Data(), "", Int64(-1), [], "none"),
        (Data(), "", Int64(0), [], "none"),
    ])
    func bodyPresence(_ raw: Data, _ text: String, _ size: Int64, _ headers: [(String, String)], _ expected: String)
        throws
    {
        var check = checkRequest(
            method: "POST", path: "/playQueues", headers: Dictionary(uniqueKeysWithValues: headers))
        check.attributes.request.http.rawBody = raw
        check.attributes.request.http.body = text
        check.attributes.request.http.size = size
        let body = try EnvoyGRPCAdapter.request(check).body
        switch (body, expected) {
        case (.seen, "seen"), (.unseen, "unseen"), (.none, "none"): break
        default: Issue.record("expected \(expected), got \(body)")
        }
    }

    @Test func malformedRequestsAreRefused() {
        #expect(throws: EnvoyGRPCAdapter.Malformed.self) {
            try EnvoyGRPCAdapter.request(Envoy_Service_Auth_V3_CheckRequest())
        }
        #expect(throws: EnvoyGRPCAdapter.Malformed.self) {
            try EnvoyGRPCAdapter.request(checkRequest(method: "", path: "/"))
        }
        #expect(throws: EnvoyGRPCAdapter.Malformed.self) { try EnvoyGRPCAdapter.request(checkRequest(path: "")) }
    }

    @Test func refusalIsNeverAnAllow() {
        let refusal = EnvoyGRPCAdapter.refusal(code: EnvoyGRPCAdapter.Code.invalidArgument, "bad")
        #expect(refusal.status.code == 3)
        #expect(refusal.deniedResponse.status.code == .forbidden)
        #expect(refusal.okResponse == Envoy_Service_Auth_V3_OkHttpResponse())
    }
}

@Suite("Envoy gRPC service in process")
struct GRPCServiceTests {
    @Test func checkOverH2CWithGRPCSwiftsClient() async throws {
        try await InProcessService.with(policy: AbusePolicy(threshold: 2), grpc: true) { s in
            try await checks(port: try #require(s.grpcPort), key: frontendKey)
        }
    }

    func checks(port: Int, key: String) async throws {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            let authz = Envoy_Service_Auth_V3_Authorization.Client(wrapping: client)
            var metadata = Metadata()
            metadata.addString(key, forKey: "x-plexauthz-key")

            let elevated = try await authz.check(
                checkRequest(path: "/livetv/dvrs?X-Plex-Token=\(userToken)"), metadata: metadata)
            #expect(elevated.status.code == 0)
            #expect(elevated.okResponse.headers.map(\.header.value) == [ownerToken])
            #expect(
                elevated.okResponse.headers.first?.hasAppend == true
                    && elevated.okResponse.headers.first?.append.value == false)
            #expect(elevated.okResponse.queryParametersToRemove == ["X-Plex-Token"])
            #expect(elevated.okResponse.queryParametersToSet.isEmpty)

            let preserved = try await authz.check(
                checkRequest(path: "/library/sections?X-Plex-Token=\(userToken)"), metadata: metadata)
            #expect(preserved.okResponse.headers.map(\.header.value) == [userToken])
            #expect(preserved.okResponse.queryParametersToSet.isEmpty)
            #expect(preserved.okResponse.queryParametersToRemove.isEmpty)

            let noKey = try await authz.check(checkRequest(path: "/livetv/dvrs?X-Plex-Token=\(userToken)"))
            #expect(noKey.status.code == 16)
            let noKeyBytes: [UInt8] = try noKey.serializedBytes()
            #expect(!noKeyBytes.contains(Array(ownerToken.utf8)))

            for _ in 0..<2 {
                _ = try await authz.check(
                    checkRequest(path: "/livetv/dvrs", source: "203.0.113.77"), metadata: metadata)
            }
            let blocked = try await authz.check(
                checkRequest(path: "/livetv/dvrs", source: "203.0.113.77"), metadata: metadata)
            #expect(blocked.status.code == 7)
            #expect(blocked.deniedResponse.status.code == .forbidden)

            let malformed = try await authz.check(Envoy_Service_Auth_V3_CheckRequest(), metadata: metadata)
            #expect(malformed.status.code == 3)
        }
    }
}

extension [UInt8] {
    func contains(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { self[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
