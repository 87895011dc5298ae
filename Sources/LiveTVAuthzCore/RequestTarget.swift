/// One `name=value` component of a query string or form body, as byte offsets into its source.
public struct FormComponent: Sendable, Hashable {
    /// Offset of the first name byte.
    public let start: Int
    /// Offset one past the last name byte (the `=` when there is one).
    public let nameEnd: Int
    /// Offset one past the last value byte.
    public let end: Int

    /// Whether the component has an `=`.
    public var hasValue: Bool { nameEnd < end }
    /// Offsets of the value bytes (empty when there is no `=`).
    public var valueRange: Range<Int> { hasValue ? (nameEnd + 1)..<end : end..<end }
}

/// A list of `name=value` pairs separated by `&`, kept as offsets so nothing is copied or re-encoded.
public struct FormEncodedFields: Sendable, Hashable {
    public let bytes: [UInt8]
    public let components: [FormComponent]

    /// Splits `bytes[base...]` on `&`. Empty components (`&&`) are skipped.
    public init(bytes: [UInt8], from base: Int) {
        self.bytes = bytes
        self.components = bytes.withUnsafeBufferPointer { buffer in
            var components: [FormComponent] = []
            guard base < buffer.count else { return components }
            // One pass: Plex Web queries carry about 15-25 parameters; growing past that is rare.
            components.reserveCapacity(32)
            var start = base
            var equals = -1
            for index in base...buffer.count {
                if index == buffer.count || buffer[index] == 0x26 {
                    if index > start {
                        components.append(FormComponent(start: start, nameEnd: equals < 0 ? index : equals, end: index))
                    }
                    start = index + 1
                    equals = -1
                } else if equals < 0, buffer[index] == 0x3D {
                    equals = index
                }
            }
            return components
        }
    }

    /// The raw (still encoded) name bytes.
    public func rawName(_ component: FormComponent) -> ArraySlice<UInt8> {
        bytes[component.start..<component.nameEnd]
    }

    /// The raw (still encoded) value bytes.
    public func rawValue(_ component: FormComponent) -> ArraySlice<UInt8> {
        bytes[component.valueRange]
    }

    /// The name percent-decoded once without `+` → space; a name with a malformed escape stays raw
    /// (fine print 7).
    public func decodedName(_ component: FormComponent) -> ArraySlice<UInt8> {
        let raw = rawName(component)
        guard raw.contains(0x25), let decoded = PercentDecoding.decodeOnce(raw, style: .path) else { return raw }
        return decoded[...]
    }

    /// The value after one form-decoding step (`+` → space); a value with a malformed escape stays raw
    /// and is judged (and refused) by the reference rules.
    public func decodedValue(_ component: FormComponent) -> ArraySlice<UInt8> {
        let raw = rawValue(component)
        guard PercentDecoding.mayChange(raw, style: .form),
            let decoded = PercentDecoding.decodeOnce(raw, style: .form)
        else { return raw }
        return decoded[...]
    }

    /// Whether the decoded name equals `lowercasedName` ASCII case-insensitively.
    public func nameEquals(_ component: FormComponent, _ lowercasedName: [UInt8]) -> Bool {
        let raw = rawName(component)
        if !raw.contains(0x25) { return raw.equalsLowercased(lowercasedName) }
        return decodedName(component).equalsLowercased(lowercasedName)
    }
}

/// The raw request-target split once into path and query, with no normalisation at all. The target is
/// bytes (elevation-rules §6): a byte that is not valid UTF-8 is kept as it is, never replaced.
public struct RequestTarget: Sendable, Hashable, CustomStringConvertible {
    /// The target's bytes exactly as received.
    public let bytes: [UInt8]
    /// Offset of the first `?`, or `bytes.count` when there is no query.
    public let pathEnd: Int
    /// The query's components (empty when there is no query).
    public let query: FormEncodedFields
    /// The original text when the target came as a string with nothing to escape (then `wire` costs
    /// nothing); `nil` otherwise.
    private let text: String?

    public init(_ target: String) {
        self.init(bytes: Array(target.utf8), text: target)
    }

    public init(bytes: [UInt8]) {
        self.init(bytes: bytes, text: nil)
    }

    private init(bytes: [UInt8], text: String?) {
        self.bytes = bytes
        let pathEnd = bytes.firstIndex(of: 0x3F) ?? bytes.count
        self.pathEnd = pathEnd
        self.query = FormEncodedFields(bytes: bytes, from: min(pathEnd + 1, bytes.count))
        self.text = text.flatMap { PercentEscaping.hasHeaderUnsafe(bytes) ? nil : $0 }
    }

    /// The target as it travels in a header value: every byte outside the header-safe set percent-escaped
    /// (`%FF`), so no byte is ever replaced by another character. Built on demand (an elevated decision
    /// never needs the original's).
    public var wire: String { text ?? PercentEscaping.headerSafe(bytes) }

    /// The path bytes (before the first `?`).
    public var path: ArraySlice<UInt8> { bytes[0..<pathEnd] }

    /// Whether the target has a `?` at all.
    public var hasQuery: Bool { pathEnd < bytes.count }

    public var description: String { wire }

    public static func == (lhs: RequestTarget, rhs: RequestTarget) -> Bool { lhs.bytes == rhs.bytes }
    public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
}
