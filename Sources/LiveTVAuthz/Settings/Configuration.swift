import LiveTVAuthzCore

/// The values of the settings, read through their declarations: `configuration[Settings.cacheSize]`.
/// A setting not given has its declared default; nothing else holds defaults.
public struct Configuration: Sendable {
    /// Each given value, boxed so that an optional setting set to `nil` (a disabled duration) is kept as
    /// a value and not taken for "not given".
    private var values: [String: Stored] = [:]

    private struct Stored: Sendable {
        let value: any Sendable
    }
    /// Where each given setting came from: `--flag` or the variable's name (for messages).
    public private(set) var sources: [String: String] = [:]

    /// Every setting at its default.
    public init() {}

    public subscript<Value>(_ setting: Setting<Value>) -> Value {
        guard let stored = values[setting.name] else { return setting.defaultValue }
        return stored.value as! Value
    }

    /// Sets a value (the loader, and tests that build a configuration by hand).
    public mutating func set<Value>(_ setting: Setting<Value>, _ value: Value) {
        values[setting.name] = Stored(value: value)
    }

    /// Whether the setting was given (flag or environment) rather than defaulted.
    public func isGiven(_ setting: some AnySetting) -> Bool { sources[setting.name] != nil }

    mutating func recordSource(_ setting: some AnySetting, _ source: String) {
        sources[setting.name] = source
    }
}

/// A problem with one setting, naming its flag and environment variables.
public struct ConfigurationProblem: Error, CustomStringConvertible, Equatable, Sendable {
    /// `--flag / VARIABLE`, as `AnySetting.names` writes it.
    public let setting: String
    public let message: String
    public var description: String { "\(setting): \(message)" }

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public init(_ setting: some AnySetting, _ message: String) {
        self.init(setting: setting.names, message: message)
    }
}

/// Every problem found, in the order of the settings.
public struct ConfigurationProblems: Error, CustomStringConvertible, Sendable {
    public let list: [ConfigurationProblem]
    public var description: String { list.map(\.description).joined(separator: "\n") }

    public init(list: [ConfigurationProblem]) { self.list = list }
}

/// Reads a command's settings from its arguments, then the environment, then the declared defaults, and
/// collects every problem before anything starts.
public enum ConfigurationLoader {
    /// The loaded configuration and the arguments that are not options (a command's positionals).
    public struct Loaded: Sendable {
        public var configuration: Configuration
        public var positionals: [String]
    }

    /// `check` adds the cross-setting problems (it sees defaults in place of settings that failed), so
    /// one run reports everything.
    public static func load(
        arguments: [String], environment: [String: String], settings: [any AnySetting],
        check: (Configuration) -> [ConfigurationProblem] = { _ in [] }
    ) -> Result<Loaded, ConfigurationProblems> {
        var problems: [ConfigurationProblem] = []
        var given: [String: [String]] = [:]
        var positionals: [String] = []
        let byName = Dictionary(settings.filter(\.hasFlag).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                positionals += arguments[index...]
                break
            }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                positionals.append(argument)
                continue
            }
            let body = argument.dropFirst(2)
            let name = String(body.prefix { $0 != "=" })
            let inline = body.firstIndex(of: "=").map { String(body[body.index(after: $0)...]) }
            guard let setting = byName[name] else {
                let hint = closest(name, among: Array(byName.keys)).map { " (did you mean --\($0)?)" } ?? ""
                problems.append(ConfigurationProblem(setting: "--\(name)", message: "unknown option\(hint)"))
                continue
            }
            let value: String
            switch setting.arity {
            case .toggle:
                value = inline ?? "true"
            case .value, .list:
                if let inline {
                    value = inline
                } else if index < arguments.count {
                    // Taken unconditionally: Go durations may be negative (`-1s`), never a flag.
                    value = arguments[index]
                    index += 1
                } else {
                    problems.append(ConfigurationProblem(setting, "needs a value"))
                    continue
                }
            }
            if case .list = setting.arity {
                given[setting.name, default: []].append(value)
            } else if given[setting.name] != nil {
                problems.append(ConfigurationProblem(setting, "given more than once"))
            } else {
                given[setting.name] = [value]
            }
        }

        var configuration = Configuration()
        for setting in settings {
            var texts: [String]
            var source: String
            if let fromFlags = given[setting.name] {
                texts = fromFlags
                source = "--\(setting.name)"
            } else if let (variable, text) = setting.variables.lazy.compactMap({ variable in
                environment[variable].map { (variable, $0.trimmingASCIIWhitespace()) }
            }).first(where: { !$0.1.isEmpty }) {
                texts = [text]
                source = variable
                if case .list = setting.arity {
                    texts = text.split(separator: ",").map { $0.trimmingASCIIWhitespace() }.filter { !$0.isEmpty }
                }
            } else {
                continue
            }
            configuration.recordSource(setting, source)
            for problem in setting.apply(texts, to: &configuration) {
                problems.append(ConfigurationProblem(setting, problem.message))
            }
        }
        problems += check(configuration)
        guard problems.isEmpty else { return .failure(ConfigurationProblems(list: problems)) }
        return .success(Loaded(configuration: configuration, positionals: positionals))
    }

    /// The known option nearest to a mistyped one (edit distance at most 3).
    static func closest(_ name: String, among names: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var previous = Array(0...b.count)
            for (i, x) in a.enumerated() {
                var current = [i + 1]
                for (j, y) in b.enumerated() {
                    current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
                }
                previous = current
            }
            return previous[b.count]
        }
        let scored = names.map { ($0, distance(Array(name), Array($0))) }.filter { $0.1 <= 3 }
        return scored.min { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }?.0
    }
}

extension StringProtocol {
    func trimmingASCIIWhitespace() -> String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, first == " " || first == "\t" || first == "\n" || first == "\r" {
            scalars = scalars.dropFirst()
        }
        while let last = scalars.last, last == " " || last == "\t" || last == "\n" || last == "\r" {
            scalars = scalars.dropLast()
        }
        return String(String.UnicodeScalarView(scalars))
    }
}
