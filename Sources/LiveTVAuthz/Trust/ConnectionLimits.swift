import LiveTVAuthzCore
import NIOConcurrencyHelpers
import NIOCore

/// Open connections of one listener, in total and per TCP peer. Over a cap, a new connection is closed
/// at once. Every listener (HTTP and gRPC) has its own, so a flood on one never takes another's capacity.
public final class ConnectionLimiter: Sendable {
    private struct State {
        var open = 0
        var perPeer: [String: Int] = [:]
        var channels: [ObjectIdentifier: any Channel] = [:]
    }

    public enum Refusal: String, Sendable {
        case listenerCap = "listener_cap"
        case peerCap = "peer_cap"
    }

    private let state = NIOLockedValueBox(State())
    public let limit: Int
    public let perPeerLimit: Int

    public init(limit: Int, perPeerLimit: Int) {
        self.limit = limit
        self.perPeerLimit = perPeerLimit
    }

    /// Counts a new connection, or says why it is refused.
    func admit(_ channel: any Channel, peer: String?) -> Refusal? {
        state.withLockedValue { state in
            guard state.open < limit else { return .listenerCap }
            if let peer {
                guard state.perPeer[peer, default: 0] < perPeerLimit else { return .peerCap }
                state.perPeer[peer, default: 0] += 1
            }
            state.open += 1
            state.channels[ObjectIdentifier(channel)] = channel
            return nil
        }
    }

    func release(_ channel: any Channel, peer: String?) {
        state.withLockedValue { state in
            guard state.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            state.open -= 1
            if let peer {
                let left = state.perPeer[peer, default: 1] - 1
                state.perPeer[peer] = left > 0 ? left : nil
            }
        }
    }

    /// Closes every connection (the drain timeout after SIGTERM).
    public func closeAll() {
        for channel in state.withLockedValue({ Array($0.channels.values) }) { channel.close(promise: nil) }
    }

    public var openConnections: Int { state.withLockedValue { $0.open } }
}

/// First in every connection's pipeline: the trust layer's peer rule, then the listener's limits, counted
/// until the connection closes.
public final class ConnectionAdmissionHandler: ChannelInboundHandler {
    public typealias InboundIn = NIOAny
    private let limiter: ConnectionLimiter
    private let peer: String?
    private let metrics: ServiceMetrics
    private var counted = false

    public init(limiter: ConnectionLimiter, peer: String?, metrics: ServiceMetrics) {
        self.limiter = limiter
        self.peer = peer
        self.metrics = metrics
    }

    /// Whether the connection was admitted (called once, from the channel initializer).
    public func admit(_ channel: any Channel) -> ConnectionLimiter.Refusal? {
        if let refusal = limiter.admit(channel, peer: peer) { return refusal }
        counted = true
        metrics.openConnections.increment()
        return nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if counted {
            counted = false
            limiter.release(context.channel, peer: peer)
            metrics.openConnections.decrement()
        }
        context.fireChannelInactive()
    }
}

/// Closes a connection that has been idle (no bytes read) for the keep-alive timeout.
public final class IdleCloseHandler: ChannelInboundHandler {
    public typealias InboundIn = NIOAny

    public init() {}

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

extension ConnectionLimiter {
    /// Admits a new connection on a listener: the trust layer's peer rule, then this listener's caps.
    /// Adds the admission handler (first in the pipeline) and returns `nil`, or closes the channel and
    /// says why it was refused. Call on the channel's event loop, from its initializer.
    public func admit(
        _ channel: any Channel, transport: ListenerTransport, trust: FrontendTrust, metrics: ServiceMetrics
    ) throws -> String? {
        guard trust.admits(transport) else {
            metrics.recordRefusedConnection("not_allowed")
            channel.close(promise: nil)
            return "not_allowed"
        }
        var peer: String? = nil
        if case .tcp(let address) = transport { peer = address.map(PeerAddress.normalise) }
        let admission = ConnectionAdmissionHandler(limiter: self, peer: peer, metrics: metrics)
        if let refusal = admission.admit(channel) {
            metrics.recordRefusedConnection(refusal.rawValue)
            channel.close(promise: nil)
            return refusal.rawValue
        }
        try channel.pipeline.syncOperations.addHandler(admission, position: .first)
        return nil
    }
}
