import FakePMS
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `plex-livetv-authz serve` as systemd runs it: signals, log levels, the audit sink.
@Suite("serve as a process", .serialized)
struct ServeProcessTests {
    /// Starts `serve` on a Unix socket against a fresh fake PMS, runs `body`, stops everything and removes
    /// the directory.
    func withServe(
        _ arguments: [String], environment: [String: String] = [:],
        _ body: (ChildProcess, String, URL) async throws -> Void
    ) async throws {
        let fake = try await FakePMSServer.start(pms: FakePMS())
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "plexauthz-serve-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let socket = directory.appendingPathComponent("authz.sock").path
        let service = try ChildProcess(
            binaryDirectory.appendingPathComponent("plex-livetv-authz").path,
            ["serve", "--listen", "unix:\(socket)", "--pms-url", "http://127.0.0.1:\(fake.port)"] + arguments,
            environment: environment, output: directory.appendingPathComponent("service.log"))
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            try await eventually("the service socket") { FileManager.default.fileExists(atPath: socket) }
            try await body(service, socket, directory)
        } catch {
            await service.stop()
            await fake.shutdown()
            throw error
        }
        await service.stop()
        await fake.shutdown()
    }

    func decide(_ socket: String, _ target: String) async throws -> String {
        try await run(
            "/usr/bin/curl",
            [
                "-s", "-i", "--unix-socket", socket, "http://x/v1/nginx", "-H", "X-Original-Method: GET",
                "-H", "X-Original-URI: \(target)", "-H", "X-Forwarded-For: 203.0.113.61",
            ])
    }

    @Test func sighupWithAnEnvironmentTokenKeepsServingAndErrorLevelKeepsEveryAuditLine() async throws {
        try await withServe(
            ["--log-level", "error"], environment: ["IPTV_TUNERR_PMS_OWNER_TOKEN": ownerToken]
        ) { service, socket, _ in
            kill(service.process.processIdentifier, SIGHUP)
            try await Task.sleep(for: .milliseconds(300))
            #expect(service.isRunning, "SIGHUP ended the service")
            let elevated = try await decide(socket, "/livetv/dvrs?X-Plex-Token=\(userToken)")
            #expect(elevated.contains("X-Plexauthz-Decision: elevated"))
            let missing = try await decide(socket, "/livetv/dvrs")
            #expect(missing.contains("X-Plexauthz-Rule: no-token"))
            kill(service.process.processIdentifier, SIGHUP)
            try await Task.sleep(for: .milliseconds(300))
            #expect(service.isRunning)
            await service.stop()
            #expect(service.process.terminationReason == .exit && service.process.terminationStatus == 0)
            let log = service.log
            #expect(log.contains("plexlabelproxy_audit: outcome=elevated_live_tv"), "\(log)")
            #expect(log.contains("plexlabelproxy_audit: outcome=deny_missing_token"))
            #expect(log.contains("plexlabelproxy_audit_summary: since="))
            // The operational log stays at error level: no notice about listening or SIGHUP.
            #expect(!log.contains("listening on") && !log.contains("SIGHUP"))
            #expect(!log.contains(ownerToken) && !log.contains(userToken) && !log.contains("203.0.113.61"))
        }
    }

    @Test func sighupReloadsAChangedTokenFileAndKeepsTheOldOneWhenTheFileIsBad() async throws {
        let tokenFile = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "plexauthz-owner-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        func writeToken(_ value: String, mode: mode_t = 0o600) throws {
            try (value + "\n").write(to: tokenFile, atomically: false, encoding: .utf8)
            chmod(tokenFile.path, mode)
        }
        try writeToken(ownerToken)
        try await withServe(["--owner-token-file", tokenFile.path]) { service, socket, _ in
            #expect(
                try await decide(socket, "/livetv/dvrs?X-Plex-Token=\(userToken)").contains(
                    "X-Plexauthz-Token: \(ownerToken)"))
            let rotated = "ownr1111111111111111"
            try writeToken(rotated)
            kill(service.process.processIdentifier, SIGHUP)
            try await eventually("the reload") { service.log.contains("owner token reloaded") }
            #expect(
                try await decide(socket, "/livetv/dvrs?X-Plex-Token=\(userToken)").contains(
                    "X-Plexauthz-Token: \(rotated)"))
            // A file readable by others is refused and the current token kept.
            try writeToken("ownr2222222222222222", mode: 0o644)
            kill(service.process.processIdentifier, SIGHUP)
            try await eventually("the refusal") { service.log.contains("keeping the previous owner token") }
            #expect(
                try await decide(socket, "/livetv/dvrs?X-Plex-Token=\(userToken)").contains(
                    "X-Plexauthz-Token: \(rotated)"))
            #expect(service.isRunning)
            #expect(!service.log.contains(rotated) && !service.log.contains(ownerToken))
        }
    }

    /// `Type=notify`: READY=1 only once the listener is bound, STOPPING=1 on the way out.
    @Test func tellsSystemdWhenReadyAndWhenStopping() async throws {
        let path = NSTemporaryDirectory() + "plexauthz-notify-\(UUID().uuidString.prefix(8))"
        let receiver = try DatagramReceiver(path: path)
        defer { receiver.close() }
        try await withServe([], environment: ["PLEX_TOKEN": ownerToken, "NOTIFY_SOCKET": path]) { service, socket, _ in
            let ready = try #require(receiver.receive(timeout: .seconds(10)))
            #expect(ready.hasPrefix("READY=1"), "\(ready)")
            // Ready means the socket answers.
            #expect(try await decide(socket, "/livetv/dvrs").contains("X-Plexauthz-Rule: no-token"))
            await service.stop()
            #expect(receiver.receive(timeout: .seconds(5)) == "STOPPING=1")
        }
    }
}

/// A Unix datagram socket standing in for systemd's notify socket.
final class DatagramReceiver: @unchecked Sendable {
    let descriptor: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard descriptor >= 0, bound == 0 else { throw HarnessError("cannot bind \(path)") }
    }

    /// The next datagram, or nil after `timeout`.
    func receive(timeout: Duration) -> String? {
        var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    func close() {
        Glibc.close(descriptor)
        unlink(path)
    }
}
