import FakePMS
import Foundation
import LiveTVAuthzCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two `serve` replicas sharing one real PostgreSQL (a throwaway cluster on loopback), as two frontends'
/// sidecars would: blocks, cooldowns and tracked playbacks made through one are honoured by the other.
@Suite("Replicas sharing state on PostgreSQL", .serialized)
struct SharedStateTests {
    static let postgresInstalled =
        !((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
        .isEmpty

    final class Replicas: @unchecked Sendable {
        let directory: URL
        let cluster: String
        let port: Int
        let fake: FakePMSServer
        var services: [ChildProcess] = []
        var sockets: [String] = []

        init() async throws {
            directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
                "plexauthz-shared-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            cluster = NSTemporaryDirectory() + "plexauthz-pg-\(UUID().uuidString.prefix(8))"
            port = try freePort()
            fake = try await FakePMSServer.start(pms: FakePMS())
            try await database("start")
            let owner = directory.appendingPathComponent("owner")
            try (ownerToken + "\n").write(to: owner, atomically: true, encoding: .utf8)
            chmod(owner.path, 0o600)
            for name in ["a", "b"] {
                let socket = directory.appendingPathComponent("\(name).sock").path
                sockets.append(socket)
                services.append(
                    try ChildProcess(
                        binaryDirectory.appendingPathComponent("plex-livetv-authz").path,
                        [
                            "serve", "--listen", "unix:\(socket)", "--owner-token-file", owner.path, "--pms-url",
                            "http://127.0.0.1:\(fake.port)",
                        ],
                        environment: [
                            "PLEX_LIVETV_AUTHZ_STATE_STORE":
                                "postgres://plexauthz@127.0.0.1:\(port)/plexauthz?sslmode=disable"
                        ], output: directory.appendingPathComponent("service-\(name).log")))
            }
            try await eventually("both replicas connected to PostgreSQL", timeout: .seconds(20)) {
                self.services.allSatisfy { $0.log.contains("connected, sharing") }
            }
        }

        func database(_ command: String) async throws {
            let arguments =
                [
                    "/bin/bash", repositoryRoot.appendingPathComponent("Tests/postgres/cluster.sh").path, command,
                    cluster,
                ]
                + (command == "start" ? [String(port)] : [])
            // system(3), not Foundation's Process: with the server pg_ctl leaves running, Process was seen to
            // leave the finished script unreaped (a zombie it still reported as running).
            let output = directory.appendingPathComponent("cluster-\(command).log").path
            let status = system(arguments.map { "'\($0)'" }.joined(separator: " ") + " >'\(output)' 2>&1 </dev/null")
            let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            #expect(status == 0, "cluster.sh \(command): \(log)")
        }

        func stop() async {
            for service in services { await service.stop() }
            await fake.shutdown()
            try? await database("destroy")
            try? FileManager.default.removeItem(at: directory)
        }

        /// One decision through replica `index` (0 = A, 1 = B), as nginx asks it.
        func decide(
            _ index: Int, _ target: String, method: String = "GET", from source: String,
            headers: [(String, String)] = []
        ) async throws -> String {
            var arguments = [
                "-s", "-i", "--unix-socket", sockets[index], "http://x/v1/nginx", "-H", "X-Original-Method: \(method)",
                "-H", "X-Original-URI: \(target)", "-H", "X-Forwarded-For: \(source)",
            ]
            for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
            return try await run("/usr/bin/curl", arguments)
        }

        var logs: String { services.map(\.log).joined(separator: "\n") }

        func validations() -> Int {
            fake.pms.requests(path: "/library/sections").filter { $0.product == "plex-livetv-authz" }.count
        }
    }

    static func with(_ body: (Replicas) async throws -> Void) async throws {
        let replicas = try await Replicas()
        do {
            try await body(replicas)
        } catch {
            await replicas.stop()
            throw error
        }
        await replicas.stop()
    }

    @Test(.enabled(if: postgresInstalled, "Debian postgresql"))
    func blocksCooldownsAndPlaybacksCrossReplicasAndFailuresCountOnce() async throws {
        try await Self.with { r in
            // A block made through A rejects on B.
            for _ in 1...5 { _ = try await r.decide(0, "/livetv/dvrs", from: "203.0.113.90") }
            try await eventually("B sees A's block") {
                ((try? await r.decide(1, "/livetv/dvrs", from: "203.0.113.90")) ?? "").contains(
                    "X-Plexauthz-Decision: blocked")
            }

            // A cooldown started on A saves B's PMS call for the same source and token.
            let bad = "/livetv/dvrs?X-Plex-Token=\(otherToken)"
            _ = try await r.decide(0, bad, from: "203.0.113.91")
            let asked = r.validations()
            #expect(asked >= 1)
            try await eventually("B sees A's cooldown") {
                _ = try? await r.decide(1, bad, from: "203.0.113.91")
                return r.services[1].log.contains("outcome=deny_auth_cooldown")
            }
            #expect(r.validations() == asked, "B asked PMS about a token A had just seen refused")

            // A playback tuned through A: its tokenless segments are elevated on B.
            let uuid = "c1e26483-946b-4f8a-8120-000000000001"
            let session = [("X-Plex-Session-Identifier", "s1"), ("X-Plex-Client-Identifier", "dev1")]
            let tuned = try await r.decide(
                0, "/livetv/dvrs/135/channels/c7pt/tune?X-Plex-Token=\(userToken)", method: "POST",
                from: "203.0.113.77", headers: session)
            #expect(tuned.contains("X-Plexauthz-Decision: elevated"), "\(tuned)")
            let started = try await r.decide(
                0,
                "/video/:/transcode/universal/start.m3u8?path=%2Flivetv%2Fsessions%2F\(uuid)&session=ts1&X-Plex-Session-Identifier=s1&X-Plex-Token=\(userToken)",
                from: "203.0.113.77")
            #expect(started.contains("X-Plexauthz-Decision: elevated"), "\(started)")
            try await eventually("B elevates A's tracked segments") {
                ((try? await r.decide(1, "/livetv/sessions/\(uuid)/ts1/00001.ts", from: "203.0.113.77")) ?? "")
                    .contains("X-Plexauthz-Rule: tracked-segment")
            }
            let elsewhere = try await r.decide(1, "/livetv/sessions/\(uuid)/ts1/00002.ts", from: "198.51.100.9")
            #expect(!elsewhere.contains("X-Plexauthz-Decision: elevated"), "another source rode the session")

            // Concurrent failures through both replicas: the threshold is crossed exactly once.
            try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<12 {
                    group.addTask { try await r.decide(index % 2, "/livetv/dvrs", from: "203.0.113.92") }
                }
                for try await _ in group {}
            }
            try await Task.sleep(for: .milliseconds(300))
            let blocked = r.logs.split(separator: "\n").filter {
                $0.contains("outcome=bad_actor_blocked") && $0.contains(fingerprint("203.0.113.92"))
            }
            #expect(blocked.count == 1, "\(blocked)")
            #expect(!r.logs.contains(userToken) && !r.logs.contains(otherToken) && !r.logs.contains(ownerToken))
            #expect(!r.logs.contains("203.0.113."), "a client address in a log")
        }
    }

    @Test(.enabled(if: postgresInstalled, "Debian postgresql"))
    func theDatabaseRestartedMidRunCostsSharingNotDecisions() async throws {
        try await Self.with { r in
            try await r.database("stop")
            try await eventually("both replicas notice", timeout: .seconds(10)) {
                r.services.allSatisfy { $0.log.contains("unreachable") }
            }
            // Decisions go on: a valid token is elevated (PMS proves it), failures block on this replica.
            let live = try await r.decide(0, "/livetv/dvrs?X-Plex-Token=\(userToken)", from: "203.0.113.93")
            #expect(live.contains("X-Plexauthz-Decision: elevated"), "\(live)")
            for _ in 1...5 { _ = try await r.decide(0, "/livetv/dvrs", from: "203.0.113.94") }
            #expect(try await r.decide(0, "/livetv/dvrs", from: "203.0.113.94").contains("Decision: blocked"))
            #expect(!(try await r.decide(1, "/livetv/dvrs", from: "203.0.113.94")).contains("Decision: blocked"))
            let health = try await run(
                "/usr/bin/curl",
                ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", r.sockets[0], "http://x/readyz/state"])
            #expect(health == "503")
            let status = try await run("/usr/bin/curl", ["-s", "--unix-socket", r.sockets[0], "http://x/status"])
            #expect(status.contains("id=\"state-store\">NOT reachable"), "\(status.prefix(2000))")
            #expect(!status.contains("plexauthz:"), "a database credential on the status page")

            try await r.database("start")
            try await eventually("both replicas reconnect", timeout: .seconds(30)) {
                r.services.allSatisfy { $0.log.components(separatedBy: "connected, sharing").count == 3 }
            }
            for _ in 1...5 { _ = try await r.decide(0, "/livetv/dvrs", from: "203.0.113.95") }
            try await eventually("B sees a block made after the restart") {
                ((try? await r.decide(1, "/livetv/dvrs", from: "203.0.113.95")) ?? "").contains("Decision: blocked")
            }
        }
    }

    /// The fingerprint the service writes for `address` (the `fingerprint` command prints the same).
    func fingerprint(_ address: String) -> String {
        SourceIdentity(address: address, forwardedForCount: 0, cfConnectingIP: false).fingerprint
    }
}
