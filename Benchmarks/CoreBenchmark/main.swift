// `make bench-core`: decisions per second and allocations per decision of the pure core, on one thread,
// over a realistic mix of 50 Plex Web requests (Tests/Fixtures/plex-web-session.jsonl).
import CMallocCounter
import Foundation
import LiveTVAuthz
import LiveTVAuthzCore

let arguments = CommandLine.arguments
let fixture = arguments.count > 1 ? arguments[1] : "Tests/Fixtures/plex-web-session.jsonl"
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 40_000 : 40_000

guard let text = try? String(contentsOfFile: fixture, encoding: .utf8) else {
    FileHandle.standardError.write("cannot read \(fixture)\n".data(using: .utf8)!)
    exit(2)
}
var seen = Set<String>()
var requests: [AuthzRequest] = []
for line in text.split(separator: "\n") {
    guard let request = try? Explainer.parseRequest(String(line)) else { continue }
    if seen.insert(request.method + " " + request.target.wire).inserted, requests.count < 50 {
        requests.append(request)
    }
}
precondition(requests.count == 50, "the fixture must hold 50 distinct requests, found \(requests.count)")

let classifier = LiveTVClassifier(
    mode: .liveTV,
    references: LiveTVReferenceMatcher(
        machineIdentifier: "4f3c9a1e7b2d8c6f0a5e9d3b1c7f2a8e6d4b0c9f", pmsAuthority: "127.0.0.1:32400"))
let owner = PlexToken("ownr0000000000000000")!

/// The raw facts an adapter starts from: parsing the target is part of every decision.
let raw = requests.map { (method: $0.method, target: $0.target.bytes, headers: $0.headers, body: $0.body) }

@inline(never)
func decideAll(_ requests: [AuthzRequest]) -> Int {
    var elevated = 0
    for request in raw {
        let parsed = AuthzRequest(
            method: request.method, target: RequestTarget(bytes: request.target), headers: request.headers,
            body: request.body)
        let decision = AuthzDecision.assumingValidToken(classifier.classify(parsed), ownerToken: owner)
        if decision.elevate { elevated &+= 1 }
    }
    return elevated
}

// Warm up, then measure allocations over one pass and time over many.
var sink = 0
for _ in 0..<2_000 { sink &+= decideAll(requests) }
let allocationsBefore = malloc_counter_allocations()
sink &+= decideAll(requests)
let allocationsPerDecision = Double(malloc_counter_allocations() - allocationsBefore) / Double(requests.count)

var best = Double.infinity
for _ in 0..<5 {
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<(rounds / 5) { sink &+= decideAll(requests) }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    best = min(best, seconds)
}
let decisions = Double((rounds / 5) * requests.count)
let elevatedShare = Double(decideAll(requests)) / Double(requests.count)
print(String(format: "requests in mix:          %d (%.0f%% elevated)", requests.count, elevatedShare * 100))
print(
    String(
        format: "decisions per second:     %.0f (best of 5 runs of %.0f decisions, one thread)", decisions / best,
        decisions))
print(String(format: "mean time per decision:   %.0f ns", best / decisions * 1e9))
print(String(format: "allocations per decision: %.1f", allocationsPerDecision))
if sink == 42 { print("") }  // keep the work observable
