import AsyncHTTPClient
import FakePMS
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

#if canImport(Glibc)
    import Glibc
#endif

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let binaryDirectory = repositoryRoot.appendingPathComponent(".build/debug")

let ownerToken = "ownr0000000000000000"
let userToken = "user0000000000000000"
let otherToken = "othr0000000000000000"
let frontendKey = "e2e-frontend-key-0123456789"

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A child process with its output in files; always stopped by `stop()`.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let output: URL

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], output: URL) throws {
        self.output = output
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        // The service reads its owner token from the environment in some tests: never inherit one.
        for name in ["IPTV_TUNERR_PMS_OWNER_TOKEN", "PLEX_OWNER_TOKEN", "IPTV_TUNERR_PMS_TOKEN", "PLEX_TOKEN"]
        where environment[name] == nil {
            env[name] = nil
        }
        process.environment = env
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    /// SIGTERM, then SIGKILL after `grace`.
    func stop(grace: Duration = .seconds(3)) async {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
}

/// A free loopback TCP port (bound then released; the tiny race is acceptable on loopback).
func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0)
        .wait()
    let port = channel.localAddress!.port!
    try channel.close().wait()
    return port
}

/// Waits until `check` passes or fails after `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(20), _ check: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await check() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw HarnessError("timed out waiting for \(what)")
}

/// Sends raw bytes over TCP and returns everything read until the peer closes or `readFor` passes.
func rawExchange(port: Int, _ bytes: [UInt8], readFor: Duration = .milliseconds(800)) async throws -> [UInt8] {
    let collected = NIOLockedValueBox<[UInt8]>([])
    let closed = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Void.self)
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(CollectingHandler(sink: collected, closed: closed))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    // The peer may close first (a refused connection): then nothing is read, which the caller checks.
    try? await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    let timeout = channel.eventLoop.scheduleTask(
        in: .nanoseconds(
            Int64(readFor.components.seconds) * 1_000_000_000 + readFor.components.attoseconds / 1_000_000_000)
    ) {
        closed.succeed(())
    }
    try? await closed.futureResult.get()
    timeout.cancel()
    try? await channel.close()
    return collected.withLockedValue { $0 }
}

final class CollectingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let sink: NIOLockedValueBox<[UInt8]>
    let closed: EventLoopPromise<Void>

    init(sink: NIOLockedValueBox<[UInt8]>, closed: EventLoopPromise<Void>) {
        self.sink = sink
        self.closed = closed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        sink.withLockedValue { $0 += bytes }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed.succeed(())
    }
}

/// A response as the client saw it: status, headers and every body byte.
struct ClientResponse {
    var status: Int
    var headers: [(String, String)]
    var body: String

    /// Every byte of the response as text, for leak checks.
    var everything: String { headers.map { "\($0.0): \($0.1)" }.joined(separator: "\n") + "\n" + body }
}

/// The fake PMS, the service (`plex-livetv-authz serve` as a process) and a real nginx with the shipped
/// configuration, all on ephemeral loopback ports under one temporary directory.
final class Stack: @unchecked Sendable {
    let directory: URL
    let fake: FakePMSServer
    let service: ChildProcess
    let nginx: ChildProcess
    let nginxPort: Int
    let serviceTCPPort: Int
    let client: HTTPClient

    var pms: FakePMS { fake.pms }

