/// `--help` text and `docs/configuration.md`, both rendered from the settings table.
public enum SettingsHelp {
    /// The options section of a command's `--help`, grouped as the table groups them.
    public static func options(_ settings: [any AnySetting], width: Int = 78) -> String {
        var lines: [String] = []
        for group in SettingGroup.allCases {
            let members = settings.filter { $0.group == group }
            guard !members.isEmpty else { continue }
            if !lines.isEmpty { lines.append("") }
            lines.append("\(group.rawValue):")
            for setting in members {
                lines.append("  " + usage(setting))
                let environment = setting.variables.isEmpty ? "" : "env \(setting.variables.joined(separator: ", "))"
                let facts = [environment, "default \(setting.defaultText)"].filter { !$0.isEmpty }.joined(
                    separator: "; ")
                for line in wrap(setting.help + " [\(facts)]", width: width - 6) { lines.append("      " + line) }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// `--name VALUE`, `--name VALUE (repeatable)`, `--name`, or `(environment only)`.
    static func usage(_ setting: any AnySetting) -> String {
        guard setting.hasFlag else { return "(environment only: \(setting.variables.joined(separator: ", ")))" }
        switch setting.arity {
        case .value(let metavar): return "--\(setting.name) \(metavar)"
        case .list(let metavar): return "--\(setting.name) \(metavar) (repeatable)"
        case .toggle: return "--\(setting.name)"
        }
    }

    /// The commands whose settings `docs/configuration.md` lists, in order (a setting appears under the
    /// first command that takes it).
    public static let documentedCommands: [(name: String, settings: [any AnySetting])] = [
        ("serve", Settings.serve),
        ("enforce-prefs", Settings.enforcePrefs),
        ("validate", Settings.validate),
        ("blocks", Settings.blocks),
    ]

    /// `docs/configuration.md`: every setting of every command, with flag, variables and default.
    public static func markdown(commands: [(name: String, settings: [any AnySetting])]) -> String {
        var text = """
            # Configuration

            <!-- Generated from the settings table (Sources/LiveTVAuthz/Settings/Settings.swift) by
                 `plex-livetv-authz settings --markdown`; a test fails when this file is stale. Edit the
                 table, then run `make docs`. -->

            Every setting can be given as a flag or as an environment variable; a flag wins over its variable,
            and where several variables are listed the first one set wins. The original proxy's variable names
            (`IPTV_TUNERR_…`) are kept. Durations are Go durations (`30s`, `5m`, `1h30m`); zero or unset means
            the default. All problems are reported together, each naming its flag and variables, and the exit
            status is then 2. Secrets never go on the command line: they come from 0600 files or from the
            environment.

            """
        var seen = Set<String>()
        for (command, settings) in commands {
            let shared = settings.filter { seen.contains($0.name) }
            let fresh = settings.filter { seen.insert($0.name).inserted }
            guard !fresh.isEmpty else { continue }
            text += "\n## `\(command)`\n"
            if !shared.isEmpty {
                let names = shared.map { $0.hasFlag ? "`--\($0.name)`" : "`\($0.variables.first ?? $0.name)`" }
                text += "\nAlso takes, as above: \(names.joined(separator: ", ")).\n"
            }
            for group in SettingGroup.allCases {
                let members = fresh.filter { $0.group == group }
                guard !members.isEmpty else { continue }
                text += "\n### \(group.rawValue)\n\n| flag | environment | default | meaning |\n|---|---|---|---|\n"
                for setting in members {
                    let flag = setting.hasFlag ? "`\(usage(setting))`" : "—"
                    let variables = setting.variables.map { "`\($0)`" }.joined(separator: ", ")
                    let cells = [flag, variables.isEmpty ? "—" : variables, setting.defaultText, setting.help]
                    text +=
                        "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ")
                        + " |\n"
                }
            }
        }
        return text
    }

    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty, current.count + 1 + word.count > width {
                lines.append(current)
                current = ""
            }
            current += current.isEmpty ? String(word) : " " + word
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}
