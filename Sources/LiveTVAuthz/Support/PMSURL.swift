/// The configured Plex Media Server base URL (`IPTV_TUNERR_PMS_URL`, `--pms-url`).
public struct PMSURL: Sendable, Hashable, CustomStringConvertible {
    /// `http` or `https`.
    public let scheme: String
    /// `host[:port]` exactly as configured (lower-cased).
    public let authority: String
    /// The host without port or brackets.
    public let host: String
    /// The port, explicit or the scheme's default.
    public let port: Int

    /// Accepts `http://host[:port][/]` and `https://…`; anything with a path, query, user info or a bad
    /// port is refused so that a typo fails at start-up instead of at the first validation.
    public init?(_ text: String) {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            scheme = "http"
            rest = lower.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            scheme = "https"
            rest = lower.dropFirst(8)
        } else {
            return nil
        }
        let authority = rest.hasSuffix("/") ? rest.dropLast() : rest
        guard !authority.isEmpty, !authority.contains(where: { "/?#@ \t".contains($0) }) else { return nil }
        self.authority = String(authority)
        var hostPart = authority
        var portPart: Substring? = nil
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        if let portPart {
            guard let port = Int(portPart), (1...65535).contains(port) else { return nil }
            self.port = port
        } else {
            port = scheme == "https" ? 443 : 80
        }
    }

    public var description: String { "\(scheme)://\(authority)" }
}
