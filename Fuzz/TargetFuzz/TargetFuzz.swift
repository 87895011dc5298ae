import FuzzReplay
import LiveTVAuthzCore

/// Target parsing, classification and the rewrite on arbitrary requests.
///
/// Input: a flags byte (body kind, whether the frontend removes query tokens), a method byte, then lines: the
/// raw target, header lines `name:value` up to an empty line, and the rest as the body. Every mode is judged;
/// `DecisionInvariants` must hold in each.
let targetFuzz: FuzzTarget = { data, size in
    var input = FuzzInput(data, size)
    let flags = input.byte()
    let method = input.pick(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", ""])
    let target = Array(input.line())
    var headers: [HTTPField] = []
    while !input.isEmpty {
        let line = input.line()
        if line.isEmpty { break }
        let colon = line.firstIndex(of: 0x3A) ?? line.endIndex
        headers.append(
            HTTPField(
                name: String(decoding: line[..<colon], as: UTF8.self),
                value: String(decoding: line[min(colon + 1, line.endIndex)...], as: UTF8.self)))
    }
    let rest = Array(input.bytes)
    let body: RequestBody
    switch flags & 0x07 {
    case 0, 1: body = .none
    case 2: body = .unseen
    case 3: body = .seen(bytes: rest, contentType: "application/x-www-form-urlencoded")
    case 4: body = .seen(bytes: rest, contentType: "application/json")
    case 5: body = .seen(bytes: rest, contentType: "application/json; charset=utf-8")
    case 6: body = .seen(bytes: rest, contentType: nil)
    default: body = .seen(bytes: rest, contentType: "text/plain")
    }
    var request = AuthzRequest(
        method: method, target: RequestTarget(bytes: target), headers: headers, body: body,
        peer: PeerFacts(trustedFrontend: true))
    request.frontendRemovesQueryTokens = flags & 0x08 == 0
    for mode in DecisionInvariants.modes { DecisionInvariants.check(request, mode: mode) }
    // The explanation text (what `explain` and the audit reason print) must be total too.
    _ = LiveTVClassifier().classify(request).reason.description
    return 0
}

@main
struct TargetFuzz {
    static func main() { FuzzMain.run(targetFuzz) }
}
