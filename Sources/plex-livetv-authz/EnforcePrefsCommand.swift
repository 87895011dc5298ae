import ArgumentParser
import AsyncHTTPClient
import Foundation
import LiveTVAuthz
import NIOPosix

/// `enforce-prefs`: puts back the PMS preferences that keep clients on the frontend.
struct EnforcePrefsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enforce-prefs",
        abstract: "Keep Plex's Relay off and its advertised connection on your frontend (run it from a timer).",
        usage: "plex-livetv-authz enforce-prefs --public-url https://media.example.com:443 [--dry-run]",
        discussion: """
            Reads GET /:/prefs as the owner and compares RelayEnabled=0, ManualPortMappingMode=1, \
            ManualPortMappingPort (the public URL's port) and customConnections (the public URL, port written \
            out). What drifted is put back with one PUT /:/prefs, then read back. Plex resets Relay and port \
            mapping on upgrades, which re-opens the ways around the frontend; systemd/plex-prefs-enforce.timer \
            runs this every 5 minutes.

            PMS URL and owner token come exactly as for serve (--pms-url, --owner-token-file or the owner-token \
            variables); the token travels in a header, never in a URL, and is never printed.

            Prints each change ("RelayEnabled: "1" -> "0"") or "no drift". Exit status: 0 when PMS matches \
            (or --dry-run), 1 when PMS is unreachable, refuses, or reads back something else, 2 on a \
            configuration error.

            \(SettingsHelp.options(Settings.enforcePrefs))
            """)

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var arguments: [String] = []

    func run() async throws {
        let configuration = try CommandSettings.load(arguments, settings: Settings.enforcePrefs) { configuration in
            var problems = configuration.requireOwnerToken()
            if !configuration.isGiven(Settings.publicURL) {
                problems.append(
                    ConfigurationProblem(
                        setting: Settings.publicURL.names,
                        message: "required: the URL clients use, e.g. https://media.example.com:443"))
            }
            return problems
        }.configuration
        let client = PMSHTTPClient.make(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        var enforcer = PreferenceEnforcer(
            pms: configuration[Settings.pmsURL], ownerToken: configuration.ownerToken!,
            timeout: configuration[Settings.validationTimeout], client: client)
        enforcer.progress = { step in FileHandle.standardError.write(Data("enforce-prefs: \(step)\n".utf8)) }
        let dryRun = configuration[Settings.dryRun]
        let result: Result<PreferenceReport, PreferenceError>
        do {
            result = .success(
                try await enforcer.enforce(
                    PreferencePolicy(publicURL: configuration[Settings.publicURL]!), dryRun: dryRun))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        switch result {
        case .failure(let error):
            FileHandle.standardError.write(Data("enforce-prefs: \(error)\n".utf8))
            throw ExitCode(1)
        case .success(let report):
            guard !report.drift.isEmpty else {
                print("no drift: \(configuration[Settings.pmsURL]) has every preference as wanted")
                return
            }
            for drift in report.drift { print((dryRun ? "would change " : "changed ") + drift.description) }
            guard report.remaining.isEmpty else {
                for drift in report.remaining {
                    FileHandle.standardError.write(Data("enforce-prefs: PMS did not keep \(drift)\n".utf8))
                }
                throw ExitCode(1)
            }
        }
    }
}
