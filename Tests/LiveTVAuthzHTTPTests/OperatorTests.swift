import FakePMS
import Foundation
import Testing

/// What operators turn on: shadow mode, JSON logs, block management, the status page.
@Suite("Operator experience", .serialized)
struct OperatorTests {
    /// Shadow mode through the shipped nginx: what would have been elevated or blocked is audited as such,
    /// and Plex never sees the owner token nor the client a 429.
    @Test func shadowModeAuditsEverythingAndLendsNothing() async throws {
        try await Stack.with(extraServiceArguments: ["--shadow"]) { stack in
            let live = try await stack.get("/livetv/dvrs?\(user)")
            #expect(live.status == 200)
            #expect(stack.pms.last(path: "/livetv/dvrs")?.tokenClass == "USER")
            let tune = try await stack.get("/livetv/dvrs/135/channels/c7pt/tune?\(user)", method: .POST)
            #expect(tune.status == 403, "Plex answers the shared user itself")
            var statuses: [Int] = []
            for _ in 1...7 { statuses.append(try await stack.get("/livetv/dvrs").status) }
            #expect(statuses.allSatisfy { $0 == 401 }, "\(statuses): a shadow block must not refuse anyone")
            let clientRequests = stack.pms.requests().filter { $0.product != "plex-livetv-authz" }
            #expect(clientRequests.allSatisfy { $0.tokenClass != "OWNER" }, "the owner token reached Plex")
            let log = stack.service.log
            #expect(log.contains("outcome=elevated_live_tv method=GET path=/livetv/dvrs"))
            #expect(log.contains("rule=livetv-tune shadow=true"))
            #expect(log.contains("outcome=bad_actor_blocked") && log.contains("outcome=blocked_bad_actor"))
            let audits = log.split(separator: "\n").filter { $0.hasPrefix("plexlabelproxy_audit: ") }
            #expect(!audits.isEmpty && audits.allSatisfy { $0.contains(" shadow=true ") })
        }
    }

