import LiveTVAuthz
import NIOCore

/// Connection-level settings of the decision server.
public struct ServerSettings: Sendable {
    public var listeners: [ListenAddress]
    /// Mode, group and directory of Unix sockets.
    public var socketPermissions = UnixSocketPermissions(mode: 0o660, group: nil)
    /// Close keep-alive connections idle this long.
    public var idleTimeout: Duration = .seconds(60)
    /// Most open connections, counted per listener: a flood on one listener (TCP) never takes the
    /// capacity of another (the Unix socket nginx uses).
    public var maximumConnections = 1024
    /// Most open connections from one TCP peer address.
    public var maximumConnectionsPerPeer = 256
    /// A whole request (head and body) must arrive within this time from its first byte.
    public var requestDeadline: Duration = .seconds(10)
    /// How long SIGTERM waits for in-flight requests before closing connections.
    public var drainTimeout: Duration = .seconds(10)
    public static let maximumHeadBytes = 32 * 1024
    public static let maximumBodyBytes = 64 * 1024

    public init(listeners: [ListenAddress]) {
        self.listeners = listeners
    }

    var http1Limits: HTTP1Limits {
        var limits = HTTP1Limits()
        limits.headBytes = Self.maximumHeadBytes
        limits.keptBodyBytes = Self.maximumBodyBytes
        limits.requestDeadline = .nanoseconds(requestDeadline.nanoseconds)
        return limits
    }
}
