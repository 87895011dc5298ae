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
/// The built `plex-livetv-authz` and `fake-pms`: `.build/debug`, or `PLEXAUTHZ_TEST_BIN_DIR` (the sanitizer
/// runs point it at their own build, so the processes the tests start are instrumented too).
let binaryDirectory =
    ProcessInfo.processInfo.environment["PLEXAUTHZ_TEST_BIN_DIR"].map { URL(fileURLWithPath: $0) }
    ?? repositoryRoot.appendingPathComponent(".build/debug")

/// Set by `make test-sanitizers` (`thread` or `address`): the processes under test run several times slower
/// and their resident memory includes the sanitizer's shadow memory, so timing bounds are scaled and memory
/// bounds are not checked.
let sanitizer = ProcessInfo.processInfo.environment["PLEXAUTHZ_SANITIZER"]

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

    /// SIGKILL: no shutdown work at all, as the OOM killer or a power cut would end it.
    func killHard() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
}

/// A free loopback TCP port (bound then released), never one this test process handed out before: suites
/// run in parallel, and two of them were seen to get the same just-released port for their frontends.
func freePort() throws -> Int {
    while true {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(
            host: "127.0.0.1", port: 0
        ).wait()
        let port = channel.localAddress!.port!
        try channel.close().wait()
        if handedOutPorts.withLockedValue({ $0.insert(port).inserted }) { return port }
    }
}

