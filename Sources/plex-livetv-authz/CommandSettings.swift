import ArgumentParser
import Foundation
import LiveTVAuthz
import Logging

/// Loads a command's settings from its arguments and the environment, the way every command does it:
/// all problems at once on standard error, each naming its flag and variables, exit status 2.
enum CommandSettings {
    static func load(
        _ arguments: [String], settings: [any AnySetting], positionals allowed: Int = 0,
        check: (Configuration) -> [ConfigurationProblem] = { _ in [] }
    ) throws -> ConfigurationLoader.Loaded {
        let loaded = ConfigurationLoader.load(
            arguments: arguments, environment: ProcessInfo.processInfo.environment, settings: settings
        ) { configuration in check(configuration) }
        switch loaded {
        case .failure(let problems):
            report(problems.list)
            throw ExitCode(2)
        case .success(let loaded):
            guard loaded.positionals.count <= allowed else {
                report([
                    ConfigurationProblem(
                        setting: loaded.positionals[allowed], message: "unexpected argument (options start with --)")
                ])
                throw ExitCode(2)
            }
            return loaded
        }
    }

    static func report(_ problems: [ConfigurationProblem]) {
        for problem in problems {
            FileHandle.standardError.write(Data("configuration error: \(problem)\n".utf8))
        }
    }

    /// The operational logger: plain lines on standard error at the configured level.
    static func bootstrapLogging(_ configuration: Configuration) -> Logger {
        let level = configuration[Settings.logLevel]
        let format = configuration[Settings.logFormat]
        LoggingSystem.bootstrap { _ in PlainLogHandler(level: level, format: format) }
        return Logger(label: "plex-livetv-authz")
    }
}
