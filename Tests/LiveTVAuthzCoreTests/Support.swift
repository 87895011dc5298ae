import LiveTVAuthzCore
import Testing

let userToken = "user0000000000000000"
let ownerValue = "ownr0000000000000000"
let ownerToken = PlexToken(ownerValue)!
let machineID = "4f3c9a1e7b2d8c6f0a5e9d3b1c7f2a8e6d4b0c9f"
/// `?X-Plex-Token=<user>`: appended to most targets.
let tok = "X-Plex-Token=\(userToken)"

/// One row of a decision table.
struct Case: CustomTestStringConvertible, Sendable {
    var method: String
    var target: String
    var headers: [HTTPField] = []
    var body: RequestBody = .none
    var mode: ElevationMode = .liveTV
    var frontendRemovesQueryTokens = true
    var expected: ElevationRule

    var testDescription: String {
        "\(mode.rawValue) \(method) \(target)\(frontendRemovesQueryTokens ? "" : " (query kept)") → \(expected.rawValue)"
    }

    init(
        _ method: String, _ target: String, _ expected: ElevationRule, headers: [(String, String)] = [],
        body: RequestBody = .none, mode: ElevationMode = .liveTV, frontendRemovesQueryTokens: Bool = true
    ) {
        self.frontendRemovesQueryTokens = frontendRemovesQueryTokens
        self.method = method
        self.target = target
        self.headers = headers.map { HTTPField(name: $0.0, value: $0.1) }
        self.body = body
        self.mode = mode
        self.expected = expected
    }

    var request: AuthzRequest {
        var request = AuthzRequest(method: method, target: target, headers: headers, body: body)
        request.frontendRemovesQueryTokens = frontendRemovesQueryTokens
        return request
    }

    /// Whether the expected rule means "elevated" (given a valid token).
    var expectElevate: Bool { ElevationRule.surfaces.contains(expected) || expected == .all }
}

func classifier(_ mode: ElevationMode = .liveTV, machine: String? = machineID) -> LiveTVClassifier {
    LiveTVClassifier(
        mode: mode, references: LiveTVReferenceMatcher(machineIdentifier: machine, pmsAuthority: "127.0.0.1:32400"))
}

/// The decision for a request, assuming its token is valid for this server (what `explain` does).
func decide(_ request: AuthzRequest, mode: ElevationMode = .liveTV) -> AuthzDecision {
    AuthzDecision.assumingValidToken(classifier(mode).classify(request), ownerToken: ownerToken)
}

func form(_ text: String) -> RequestBody {
    .seen(bytes: Array(text.utf8), contentType: "application/x-www-form-urlencoded")
}

func json(_ text: String) -> RequestBody {
    .seen(bytes: Array(text.utf8), contentType: "application/json")
}
