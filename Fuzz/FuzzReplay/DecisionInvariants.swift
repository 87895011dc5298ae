import LiveTVAuthzCore

/// The decision invariants every fuzz target checks on whatever request it managed to build
/// (elevation-rules §2–§6). A violation traps, which libFuzzer reports as a crash with its input.
public enum DecisionInvariants {
    /// The owner token the targets elevate with: its value must never appear in an upstream target.
    public static let owner = PlexToken("OWNERfuzz0token000zz")!
    public static let modes: [ElevationMode] = [.liveTV, .discoveryOnly, .all]

    /// Classifies `request` in `mode`, decides as if its token were proven valid, and checks:
    /// - elevate ⇒ a candidate surface, a usable inbound token, a safe path, no smuggled carrier, not OPTIONS;
    /// - the owner token is never put into the upstream target, which never carries CR, LF or NUL;
    /// - the rewrite removes exactly the `X-Plex-Token` query components and changes nothing else;
    /// - a preserved request goes upstream byte for byte with its own token;
    /// - classification is deterministic.
    @discardableResult
    public static func check(_ request: AuthzRequest, mode: ElevationMode) -> AuthzDecision {
        let classifier = LiveTVClassifier(mode: mode, references: LiveTVReferenceMatcher(machineIdentifier: "m"))
        let classification = classifier.classify(request)
        let decision = AuthzDecision.assumingValidToken(classification, ownerToken: owner)
        let wire = request.target.wire
        let upstream = decision.upstreamTarget
        // The service never adds the owner token to a target (a client that sends its bytes itself gets them back).
        precondition(
            !upstream.contains(owner.value) || wire.contains(owner.value),
            "the owner token was put in the upstream target")
        precondition(
            !upstream.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }, "CR, LF or NUL in the upstream target")
        if let token = decision.upstreamToken {
            precondition(
                !token.value.utf8.contains { $0 < 0x21 || $0 == 0x7F }, "a control byte or blank in the upstream token")
        }
        if decision.elevate {
            precondition(classification.surface != nil, "elevated without a candidate surface")
            precondition(classification.token.token != nil, "elevated without a usable token")
            precondition(PathSafety.check(request.target.path) == nil, "elevated an unsafe path")
            precondition(!classification.token.smuggledCarrier, "elevated next to a smuggled token carrier")
            precondition(request.method != "OPTIONS" && !request.method.isEmpty, "elevated OPTIONS or no method")
            precondition(decision.upstreamToken == owner, "elevated without the owner token")
            precondition(upstream == withoutTokens(wire), "the rewrite changed more than the token carriers")
        } else {
            precondition(upstream == wire, "a preserved target was changed")
            precondition(decision.upstreamToken == classification.token.token, "a preserved request lost its token")
        }
        precondition(classifier.classify(request).rule == classification.rule, "classification is not deterministic")
        return decision
    }

    /// An independent model of §6's removal: drop every `&`-separated query component named exactly
    /// `X-Plex-Token`, keep the rest in order, drop the `?` when nothing is left.
    public static func withoutTokens(_ target: String) -> String {
        guard let mark = target.firstIndex(of: "?") else { return target }
        let kept = target[target.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false).filter {
            part in part.prefix { $0 != "=" } != "X-Plex-Token"
        }
        return kept.isEmpty ? String(target[..<mark]) : target[...mark] + kept.joined(separator: "&")
    }
}

/// Reads a fuzz input as a sequence of small decisions and byte runs.
public struct FuzzInput {
    public var bytes: ArraySlice<UInt8>

    public init(_ pointer: UnsafePointer<UInt8>?, _ count: Int) {
        bytes = pointer.map { Array(UnsafeBufferPointer(start: $0, count: count))[...] } ?? []
    }

    public mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }

    public mutating func pick<T>(_ options: [T]) -> T { options[Int(byte()) % options.count] }

    /// Bytes up to the next `0x0A` (dropped), or the rest.
    public mutating func line() -> ArraySlice<UInt8> {
        guard let newline = bytes.firstIndex(of: 0x0A) else {
            defer { bytes = [] }
            return bytes
        }
        defer { bytes = bytes[(newline + 1)...] }
        return bytes[..<newline]
    }

    public var isEmpty: Bool { bytes.isEmpty }
}
