import LiveTVAuthz
import NIOCore
import Synchronization

/// Open connections of one listener, in total and per TCP peer. Over a cap, a new connection is closed
/// at once.
final class ConnectionLimiter: Sendable {
    private struct State {
        var open = 0
        var perPeer: [String: Int] = [:]
        var channels: [ObjectIdentifier: any Channel] = [:]
    }

    enum Refusal: String {
        case listenerCap = "listener_cap"
        case peerCap = "peer_cap"
    }

    private let state = Mutex(State())
    let limit: Int
    let perPeerLimit: Int

    init(limit: Int, perPeerLimit: Int) {
        self.limit = limit
        self.perPeerLimit = perPeerLimit
    }

    /// Counts a new connection, or says why it is refused.
    func admit(_ channel: any Channel, peer: String?) -> Refusal? {
        state.withLock { state in
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
        state.withLock { state in
            guard state.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            state.open -= 1
            if let peer {
                let left = state.perPeer[peer, default: 1] - 1
                state.perPeer[peer] = left > 0 ? left : nil
            }
        }
    }

    /// Closes every connection (the drain timeout after SIGTERM).
    func closeAll() {
        for channel in state.withLock({ Array($0.channels.values) }) { channel.close(promise: nil) }
    }

    var openConnections: Int { state.withLock { $0.open } }
}

/// First in every connection's pipeline: counts it against its listener's limits until it closes.
final class ConnectionAdmissionHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    private let limiter: ConnectionLimiter
    private let peer: String?
    private let metrics: ServiceMetrics
    private var counted = false

    init(limiter: ConnectionLimiter, peer: String?, metrics: ServiceMetrics) {
        self.limiter = limiter
        self.peer = peer
        self.metrics = metrics
    }

    /// Whether the connection was admitted (called once, from the channel initializer).
    func admit(_ channel: any Channel) -> ConnectionLimiter.Refusal? {
        if let refusal = limiter.admit(channel, peer: peer) { return refusal }
        counted = true
        metrics.openConnections.increment()
        return nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted {
            counted = false
            limiter.release(context.channel, peer: peer)
            metrics.openConnections.decrement()
        }
        context.fireChannelInactive()
    }
}

/// Closes a connection that has been idle (no bytes read) for the keep-alive timeout.
final class IdleCloseHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
