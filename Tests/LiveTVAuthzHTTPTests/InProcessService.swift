import AsyncHTTPClient
import FakePMS
import Foundation
import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzCore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

/// The whole service in-process, built by the composition root like `serve`: a fake PMS over HTTP, a Unix
/// socket and a TCP listener on an ephemeral port (optionally gRPC listeners too), under one temporary
/// directory that is removed afterwards.
struct InProcessService {
    let fake: FakePMSServer
    let application: AuthzApplication
    let group: ServiceGroup
    let running: Task<Void, any Error>
    let client: HTTPClient
    let directory: String
    let audit: MemoryAuditSink

    var socket: String { directory + "/authz.sock" }
    var grpcSocket: String { directory + "/grpc.sock" }
    var tcpPort: Int { application.httpServer?.boundAddresses.compactMap { $0.1?.port }.first ?? 0 }
    var grpcPort: Int? { application.grpcServers.compactMap(\.port).first }

    static func with(
        configure: (inout Configuration) -> Void = { _ in }, policy: AbusePolicy = AbusePolicy(), grpc: Bool = false,
        _ body: (InProcessService) async throws -> Void
    ) async throws {
        let fake = try await FakePMSServer.start(pms: FakePMS())
        let directory = NSTemporaryDirectory() + "plexauthz-\(UUID().uuidString.prefix(8))"
        var configuration = Configuration()
        configuration.set(Settings.ownerToken, PlexToken(ownerToken)!)
        configuration.set(Settings.frontendKey, FrontendKey(frontendKey)!)
        configuration.set(Settings.pmsURL, PMSURL("http://127.0.0.1:\(fake.port)")!)
        configuration.set(Settings.validationTimeout, .seconds(2))
        configuration.set(Settings.listen, [.unix(path: directory + "/authz.sock"), .tcp(host: "127.0.0.1", port: 0)])
        if grpc {
            configuration.set(
                Settings.grpcListen, [.tcp(host: "127.0.0.1", port: 0), .unix(path: directory + "/grpc.sock")])
        }
        configuration.set(abusePolicy: policy)
        configure(&configuration)
        let audit = MemoryAuditSink()
        var dependencies = AuthzDependencies()
        dependencies.logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        dependencies.auditSink = audit
        dependencies.handlesSignals = false
        let application = try AuthzApplication(configuration: configuration, dependencies: dependencies)
        let group = ServiceGroup(configuration: .init(services: application.services, logger: dependencies.logger))
        let running = Task { try await group.run() }
        await application.httpServer?.waitUntilListening()
        for server in application.grpcServers { await server.waitUntilListening() }
        let instance = InProcessService(
            fake: fake, application: application, group: group, running: running,
            client: HTTPClient(eventLoopGroupProvider: .singleton), directory: directory, audit: audit)
        do {
            try await body(instance)
        } catch {
            await instance.stop()
            throw error
        }
        await instance.stop()
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await running.result
        await application.shutdown()
        try? await client.shutdown()
        await fake.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A request over TCP.
    func send(_ path: String, method: HTTPMethod = .GET, headers: [(String, String)], body: [UInt8]? = nil) async throws
        -> (status: Int, headers: HTTPHeaders, body: String)
    {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(tcpPort)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return (Int(response.status.code), response.headers, text)
    }

    func nginx(_ target: String, method: String = "GET", extra: [(String, String)] = [], key: String? = frontendKey)
        async throws
        -> (status: Int, headers: HTTPHeaders, body: String)
    {
        var headers =
            [("X-Original-Method", method), ("X-Original-URI", target), ("X-Forwarded-For", "203.0.113.40")] + extra
        if let key { headers.append(("X-Plexauthz-Key", key)) }
        return try await send("/v1/nginx", headers: headers)
    }
}
