import Foundation
import LiveTVAuthzCore

/// Where the service listens.
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: Int)

    /// `unix:/path` or `host:port` (`[v6]:port`).
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("unix:") {
            let path = String(trimmed.dropFirst(5))
            guard path.hasPrefix("/"), path.utf8.count < 104 else { return nil }
            self = .unix(path: path)
            return
        }
        guard let colon = trimmed.lastIndex(of: ":"), let port = Int(trimmed[trimmed.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self = .tcp(host: host, port: port)
    }

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// Loopback TCP (or a Unix socket).
    public var isLocal: Bool {
        switch self {
        case .unix: return true
        case .tcp(let host, _): return PeerAddress.isLoopback(host)
        }
    }
}
