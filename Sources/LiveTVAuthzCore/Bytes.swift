// Byte-level helpers shared by the classifier. Everything here works on raw UTF-8 bytes on purpose:
// Foundation's URL types normalise, and the whole point of the core is to judge exactly the bytes Plex
// will receive.

@usableFromInline
enum ASCII {
    @inlinable
    static func lower(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
    }

    @inlinable
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    /// Space, tab, CR, LF, vertical tab and form feed: what "trimmed" means throughout the rules.
    @inlinable
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
    }

    /// C0 controls and DEL.
    @inlinable
    static func isControl(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x7F
    }

    static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)
}

extension Collection where Element == UInt8 {
    /// ASCII case-insensitive equality against an already lower-cased literal.
    @inlinable
    func equalsLowercased(_ lowercased: some Collection<UInt8>) -> Bool {
        guard count == lowercased.count else { return false }
        return zip(self, lowercased).allSatisfy { ASCII.lower($0) == $1 }
    }

    /// ASCII case-insensitive prefix test against an already lower-cased literal.
    @inlinable
    func hasPrefixLowercased(_ lowercased: some Collection<UInt8>) -> Bool {
        guard count >= lowercased.count else { return false }
        return zip(self, lowercased).allSatisfy { ASCII.lower($0) == $1 }
    }

    /// Case-sensitive byte prefix test.
    @inlinable
    func hasBytePrefix(_ prefix: some Collection<UInt8>) -> Bool {
        guard count >= prefix.count else { return false }
        return zip(self, prefix).allSatisfy { $0 == $1 }
    }

    /// ASCII case-insensitive substring search against an already lower-cased needle.
    func containsLowercased(_ needle: [UInt8]) -> Bool {
        let haystack = Array(self)
        guard needle.count <= haystack.count, let first = needle.first else { return needle.isEmpty }
        var index = 0
        while index + needle.count <= haystack.count {
            if ASCII.lower(haystack[index]) == first {
                var matched = true
                for offset in 1..<needle.count where ASCII.lower(haystack[index + offset]) != needle[offset] {
                    matched = false
                    break
                }
                if matched { return true }
            }
            index += 1
        }
        return false
    }
}

extension ArraySlice where Element == UInt8 {
    /// Fast trim for array slices (random access).
    func trimmedBytes() -> ArraySlice<UInt8> {
        var start = startIndex
        var end = endIndex
        while start < end, ASCII.isWhitespace(self[start]) { start += 1 }
        while end > start, ASCII.isWhitespace(self[end - 1]) { end -= 1 }
        return self[start..<end]
    }
}

/// Percent-escaping of chosen bytes: the one encoder behind token rewriting, audit paths and decision headers.
public enum PercentEscaping {
    /// `bytes` with every byte for which `shouldEscape` holds written as `%XX` (upper-case hex).
    public static func escape(_ bytes: some Collection<UInt8>, where shouldEscape: (UInt8) -> Bool) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        for byte in bytes {
            if shouldEscape(byte) {
                output.append(0x25)
                output.append(ASCII.hexDigits[Int(byte >> 4)])
                output.append(ASCII.hexDigits[Int(byte & 0x0F)])
            } else {
                output.append(byte)
            }
        }
        return output
    }

    /// Bytes that may not appear raw in a decision header value (elevation-rules §6, decision contract):
    /// controls, space, DEL, non-ASCII, and `{` `}` (Caddy placeholders).
    @inlinable
    public static func isHeaderUnsafe(_ byte: UInt8) -> Bool {
        byte <= 0x20 || byte >= 0x7F || byte == 0x7B || byte == 0x7D
    }

    /// `bytes` as a header-safe string: everything `isHeaderUnsafe` percent-escaped; `%` and every other
    /// byte kept, because the value is already an encoded request-target.
    public static func headerSafe(_ bytes: some Collection<UInt8>) -> String {
        let array = Array(bytes)
        guard hasHeaderUnsafe(array) else { return String(decoding: array, as: UTF8.self) }
        return String(decoding: escape(array, where: isHeaderUnsafe), as: UTF8.self)
    }

    /// Whether any byte must be escaped for a header (one pass, no closure calls on the hot path).
    public static func hasHeaderUnsafe(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            // Eight bytes at a time with word arithmetic (targets are a few hundred bytes, all scanned):
            // a lane is unsafe when its high bit is set (non-ASCII), when it is below 0x21, or when it is
            // 0x7F, `{` or `}`.
            var index = 0
            if let base = buffer.baseAddress {
                let raw = UnsafeRawPointer(base)
                let ones: UInt64 = 0x0101_0101_0101_0101
                let highs: UInt64 = 0x8080_8080_8080_8080
                @inline(__always) func hasZero(_ x: UInt64) -> Bool { (x &- ones) & ~x & highs != 0 }
                while index + 8 <= buffer.count {
                    let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if word & highs != 0 || (word &- ones &* 0x21) & ~word & highs != 0
                        || hasZero(word ^ (ones &* 0x7F))
                        || hasZero(word ^ (ones &* 0x7B)) || hasZero(word ^ (ones &* 0x7D))
                    {
                        return true
                    }
                    index += 8
                }
            }
            while index < buffer.count {
                if isHeaderUnsafe(buffer[index]) { return true }
                index += 1
            }
            return false
        }
    }

    /// The same for a string; returns it unchanged (no copy) when nothing needs escaping.
    public static func escape(_ text: String, where shouldEscape: (UInt8) -> Bool) -> String {
        guard text.utf8.contains(where: shouldEscape) else { return text }
        return String(decoding: escape(text.utf8, where: shouldEscape), as: UTF8.self)
    }
}

/// Comparisons with secrets (the owner token, the frontend key).
public enum ConstantTime {
    /// Equality whose time depends only on the lengths, not on where the bytes differ.
    public static func equals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        let left = Array(a)
        let right = Array(b)
        var difference = UInt8(truncatingIfNeeded: left.count ^ right.count)
        for index in 0..<max(left.count, right.count) {
            difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0xFF)
        }
        return difference == 0
    }
}
