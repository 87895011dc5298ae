import ArgumentParser
import AsyncHTTPClient
import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `blocks`: see and lift the abuse blocker's blocks.
struct BlocksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blocks",
        abstract: "List and lift blocks of the running service (or of its state file while it is stopped).",
        discussion: """
            The running service is asked over its secret channel (--service, default its default socket; over \
            TCP with the frontend key). When it does not answer and --abuse-state-file names its state file, \
            the file is read (and for unblock, rewritten) instead; never while a service holds the file. \
            Sources are sha256: fingerprints: `plex-livetv-authz fingerprint ADDRESS` finds an address's. \
            Every unblock is audited (plexlabelproxy_audit: outcome=operator_unblock).
            """,
        subcommands: [BlocksListCommand.self, BlocksUnblockCommand.self])
}

struct BlocksListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Blocked and failing sources: fingerprint, failures, blocked until, reason.",
        usage: "plex-livetv-authz blocks list [--json] [--service unix:/path|host:port]",
        discussion: SettingsHelp.options(Settings.blocks))

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var arguments: [String] = []

    func run() async throws {
        let configuration = try CommandSettings.load(arguments, settings: Settings.blocks).configuration
        let entries: [BlockEntry]
        switch await BlockClient(configuration).send(.GET, "/v1/blocks") {
        case .answered(200, let body):
            guard let decoded = try? JSONDecoder().decode([BlockEntry].self, from: Data(body)) else {
                BlockClient.fail("the service answered /v1/blocks with something that is not a list of blocks")
            }
            entries = decoded
        case .answered(let status, let body):
            BlockClient.fail("the service refused (HTTP \(status)): \(String(decoding: body, as: UTF8.self))")
        case .unreachable(let why):
            let (snapshot, _) = try BlockClient.stoppedServiceState(configuration, why: why)
            entries = BlockEntry.list(snapshot, policy: configuration.abusePolicy, now: SystemClock().now())
            FileHandle.standardError.write(Data("(the service is stopped: read from its state file)\n".utf8))
        }
        if configuration[Settings.json] {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
        } else {
            print(BlockEntry.table(entries))
        }
    }
}

struct BlocksUnblockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unblock", abstract: "Lift one source's block (its fingerprint) or every block (--all).",
        usage: "plex-livetv-authz blocks unblock sha256:0123456789abcdef | --all",
        discussion: SettingsHelp.options(Settings.blocks))

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var arguments: [String] = []

    func run() async throws {
        let loaded = try CommandSettings.load(arguments, settings: Settings.blocks, positionals: 1)
        let configuration = loaded.configuration
        let source = loaded.positionals.first
        switch (source, configuration[Settings.all]) {
        case (nil, false), (.some, true):
            CommandSettings.report([
                ConfigurationProblem(setting: "blocks unblock", message: "give one source fingerprint or --all")
            ])
            throw ExitCode(2)
        case (let source?, false) where !BlockAdministration.isFingerprint(source):
            CommandSettings.report([
                ConfigurationProblem(
                    setting: source,
                    message:
                        "not a source fingerprint (sha256: and 16 hex digits; `plex-livetv-authz fingerprint ADDRESS` prints one)"
                )
            ])
            throw ExitCode(2)
        default: break
        }
        let query = source.map { "source=\($0)" } ?? "all=1"
        switch await BlockClient(configuration).send(.POST, "/v1/blocks/unblock?\(query)") {
        case .answered(200, let body):
            print(String(decoding: body, as: UTF8.self), terminator: "")
        case .answered(let status, let body):
            BlockClient.fail("the service refused (HTTP \(status)): \(String(decoding: body, as: UTF8.self))")
        case .unreachable(let why):
            var (snapshot, file) = try BlockClient.stoppedServiceState(configuration, why: why)
            let count: Int
            if let source {
                count = snapshot.sources.removeValue(forKey: source) != nil ? 1 : 0
            } else {
                count = snapshot.sources.count
                snapshot.sources = [:]
            }
            do {
                try file.write(snapshot)
            } catch {
                BlockClient.fail("cannot write \(file.path): \(error)")
            }
            AuditLog(sink: StandardErrorAuditSink(), since: SystemClock().now()).recordOperator(
                action: "operator_unblock", source: source ?? "all", count: count)
            print("unblocked \(count) (in the stopped service's state file \(file.path))")
        }
    }
}

/// `fingerprint ADDRESS`: the `sha256:` fingerprint the service gives this address (audit lines, blocks).
struct FingerprintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fingerprint",
        abstract: "Print the source fingerprint of an address, as audit lines and `blocks list` show it.",
        discussion: """
            The service never stores or logs client addresses, only these fingerprints; this finds the one of \
            an address you know (IPv4-mapped IPv6 is reduced to IPv4, as the service does).
            """)

    @Argument(help: "A client address, e.g. 203.0.113.7 or 2001:db8::7.")
    var address: String

    func run() {
        print(SourceIdentity(address: address, forwardedForCount: 0, cfConnectingIP: false).fingerprint)
    }
}

/// The `blocks` commands' way to the running service.
struct BlockClient {
    enum Outcome {
        case answered(Int, [UInt8])
        case unreachable(String)
    }

    let configuration: Configuration

    init(_ configuration: Configuration) { self.configuration = configuration }

    func send(_ method: HTTPMethod, _ target: String) async -> Outcome {
        let url: String
        switch configuration[Settings.service] {
        case .unix(let path):
            let host = path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? path
            url = "http+unix://\(host)\(target)"
        case .tcp(let host, let port):
            url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(target)"
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let key = configuration.frontendKey { request.headers.add(name: "X-Plexauthz-Key", value: key.headerValue) }
        let client = PMSHTTPClient.make(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let outcome: Outcome
        do {
            let response = try await client.execute(request, timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 16 << 20)
            outcome = .answered(Int(response.status.code), Array(buffer: body))
        } catch {
            outcome = .unreachable("\(configuration[Settings.service]) does not answer (\(error))")
        }
        try? await client.shutdown()
        return outcome
    }

    /// The state file of a service that is not running (its lock is free); exits with the reason otherwise.
    static func stoppedServiceState(_ configuration: Configuration, why: String) throws -> (
        GuardSnapshot, AbuseStateFile
    ) {
        guard let path = configuration[Settings.abuseStateFile] else {
            fail("\(why), and no --abuse-state-file / IPTV_TUNERR_PROXY_ABUSE_STATE_FILE names its state file")
        }
        let lock: StateFileLock
        do {
            lock = try StateFileLock(stateFile: path)
        } catch {
            fail("\(why), but \(error): use --service with one of its --listen addresses")
        }
        let file = AbuseStateFile(path: path)
        let snapshot = withExtendedLifetime(lock) {
            file.load(
                policy: configuration.abusePolicy, now: SystemClock().now(),
                logger: Logger(label: "blocks") { _ in PlainLogHandler(level: .warning) })
        }
        return (snapshot, file)
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("blocks: \(message)\n".utf8))
        Foundation.exit(1)
    }
}