private let handedOutPorts = NIOLockedValueBox<Set<Int>>([])

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
func rawExchange(
    port: Int, _ bytes: [UInt8], readFor: Duration = sanitizer == nil ? .milliseconds(800) : .seconds(8)
) async throws -> [UInt8] {
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

/// A response read off the wire: its status and every byte (chunked bodies decoded for `text`).
struct RawResponse {
    var bytes: String
    var status: Int
    var text: String

    init(_ raw: [UInt8]) {
        bytes = String(decoding: raw, as: UTF8.self)
        let statusLine = bytes.prefix { $0 != "\r" }.split(separator: " ")
        status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
        let parts = bytes.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        var body = parts.dropFirst().joined(separator: "\r\n\r\n")
        if head.lowercased().contains("transfer-encoding: chunked") {
            var decoded = ""
            var rest = Substring(body)
            while let end = rest.range(of: "\r\n"), let size = Int(rest[..<end.lowerBound], radix: 16), size > 0 {
                let start = end.upperBound
                let stop = rest.utf8.index(start, offsetBy: size, limitedBy: rest.utf8.endIndex) ?? rest.endIndex
                decoded += rest[start..<stop]
                rest = rest[stop...].dropFirst(2)
            }
            body = decoded
        }
        text = body
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

/// The fake PMS, the service (`plex-livetv-authz serve` as a process) and a real frontend (nginx by default)
/// started from the shipped configuration, all on ephemeral loopback ports under one temporary directory.
final class Stack: @unchecked Sendable {
    let directory: URL
    let fake: FakePMSServer
    private(set) var service: ChildProcess
    /// How the service was started, for `restartService`.
    private var serviceArguments: [String] = []
    let frontend: Frontend
    let frontendProcess: ChildProcess
    let frontendPort: Int
    let serviceTCPPort: Int
    let client: HTTPClient

    var pms: FakePMS { fake.pms }
    /// The frontend's port (named for the nginx suites that were here first).
    var nginxPort: Int { frontendPort }
    var nginx: ChildProcess { frontendProcess }

    private init(
        directory: URL, fake: FakePMSServer, service: ChildProcess, frontend: Frontend, process: ChildProcess,
        port: Int, serviceTCPPort: Int
    ) {
        self.directory = directory
        self.fake = fake
        self.service = service
        self.frontend = frontend
        self.frontendProcess = process
        self.frontendPort = port
        self.serviceTCPPort = serviceTCPPort
        self.client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(
                redirectConfiguration: .disallow, timeout: .init(connect: .seconds(2), read: .seconds(10))))
    }

    static func start(
        frontend: Frontend = .nginx, edits: [(String, String)] = [], extraServiceArguments: [String] = []
    ) async throws -> Stack {
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
        let sockets = ServiceSockets(
            http: directory.appendingPathComponent("authz.sock").path,
            grpc: directory.appendingPathComponent("grpc.sock").path, httpPort: try freePort(),
            grpcPort: try freePort(), keyFile: keyFile.path)
        let service = try ChildProcess(
            binaryDirectory.appendingPathComponent("plex-livetv-authz").path,
            [
                "serve", "--listen", "unix:\(sockets.http)", "--listen", "127.0.0.1:\(sockets.httpPort)",
                "--grpc-listen", "unix:\(sockets.grpc)", "--grpc-listen", "127.0.0.1:\(sockets.grpcPort)",
                "--owner-token-file", ownerFile.path, "--frontend-key-file", keyFile.path,
                "--pms-url", "http://127.0.0.1:\(fake.port)", "--abuse-state-file",
                directory.appendingPathComponent("state/blocks.json").path,
            ] + extraServiceArguments,
            output: directory.appendingPathComponent("service.log"))
        do {
            try await eventually("the service sockets") {
                FileManager.default.fileExists(atPath: sockets.http)
                    && FileManager.default.fileExists(atPath: sockets.grpc)
            }
        } catch {
            let state =
                service.isRunning
                ? "still running (pid \(service.process.processIdentifier))"
                : "exited with \(service.process.terminationStatus)"
            await service.stop()
            await fake.shutdown()
            throw HarnessError("\(error); the service \(state); its log:\n\(service.log.suffix(3000))")
        }
        let port = try freePort()
        let process = try frontend.start(
            directory: directory, port: port, pmsPort: fake.port, service: sockets, edits: edits)
        let stack = Stack(
            directory: directory, fake: fake, service: service, frontend: frontend, process: process, port: port,
            serviceTCPPort: sockets.httpPort)
        stack.serviceArguments = service.process.arguments ?? []
        do {
            try await eventually("\(frontend) on port \(port)") {
                ((try? await stack.get("/identity")) ?? nil)?.status == 200
            }
        } catch {
            let log = stack.allLogs
            await stack.stop()
            throw HarnessError("\(error); logs:\n\(log.suffix(3000))")
        }
        return stack
    }

    /// Starts the service again with the same arguments (after `service.killHard()` or `stop()`), and waits for
    /// its sockets. The log goes on in the same file's directory as `service-<n>.log`.
    func restartService() async throws {
        if service.isRunning { await service.stop() }
        restarts += 1
        service = try ChildProcess(
            binaryDirectory.appendingPathComponent("plex-livetv-authz").path, serviceArguments,
            output: directory.appendingPathComponent("service-\(restarts).log"))
        // Every listener logs once it is bound (two HTTP, two gRPC).
        try await eventually("the restarted service's listeners") {
            service.log.components(separatedBy: "listening on").count - 1 >= 4
        }
    }

    private var restarts = 0

    func stop() async {
        try? await client.shutdown()
        await frontendProcess.stop()
        await service.stop()
        await fake.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A request through the frontend, as a Plex client sends it.
    func get(_ target: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: String? = nil)
        async throws -> ClientResponse
    {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(frontendPort)\(target)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        return ClientResponse(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: String(buffer: bytes))
    }

    /// One table row through the frontend over a fresh connection, every byte as the row says.
    func send(_ row: FrontendCase, source: String) async throws -> RawResponse {
        var head = "\(row.method) "
        var bytes = Array(head.utf8) + row.target
        head = " HTTP/1.1\r\nHost: 127.0.0.1\r\nCF-Connecting-IP: \(source)\r\n"
        let closes = row.headers.contains { $0.0.lowercased() == "connection" }
        if !closes { head += "Connection: close\r\n" }
        for (name, value) in row.headers { head += "\(name): \(value)\r\n" }
        let chunked = row.headers.contains { $0.0.lowercased() == "transfer-encoding" }
        if let body = row.body, !chunked { head += "Content-Length: \(body.count)\r\n" }
        bytes += Array((head + "\r\n").utf8)
        if let body = row.body {
            bytes +=
                chunked
                ? Array(String(body.count, radix: 16).utf8) + [13, 10] + body + Array("\r\n0\r\n\r\n".utf8) : body
        }
        return RawResponse(try await rawExchange(port: frontendPort, bytes))
    }

    /// Every log line of every process (the service's and the frontend's).
    var allLogs: String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".log") || $0.hasSuffix(".out") }.sorted().map {
            (try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) ?? ""
        }.joined(separator: "\n")
    }

    static func with(
        frontend: Frontend = .nginx, edits: [(String, String)] = [], extraServiceArguments: [String] = [],
        _ body: (Stack) async throws -> Void
    ) async throws {
        let stack = try await start(frontend: frontend, edits: edits, extraServiceArguments: extraServiceArguments)
        do {
            try await body(stack)
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }
}
