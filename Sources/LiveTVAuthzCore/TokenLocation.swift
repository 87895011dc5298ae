/// Where the inbound token was found.
public enum TokenCarrier: String, Sendable, Hashable {
    case query
    case header
}

/// Elevation-rules §6: where the inbound token is, and what else the request carries that matters for
/// rewriting it.
public struct TokenLocation: Sendable, Hashable {
    /// The inbound token, if the request has a usable one.
    public var token: PlexToken?
    /// Where `token` came from.
    public var carrier: TokenCarrier?
    /// A query parameter that decodes to `x-plex-token` (any case, any encoding depth) but is not
    /// byte-for-byte `X-Plex-Token`: the request is never elevated (rule `token-smuggling`).
    public var smuggledCarrier: Bool
    /// A header token that a `Connection` header names: hop-by-hop, ignored and not forwarded.
    public var hopByHopHeaderToken: Bool
    /// Number of exact `X-Plex-Token` query parameters (all of them are rewritten on elevation).
    public var queryTokenParameters: Int
    /// A non-blank token in the query or header that is not usable (control bytes, inner spaces,
    /// non-ASCII, longer than 4096 bytes): treated as no token at all.
    public var unusableToken: Bool

    static let exactName: [UInt8] = Array("X-Plex-Token".utf8)
    static let lowercasedName: [UInt8] = Array("x-plex-token".utf8)

    /// Reads the token facts of a request.
    public init(target: RequestTarget, headers: [HTTPField]) {
        token = nil
        carrier = nil
        smuggledCarrier = false
        hopByHopHeaderToken = false
        queryTokenParameters = 0
        unusableToken = false
        var queryTokenSeen = false
        let query = target.query
        for component in query.components {
            switch Self.nameKind(query.bytes, component) {
            case .exact:
                queryTokenParameters += 1
                guard !queryTokenSeen else { continue }
                let value = query.decodedValue(component)
                // Whitespace-only values are skipped (but still rewritten on elevation).
                guard value.contains(where: { !ASCII.isWhitespace($0) }) else { continue }
                queryTokenSeen = true
                if let parsed = PlexToken(slice: value) {
                    token = parsed
                    carrier = .query
                } else {
                    unusableToken = true
                }
            case .smuggled:
                smuggledCarrier = true
            case .other:
                break
            }
        }
        let headerToken = headers.first { $0.name.utf8.equalsLowercased(Self.lowercasedName) }
        hopByHopHeaderToken = headerToken != nil && Self.connectionListsToken(headers)
        if !queryTokenSeen, !hopByHopHeaderToken, let headerToken,
            headerToken.value.utf8.contains(where: { !ASCII.isWhitespace($0) })
        {
            if let parsed = PlexToken(headerToken.value) {
                token = parsed
                carrier = .header
            } else {
                unusableToken = true
            }
        }
    }

    enum NameKind { case exact, smuggled, other }

    /// Classifies a query parameter name without copying it: byte-for-byte `X-Plex-Token`, a smuggled
    /// carrier (fine print 7: decoded until it stops changing, then compared case-insensitively), or other.
    static func nameKind(_ bytes: [UInt8], _ component: FormComponent) -> NameKind {
        let length = component.nameEnd - component.start
        // Decoding only shortens a name, so anything shorter than the literal is never a carrier.
        guard length >= 12 else { return .other }
        return bytes.withUnsafeBufferPointer { buffer in
            var hasEscape = false
            for index in component.start..<component.nameEnd where buffer[index] == 0x25 {
                hasEscape = true
                break
            }
            if !hasEscape {
                guard length == 12 else { return .other }
                var exact = true
                for offset in 0..<12 {
                    let byte = buffer[component.start + offset]
                    if byte != exactName[offset] { exact = false }
                    if ASCII.lower(byte) != lowercasedName[offset] { return .other }
                }
                return exact ? .exact : .smuggled
            }
            // Fine print 7: a name is decoded until it stops changing (`X%252DPlex%252DToken` is a carrier).
            let name = Array(buffer[component.start..<component.nameEnd])[...]
            for (_, layer) in PercentDecoding.layers(of: name, style: .path, depth: .untilStable)
            where layer.equalsLowercased(lowercasedName) {
                return .smuggled
            }
            return .other
        }
    }

    /// Whether any `Connection` header lists `X-Plex-Token`.
    static func connectionListsToken(_ headers: [HTTPField]) -> Bool {
        let connection: [UInt8] = Array("connection".utf8)
        for field in headers where field.name.utf8.equalsLowercased(connection) {
            for option in Array(field.value.utf8).split(separator: 0x2C)
            where option.trimmedBytes().equalsLowercased(lowercasedName) {
                return true
            }
        }
        return false
    }
}
