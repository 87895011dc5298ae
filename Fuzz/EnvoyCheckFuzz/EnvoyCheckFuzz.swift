import FuzzReplay
import LiveTVAuthzCore
import LiveTVAuthzEnvoy
import SwiftProtobuf

/// The Envoy `CheckRequest` decoder and translation on arbitrary bytes (what a gRPC frame carries).
///
/// Invariants: decoding never traps; a request it accepts satisfies `DecisionInvariants`; the `CheckResponse`
/// for its decision adds the owner token only when elevating, removes query carriers only when elevating,
/// allows unless the decision rejects, and survives its own serialisation.
let envoyCheckFuzz: FuzzTarget = { data, size in
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let check = try? Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes) else { return 0 }
    guard let request = try? EnvoyGRPCAdapter.request(check) else { return 0 }
    precondition(request.peer.trustedFrontend, "the adapter decides trust; the asker was already authenticated")
    for mode in DecisionInvariants.modes {
        let decision = DecisionInvariants.check(request, mode: mode)
        let response = EnvoyGRPCAdapter.response(decision)
        guard case .okResponse(let ok)? = response.httpResponse else {
            preconditionFailure("a decision that does not reject was answered with a denial")
        }
        precondition(response.status.code == EnvoyGRPCAdapter.Code.ok)
        let tokens = ok.headers.filter { $0.header.key.lowercased() == "x-plex-token" }
        precondition(tokens.count <= 1, "more than one X-Plex-Token header upstream")
        let carriesOwner = tokens.first?.header.value == DecisionInvariants.owner.value
        // Only an elevation adds the owner token; a preserved request carries its own (which a client that
        // already holds the owner token may send itself).
        let ownOwnerToken = decision.classification.token.token == DecisionInvariants.owner
        precondition(
            decision.elevate ? carriesOwner : (!carriesOwner || ownOwnerToken),
            "the owner token and the decision disagree")
        precondition(
            ok.queryParametersToRemove.isEmpty || decision.elevate, "query carriers removed from a preserved request")
        let serialised: [UInt8] = try! response.serializedBytes()
        let again = try! Envoy_Service_Auth_V3_CheckResponse(serializedBytes: serialised)
        precondition(again == response, "a CheckResponse does not survive serialisation")
    }
    return 0
}

@main
struct EnvoyCheckFuzz {
    static func main() { FuzzMain.run(envoyCheckFuzz) }
}
