import AsyncHTTPClient
import FakePMS
import Foundation
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `serve` as a process on a Unix socket and a TCP port (frontend key), for abuse aimed at its listeners.
final class ListeningService: @unchecked Sendable {
    let directory: URL
    let socket: String
    let port: Int
    let fake: FakePMSServer
    let process: ChildProcess
    let client = HTTPClient(eventLoopGroupProvider: .singleton)

    init(_ extra: [String] = []) async throws {
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "plexauthz-abuse-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        socket = directory.appendingPathComponent("authz.sock").path
        port = try freePort()
        let key = directory.appendingPathComponent("key")
        try (frontendKey + "\n").write(to: key, atomically: true, encoding: .utf8)
        chmod(key.path, 0o600)
        fake = try await FakePMSServer.start(pms: FakePMS())
        process = try ChildProcess(
            binaryDirectory.appendingPathComponent("plex-livetv-authz").path,
            [
                "serve", "--listen", "unix:\(socket)", "--listen", "127.0.0.1:\(port)", "--frontend-key-file",
                key.path, "--pms-url", "http://127.0.0.1:\(fake.port)",
            ] + extra, environment: ["IPTV_TUNERR_PMS_OWNER_TOKEN": ownerToken],
            output: directory.appendingPathComponent("service.log"))
        let process = process
        try await eventually("serve to listen") { process.log.components(separatedBy: "listening on").count >= 3 }
    }

