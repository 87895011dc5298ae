import AsyncHTTPClient
import FakePMS
import Foundation
import LiveTVAuthzCore
import NIOConcurrencyHelpers
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `serve` on a Unix socket with a state file, asked over that socket: the pieces the local-fault tests share.
final class StatefulService: @unchecked Sendable {
    let directory: URL
    let socket: String
    let statePath: String
    let fake: FakePMSServer
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    private(set) var process: ChildProcess?
    private var starts = 0

    init(stateDirectory: URL? = nil) async throws {
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "plexauthz-faults-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        socket = directory.appendingPathComponent("authz.sock").path
        statePath =
            (stateDirectory ?? directory.appendingPathComponent("state")).appendingPathComponent("blocks.json")
            .path
        fake = try await FakePMSServer.start(pms: FakePMS())
    }

    /// Starts `serve` (abuse threshold 2) and waits until it listens.
    func start() async throws {
        starts += 1
        let child = try ChildProcess(
            binaryDirectory.appendingPathComponent("plex-livetv-authz").path,
            [
                "serve", "--listen", "unix:\(socket)", "--pms-url", "http://127.0.0.1:\(fake.port)",
                "--abuse-state-file", statePath, "--abuse-threshold", "2",
            ], environment: ["IPTV_TUNERR_PMS_OWNER_TOKEN": ownerToken],
            output: directory.appendingPathComponent("service-\(starts).log"))
        process = child
        try await eventually("serve to listen (start \(starts))") {
            child.log.contains("listening on") || !child.isRunning
        }
        guard child.isRunning else {
            throw HarnessError("serve did not start (start \(starts)):\n\(child.log.suffix(2000))")
        }
    }

    var base: String { "http+unix://\(socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" }

    /// A Live TV request without a token from `source`: a failure (counted) or, once blocked, a 403.
    func fail(from source: String) async throws -> Int {
        var request = HTTPClientRequest(url: base + "/v1/nginx")
        request.headers.add(name: "X-Original-Method", value: "GET")
        request.headers.add(name: "X-Original-URI", value: "/livetv/dvrs")
        request.headers.add(name: "X-Forwarded-For", value: source)
        let response = try await client.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 16)
        return Int(response.status.code)
    }

    func get(_ path: String) async throws -> (status: Int, body: String) {
        let response = try await client.execute(HTTPClientRequest(url: base + path), timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 22)))
    }

    /// The blocked fingerprints in the file on disk right now (it is replaced atomically, so it is always a
    /// whole file: the last completed write).
    func blockedOnDisk() -> Set<String> {
        guard let data = FileManager.default.contents(atPath: statePath),
            let snapshot = try? GuardStateCodec.decode(Array(data))
        else { return [] }
        return Set(snapshot.sources.filter { $0.value.blockedUntil != nil }.keys)
    }

    var logs: String {
        (1...max(starts, 1)).map {
            (try? String(contentsOf: directory.appendingPathComponent("service-\($0).log"), encoding: .utf8)) ?? ""
        }.joined(separator: "\n")
    }

    func shutdown() async {
        await process?.stop()
        try? await client.shutdown()
        await fake.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    static func fingerprint(_ address: String) -> String {
        SourceIdentity(address: address, forwardedForCount: 1, cfConnectingIP: false).fingerprint
    }
}

