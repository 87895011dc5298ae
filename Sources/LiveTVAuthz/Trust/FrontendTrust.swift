import Foundation
import LiveTVAuthzCore

#if canImport(Glibc)
    import Glibc
#endif

/// The frontend key (`X-Plexauthz-Key` over HTTP, `x-plexauthz-key` gRPC metadata), compared in
/// constant time.
public struct FrontendKey: Sendable {
    let bytes: [UInt8]

    /// A key of at least 16 visible ASCII characters (surrounding whitespace trimmed).
    public init?(_ text: String) {
        let trimmed = Array(text.utf8)[...].trimmedASCIIWhitespace()
        guard trimmed.count >= 16, trimmed.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        bytes = Array(trimmed)
    }

    /// The key as a client presents it (`blocks` talking to the service over TCP).
    public var headerValue: String { String(decoding: bytes, as: UTF8.self) }

    /// Constant-time in the length of the presented value (and of the key).
    public func matches(_ presented: String?) -> Bool {
        guard let presented else { return false }
        return ConstantTime.equals(bytes, presented.utf8)
    }
}

/// How a frontend reached a listener.
public enum ListenerTransport: Sendable, Hashable {
    /// A Unix domain socket: its file mode and group are the authentication.
    case unixSocket
    /// TCP from `peer` (an IP address without port; `nil` when unknown).
    case tcp(peer: String?)
}

/// The one frontend-trust layer behind every listener, HTTP and gRPC alike (decision contract: "the
/// channel is a secret channel"). Answers carry the owner token, so:
/// - a Unix-socket peer is trusted (the socket's mode and group decide who can connect);
/// - a TCP peer must be loopback or allow-listed to connect at all, and must present the frontend key on
///   every request.
public struct FrontendTrust: Sendable {
    public let key: FrontendKey?
    public let allowedFrontends: Set<String>

    public init(key: FrontendKey?, allowedFrontends: Set<String>) {
        self.key = key
        self.allowedFrontends = Set(allowedFrontends.map(PeerAddress.normalise))
    }

    /// The verdict on one request.
    public enum Verdict: Sendable, Hashable {
        /// A configured frontend: its forwarding facts are honoured.
        case trusted
        /// A TCP peer that is neither loopback nor allow-listed (connection-time refusal).
        case peerNotAllowed
        /// A TCP request without the right key.
        case wrongKey
    }

    /// May this peer connect at all?
    public func admits(_ transport: ListenerTransport) -> Bool {
        switch transport {
        case .unixSocket: return true
        case .tcp(let peer?):
            return PeerAddress.isLoopback(peer) || allowedFrontends.contains(PeerAddress.normalise(peer))
        case .tcp(nil): return false
        }
    }

    /// The verdict on one request: the peer rule, then the key (TCP only).
    public func authenticate(_ transport: ListenerTransport, presentedKey: String?) -> Verdict {
        guard admits(transport) else { return .peerNotAllowed }
        if case .unixSocket = transport { return .trusted }
        guard let key, key.matches(presentedKey) else { return .wrongKey }
        return .trusted
    }
}

/// Unix socket files for every listener: the directory (created 0750 when missing), then, right after
/// bind, the mode and the group.
public struct UnixSocketPermissions: Sendable {
    public let mode: mode_t
    public let group: String?

    public init(mode: mode_t, group: String?) {
        self.mode = mode
        self.group = group
    }

    /// Before bind: creates the socket's directory (0750) when it does not exist; checks the group.
    public func prepare(socketAt path: String) throws {
        if let group, getgrnam(group) == nil { throw TrustSetupError("socket group \(group) does not exist") }
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) else { return }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw TrustSetupError("cannot create the socket directory \(directory): \(error.localizedDescription)")
        }
    }

    /// After bind: the socket's mode and group.
    public func apply(toSocketAt path: String) throws {
        guard chmod(path, mode) == 0 else {
            throw TrustSetupError(
                "cannot set mode \(String(mode, radix: 8)) on \(path): \(String(cString: strerror(errno)))")
        }
        if let group {
            guard let entry = getgrnam(group) else { throw TrustSetupError("socket group \(group) does not exist") }
            guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
                throw TrustSetupError("cannot give \(path) to group \(group): \(String(cString: strerror(errno)))")
            }
        }
    }
}

public struct TrustSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension ArraySlice where Element == UInt8 {
    func trimmedASCIIWhitespace() -> ArraySlice<UInt8> {
        var slice = self
        while let first = slice.first, first == 0x20 || (first >= 0x09 && first <= 0x0D) { slice = slice.dropFirst() }
        while let last = slice.last, last == 0x20 || (last >= 0x09 && last <= 0x0D) { slice = slice.dropLast() }
        return slice
    }
}
