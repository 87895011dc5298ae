/// Why a path was judged unsafe (rule `unsafe-path`, elevation-rules §2).
public enum UnsafePathReason: Sendable, Hashable, CustomStringConvertible {
    /// The target does not start with `/` (asterisk-, absolute- or authority-form, or empty).
    case notOriginForm
    /// A `.` or `..` segment, found after `depth` decoding rounds.
    case dotSegment(depth: Int)
    /// `//` somewhere in the path.
    case emptySegment(depth: Int)
    /// A raw backslash.
    case backslash(depth: Int)
    /// An encoded `/` or `\` (`%2f`, `%5c`).
    case encodedSeparator(depth: Int)
    /// A NUL, control byte, space or non-ASCII byte.
    case forbiddenByte(depth: Int)
    /// A `%` not followed by two hex digits.
    case malformedEscape(depth: Int)

    public var description: String {
        switch self {
        case .notOriginForm: return "target is not origin-form (must start with /)"
        case .dotSegment(let depth): return "dot-segment in path\(Self.at(depth))"
        case .emptySegment(let depth): return "empty segment (//) in path\(Self.at(depth))"
        case .backslash(let depth): return "backslash in path\(Self.at(depth))"
        case .encodedSeparator(let depth): return "encoded / or \\ in path\(Self.at(depth))"
        case .forbiddenByte(let depth): return "control, space or non-ASCII byte in path\(Self.at(depth))"
        case .malformedEscape(let depth): return "malformed percent escape in path\(Self.at(depth))"
        }
    }

    private static func at(_ depth: Int) -> String {
        depth == 0 ? "" : " after \(depth) decoding round\(depth == 1 ? "" : "s")"
    }
}

/// Elevation-rules §2 [hardened]: a path PMS might normalise into something else is never elevated.
///
/// Plex receives exactly the target we classified, so the only way to get an owner token onto a
/// non-Live-TV endpoint is a path that *reads* as Live TV here but *resolves* elsewhere at PMS (dot
/// segments, encoded separators, decoding differences). Such paths are refused at every decoding depth.
public enum PathSafety {
    /// `nil` when the path is safe, else the first reason found. Decodes (percent, `+` kept) until the
    /// path stops changing, with no cap, checking every layer.
    public static func check(_ path: some Collection<UInt8>) -> UnsafePathReason? {
        check(slice: Array(path)[...])
    }

    /// The same check on bytes already in an array (no copy unless the path holds escapes).
    public static func check(slice first: ArraySlice<UInt8>) -> UnsafePathReason? {
        guard first.first == 0x2F else { return .notOriginForm }
        // §2: "any depth" is not capped; a malformed escape is itself a reason, found by `checkLayer`.
        for (depth, layer) in PercentDecoding.layers(of: first, style: .path, depth: .untilStable) {
            if let reason = checkLayer(layer, depth: depth) { return reason }
        }
        return nil
    }

    /// The checks of one layer (no decoding).
    static func checkLayer<Bytes: RandomAccessCollection<UInt8>>(_ layer: Bytes, depth: Int) -> UnsafePathReason?
    where Bytes.Index == Int {
        var index = layer.startIndex
        var segmentStart = layer.startIndex
        while index <= layer.endIndex {
            if index == layer.endIndex || layer[index] == 0x2F {
                if index > layer.startIndex, index < layer.endIndex, layer[index - 1] == 0x2F {
                    return .emptySegment(depth: depth)
                }
                if isDotSegment(layer[segmentStart..<index]) { return .dotSegment(depth: depth) }
                segmentStart = index + 1
                index += 1
                continue
            }
            let byte = layer[index]
            if byte == 0x5C { return .backslash(depth: depth) }
            if byte <= 0x20 || byte >= 0x7F { return .forbiddenByte(depth: depth) }
            if byte == 0x25 {
                guard let decoded = PercentDecoding.escapedByte(layer, at: index) else {
                    return .malformedEscape(depth: depth)
                }
                if decoded == 0x2F || decoded == 0x5C { return .encodedSeparator(depth: depth) }
            }
            index += 1
        }
        return nil
    }

    /// `.` and `..`, also with a `;parameter` suffix (`..;x`), which some servers strip before resolving.
    static func isDotSegment<Bytes: Collection<UInt8>>(_ segment: Bytes) -> Bool {
        let name = segment.prefix { $0 != 0x3B }
        return name.count >= 1 && name.count <= 2 && name.allSatisfy { $0 == 0x2E }
    }
}
