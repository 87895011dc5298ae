/// Elevation-rules §5: deciding whether a parameter value *is* a reference to Live TV content on this
/// server, and whether a Referer is a Live TV page.
///
/// The original proxy matched `/livetv/` anywhere in a value, so `path=/library/metadata/9?x=/livetv/`
/// borrowed the owner token for a library item. Here the value must *be* a Live TV key, path or guid.
public struct LiveTVReferenceMatcher: Sendable, Hashable {
    /// Lower-cased machine identifier of this PMS; `nil` accepts any non-empty id (`explain` without
    /// `--machine-id`).
    public var machineIdentifier: [UInt8]?
    /// Lower-cased authority (`host[:port]`) of the configured PMS URL, if any.
    public var pmsAuthority: [UInt8]?

    /// Decoding rounds after the first look (§5: "up to 4 times").
    public static let maximumDecodingRounds = 4

    public init(machineIdentifier: String? = nil, pmsAuthority: String? = nil) {
        self.machineIdentifier = machineIdentifier.map { Array($0.lowercased().utf8) }
        self.pmsAuthority = pmsAuthority.map { Array($0.lowercased().utf8) }
    }

    static let livetvPath: [UInt8] = Array("/livetv/".utf8)
    static let epgProviderPath: [UInt8] = Array("/tv.plex.providers.epg.xmltv:".utf8)
    static let xmltvGuid: [UInt8] = Array("tv.plex.xmltv:".utf8)
    static let epgProviderGuid: [UInt8] = Array("tv.plex.providers.epg.xmltv:".utf8)
    static let librarySegment: [UInt8] = Array("/com.plexapp.plugins.library".utf8)
    static let serverScheme: [UInt8] = Array("server://".utf8)
    static let httpScheme: [UInt8] = Array("http://".utf8)
    static let httpsScheme: [UInt8] = Array("https://".utf8)
    static let loopbackHosts: [[UInt8]] = ["127.0.0.1", "localhost", "[::1]"].map { Array($0.utf8) }
    static let markers: [[UInt8]] = ["/livetv/", "tv.plex.xmltv:", "tv.plex.providers.epg.xmltv:"].map {
        Array($0.utf8)
    }

    /// Whether `value` (already form-decoded once when it came from a query or form body) is a Live TV
    /// reference. Fine print 1: the first decoding layer that starts with a Live TV prefix decides; later
    /// layers never rescue it.
    public func isReference(_ value: some Collection<UInt8>) -> Bool {
        // §5: the value, then up to four decoding rounds (form style); the first layer that starts with a
        // Live TV prefix decides.
        let layers = PercentDecoding.layers(
            of: Array(value)[...], style: .form, depth: .rounds(Self.maximumDecodingRounds))
        for (_, layer) in layers {
            guard let candidate = stripPrefixes(layer) else { continue }
            switch candidate {
            case .path(let rest): return PathSafety.check(slice: rest.prefix { $0 != 0x3F }) == nil
            case .guid(let afterScheme): return Self.isCleanGuidRemainder(afterScheme)
            }
        }
        return false
    }

    /// The Referer rule (`root-referer`): a case-insensitive search for a Live TV marker in the value and
    /// after each of up to four decoding rounds (no form step first).
    public static func isLiveTVPage(_ referer: some Collection<UInt8>) -> Bool {
        let layers = PercentDecoding.layers(
            of: Array(referer)[...], style: .form, depth: .rounds(maximumDecodingRounds))
        return layers.contains { layer in markers.contains { layer.bytes.containsLowercased($0) } }
    }

    enum Candidate {
        case path(ArraySlice<UInt8>)
        case guid(afterScheme: ArraySlice<UInt8>)
    }

    /// Removes an optional this-server prefix and an optional `/com.plexapp.plugins.library` segment,
    /// then reports whether what is left starts with a Live TV prefix.
    func stripPrefixes(_ value: ArraySlice<UInt8>) -> Candidate? {
        var rest = value
        if rest.hasPrefixLowercased(Self.serverScheme) {
            let afterScheme = rest.dropFirst(Self.serverScheme.count)
            let id = afterScheme.prefix { $0 != 0x2F }
            guard !id.isEmpty else { return nil }
            if let machineIdentifier, !id.equalsLowercased(machineIdentifier) { return nil }
            rest = afterScheme.dropFirst(id.count)
        } else if let schemeLength = httpSchemeLength(rest) {
            let afterScheme = rest.dropFirst(schemeLength)
            let authority = afterScheme.prefix { $0 != 0x2F && $0 != 0x3F && $0 != 0x23 }
            guard isThisServer(authority) else { return nil }
            rest = afterScheme.dropFirst(authority.count)
        }
        if rest.hasBytePrefix(Self.librarySegment) {
            let after = rest.dropFirst(Self.librarySegment.count)
            if after.first == 0x2F { rest = after }
        }
        if rest.hasBytePrefix(Self.livetvPath) || rest.hasBytePrefix(Self.epgProviderPath) { return .path(rest) }
        if rest.hasBytePrefix(Self.xmltvGuid) { return .guid(afterScheme: rest.dropFirst(Self.xmltvGuid.count)) }
        if rest.hasBytePrefix(Self.epgProviderGuid) {
            return .guid(afterScheme: rest.dropFirst(Self.epgProviderGuid.count))
        }
        return nil
    }

    private func httpSchemeLength(_ value: ArraySlice<UInt8>) -> Int? {
        if value.hasPrefixLowercased(Self.httpScheme) { return Self.httpScheme.count }
        if value.hasPrefixLowercased(Self.httpsScheme) { return Self.httpsScheme.count }
        return nil
    }

    /// The configured PMS authority exactly, or a loopback host with any port (or none).
    func isThisServer(_ authority: ArraySlice<UInt8>) -> Bool {
        if let pmsAuthority, authority.equalsLowercased(pmsAuthority) { return true }
        let host: ArraySlice<UInt8>
        if authority.first == 0x5B {  // [v6]:port
            guard let close = authority.firstIndex(of: 0x5D) else { return false }
            host = authority[...close]
            let after = authority[(close + 1)...]
            guard after.isEmpty || Self.isPortSuffix(after) else { return false }
        } else if let colon = authority.firstIndex(of: 0x3A) {
            host = authority[..<colon]
            guard Self.isPortSuffix(authority[colon...]) else { return false }
        } else {
            host = authority
        }
        return Self.loopbackHosts.contains { host.equalsLowercased($0) }
    }

    /// `:` followed by zero or more digits.
    private static func isPortSuffix(_ suffix: ArraySlice<UInt8>) -> Bool {
        suffix.first == 0x3A && suffix.dropFirst().allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// What follows a guid scheme: no dot-segment, no encoded `/` or `\`, no control byte, at this layer
    /// and every further decoding (form style, until it stops changing).
    static func isCleanGuidRemainder(_ remainder: ArraySlice<UInt8>) -> Bool {
        // Fine print 1: every further decoding of the remainder (form style, uncapped) must stay clean.
        for (_, layer) in PercentDecoding.layers(of: remainder, style: .form, depth: .untilStable) {
            if layer.contains(where: ASCII.isControl) { return false }
            if layer.split(separator: 0x2F, omittingEmptySubsequences: false).contains(where: PathSafety.isDotSegment) {
                return false
            }
            if PercentDecoding.hasEncodedSeparator(layer) { return false }
        }
        return true
    }
}
