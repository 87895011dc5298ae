import ArgumentParser
import FakePMS
import Foundation
import UnixSignals

/// `fake-pms`: a fake Plex Media Server on loopback for tests and the demo.
@main
struct FakePMSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-pms",
        abstract: "A fake Plex Media Server on loopback, with a request log on a separate control port.",
        discussion: """
            Tokens (defaults): owner ownr0000000000000000, shared user user0000000000000000, shared user with \
            tuner utnr0000000000000000, plex.tv user without access othr0000000000000000 (401).
            Control API (control port only): GET /__fake/requests[?path=/livetv/dvrs], DELETE /__fake/requests,
            GET /__fake/counts (requests per path, kept even with --no-request-log),
            GET /__fake/config, PUT /__fake/config with a JSON object, e.g. {"livetvDvrsForUser":"403"} or
            {"prefsWritesIgnored":true}; POST /__fake/upgrade resets Relay and port mapping in /:/prefs, as a PMS
            upgrade does.
            On start it prints one JSON line with the bound ports, then serves until SIGINT/SIGTERM.
            """)

    @Option(help: "Loopback address to bind.") var host = "127.0.0.1"
    @Option(help: "Plex port (0 = ephemeral).") var port = 0
    @Option(help: "Control API port (0 = ephemeral).") var controlPort = 0
    @Option(help: "Machine identifier (40 hex).") var machineId: String?
    @Option(help: "Owner token.") var ownerToken: String?
    @Option(help: "Shared user token.") var userToken: String?
    @Flag(help: "Lenient token carriers (no 400 when query and header tokens differ).") var lenient = false
    @Flag(help: "gzip responses for clients that accept it.") var gzip = false
    @Flag(help: "Keep no request log, only counts per path (load runs: the log grows by one entry per request).")
    var noRequestLog = false
    @Option(
        help: "Any token starting with this is a valid shared-user token (fills the service's cache in benchmarks).")
    var userTokenPrefix: String?
    @Option(help: "Answer for a shared user's GET /livetv/dvrs: 200-list, 200-empty or 403.") var livetvDvrsForUser =
        "200-list"

    func validate() throws {
        guard ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") else {
            throw ValidationError("--host must be a loopback address: the fake never listens elsewhere.")
        }
        guard ["200-list", "200-empty", "403"].contains(livetvDvrsForUser) else {
            throw ValidationError("--livetv-dvrs-for-user must be 200-list, 200-empty or 403.")
        }
    }

    func run() async throws {
        var config = FakePMSConfig()
        if let machineId { config.machineIdentifier = machineId }
        if let ownerToken { config.ownerToken = ownerToken }
        if let userToken { config.userToken = userToken }
        config.strict = !lenient
        config.gzip = gzip
        config.recordRequests = !noRequestLog
        config.userTokenPrefix = userTokenPrefix
        config.livetvDvrsForUser = livetvDvrsForUser
        let server = try await FakePMSServer.start(
            pms: FakePMS(config: config), host: host, port: port, controlPort: controlPort)
        print(#"{"port":\#(server.port),"controlPort":\#(server.controlPort)}"#)
        fflush(nil)
        for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { break }
        await server.shutdown()
    }
}
