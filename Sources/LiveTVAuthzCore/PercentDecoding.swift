/// Percent-decoding as the rules define it: one round at a time, and the layers a value passes through
/// when it is decoded again and again. Every rule that looks "at any decoding depth" walks these layers,
/// and each says at its call site how deep it goes (`DecodingDepth`).
@usableFromInline
enum PercentDecoding {
    /// `path` keeps `+`; `form` turns `+` into a space (query and form-body values).
    @usableFromInline
    enum Style: Sendable { case path, form }

    /// Whether a decoding round could change the bytes at all.
    @inlinable
    static func mayChange(_ input: some Collection<UInt8>, style: Style) -> Bool {
        input.contains { $0 == 0x25 || (style == .form && $0 == 0x2B) }
    }

    /// One decoding round. `nil` when the input holds a malformed escape (`%zz`, a lone `%`).
    static func decodeOnce(_ input: some Collection<UInt8>, style: Style) -> [UInt8]? {
        let bytes = Array(input)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x25 {
                guard let decoded = escapedByte(bytes[...], at: index) else { return nil }
                output.append(decoded)
                index += 3
            } else if byte == 0x2B, style == .form {
                output.append(0x20)
                index += 1
            } else {
                output.append(byte)
                index += 1
            }
        }
        return output
    }

    /// The byte that a `%XX` escape starting at `index` stands for; `nil` when there is no well-formed
    /// escape there.
    @inlinable
    static func escapedByte<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, at index: Bytes.Index) -> UInt8?
    where Bytes.Index == Int {
        guard bytes[index] == 0x25, index + 2 < bytes.endIndex, let high = ASCII.hexValue(bytes[index + 1]),
            let low = ASCII.hexValue(bytes[index + 2])
        else { return nil }
        return high << 4 | low
    }

    /// Whether the layer holds a well-formed escape of `/` or `\` (`%2f`, `%5C`, …).
    static func hasEncodedSeparator(_ layer: some RandomAccessCollection<UInt8>) -> Bool {
        let bytes = Array(layer)
        var index = bytes.firstIndex(of: 0x25)
        while let at = index {
            if let decoded = escapedByte(bytes, at: at), decoded == 0x2F || decoded == 0x5C { return true }
            index = bytes[(at + 1)...].firstIndex(of: 0x25)
        }
        return false
    }

    /// The layers of `value`: the value itself (depth 0), then each decoding round's result. The walk
    /// stops when a round would change nothing, when the next round meets a malformed escape, or when
    /// `depth` says so. Layers are yielded lazily, so a caller that finds its answer early decodes no more.
    static func layers(of value: ArraySlice<UInt8>, style: Style, depth: DecodingDepth) -> Layers {
        Layers(first: value, style: style, depth: depth)
    }

    /// The sequence behind `layers(of:style:depth:)`.
    struct Layers: Sequence, IteratorProtocol {
        private var current: ArraySlice<UInt8>?
        private var depth = 0
        private var started = false
        private let style: Style
        private let limit: DecodingDepth

        init(first: ArraySlice<UInt8>, style: Style, depth limit: DecodingDepth) {
            self.current = first
            self.style = style
            self.limit = limit
        }

        /// `(depth, bytes)`: how many rounds produced this layer, and the layer.
        mutating func next() -> (depth: Int, bytes: ArraySlice<UInt8>)? {
            guard let layer = current else { return nil }
            guard started else {
                started = true
                return (0, layer)
            }
            guard limit.allowsRound(after: depth), PercentDecoding.mayChange(layer, style: style),
                let decoded = PercentDecoding.decodeOnce(layer, style: style), !decoded.elementsEqual(layer)
            else {
                current = nil
                return nil
            }
            depth += 1
            current = decoded[...]
            return (depth, decoded[...])
        }
    }
}

/// How many decoding rounds a rule looks through (elevation-rules §2 and §5).
enum DecodingDepth: Sendable {
    /// Keep decoding while a round changes the value: paths (§2), token-name spellings, guid remainders.
    case untilStable
    /// At most this many rounds after the first look: Live TV references and Referers (§5: four).
    case rounds(Int)

    func allowsRound(after depth: Int) -> Bool {
        switch self {
        case .untilStable: return true
        case .rounds(let limit): return depth < limit
        }
    }
}
