import FakePMS
import Foundation
import LiveTVAuthz
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A command of the service binary run to completion: its exit status and everything it printed.
func command(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String)
{
    let output = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cmd-\(UUID().uuidString).out")
    defer { try? FileManager.default.removeItem(at: output) }
    let child = try ChildProcess(
        binaryDirectory.appendingPathComponent("plex-livetv-authz").path, arguments, environment: environment,
        output: output)
    try await eventually("plex-livetv-authz \(arguments.first ?? "") to finish", timeout: .seconds(60)) {
        !child.isRunning
    }
    return (child.process.terminationStatus, child.log)
}

/// A 0600 file holding `token`, in a fresh directory.
func secretFile(_ token: String) throws -> URL {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
        "plexauthz-ops-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let file = directory.appendingPathComponent("token")
    try (token + "\n").write(to: file, atomically: true, encoding: .utf8)
    chmod(file.path, 0o600)
    return file
}

@Suite("enforce-prefs and validate, end to end", .serialized)
struct OperationsTests {
    let publicURL = "https://media.example.com"

    func enforce(_ fake: FakePMSServer, _ extra: [String] = [], token: String = ownerToken) async throws -> (
        status: Int32, output: String
    ) {
        let file = try secretFile(token)
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        return try await command(
            ["enforce-prefs", "--pms-url", "http://127.0.0.1:\(fake.port)", "--owner-token-file", file.path] + extra)
    }

    func puts(_ fake: FakePMSServer) -> [RecordedRequest] {
        fake.pms.requests(path: "/:/prefs").filter { $0.method == "PUT" }
    }

