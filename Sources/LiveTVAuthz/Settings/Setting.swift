import LiveTVAuthzCore

/// Where a setting's help and docs entry is filed.
public enum SettingGroup: String, Sendable, CaseIterable {
    case listeners = "Listeners and frontend trust"
    case plex = "Plex Media Server"
    case decisions = "Decisions"
    case abuse = "Abuse blocking and audit"
    case playback = "Live playback"
    case operations = "Connections and operations"
    case state = "Shared state"
    case tools = "Tools"
}

/// How a setting is written on the command line.
public enum SettingArity: Sendable, Hashable {
    /// `--name VALUE` (or `--name=VALUE`), once.
    case value(metavar: String)
    /// `--name VALUE`, repeatable; its environment variable holds a comma-separated list.
    case list(metavar: String)
    /// `--name` alone; the environment variable holds `1`/`true`/`yes` or `0`/`false`/`no`.
    case toggle
}

/// One configurable setting, declared once: its flag, its environment variables (first set wins; the
/// original proxy's names where it had one), its default, its parser, its help text and its docs group.
/// `--help`, the loader, error messages and `docs/configuration.md` are all derived from these.
public struct Setting<Value: Sendable>: Sendable {
    /// The flag without dashes (also the key of its value); a setting with `hasFlag == false` can only
    /// come from the environment (secrets must not show up in process listings).
    public let name: String
    public let hasFlag: Bool
    public let variables: [String]
    public let defaultValue: Value
    /// The default as help and docs print it.
    public let defaultText: String
    public let help: String
    public let group: SettingGroup
    public let arity: SettingArity
    /// Turns the given texts (one per occurrence; a list's comma-separated parts) into a value and/or
    /// problems (a list keeps its good elements beside the bad ones' problems, so later checks still see
    /// them); messages are prefixed with the setting's flag and variables.
    let parse: @Sendable (_ texts: [String]) -> Parsed<Value>

    public init(
        _ name: String, flag: Bool = true, env variables: [String], default defaultValue: Value, defaultText: String,
        arity: SettingArity, group: SettingGroup, help: String,
        parse: @escaping @Sendable ([String]) -> Parsed<Value>
    ) {
        self.name = name
        self.hasFlag = flag
        self.variables = variables
        self.defaultValue = defaultValue
        self.defaultText = defaultText
        self.arity = arity
        self.group = group
        self.help = help
        self.parse = parse
    }
}

/// A parser's complaint, before it is tied to a setting's names.
public struct SettingProblem: Error, Sendable, Hashable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// What a setting's parser made of its texts.
public struct Parsed<Value: Sendable>: Sendable {
    public var value: Value?
    public var problems: [SettingProblem]

    public static func success(_ value: Value) -> Parsed { Parsed(value: value, problems: []) }
    public static func failure(_ problem: SettingProblem) -> Parsed { Parsed(value: nil, problems: [problem]) }
}

/// The type-erased face of a setting, for the parser, the help and the docs.
public protocol AnySetting: Sendable {
    var name: String { get }
    var hasFlag: Bool { get }
    var variables: [String] { get }
    var defaultText: String { get }
    var help: String { get }
    var group: SettingGroup { get }
    var arity: SettingArity { get }
    /// Parses `texts` into `configuration`; the problems found.
    func apply(_ texts: [String], to configuration: inout Configuration) -> [SettingProblem]
}

extension Setting: AnySetting {
    public func apply(_ texts: [String], to configuration: inout Configuration) -> [SettingProblem] {
        let parsed = parse(texts)
        if let value = parsed.value { configuration.set(self, value) }
        return parsed.problems
    }
}

extension AnySetting {
    /// `--name / VARIABLE / OTHER`: how every message names a setting.
    public var names: String {
        ((hasFlag ? ["--\(name)"] : []) + variables).joined(separator: " / ")
    }
}

// MARK: - Typed constructors: each knows how to parse, check and print its kind of value.

extension Setting {
    /// A value parsed by `convert`, which returns `nil` for text it refuses (`expectation` says why).
    public static func value(
        _ name: String, env: [String], default value: Value, defaultText: String, metavar: String,
        group: SettingGroup, help: String, expectation: String, convert: @escaping @Sendable (String) -> Value?
    ) -> Setting {
        Setting(
            name, env: env, default: value, defaultText: defaultText, arity: .value(metavar: metavar), group: group,
            help: help
        ) { texts in
            let text = texts.last ?? ""
            guard let parsed = convert(text) else { return .failure(SettingProblem("\"\(text)\" \(expectation)")) }
            return .success(parsed)
        }
    }
}