    /// `--log-format json`: every line the service writes is one JSON object; audit lines keep their fields.
    @Test func jsonLogsAreOneObjectPerLine() async throws {
        try await Stack.with(extraServiceArguments: ["--log-format", "json"]) { stack in
            _ = try await stack.get("/livetv/dvrs?\(user)")
            _ = try await stack.get("/livetv/dvrs")
            await stack.service.stop()
            let lines = stack.service.log.split(separator: "\n")
            var audits: [[String: Any]] = []
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not JSON: \(line)")
                if object?["log"] as? String == "plexlabelproxy_audit" { audits.append(object!) }
            }
            #expect(audits.map { $0["outcome"] as? String } == ["elevated_live_tv", "deny_missing_token"])
            #expect(audits.first?["rule"] as? String == "livetv" && audits.first?["live_tv"] as? Bool == true)
            #expect(lines.contains { $0.contains(#""log":"plexlabelproxy_audit_summary""#) })
            #expect(lines.contains { $0.hasPrefix(#"{"level":"notice","message":"listening on"#) })
            #expect(!stack.service.log.contains(ownerToken) && !stack.service.log.contains(userToken))
        }
    }

    /// `blocks list`/`unblock` and `fingerprint` against the running service (socket, TCP with the key), then
    /// against its state file once it is stopped, never while it runs.
    @Test func blocksAreListedAndLiftedLiveAndFromTheStoppedServicesFile() async throws {
        try await Stack.with { stack in
            let socket = stack.directory.appendingPathComponent("authz.sock").path
            let stateFile = stack.directory.appendingPathComponent("state/blocks.json").path
            func block() async throws {
                for _ in 1...5 {
                    _ = try await stack.get("/livetv/dvrs", headers: [("CF-Connecting-IP", "203.0.113.66")])
                }
                #expect(
                    try await stack.get("/livetv/dvrs", headers: [("CF-Connecting-IP", "203.0.113.66")]).status == 429)
            }
            try await block()
            let fingerprint = try await command(["fingerprint", "203.0.113.66"]).output.trimmingCharacters(
                in: .whitespacesAndNewlines)
            #expect(fingerprint.hasPrefix("sha256:") && fingerprint.count == 23)
            #expect(try await command(["fingerprint", "::ffff:203.0.113.66"]).output.contains(fingerprint))

            let listed = try await command(["blocks", "list", "--json", "--service", "unix:\(socket)"])
            #expect(listed.status == 0, "\(listed.output)")
            let entries = try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]]
            let entry = try #require(entries?.first { $0["source"] as? String == fingerprint }, "\(listed.output)")
            #expect(entry["failures"] as? Int == 5 && entry["blockedUntil"] is String)
            #expect(!listed.output.contains("203.0.113.66"))

            // TCP: the key is required, from the same settings as serve.
            let tcp = ["blocks", "list", "--service", "127.0.0.1:\(stack.serviceTCPPort)"]
            let refused = try await command(tcp)
            #expect(refused.status == 1 && refused.output.contains("HTTP 401"), "\(refused.output)")
            let keyed = try await command(tcp, environment: ["PLEX_LIVETV_AUTHZ_FRONTEND_KEY": frontendKey])
            #expect(keyed.status == 0 && keyed.output.contains(fingerprint), "\(keyed.output)")

            // The file is the running service's: never edited behind its back.
            let behind = try await command([
                "blocks", "unblock", "--all", "--service", "unix:/nonexistent.sock", "--abuse-state-file", stateFile,
            ])
            #expect(behind.status == 1 && behind.output.contains("the service is running"), "\(behind.output)")

            let lifted = try await command(["blocks", "unblock", fingerprint, "--service", "unix:\(socket)"])
            #expect(lifted.status == 0 && lifted.output.contains("unblocked 1"), "\(lifted.output)")
            #expect(
                stack.service.log.contains(
                    "plexlabelproxy_audit: outcome=operator_unblock source=\(fingerprint) count=1"))
            #expect(try await stack.get("/livetv/dvrs", headers: [("CF-Connecting-IP", "203.0.113.66")]).status == 401)

            #expect(try await command(["blocks", "unblock", "203.0.113.66"]).status == 2)
            #expect(try await command(["blocks", "unblock"]).status == 2)

            // Blocked again, then the service stops: the state file is the truth now.
            for _ in 1...4 { _ = try await stack.get("/livetv/dvrs", headers: [("CF-Connecting-IP", "203.0.113.66")]) }
            #expect(try await stack.get("/livetv/dvrs", headers: [("CF-Connecting-IP", "203.0.113.66")]).status == 429)
            await stack.service.stop()
            let offline = ["--service", "unix:\(socket)", "--abuse-state-file", stateFile]
            let fromFile = try await command(["blocks", "list"] + offline)
            #expect(fromFile.status == 0 && fromFile.output.contains(fingerprint), "\(fromFile.output)")
            let all = try await command(["blocks", "unblock", "--all"] + offline)
            #expect(all.status == 0 && all.output.contains("unblocked 1 (in the stopped service's state file"))
            #expect(all.output.contains("outcome=operator_unblock source=all count=1"))
            #expect(try await command(["blocks", "list"] + offline).output.contains("no blocked or failing sources"))
        }
    }

    /// `/status` in a real headless Chromium: it renders, and its numbers are those of `/metrics`.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "Debian chromium"))
    func statusPageRendersInChromiumAndAgreesWithMetrics() async throws {
        try await Stack.with { stack in
            _ = try await stack.get("/livetv/dvrs?\(user)")
            _ = try await stack.get("/livetv/dvrs?\(user)")
            _ = try await stack.get("/library/sections?\(user)")
            _ = try await stack.get("/livetv/dvrs?X-Plex-Token=\(otherToken)")
            for _ in 1...6 { _ = try await stack.get("/livetv/dvrs", headers: [("CF-Connecting-IP", "203.0.113.77")]) }

            let url = "http://127.0.0.1:\(stack.serviceTCPPort)/status"
            let profile = stack.directory.appendingPathComponent("chromium")
            let flags = [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--user-data-dir=\(profile.path)",
            ]
            let dom = try await run("/usr/bin/chromium", flags + ["--dump-dom", url])
            let screenshot = stack.directory.appendingPathComponent("status.png")
            _ = try await run(
                "/usr/bin/chromium", flags + ["--window-size=1200,1600", "--screenshot=\(screenshot.path)", url])
            let png = try Data(contentsOf: screenshot)
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "screenshot \(png.count) bytes")

            func shown(_ id: String) -> Int? {
                guard let range = dom.range(of: "id=\"\(id)\">") else { return nil }
                return Int(dom[range.upperBound...].prefix { $0.isNumber })
            }
            let metrics = try await run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(stack.serviceTCPPort)/metrics"])
            func metric(_ name: String, _ label: String? = nil) -> Int {
                metrics.split(separator: "\n").filter { line in
                    line.hasPrefix(name) && (label.map { line.contains($0) } ?? true)
                }.compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0) { $0 + Int($1) }
            }
            for outcome in ["elevated_live_tv", "deny_unauthorized_token", "deny_missing_token", "preserved"] {
                let expected = metric("plexauthz_decisions_total{", "outcome=\"\(outcome)\"")
                #expect(expected > 0, "\(outcome) not in /metrics")
                #expect(
                    shown("outcome-\(outcome)") == expected,
                    "\(outcome): page \(String(describing: shown("outcome-\(outcome)"))), metrics \(expected)")
            }
            #expect(shown("cache-hits") == metric("plexauthz_validation_cache_total{", "result=\"hit\""))
            #expect(shown("cache-misses") == metric("plexauthz_validation_cache_total{", "result=\"miss\""))
            #expect(shown("blocked-sources") == 1 && metric("plexauthz_blocked_sources ") == 1)
            #expect(shown("tracked-sessions") == metric("plexauthz_tracked_playback_sessions "))
            #expect(dom.contains("<svg id=\"chart\"") && dom.contains("<rect x="))
            #expect(dom.contains("id=\"pms\">reachable"))
            #expect(dom.contains("<td>livetv</td><td>elevated_live_tv</td>"))
            #expect(!dom.contains(userToken) && !dom.contains(ownerToken) && !dom.contains(otherToken))
            #expect(!dom.contains("203.0.113.77") && !dom.contains("<script"))
        }
    }
}
