import LiveTVAuthz
import Prometheus

/// `/healthz`, `/readyz`, `/metrics`: open on every listener (no secret in them: `/metrics` never has a
/// token, fingerprint or address in a label).
public struct OperatorEndpoints: Sendable {
    let readiness: Readiness
    let registry: PrometheusCollectorRegistry?

    public init(readiness: Readiness, registry: PrometheusCollectorRegistry?) {
        self.readiness = readiness
        self.registry = registry
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
        case "/metrics":
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