extension Setting where Value == Duration {
    /// A Go duration (`30s`, `5m`, `1h30m`); zero means the default; negative is an error.
    public static func duration(
        _ name: String, env: [String], default value: Duration, group: SettingGroup, help: String
    ) -> Setting {
        Setting(
            name, env: env, default: value, defaultText: GoDuration.format(value), arity: .value(metavar: "DURATION"),
            group: group, help: help
        ) { texts in
            switch GoDuration.parseSetting(texts.last ?? "") {
            case .failure(let problem): return .failure(problem)
            case .success(nil): return .success(value)
            case .success(let parsed?) where parsed < .zero:
                return .failure(SettingProblem("must be positive, got \(texts.last ?? "")"))
            case .success(let parsed?): return .success(parsed)
            }
        }
    }
}

extension Setting where Value == Duration? {
    /// A Go duration that a negative value turns off (the original proxy's convention, e.g. `-1s`).
    public static func disablableDuration(
        _ name: String, env: [String], default value: Duration, group: SettingGroup, help: String
    ) -> Setting {
        Setting(
            name, env: env, default: value, defaultText: "\(GoDuration.format(value)) (negative disables)",
            arity: .value(metavar: "DURATION"), group: group, help: help
        ) { texts in
            switch GoDuration.parseSetting(texts.last ?? "") {
            case .failure(let problem): return .failure(problem)
            case .success(nil): return .success(value)
            case .success(let parsed?) where parsed < .zero: return .success(nil)
            case .success(let parsed?): return .success(parsed)
            }
        }
    }
}

extension Setting where Value == Int {
    /// A whole number in `range`; zero means the default (as in the original proxy).
    public static func count(
        _ name: String, env: [String], default value: Int, range: ClosedRange<Int>, group: SettingGroup, help: String
    ) -> Setting {
        Setting(
            name, env: env, default: value, defaultText: String(value), arity: .value(metavar: "N"), group: group,
            help: help
        ) { texts in
            let text = texts.last ?? ""
            guard let parsed = Int(text), parsed == 0 || range.contains(parsed) else {
                return .failure(
                    SettingProblem("\"\(text)\" must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                )
            }
            return .success(parsed == 0 ? value : parsed)
        }
    }
}

extension Setting where Value == Bool {
    /// An on/off switch: `--name` on the command line, `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` in
    /// the environment.
    public static func toggle(_ name: String, env: [String], group: SettingGroup, help: String) -> Setting {
        Setting(name, env: env, default: false, defaultText: "off", arity: .toggle, group: group, help: help) { texts in
            switch (texts.last ?? "").lowercased() {
            case "", "1", "true", "yes", "on": return .success(true)
            case "0", "false", "no", "off": return .success(false)
            case let other: return .failure(SettingProblem("\"\(other)\" must be 1/true/yes/on or 0/false/no/off"))
            }
        }
    }
}

extension Setting where Value == String? {
    /// Free text (a name or a path); `absolutePath` refuses relative paths.
    public static func text(
        _ name: String, flag: Bool = true, env: [String], metavar: String, absolutePath: Bool = false,
        group: SettingGroup, help: String, defaultText: String = "none"
    ) -> Setting {
        Setting(
            name, flag: flag, env: env, default: nil, defaultText: defaultText, arity: .value(metavar: metavar),
            group: group, help: help
        ) { texts in
            let text = texts.last ?? ""
            if absolutePath, !text.hasPrefix("/") {
                return .failure(SettingProblem("\"\(text)\" must be an absolute path"))
            }
            return .success(text)
        }
    }
}

extension Setting {
    /// A repeatable setting whose elements are parsed one by one (environment: comma-separated).
    public static func list<Element: Sendable>(
        _ name: String, env: [String], default value: [Element], defaultText: String, metavar: String,
        group: SettingGroup, help: String, expectation: String, convert: @escaping @Sendable (String) -> Element?
    ) -> Setting<[Element]> where Value == [Element] {
        Setting<[Element]>(
            name, env: env, default: value, defaultText: defaultText, arity: .list(metavar: metavar), group: group,
            help: help
        ) { texts in
            var parsed = Parsed<[Element]>(value: [], problems: [])
            for text in texts {
                if let element = convert(text) {
                    parsed.value!.append(element)
                } else {
                    parsed.problems.append(SettingProblem("\"\(text)\" \(expectation)"))
                }
            }
            return parsed
        }
    }
}

extension GoDuration {
    /// A setting's duration: `nil` for zero (meaning "the default"), a problem for unparsable text.
    static func parseSetting(_ text: String) -> Result<Duration?, SettingProblem> {
        guard let parsed = parse(text) else {
            return .failure(SettingProblem("\"\(text)\" is not a Go duration (examples: 30s, 5m, 1h30m, -1s)"))
        }
        return .success(parsed == .zero ? nil : parsed)
    }
}
