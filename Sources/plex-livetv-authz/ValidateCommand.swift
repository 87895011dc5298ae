import ArgumentParser
import AsyncHTTPClient
import Foundation
import LiveTVAuthz
import NIOPosix

/// `validate`: the runbook's deployment check, against the frontend as clients reach it.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a deployment through its frontend: fake tokens get nothing, a shared user gets Live TV.",
        usage: "plex-livetv-authz validate --frontend-url https://media.example.com [--user-token-file FILE]",
        discussion: """
            Through the frontend: /identity answers; a made-up token (in the header and in the query) gets \
            neither /library/sections nor Live TV; no token gets no Live TV. With --user-token-file (a shared \
            user who is NOT in Plex Home): /livetv/dvrs answers, /media/providers lists Live TV, and \
            /library/sections is exactly what PMS (--pms-url, run this on the Plex host) shows that user \
            directly, so only Live TV borrowed the owner's token. With --direct-pms-url: PMS's own port does \
            not answer from where you run this (run it from outside for that check).

            It makes three Live TV attempts with bad tokens, under the abuse blocker's default threshold of \
            five; a second run within the abuse window blocks the address it runs from for bad and missing \
            tokens (valid tokens keep working; the checks still pass, with 429). No token is ever printed.

            Prints one line per check (PASS, FAIL, SKIP, NOTE) and the counts; exit status 1 when any check \
            fails, 2 on a configuration error.

            \(SettingsHelp.options(Settings.validate))
            """)

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var arguments: [String] = []

    func run() async throws {
        let configuration = try CommandSettings.load(arguments, settings: Settings.validate) { configuration in
            !configuration.isGiven(Settings.frontendURL)
                ? [
                    ConfigurationProblem(
                        setting: Settings.frontendURL.names,
                        message: "required: the frontend as clients reach it, e.g. https://media.example.com")
                ] : []
        }.configuration
        let client = PMSHTTPClient.make(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        FileHandle.standardError.write(
            Data(
                "validating \(configuration[Settings.frontendURL]!) (each check as it finishes; the table follows)\n"
                    .utf8))
        var validator = DeploymentValidator(
            frontend: configuration[Settings.frontendURL]!, userToken: configuration[Settings.userTokenFile],
            pms: configuration[Settings.pmsURL], directPMS: configuration[Settings.directPMSURL],
            timeout: configuration[Settings.validationTimeout], client: client)
        validator.progress = { check in
            FileHandle.standardError.write(Data("  \(check.result.rawValue)  \(check.name)\n".utf8))
        }
        let checks = await validator.run()
        try? await client.shutdown()
        print(checks.table)
        if checks.contains(where: { $0.result == .fail }) { throw ExitCode(1) }
    }
}
