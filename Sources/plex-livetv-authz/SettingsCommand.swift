import ArgumentParser
import LiveTVAuthz

/// `settings --markdown`: writes `docs/configuration.md` from the settings table (`make docs`).
struct SettingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Print every setting of every command (flag, variables, default, meaning).",
        shouldDisplay: true)

    @Flag(help: "Markdown, as docs/configuration.md holds it.")
    var markdown = false

    func run() {
        if markdown {
            print(SettingsHelp.markdown(commands: SettingsHelp.documentedCommands), terminator: "")
        } else {
            for (name, settings) in SettingsHelp.documentedCommands {
                print("\(name):\n\(SettingsHelp.options(settings))\n")
            }
        }
    }
}