    private init(
        directory: URL, fake: FakePMSServer, service: ChildProcess, nginx: ChildProcess, nginxPort: Int,
        serviceTCPPort: Int
    ) {
        self.directory = directory
        self.fake = fake
        self.service = service
        self.nginx = nginx
        self.nginxPort = nginxPort
        self.serviceTCPPort = serviceTCPPort
        self.client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(
                redirectConfiguration: .disallow, timeout: .init(connect: .seconds(2), read: .seconds(10))))
    }

    static func start(extraServiceArguments: [String] = []) async throws -> Stack {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "plexauthz-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let fake = try await FakePMSServer.start(pms: FakePMS())
        let ownerFile = directory.appendingPathComponent("owner-token")
        try (ownerToken + "\n").write(to: ownerFile, atomically: true, encoding: .utf8)
        chmod(ownerFile.path, 0o600)
        let keyFile = directory.appendingPathComponent("frontend-key")
        try (frontendKey + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
        chmod(keyFile.path, 0o600)
        let socket = directory.appendingPathComponent("authz.sock").path
        let serviceTCPPort = try freePort()
        let service = try ChildProcess(
            binaryDirectory.appendingPathComponent("plex-livetv-authz").path,
            [
                "serve", "--listen", "unix:\(socket)", "--listen", "127.0.0.1:\(serviceTCPPort)",
                "--owner-token-file", ownerFile.path, "--frontend-key-file", keyFile.path,
                "--pms-url", "http://127.0.0.1:\(fake.port)", "--abuse-state-file",
                directory.appendingPathComponent("state/blocks.json").path,
            ] + extraServiceArguments,
            output: directory.appendingPathComponent("service.log"))
        try await eventually("the service socket") { FileManager.default.fileExists(atPath: socket) }

        let nginxPort = try freePort()
        let nginx = try startNginx(directory: directory, port: nginxPort, pmsPort: fake.port, socket: socket)
        let stack = Stack(
            directory: directory, fake: fake, service: service, nginx: nginx, nginxPort: nginxPort,
            serviceTCPPort: serviceTCPPort)
        try await eventually("nginx on port \(nginxPort)") {
            ((try? await stack.get("/identity")) ?? nil)?.status == 200
        }
        return stack
    }

    /// Writes nginx's main config around the shipped frontend files and starts it in the foreground.
    static func startNginx(directory: URL, port: Int, pmsPort: Int, socket: String) throws -> ChildProcess {
        let frontends = repositoryRoot.appendingPathComponent("frontends/nginx")
        var site = try String(contentsOf: frontends.appendingPathComponent("plex-livetv.conf"), encoding: .utf8)
        let snippet = directory.appendingPathComponent("plexauthz-proxy.conf")
        try FileManager.default.copyItem(at: frontends.appendingPathComponent("plexauthz-proxy.conf"), to: snippet)
        for (literal, replacement) in [
            ("listen 32401;", "listen 127.0.0.1:\(port);"),
            ("server 127.0.0.1:32400;", "server 127.0.0.1:\(pmsPort);"),
            ("server unix:/run/plex-livetv-authz/authz.sock;", "server unix:\(socket);"),
            ("/etc/nginx/snippets/plexauthz-proxy.conf", snippet.path),
        ] {
            guard site.contains(literal) else {
                throw HarnessError("frontends/nginx/plex-livetv.conf no longer contains \(literal)")
            }
            site = site.replacingOccurrences(of: literal, with: replacement)
        }
        try site.write(to: directory.appendingPathComponent("plex-livetv.conf"), atomically: true, encoding: .utf8)
        let user = getuid() == 0 ? "user root root;\n" : ""
        let main = """
            \(user)worker_processes 1;
            pid \(directory.path)/nginx.pid;
            error_log \(directory.path)/nginx-error.log info;
            events { worker_connections 256; }
            http {
                access_log \(directory.path)/nginx-access.log;
                client_body_temp_path \(directory.path)/client_body;
                proxy_temp_path \(directory.path)/proxy;
                fastcgi_temp_path \(directory.path)/fastcgi;
                uwsgi_temp_path \(directory.path)/uwsgi;
                scgi_temp_path \(directory.path)/scgi;
                include \(directory.path)/plex-livetv.conf;
            }
            """
        let conf = directory.appendingPathComponent("nginx.conf")
        try main.write(to: conf, atomically: true, encoding: .utf8)
        return try ChildProcess(
            "/usr/sbin/nginx", ["-p", directory.path, "-c", conf.path, "-g", "daemon off;"],
            output: directory.appendingPathComponent("nginx.out"))
    }

    func stop() async {
        try? await client.shutdown()
        await nginx.stop()
        await service.stop()
        await fake.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A request through nginx, as a Plex client sends it.
    func get(_ target: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: String? = nil)
        async throws -> ClientResponse
    {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(nginxPort)\(target)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        return ClientResponse(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: String(buffer: bytes))
    }

    /// Every log line of every process.
    var allLogs: String {
        ["service.log", "nginx-error.log", "nginx-access.log", "nginx.out"].map {
            (try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) ?? ""
        }.joined(separator: "\n")
    }

    static func with(extraServiceArguments: [String] = [], _ body: (Stack) async throws -> Void) async throws {
        let stack = try await start(extraServiceArguments: extraServiceArguments)
        do {
            try await body(stack)
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }
}
