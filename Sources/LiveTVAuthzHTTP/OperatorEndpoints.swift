import LiveTVAuthz
import Prometheus

/// `/healthz`, `/readyz`, `/metrics`: open on every listener (no secret in them: `/metrics` never has a
/// token, fingerprint or address in a label).
public struct OperatorEndpoints: Sendable {
    let readiness: Readiness
    let registry: PrometheusCollectorRegistry?
    let status: (@Sendable () -> String)?
    let beforeScrape: @Sendable () -> Void
    let stateHealthy: @Sendable () -> Bool

    /// `status` renders `/status`; `beforeScrape` brings the gauges up to date before `/metrics` answers.
    public init(
        readiness: Readiness, registry: PrometheusCollectorRegistry?, status: (@Sendable () -> String)? = nil,
        beforeScrape: @escaping @Sendable () -> Void = {}, stateHealthy: @escaping @Sendable () -> Bool = { true }
    ) {
        self.stateHealthy = stateHealthy
        self.readiness = readiness
        self.registry = registry
        self.status = status
        self.beforeScrape = beforeScrape
    }

    /// The answer for an operator path, or `nil` for a path that is not one.
    func respond(path: String) -> (endpoint: String, response: ServerResponse)? {
        switch path {
        case "/healthz":
            return ("healthz", .text(200, "ok"))
        case "/readyz":
            return (
                "readyz",
                readiness.isReady
                    ? .text(200, "ready") : .text(503, "not ready: PMS has not answered /identity recently")
            )
        case "/readyz/state":
            // The shared state store (always ready in memory). Not part of /readyz: a replica deciding on its
            // own state is still correct, and taking every replica out when the database is down would
            // take Live TV down with it.
            return (
                "readyz",
                stateHealthy()
                    ? .text(200, "ready") : .text(503, "not ready: the shared state store is unreachable")
            )
        case "/status":
            guard let status else { return nil }
            return (
                "status",
                ServerResponse(
                    status: 200,
                    headers: [
                        ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
                    ], body: Array(status().utf8))
            )
        case "/metrics":
            beforeScrape()
            return (
                "metrics",
                ServerResponse(
                    status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")],
                    body: registry?.emitToBuffer() ?? [])
            )
        default:
            return nil
        }
    }
}
