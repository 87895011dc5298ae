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

    static func appendString(_ value: String, to output: inout String) {
        output += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    public static func error(_ message: String) -> String {
        var line = JSONLine()
        line.field("error", message)
        return line.finished()
    }
}