/// Local mishaps: the process killed in the middle of state writes, a full or read-only disk, the service
/// restarted under load behind nginx.
@Suite("Local faults", .serialized)
struct LocalFaultTests {
    @Test func sigkillDuringStateWritesNeverLosesACompletedBlockAndNeverStopsAStart() async throws {
        let service = try await StatefulService()
        var confirmed: [String: String] = [:]  // fingerprint → address
        var generator = SystemRandomNumberGenerator()
        do {
            for round in 0..<8 {
                try await service.start()
                // Every block the disk held before a kill is enforced after the restart.
                for (_, address) in confirmed {
                    let status = try await service.fail(from: address)
                    #expect(status == 403, "round \(round): \(address)'s block was lost")
                }
                // Three new blocks, waited for on disk: a completed write.
                let fresh = (1...3).map { "198.18.\(round).\($0)" }
                for address in fresh {
                    for _ in 0..<2 { _ = try await service.fail(from: address) }
                }
                let wanted = Set(fresh.map(StatefulService.fingerprint))
                try await eventually("round \(round)'s blocks on disk") {
                    wanted.isSubset(of: service.blockedOnDisk())
                }
                for address in fresh { confirmed[StatefulService.fingerprint(address)] = address }
                // Then a burst of failures from many sources, and SIGKILL somewhere inside its writes.
                let burst = Task {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for index in 0..<40 {
                            group.addTask {
                                for _ in 0..<2 { _ = try? await service.fail(from: "198.19.\(round).\(index + 1)") }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 2...40, using: &generator)))
                service.process?.killHard()
                burst.cancel()
                _ = try? await burst.value
            }
            try await service.start()
            for (_, address) in confirmed {
                #expect(try await service.fail(from: address) == 403, "\(address)'s block was lost")
            }
            // A start never failed because of the file, never moved it aside, and cleaned what kills left.
            #expect(!service.logs.contains("unusable") && !service.logs.contains("moved aside"), "\(service.logs)")
            let stateDirectory = (service.statePath as NSString).deletingLastPathComponent
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: stateDirectory).filter {
                $0.contains(".tmp-")
            }
            // The running service may be writing right now: at most its own one temporary file.
            #expect(leftovers.count <= 1, "\(leftovers)")
            var status = stat()
            #expect(stat(service.statePath, &status) == 0 && status.st_mode & 0o777 == 0o600)
            #expect(!service.logs.contains("198.18.") && !service.logs.contains("198.19."))
        } catch {
            await service.shutdown()
            throw error
        }
        await service.shutdown()
    }

    enum DiskFault: String, CaseIterable, Sendable {
        case full
        case readOnly = "read-only"
    }

    @Test(
        .enabled(if: getuid() == 0, "mounting a small tmpfs needs root (CI runs as root)"),
        arguments: DiskFault.allCases)
    func aFullOrReadOnlyDiskKeepsDecidingSaysSoAndRecovers(_ fault: DiskFault) async throws {
        let mount = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "plexauthz-disk-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        #expect(try await run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mount.path]) == "")
        defer {
            _ = try? runBlocking("/bin/umount", [mount.path])
            try? FileManager.default.removeItem(at: mount)
        }
        let service = try await StatefulService(stateDirectory: mount)
        do {
            try await service.start()
            for _ in 0..<2 { _ = try await service.fail(from: "198.18.0.1") }
            try await eventually("the first block on disk") {
                service.blockedOnDisk().contains(StatefulService.fingerprint("198.18.0.1"))
            }
            let filler = mount.appendingPathComponent("filler").path
            switch fault {
            case .full:
                _ = try? await run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=4k"])
            case .readOnly:
                #expect(try await run("/bin/mount", ["-o", "remount,ro", mount.path]) == "")
            }
            // New blocks cannot be written: the service goes on deciding (and enforcing them from memory).
            for address in ["198.18.0.2", "198.18.0.3"] {
                for _ in 0..<2 { #expect(try await service.fail(from: address) == 200) }
                #expect(try await service.fail(from: address) == 403)
            }
            try await eventually("the write failure in the log") {
                service.logs.contains("cannot write abuse state file")
            }
            #expect(try await service.get("/metrics").body.contains("plexauthz_state_store_up 0"))
            #expect(try await service.get("/readyz/state").status == 503)
            #expect(try await service.get("/readyz").status == 200, "a failing state file made frontends stop")
            #expect(!service.blockedOnDisk().contains(StatefulService.fingerprint("198.18.0.2")))

            // The disk recovers: with no new change at all, the retry writes everything held in memory meanwhile.
            switch fault {
            case .full: unlink(filler)
            case .readOnly: #expect(try await run("/bin/mount", ["-o", "remount,rw", mount.path]) == "")
            }
            let all = Set(["198.18.0.1", "198.18.0.2", "198.18.0.3"].map(StatefulService.fingerprint))
            try await eventually("every block on disk after recovery, written by the retry") {
                all.isSubset(of: service.blockedOnDisk())
            }
            #expect(service.logs.contains("written again"))
            #expect(try await service.get("/metrics").body.contains("plexauthz_state_store_up 1"))
            // The failure was logged once, not once per change.
            #expect(service.logs.components(separatedBy: "cannot write abuse state file").count - 1 == 1)
        } catch {
            await service.shutdown()
            throw error
        }
        await service.shutdown()
    }

    @Test func restartUnderLoadBehindNginxFallsBackUnelevatedAndResumes() async throws {
        try await Stack.with { stack in
            let errors = NIOLockedValueBox<[String]>([])
            let ownerSeen = NIOLockedValueBox(false)
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            let target =
                                worker == 0
                                ? "/library/sections?X-Plex-Token=\(userToken)"
                                : "/livetv/dvrs?X-Plex-Token=\(userToken)"
                            while !Task.isCancelled {
                                do {
                                    let response = try await stack.get(target)
                                    if response.status >= 500 {
                                        errors.withLockedValue { $0.append("\(response.status)") }
                                    }
                                    if response.everything.contains(ownerToken) {
                                        ownerSeen.withLockedValue { $0 = true }
                                    }
                                } catch is CancellationError {
                                    return
                                } catch {
                                    errors.withLockedValue { $0.append("\(error)") }
                                }
                            }
                        }
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(800))
            stack.service.killHard()
            // Requests whose decision came before the kill may still reach PMS just after it.
            try await Task.sleep(for: .milliseconds(200))
            let downFrom = stack.pms.requests().last?.seq ?? 0
            try await Task.sleep(for: .milliseconds(800))
            let downTo = stack.pms.requests().last?.seq ?? 0
            try await stack.restartService()
            try await Task.sleep(for: .milliseconds(800))
            load.cancel()
            await load.value

            let requests = stack.pms.requests()
            let down = requests.filter { $0.seq > downFrom && $0.seq <= downTo }
            let after = requests.filter { $0.seq > downTo }
            // The frontend kept answering from PMS with the user's own token while the service was away.
            #expect(errors.withLockedValue { $0 }.isEmpty, "\(errors.withLockedValue { $0.prefix(5) })")
            #expect(down.count > 10, "too little traffic while the service was down: \(down.count)")
            #expect(down.allSatisfy { $0.tokenClass == "USER" }, "\(Set(down.map(\.tokenClass)))")
            // Library requests never carry the owner token, before, during or after.
            #expect(requests.filter { $0.path == "/library/sections" }.allSatisfy { $0.tokenClass == "USER" })
            // Live TV is elevated again after the restart.
            #expect(after.contains { $0.path == "/livetv/dvrs" && $0.tokenClass == "OWNER" })
            #expect(!ownerSeen.withLockedValue { $0 }, "the owner token reached a client")
        }
    }
}

/// A command run to completion synchronously; its output.
func runBlocking(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    process.waitUntilExit()
    return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
}