    /// One decision over the Unix socket, as nginx asks; how long it took.
    func decideOverUnix() async throws -> Duration {
        var request = HTTPClientRequest(
            url: "http+unix://\(socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)/v1/nginx")
        request.headers.add(name: "X-Original-Method", value: "GET")
        request.headers.add(name: "X-Original-URI", value: "/livetv/dvrs?X-Plex-Token=\(userToken)")
        request.headers.add(name: "X-Forwarded-For", value: "203.0.113.20")
        let started = ContinuousClock.now
        let response = try await client.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 16)
        #expect(response.headers.first(name: "X-Plexauthz-Decision") == "elevated")
        return ContinuousClock.now - started
    }

    /// The 99th percentile of `count` sequential decisions over the Unix socket.
    func p99(_ count: Int) async throws -> Duration {
        var times: [Duration] = []
        for _ in 0..<count { times.append(try await decideOverUnix()) }
        return times.sorted()[count * 99 / 100]
    }

    /// Resident memory of the service, in KiB.
    var residentKiB: Int {
        let status =
            (try? String(contentsOfFile: "/proc/\(process.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    func shutdown() async {
        await process.stop()
        try? await client.shutdown()
        await fake.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    static func with(_ extra: [String] = [], _ body: (ListeningService) async throws -> Void) async throws {
        let service = try await ListeningService(extra)
        do {
            try await body(service)
        } catch {
            await service.shutdown()
            throw error
        }
        #expect(service.process.isRunning, "the service died:\n\(service.process.log.suffix(2000))")
        await service.shutdown()
    }
}

/// HTTP/2 frames written by hand: what a misbehaving or hostile peer sends.
enum H2 {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32, _ payload: [UInt8], length: Int? = nil) -> [UInt8]
    {
        let size = length ?? payload.count
        return [UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF), type, flags]
            + [UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
            + payload
    }

    static let settings = frame(type: 4, stream: 0, [])
    /// `GET /healthz` as HPACK: indexed :method GET, :scheme http, literal :path and :authority.
    static let getHealthz: [UInt8] = [0x82, 0x86, 0x04, 0x08] + Array("/healthz".utf8) + [0x01, 0x01, 0x78]

    static func headers(stream: UInt32) -> [UInt8] { frame(type: 1, flags: 0x05, stream: stream, getHealthz) }
    static func reset(stream: UInt32) -> [UInt8] { frame(type: 3, stream: stream, [0, 0, 0, 8]) }

    /// The error code of the first GOAWAY frame the server sent, if any.
    static func goAway(in bytes: [UInt8]) -> UInt32? {
        var index = 0
        // The server's own preface is a SETTINGS frame: every answer is a sequence of frames.
        while index + 9 <= bytes.count {
            let length = Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
            let type = bytes[index + 3]
            if type == 7, index + 9 + 8 <= bytes.count {
                let code = bytes[(index + 13)..<(index + 17)]
                return code.reduce(0) { $0 << 8 | UInt32($1) }
            }
            index += 9 + length
        }
        return nil
    }
}

/// Abuse of the listeners, with independent peers where there are some (nghttp2's h2load): well-formed
/// requests keep being answered within a stated latency, and memory stays bounded.
@Suite("Connection abuse", .serialized)
struct ConnectionAbuseTests {
    /// Stated bound for a decision over the Unix socket while the TCP listener is abused (a loaded 2-core CI
    /// machine; a quiet one answers in well under a millisecond).
    static let latencyBound: Duration = .milliseconds(sanitizer == nil ? 250 : 2_500)

    @Test func tenThousandIdleConnectionsNeitherStallDecisionsNorGrowMemoryUnbounded() async throws {
        try await ListeningService.with(["--max-connections", "12000", "--max-connections-per-peer", "12000"]) { s in
            _ = try await s.p99(50)  // warm up
            let before = s.residentKiB
            var channels: [any Channel] = []
            defer { for channel in channels { channel.close(promise: nil) } }
            for _ in 0..<20 {
                let batch = try await withThrowingTaskGroup(of: (any Channel)?.self) { group in
                    for _ in 0..<500 {
                        group.addTask {
                            try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                                .connect(host: "127.0.0.1", port: s.port).get()
                        }
                    }
                    return try await group.reduce(into: [any Channel]()) { if let channel = $1 { $0.append(channel) } }
                }
                channels += batch
            }
            #expect(channels.count >= 9_900, "only \(channels.count) connections opened")
            try await Task.sleep(for: .milliseconds(500))
            let p99 = try await s.p99(200)
            let held = s.residentKiB
            #expect(p99 < Self.latencyBound, "p99 \(p99) with 10,000 idle connections")
            // Each idle connection costs a socket, a channel and its pipeline: bounded, stated per connection
            // (measured here: about 6.5 KiB, so the default cap of 1,024 per listener holds under 8 MiB).
            let perConnection = Double(held - before) * 1024 / Double(channels.count)
            #expect(sanitizer != nil || perConnection < 8 * 1024, "\(Int(perConnection)) bytes per idle connection")
            let metrics = try await s.client.execute(
                HTTPClientRequest(
                    url: "http+unix://\(s.socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)/metrics"
                ),
                timeout: .seconds(10))
            let text = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
            #expect(text.contains("plexauthz_open_connections"))
            print(
                "10,000 idle connections: p99 \(p99), RSS \(before / 1024) -> \(held / 1024) MiB (\(Int(perConnection)) B each)"
            )
        }
    }

    @Test func theDefaultCapRefusesAConnectionFloodAndTheSocketKeepsAnswering() async throws {
        try await ListeningService.with { s in
            var channels: [any Channel] = []
            defer { for channel in channels { channel.close(promise: nil) } }
            for _ in 0..<4 {
                for _ in 0..<500 {
                    if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .connect(host: "127.0.0.1", port: s.port).get()
                    {
                        channels.append(channel)
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(500))
            // Over the default cap (256 per peer): the rest were closed by the server.
            let open = channels.filter(\.isActive).count
            #expect(open <= 256, "\(open) connections from one peer still open")
            let p99 = try await s.p99(100)
            #expect(p99 < Self.latencyBound, "p99 \(p99) during a connection flood")
        }
    }

    @Test func http2RapidResetIsCutOffAndOthersKeepBeingAnswered() async throws {
        try await ListeningService.with { s in
            var bytes = H2.preface + H2.settings
            for stream in stride(from: UInt32(1), to: 20_000, by: 2) {
                bytes += H2.headers(stream: stream) + H2.reset(stream: stream)
            }
            let answer = try await rawExchange(port: s.port, bytes, readFor: .seconds(5))
            let code = H2.goAway(in: answer)
            // ENHANCE_YOUR_CALM (0xb) from NIOHTTP2's reset-flood guard; any GOAWAY ends the connection.
            #expect(code != nil, "no GOAWAY after 10,000 HEADERS+RST_STREAM pairs")
            let p99 = try await s.p99(100)
            #expect(p99 < Self.latencyBound)
            // An ordinary HTTP/2 client is served as before.
            let h2load = try await run(
                "/usr/bin/h2load", ["-n", "2000", "-c", "2", "-m", "16", "http://127.0.0.1:\(s.port)/healthz"])
            #expect(h2load.contains("2000 succeeded"), "\(h2load)")
            print(
                "rapid reset: GOAWAY code \(code.map { String($0, radix: 16) } ?? "none") after \(answer.count) bytes")
        }
    }

    /// The debug build's NIOHTTP2 is many times slower than the release build's, so the flood here is sized
    /// and bounded for the debug build CI tests. The release build, measured by hand on the same machine:
    /// 60,000 requests from 8 connections x 128 streams at 63,000 requests/s, Unix-socket decisions at most
    /// 80 ms meanwhile (docs/security.md).
    static let floodLatencyBound: Duration = .seconds(sanitizer == nil ? 3 : 30)

    @Test func http2StreamFloodFromH2loadLeavesTheSocketResponsive() async throws {
        try await ListeningService.with { s in
            let flood = Task {
                try await run(
                    "/usr/bin/h2load",
                    ["-n", "20000", "-c", "4", "-m", "32", "http://127.0.0.1:\(s.port)/healthz"])
            }
            try await Task.sleep(for: .milliseconds(300))
            let p99 = try await s.p99(100)
            let report = try await flood.value
            #expect(p99 < Self.floodLatencyBound, "p99 \(p99) during an h2load stream flood")
            #expect(report.contains("20000 succeeded"), "\(report)")
            print(
                "stream flood: \(report.split(separator: "\n").filter { $0.contains("requests:") || $0.contains("finished in") }.joined(separator: "; ")); unix p99 \(p99)"
            )
        }
    }

    static let invalidFrames: [(String, [UInt8])] = [
        ("DATA on stream 0", H2.frame(type: 0, stream: 0, Array("abcd".utf8))),
        ("HEADERS with undecodable HPACK", H2.frame(type: 1, flags: 0x05, stream: 1, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF])),
        ("SETTINGS of a length that is not a multiple of 6", H2.frame(type: 4, stream: 0, [0, 1, 0, 0, 0])),
        ("WINDOW_UPDATE of zero on the connection", H2.frame(type: 8, stream: 0, [0, 0, 0, 0])),
        ("a frame over the maximum frame size", H2.frame(type: 0, stream: 1, [], length: 0xFF_FFFF)),
        ("HEADERS on an even (server) stream", H2.frame(type: 1, flags: 0x05, stream: 2, H2.getHealthz)),
        ("CONTINUATION without HEADERS", H2.frame(type: 9, flags: 0x04, stream: 1, H2.getHealthz)),
    ]

    @Test func invalidHTTP2FramesEndOnlyTheirOwnConnection() async throws {
        try await ListeningService.with { s in
            for (name, frame) in Self.invalidFrames {
                let answer = try await rawExchange(port: s.port, H2.preface + H2.settings + frame, readFor: .seconds(1))
                #expect(H2.goAway(in: answer) != nil, "\(name): no GOAWAY")
                #expect(s.process.isRunning, "\(name) ended the service")
            }
            // A preface cut short, and HTTP/1 garbage: closed, the service goes on.
            for bytes in [Array(H2.preface.prefix(10)), Array("\u{16}\u{03}\u{01}\u{02}\u{00}garbage\r\n\r\n".utf8)] {
                _ = try await rawExchange(port: s.port, bytes, readFor: .milliseconds(500))
            }
            #expect(try await s.p99(50) < Self.latencyBound)
        }
    }
}
