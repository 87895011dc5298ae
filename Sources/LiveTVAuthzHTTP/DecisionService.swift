import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import Logging
import Synchronization

/// Turns one decision subrequest into one answer: authenticates the frontend (the shared trust layer),
/// picks the adapter, asks the guard, writes the contract's headers. Operator endpoints are answered by
/// `OperatorEndpoints`.
public final class DecisionService: Sendable {
    public static let maximumTargetBytes = 16 * 1024

    private let guardian: Guard
    private let trust: FrontendTrust
    private let metrics: ServiceMetrics
    private let operators: OperatorEndpoints
    private let blocks: BlockAdministration?
    private let configurationErrors: RateLimitedLog

    public init(
        guard guardian: Guard, trust: FrontendTrust, metrics: ServiceMetrics, operators: OperatorEndpoints,
        blocks: BlockAdministration? = nil, logger: Logger
    ) {
        self.blocks = blocks
        self.guardian = guardian
        self.trust = trust
        self.metrics = metrics
        self.operators = operators
        self.configurationErrors = RateLimitedLog(logger: logger, interval: .seconds(60))
    }

    /// An answer now, or a decision waiting for PMS.
    public enum Answer: Sendable {
        case ready(ServerResponse)
        case pending(Pending)
    }

    /// A decision waiting for PMS's answer about its token.
    public struct Pending: Sendable {
        let guardProgress: Guard.Pending
        let endpoint: String
        let blockedStatus: Int
    }

    /// The whole answer (waits for PMS when it must).
    public func respond(to wire: WireRequest, transport: ListenerTransport) async -> ServerResponse {
        switch begin(wire, transport: transport) {
        case .ready(let response): return response
        case .pending(let pending): return await complete(pending)
        }
    }

    /// Answers without suspending whenever the guard can (operator endpoints, refusals, non-candidates,
    /// cached tokens); only a token PMS must still be asked about comes back pending.
    public func begin(_ wire: WireRequest, transport: ListenerTransport) -> Answer {
        let path = wire.path
        let endpoint: String
        let adapter: (WireRequest) throws(AdapterError) -> AuthzRequest
        var blockedStatus = 403
        switch path {
        case "/v1/nginx":
            endpoint = "nginx"
            adapter = NginxAdapter.request
        case "/v1/forward":
            endpoint = "forward"
            adapter = ForwardAuthAdapter.request
        case "/v1/traefik":
            endpoint = "traefik"
            adapter = TraefikAdapter.request
            // Traefik relays a non-2xx answer to the client as it is and cannot map it: say 429 directly.
            blockedStatus = 429
        case _ where path == EnvoyHTTPAdapter.prefix || path.hasPrefix(EnvoyHTTPAdapter.prefix + "/"):
            endpoint = "envoy"
            adapter = EnvoyHTTPAdapter.request
        case "/v1/blocks", "/v1/blocks/unblock":
            // Block management changes who may be elevated: the secret channel only, like decisions.
            if let refusal = authenticate(wire, transport) { return .ready(finish(refusal, "blocks")) }
            return .ready(finish(blocksAnswer(wire), "blocks"))
        default:
            guard let answer = operators.respond(path: path) else {
                return .ready(finish(.text(404, "not found"), "unknown"))
            }
            return .ready(finish(answer.response, answer.endpoint))
        }
        if let refusal = authenticate(wire, transport) { return .ready(finish(refusal, endpoint)) }
        var request: AuthzRequest
        do {
            request = try adapter(wire)
        } catch {
            configurationErrors.error("frontend configuration error: \(error.description) (answering 500)")
            return .ready(finish(.text(500, "frontend configuration error: \(error.description)"), endpoint))
        }
        guard request.target.bytes.count <= Self.maximumTargetBytes else {
            return .ready(finish(.text(414, "original request-target over \(Self.maximumTargetBytes) bytes"), endpoint))
        }
        if case .tcp(let peer) = transport { request.peer.connectionAddress = peer }
        switch guardian.begin(request) {
        case .decided(let decision): return .ready(finish(Self.answer(decision, blockedStatus), endpoint))
        case .pending(let pending):
            return .pending(Pending(guardProgress: pending, endpoint: endpoint, blockedStatus: blockedStatus))
        }
    }

    /// The refusal for a peer that is not a trusted frontend, or `nil`.
    private func authenticate(_ wire: WireRequest, _ transport: ListenerTransport) -> ServerResponse? {
        switch trust.authenticate(transport, presentedKey: wire.headers.firstText(ControlHeaders.frontendKey)) {
        case .trusted: nil
        case .wrongKey: .text(401, "missing or wrong X-Plexauthz-Key")
        case .peerNotAllowed: .text(403, "not an allowed frontend")
        }
    }

    /// `GET /v1/blocks` (JSON list), `POST /v1/blocks/unblock?source=sha256:…` or `?all=1`.
    private func blocksAnswer(_ wire: WireRequest) -> ServerResponse {
        guard let blocks else { return .text(404, "not found") }
        let query = Self.query(wire.target)
        switch (wire.method, wire.path) {
        case ("GET", "/v1/blocks"):
            let body = (try? JSONEncoder().encode(blocks.list())) ?? Data("[]".utf8)
            return ServerResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array(body))
        case ("POST", "/v1/blocks/unblock"):
            let source = query["source"]
            if query["all"] == "1", source == nil {
                return .text(200, "unblocked \(blocks.unblock(nil))")
            }
            guard let source, BlockAdministration.isFingerprint(source) else {
                return .text(400, "name one source as source=sha256:<16 hex digits>, or all=1")
            }
            return .text(200, "unblocked \(blocks.unblock(source))")
        default:
            return .text(405, "GET /v1/blocks or POST /v1/blocks/unblock")
        }
    }

    /// The `name=value` pairs of a request-target's query (values percent-decoded).
    static func query(_ target: [UInt8]) -> [String: String] {
        guard let mark = target.firstIndex(of: 0x3F) else { return [:] }
        var pairs: [String: String] = [:]
        for part in target[(mark + 1)...].split(separator: 0x26) {
            let pieces = part.split(separator: 0x3D, maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(decoding: pieces[0], as: UTF8.self)
            let value = pieces.count > 1 ? String(decoding: pieces[1], as: UTF8.self) : ""
            pairs[name] = value.removingPercentEncoding ?? value
        }
        return pairs
    }

    /// Finishes a pending answer once PMS has been asked.
    public func complete(_ pending: Pending) async -> ServerResponse {
        finish(Self.answer(await guardian.complete(pending.guardProgress), pending.blockedStatus), pending.endpoint)
    }

    private func finish(_ response: ServerResponse, _ endpoint: String) -> ServerResponse {
        metrics.recordResponse(endpoint: endpoint, status: response.status)
        return response
    }

    static func answer(_ decision: AuthzDecision, _ blockedStatus: Int) -> ServerResponse {
        decision.rejected
            ? ServerResponse(status: blockedStatus, headers: DecisionHeaders.blocked(decision))
            : ServerResponse(status: 200, headers: DecisionHeaders.allow(decision))
    }
}
