/// One named value taken from a query, a form body or a JSON body, ready for evidence checks.
struct EvidenceField {
    /// The decoded name (percent-decoded once, or the JSON key).
    var name: ArraySlice<UInt8>
    /// The decoded value; `nil` for a JSON value that is not a string (fine print 8: no elevation).
    var value: ArraySlice<UInt8>?
}

/// Reads the fields of a request body the rules allow to count as evidence.
enum BodyFields {
    /// The fields of a seen body, `[]` for a body type that never counts, `nil` for a body that claims
    /// to be JSON but is not a valid JSON object (no elevation: we cannot know what PMS would read).
    static func fields(of bytes: [UInt8], contentType: String?) -> [EvidenceField]? {
        let mediaType = Array((contentType ?? "").utf8).prefix { $0 != 0x3B }.trimmedBytes()
        if mediaType.equalsLowercased(Array("application/x-www-form-urlencoded".utf8)) {
            let form = FormEncodedFields(bytes: bytes, from: 0)
            return form.components.map { EvidenceField(name: form.decodedName($0), value: form.decodedValue($0)) }
        }
        if mediaType.equalsLowercased(Array("application/json".utf8)) {
            return JSONObjectFields.parse(bytes)
        }
        return []
    }
}

/// A small, strict reader for the top level of a JSON object: string values are decoded, every other
/// value is skipped (and reported as "not a string"). Nested values are never inspected (fine print 8).
/// Iterative, so hostile nesting cannot exhaust the stack.
enum JSONObjectFields {
    static func parse(_ bytes: [UInt8]) -> [EvidenceField]? {
        var reader = Reader(bytes: bytes)
        reader.skipWhitespace()
        guard reader.consume(0x7B) else { return nil }
        var fields: [EvidenceField] = []
        reader.skipWhitespace()
        if reader.consume(0x7D) {
            reader.skipWhitespace()
            return reader.atEnd ? fields : nil
        }
        while true {
            reader.skipWhitespace()
            guard let key = reader.string() else { return nil }
            reader.skipWhitespace()
            guard reader.consume(0x3A) else { return nil }
            reader.skipWhitespace()
            if reader.peek == 0x22 {
                guard let value = reader.string() else { return nil }
                fields.append(EvidenceField(name: key[...], value: value[...]))
            } else {
                guard reader.skipValue() else { return nil }
                fields.append(EvidenceField(name: key[...], value: nil))
            }
            reader.skipWhitespace()
            if reader.consume(0x2C) { continue }
            guard reader.consume(0x7D) else { return nil }
            reader.skipWhitespace()
            return reader.atEnd ? fields : nil
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index >= bytes.count }
        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            index += 1
            return true
        }

        mutating func skipWhitespace() {
            while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        /// A JSON string starting at `index`, decoded to UTF-8.
        mutating func string() -> [UInt8]? {
            StrictJSON.decodeString(bytes, at: &index)
        }

        /// Skips one non-string value (number, literal, array or object) with a depth counter.
        mutating func skipValue() -> Bool {
            var depth = 0
            repeat {
                skipWhitespace()
                guard let byte = peek else { return false }
                switch byte {
                case 0x22:
                    guard string() != nil else { return false }
                case 0x7B, 0x5B:
                    depth += 1
                    index += 1
                case 0x7D, 0x5D:
                    guard depth > 0 else { return false }
                    depth -= 1
                    index += 1
                case 0x2C, 0x3A:
                    guard depth > 0 else { return false }
                    index += 1
                default:
                    let start = index
                    while let next = peek,
                        !(next == 0x2C || next == 0x7D || next == 0x5D || next == 0x3A
                            || next == 0x20 || next == 0x09 || next == 0x0A || next == 0x0D || next == 0x22)
                    {
                        index += 1
                    }
                    guard isScalarLiteral(bytes[start..<index]) else { return false }
                }
            } while depth > 0
            return true
        }

        private func isScalarLiteral(_ token: ArraySlice<UInt8>) -> Bool {
            if token.elementsEqual("true".utf8) || token.elementsEqual("false".utf8) || token.elementsEqual("null".utf8)
            {
                return true
            }
            // A lenient number check: digits, sign, dot, exponent.
            return !token.isEmpty
                && token.allSatisfy {
                    ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2B || $0 == 0x2E || $0 == 0x65 || $0 == 0x45
                }
        }
    }
}
