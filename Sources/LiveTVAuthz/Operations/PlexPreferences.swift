import AsyncHTTPClient
import Foundation
import LiveTVAuthzCore
import NIOCore
import NIOHTTP1

/// The PMS preferences that keep every client on the frontend (the runbook's bypasses): Relay off (a
/// relayed connection never reaches the frontend), manual port mapping on the frontend's port (no automatic
/// `plex.direct` mapping to 32400), and the frontend's URL advertised as the custom connection. PMS resets
/// the first two on upgrades, so `enforce-prefs` puts back whatever drifted.
public struct PreferencePolicy: Sendable, Equatable {
    /// Preference id and wanted value, in the order they are reported and sent.
    public let wanted: [(id: String, value: String)]

    /// From the public URL clients use, e.g. `https://media.example.com:443`. The port is always written
    /// out: Plex drops a bare `https://` URL's port otherwise.
    public init(publicURL: PMSURL) {
        let authority =
            publicURL.authority.hasSuffix(":\(publicURL.port)")
            ? publicURL.authority : "\(publicURL.authority):\(publicURL.port)"
        wanted = [
            ("RelayEnabled", "0"), ("ManualPortMappingMode", "1"), ("ManualPortMappingPort", String(publicURL.port)),
            ("customConnections", "\(publicURL.scheme)://\(authority)"),
        ]
    }

    public static func == (lhs: PreferencePolicy, rhs: PreferencePolicy) -> Bool {
        lhs.wanted.elementsEqual(rhs.wanted) { $0.id == $1.id && $0.value == $1.value }
    }

    /// One preference that is not what it should be (`current` is nil when PMS does not list it).
    public struct Drift: Sendable, Equatable, CustomStringConvertible {
        public let id: String
        public let current: String?
        public let wanted: String
        public var description: String { "\(id): \(current.map { "\"\($0)\"" } ?? "(not set)") -> \"\(wanted)\"" }
    }

    /// The wanted preferences whose current value differs.
    public func drift(from current: [String: String]) -> [Drift] {
        wanted.compactMap { id, value in
            current[id] == value ? nil : Drift(id: id, current: current[id], wanted: value)
        }
    }

    /// The query of the one `PUT /:/prefs` that fixes `drift` (names and values percent-encoded; never a
    /// token: that travels in the header).
    public static func query(fixing drift: [Drift]) -> String {
        drift.map { "\(percentEncoded($0.id))=\(percentEncoded($0.wanted))" }.joined(separator: "&")
    }

    /// Everything but RFC 3986's unreserved characters escaped, with the project's one percent-encoder.
    static func percentEncoded(_ text: String) -> String {
        PercentEscaping.escape(text) { byte in
            let letter = (0x61...0x7A).contains(byte | 0x20)
            let digit = (0x30...0x39).contains(byte)
            return !(letter || digit || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E)
        }
    }

    /// The values of `GET /:/prefs` (JSON, `Accept: application/json`): `MediaContainer.Setting[]` with
    /// `id` and a typed `value`; booleans become `1`/`0`, numbers their decimal text.
    public static func values(fromJSON body: [UInt8]) throws(PreferenceError) -> [String: String] {
        guard let prefs = try? JSONDecoder().decode(PrefsDocument.self, from: Data(body)) else {
            throw PreferenceError("PMS answered /:/prefs with something that is not a MediaContainer of Settings")
        }
        var values: [String: String] = [:]
        for setting in prefs.MediaContainer.Setting ?? [] { values[setting.id] = setting.value?.text ?? "" }
        return values
    }

    private struct PrefsDocument: Decodable {
        struct Container: Decodable { var Setting: [Entry]? }
        struct Entry: Decodable {
            var id: String
            var value: Value?
        }
        /// A typed value as text: booleans `1`/`0`, numbers in decimal.
        struct Value: Decodable {
            var text: String
            init(from decoder: any Decoder) throws {
                let single = try decoder.singleValueContainer()
                if let flag = try? single.decode(Bool.self) {
                    text = flag ? "1" : "0"
                } else if let number = try? single.decode(Int.self) {
                    text = String(number)
                } else if let number = try? single.decode(Double.self) {
                    text = String(number)
                } else {
                    text = (try? single.decode(String.self)) ?? ""
                }
            }
        }
        var MediaContainer: Container
    }
}

public struct PreferenceError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What `enforce-prefs` did.
public struct PreferenceReport: Sendable, Equatable {
    public var drift: [PreferencePolicy.Drift]
    /// Whether a `PUT` was sent (never in a dry run, never without drift).
    public var applied: Bool
    /// After the `PUT`: what still differs on read-back (empty when PMS took every change).
    public var remaining: [PreferencePolicy.Drift]
}

/// Reads `/:/prefs` as the owner, sends one `PUT` for what drifted, reads back. The owner token travels in
/// the `X-Plex-Token` header only.
public struct PreferenceEnforcer: Sendable {
    public let pms: PMSURL
    public let ownerToken: PlexToken
    public let timeout: Duration
    public let client: HTTPClient
    /// Told what is being done, as it starts (`enforce-prefs` prints it on standard error).
    public var progress: @Sendable (String) -> Void = { _ in }

    public init(pms: PMSURL, ownerToken: PlexToken, timeout: Duration, client: HTTPClient) {
        self.pms = pms
        self.ownerToken = ownerToken
        self.timeout = timeout
        self.client = client
    }

    public func enforce(_ policy: PreferencePolicy, dryRun: Bool) async throws(PreferenceError) -> PreferenceReport {
        progress("reading /:/prefs from \(pms)")
        let drift = policy.drift(from: try await read())
        guard !drift.isEmpty, !dryRun else { return PreferenceReport(drift: drift, applied: false, remaining: []) }
        progress("sending one PUT /:/prefs with \(drift.count) change(s)")
        let status = try await send(.PUT, "/:/prefs?" + PreferencePolicy.query(fixing: drift)).status
        guard (200..<300).contains(status) else {
            throw PreferenceError("PMS refused PUT /:/prefs with HTTP \(status)")
        }
        progress("reading /:/prefs back")
        return PreferenceReport(drift: drift, applied: true, remaining: policy.drift(from: try await read()))
    }

    func read() async throws(PreferenceError) -> [String: String] {
        let (status, body) = try await send(.GET, "/:/prefs")
        guard status == 200 else {
            let hint = status == 401 || status == 403 ? " (is this the owner's token for this server?)" : ""
            throw PreferenceError("PMS answered GET /:/prefs with HTTP \(status)\(hint)")
        }
        return try PreferencePolicy.values(fromJSON: body)
    }

    private func send(_ method: HTTPMethod, _ target: String) async throws(PreferenceError) -> (
        status: Int, body: [UInt8]
    ) {
        var request = HTTPClientRequest(url: "\(pms)\(target)")
        request.method = method
        request.headers.add(name: "X-Plex-Token", value: ownerToken.value)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "X-Plex-Product", value: "plex-livetv-authz")
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            let body = try await response.body.collect(upTo: 4 << 20)
            return (Int(response.status.code), Array(buffer: body))
        } catch {
            throw PreferenceError("PMS at \(pms) did not answer \(method) \(target.prefix { $0 != "?" }): \(error)")
        }
    }
}