    @Test func enforcePrefsPutsBackOnlyWhatDriftedWithOnePut() async throws {
        let fake = try await FakePMSServer.start(pms: FakePMS())
        defer { Task { await fake.shutdown() } }
        let wanted = [
            "RelayEnabled": "0", "ManualPortMappingMode": "1", "ManualPortMappingPort": "443",
            "customConnections": "https://media.example.com:443",
        ]

        let dry = try await enforce(fake, ["--public-url", publicURL, "--dry-run"])
        #expect(dry.status == 0)
        #expect(dry.output.contains(#"would change RelayEnabled: "1" -> "0""#))
        #expect(dry.output.contains(#"would change customConnections: "" -> "https://media.example.com:443""#))
        #expect(puts(fake).isEmpty, "a dry run changed PMS")

        let first = try await enforce(fake, ["--public-url", publicURL])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.split(separator: "\n").filter { $0.hasPrefix("changed ") }.count == 4)
        #expect(first.output.contains("enforce-prefs: sending one PUT /:/prefs with 4 change(s)"))
        #expect(puts(fake).count == 1)
        let put = try #require(puts(fake).first)
        #expect(
            put.rawQuery
                == "RelayEnabled=0&ManualPortMappingMode=1&ManualPortMappingPort=443&customConnections=https%3A%2F%2Fmedia.example.com%3A443"
        )
        #expect(put.queryTokens.isEmpty && put.headerTokens == ["OWNER"], "the owner token must travel in the header")
        for (id, value) in wanted { #expect(fake.pms.config.prefs[id] == value, "\(id)") }

        let again = try await enforce(fake, ["--public-url", publicURL])
        #expect(again.status == 0 && again.output.contains("\nno drift"), "\(again.output)")
        #expect(puts(fake).count == 1)

        // An upgrade resets Relay and port mapping: exactly those go back, in one PUT.
        fake.pms.simulateUpgrade()
        let afterUpgrade = try await enforce(fake, ["--public-url", publicURL])
        #expect(afterUpgrade.status == 0)
        #expect(!afterUpgrade.output.contains("customConnections"))
        #expect(puts(fake).last?.rawQuery == "RelayEnabled=0&ManualPortMappingMode=1&ManualPortMappingPort=443")
        for (id, value) in wanted { #expect(fake.pms.config.prefs[id] == value, "\(id)") }
        for output in [dry, first, again, afterUpgrade] { #expect(!output.output.contains(ownerToken)) }
    }

    @Test func enforcePrefsFailsLoudlyWhenPMSRefusesOrDoesNotKeepAChange() async throws {
        let fake = try await FakePMSServer.start(pms: FakePMS())
        defer { Task { await fake.shutdown() } }
        let refused = try await enforce(fake, ["--public-url", publicURL], token: userToken)
        #expect(refused.status == 1)
        #expect(refused.output.contains("HTTP 403"), "\(refused.output)")

        fake.pms.update { $0.prefsWritesIgnored = true }
        let ignored = try await enforce(fake, ["--public-url", publicURL])
        #expect(ignored.status == 1)
        #expect(ignored.output.contains(#"PMS did not keep RelayEnabled: "1" -> "0""#), "\(ignored.output)")

        let missing = try await enforce(fake)
        #expect(missing.status == 2)
        #expect(missing.output.contains("--public-url / PLEX_LIVETV_AUTHZ_PUBLIC_URL: required"), "\(missing.output)")

        let closed = try await command(
            ["enforce-prefs", "--pms-url", "http://127.0.0.1:\(try freePort())", "--public-url", publicURL],
            environment: ["PLEX_TOKEN": ownerToken])
        #expect(closed.status == 1 && closed.output.contains("did not answer GET /:/prefs"), "\(closed.output)")
        #expect(!closed.output.contains(ownerToken))
    }

    func validate(_ stack: Stack, _ extra: [String] = [], user: Bool = true) async throws -> (
        status: Int32, output: String
    ) {
        var arguments = [
            "validate", "--frontend-url", "http://127.0.0.1:\(stack.frontendPort)", "--pms-url",
            "http://127.0.0.1:\(stack.fake.port)",
        ]
        if user { arguments += ["--user-token-file", try secretFile(userToken).path] }
        return try await command(arguments + extra)
    }

    func line(_ output: String, _ check: String) -> String {
        output.split(separator: "\n").first { $0.hasPrefix(check) }.map(String.init) ?? "(no line \(check))"
    }

    @Test func validatePassesOnTheShippedNginx() async throws {
        try await Stack.with { stack in
            // Plex hides Live TV from this shared user (as reported for /livetv/epg/*).
            stack.pms.update { $0.livetvDvrsForUser = "403" }
            let closed = try freePort()
            let result = try await validate(stack, ["--direct-pms-url", "http://127.0.0.1:\(closed)"])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("11 passed, 0 failed, 0 skipped, 0 notes"), "\(result.output)")
            #expect(line(result.output, "shared user: /livetv/dvrs").contains("PASS"))
            #expect(!result.output.contains(userToken) && !result.output.contains(ownerToken))
            // Three bad Live TV attempts per run: one run stays under the blocker's threshold of five.
            #expect(!stack.service.log.contains("outcome=bad_actor_blocked"))

            // A second run within the window blocks this address for bad tokens; a valid one still works.
            let again = try await validate(stack, user: true)
            #expect(again.status == 0, "\(again.output)")
            #expect(stack.service.log.contains("outcome=bad_actor_blocked"))
            #expect(line(again.output, "no token: /livetv/dvrs").contains("HTTP 429"), "\(again.output)")

            stack.pms.update { $0.livetvDvrsForUser = "200-list" }
            let withoutUser = try await validate(stack, user: false)
            #expect(withoutUser.status == 0)
            #expect(withoutUser.output.contains("6 passed, 0 failed, 3 skipped"), "\(withoutUser.output)")
            let entitled = try await validate(stack)
            #expect(line(entitled.output, "Plex itself hides Live TV").contains("NOTE"))
        }
    }

    /// A frontend "fixed" by hand to send the owner token for libraries: validate must fail it, and must fail
    /// a PMS that answers directly.
    @Test func validateCatchesAFrontendThatLendsTheOwnerTokenAndAnOpenPMSPort() async throws {
        let broken = (
            "location / {",
            "location /library/ {\n proxy_pass http://pms;\n proxy_set_header X-Plex-Token \"\(ownerToken)\";\n }\n location / {"
        )
        try await Stack.with(edits: [broken]) { stack in
            let result = try await validate(stack, ["--direct-pms-url", "http://127.0.0.1:\(stack.fake.port)"])
            #expect(result.status == 1, "\(result.output)")
            #expect(
                line(result.output, "made-up token (header): /library/sections").contains("FAIL"), "\(result.output)")
            #expect(line(result.output, "shared user: /library/sections is the user's own").contains("FAIL"))
            #expect(line(result.output, "PMS directly at").contains("FAIL"))
            #expect(line(result.output, "shared user: /livetv/dvrs").contains("PASS"))
            #expect(!result.output.contains(ownerToken))
        }
    }

    /// The env example names real variables only (a typo there is a setting silently not applied).
    @Test func theEnvExampleNamesOnlyRealVariables() throws {
        let known = Set(SettingsHelp.documentedCommands.flatMap { $0.settings.flatMap(\.variables) })
        let text = try String(
            contentsOf: repositoryRoot.appendingPathComponent("systemd/plex-livetv-authz.env.example"), encoding: .utf8)
        let assigned = text.split(separator: "\n").compactMap { line -> String? in
            let body = line.hasPrefix("#") ? line.dropFirst() : line[...]
            guard let equals = body.firstIndex(of: "="), body[..<equals].allSatisfy({ $0.isUppercase || $0 == "_" }),
                !body[..<equals].isEmpty
            else { return nil }
            return String(body[..<equals])
        }
        #expect(assigned.count >= 8)
        #expect(Set(assigned).subtracting(known).isEmpty, "unknown: \(Set(assigned).subtracting(known))")
        // The unit's own Environment= lines too.
        let unit = try String(
            contentsOf: repositoryRoot.appendingPathComponent("systemd/plex-livetv-authz.service"), encoding: .utf8)
        let unitVariables = unit.split(separator: "\n").filter { $0.hasPrefix("Environment=") }.map {
            String($0.dropFirst("Environment=".count).prefix { $0 != "=" })
        }
        #expect(!unitVariables.isEmpty && Set(unitVariables).isSubset(of: known), "\(unitVariables)")
    }
}
