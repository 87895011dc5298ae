// Micro-benchmarks of the decision hot path (`make bench-micro`): the pure core over the Plex Web session
// mix, and the guard as the server calls it (cached token, audit line formatted and handed to a sink). The
// allocation counts are deterministic and checked against Thresholds/ (`make bench-micro` fails on a
// regression); times and throughput are printed for reading, never checked.
import Benchmark
import Foundation
import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzCore

/// The repository's root, found from this file (the benchmark runs from wherever the plugin starts it).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The distinct requests of the Plex Web session fixture, as the adapters hand them to the guard.
let session: [AuthzRequest] = {
    let path = root.appendingPathComponent("Tests/Fixtures/plex-web-session.jsonl").path
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { fatalError("cannot read \(path)") }
    var seen = Set<String>()
    var requests: [AuthzRequest] = []
    for line in text.split(separator: "\n") {
        guard let request = try? Explainer.parseRequest(String(line)) else { continue }
        if seen.insert(request.method + " " + request.target.wire).inserted { requests.append(request) }
    }
    return requests
}()

let owner = PlexToken("ownr0000000000000000")!
let userToken = "user0000000000000000"

/// PMS for the guard benchmarks: the user's token is valid, anything else is not.
struct AnsweringPMS: PMSClient {
    func checkToken(_ token: PlexToken) async -> TokenCheck {
        token.value == userToken ? .valid : .invalid(status: 401)
    }
    func identity() async -> String? { "4f3c9a1e7b2d8c6f0a5e9d3b1c7f2a8e6d4b0c9f" }
    func send(_ request: PMSRequest, timeout: Duration) async -> Int? { 200 }
}

/// Audit lines are formatted as in production and then dropped (the writer thread is not what is measured).
struct DiscardingAuditSink: AuditSink {
    func write(_ line: String) {}
}

/// The guard from the composition root, as `serve` builds it, minus the listeners.
func makeGuard() throws -> Guard {
    var configuration = Configuration()
    configuration.set(Settings.ownerToken, owner)
    configuration.set(Settings.listen, [])
    var dependencies = AuthzDependencies()
    dependencies.pms = AnsweringPMS()
    dependencies.auditSink = DiscardingAuditSink()
    dependencies.handlesSignals = false
    return try AuthzApplication(configuration: configuration, dependencies: dependencies).guardian
}

/// A frontend's request for the target, from a shared user behind nginx.
func frontendRequest(_ target: String) -> AuthzRequest {
    AuthzRequest(
        method: "GET", target: target, headers: [HTTPField(name: "X-Forwarded-For", value: "203.0.113.9")],
        peer: PeerFacts(trustedFrontend: true))
}

let benchmarks: @Sendable () -> Void = {
    let allocations: [BenchmarkMetric] = [.mallocCountTotal, .throughput, .wallClock]
    let thresholds: [BenchmarkMetric: BenchmarkThresholds] = [
        // Counts are deterministic; the absolute slack absorbs a lazily grown buffer on one sample.
        .mallocCountTotal: .init(relative: [.p50: 1, .p90: 1], absolute: [.p50: 2, .p90: 2])
    ]
    Benchmark.defaultConfiguration = .init(
        metrics: allocations, warmupIterations: 100, scalingFactor: .kilo, maxDuration: .seconds(2),
        maxIterations: 200, thresholds: thresholds)

    let classifier = LiveTVClassifier(
        mode: .liveTV,
        references: LiveTVReferenceMatcher(
            machineIdentifier: "4f3c9a1e7b2d8c6f0a5e9d3b1c7f2a8e6d4b0c9f", pmsAuthority: "127.0.0.1:32400"))
    let raw = session.map { (method: $0.method, target: $0.target.bytes, headers: $0.headers, body: $0.body) }

    // The whole Plex Web mix per iteration: parse the target, classify, locate and rewrite the token.
    Benchmark("CoreClassifyRewritePlexWebMix") { benchmark in
        for _ in benchmark.scaledIterations {
            var elevated = 0
            for request in raw {
                let parsed = AuthzRequest(
                    method: request.method, target: RequestTarget(bytes: request.target), headers: request.headers,
                    body: request.body)
                if AuthzDecision.assumingValidToken(classifier.classify(parsed), ownerToken: owner).elevate {
                    elevated &+= 1
                }
            }
            blackHole(elevated)
        }
    }

    // One decision as the server makes it for an elevated Live TV request with a cached token: source
    // identity, validation cache, policy, audit line, metrics, status board.
    Benchmark("GuardElevatedAuditedCachedToken") { benchmark in
        let guardian = try makeGuard()
        let request = frontendRequest(
            "/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4&X-Plex-Product=Plex%20Web&X-Plex-Token=\(userToken)")
        let first = await guardian.decide(request)
        precondition(first.elevate, "the request must be elevated")
        for _ in benchmark.scaledIterations {
            guard case .decided(let decision) = guardian.begin(request) else { fatalError("the token was not cached") }
            blackHole(decision)
        }
    }

    // A library request: not a Live TV candidate, no audit line, no validation.
    Benchmark("GuardLibraryRequest") { benchmark in
        let guardian = try makeGuard()
        let request = frontendRequest("/library/metadata/4211/children?X-Plex-Token=\(userToken)")
        for _ in benchmark.scaledIterations {
            guard case .decided(let decision) = guardian.begin(request) else { fatalError("a library request waited") }
            blackHole(decision)
        }
    }
}
