import Foundation

/// `--state-store postgres://user:password@host:port/database?sslmode=disable|prefer|require` (or
/// `postgres://user@/database?host=/run/postgresql` for a Unix socket): parsed here, so a typo fails at
/// start-up with the setting's name; the PostgreSQL module turns it into a client configuration.
public struct StateStoreURL: Sendable, Hashable, CustomStringConvertible {
    public enum TLSMode: String, Sendable { case disable, prefer, require }

    public var user: String
    public var password: String?
    /// A host name or address, or `nil` with `socketDirectory`.
    public var host: String?
    public var port: Int
    public var socketDirectory: String?
    public var database: String
    public var tls: TLSMode

    public init?(_ text: String) {
        let rest: Substring
        if text.hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else if text.hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else {
            return nil
        }
        let (main, query) = Self.split(rest, at: "?")
        let (authorityPart, path) = Self.split(main, at: "/")
        guard let database = path.map({ String($0).percentDecoded }), !database.isEmpty,
            !database.contains("/")
        else { return nil }
        self.database = database
        var authority = authorityPart
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            let (name, secret) = Self.split(credentials, at: ":")
            user = String(name).percentDecoded
            password = secret.map { String($0).percentDecoded }
        } else {
            user = "postgres"
        }
        guard !user.isEmpty else { return nil }
        port = 5432
        if authority.isEmpty {
            host = nil
        } else if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    return nil
                }
                port = value
            }
        } else {
            let (name, portText) = Self.split(authority, at: ":")
            host = String(name)
            if let portText {
                guard let value = Int(portText), (1...65535).contains(value) else { return nil }
                port = value
            }
        }
        tls = .prefer
        socketDirectory = nil
        for pair in (query ?? "").split(separator: "&") {
            let (name, value) = Self.split(pair, at: "=")
            switch (name, value.map { String($0).percentDecoded }) {
            case ("sslmode", let mode?):
                guard let parsed = TLSMode(rawValue: mode) else { return nil }
                tls = parsed
            case ("host", let directory?) where directory.hasPrefix("/"):
                socketDirectory = directory
            default:
                return nil
            }
        }
        guard host != nil || socketDirectory != nil else { return nil }
    }

    /// For logs: never the password.
    public var description: String {
        let place = socketDirectory.map { "\($0)/.s.PGSQL.\(port)" } ?? "\(host ?? ""):\(port)"
        return "postgres://\(user)@\(place)/\(database)"
    }

    private static func split(_ text: Substring, at separator: Character) -> (Substring, Substring?) {
        guard let index = text.firstIndex(of: separator) else { return (text, nil) }
        return (text[..<index], text[text.index(after: index)...])
    }
}

extension String {
    /// `%XX` decoded; text with a malformed escape is kept as it is (Foundation would give nil).
    fileprivate var percentDecoded: String { removingPercentEncoding ?? self }
}
