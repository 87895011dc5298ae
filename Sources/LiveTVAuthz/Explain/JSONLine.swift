import LiveTVAuthzCore

/// A tiny JSON writer for one-line answers. Written by hand so the bytes are exactly what the contract
/// says: no spaces, keys in contract order, `/` never escaped.
public struct JSONLine: Sendable {
    public init() {}

    private var output = "{"
    private var first = true

    public mutating func field(_ key: String, _ value: String?) {
        separator(key)
        if let value { Self.appendString(value, to: &output) } else { output += "null" }
    }

    public mutating func field(_ key: String, _ value: Bool) {
        separator(key)
        output += value ? "true" : "false"
    }

    public mutating func field(_ key: String, _ value: Int) {
        separator(key)
        output += String(value)
    }

    public func finished() -> String { output + "}" }

    private mutating func separator(_ key: String) {
        if !first { output += "," }
        first = false
        Self.appendString(key, to: &output)
        output += ":"
    }

    /// The one JSON string escaper (the audit's), so `explain` and `--log-format json` agree byte for byte.
    static func appendString(_ value: String, to output: inout String) {
        output += AuditField.jsonString(value)
    }

    public static func error(_ message: String) -> String {
        var line = JSONLine()
        line.field("error", message)
        return line.finished()
    }
}
