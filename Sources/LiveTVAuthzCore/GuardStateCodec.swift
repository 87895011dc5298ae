/// The guard's persistent state: abuse records and tracked playback sessions, fingerprints only.
public struct GuardSnapshot: Sendable, Hashable {
    public var sources: [String: SourceRecord]
    public var sessions: [TrackedSession]

    public init(sources: [String: SourceRecord] = [:], sessions: [TrackedSession] = []) {
        self.sources = sources
        self.sessions = sessions
    }
}

/// The state file's format (`IPTV_TUNERR_PROXY_ABUSE_STATE_FILE`), pure: bytes in, state out, and back.
///
/// Version 2: `{"version":2,"sources":{"sha256:…":{"failures":n,"windowStart":s,"blockedUntil":s}},
/// "sessions":[{"id":"sha256:…","source":"sha256:…","userToken":"sha256:…","keys":["uuid=sha256:…"],
/// "started":s,"lastSeen":s,"provenUntil":s}]}` with Unix seconds (up to nine decimals). Version 1 (no
/// sessions) still loads. Every key and value is a fingerprint, never an address or a token.
///
/// Decoding is strict and range-checked, because the file is input the service did not necessarily
/// write: every number must be in range before it becomes a `Timestamp`, and any problem refuses the
/// whole file (the runtime then moves it aside and starts empty) instead of trapping at load or later.
public enum GuardStateCodec {
    /// Latest instant a state file may name: 9,000,000,000 s after 1970 (year 2255), below what a
    /// nanosecond `Timestamp` holds, so no conversion can overflow.
    public static let latestSecond: Int64 = 9_000_000_000
    /// Most failures a record may hold.
    public static let maximumFailures: Int64 = 1_000_000
    /// Most sessions, and keys per session, a file may hold.
    public static let maximumSessions = 100_000
    public static let maximumKeysPerSession = 64

    /// Why a file was refused.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public static func decode(_ bytes: [UInt8]) throws(Invalid) -> GuardSnapshot {
        guard let document = StrictJSON.parse(bytes), let members = document.members else {
            throw Invalid("not a JSON object")
        }
        guard let version = document["version"]?.integer(in: 1...2) else { throw Invalid("unknown version") }
        for member in members where !["version", "sources", "sessions"].contains(member.key) {
            throw Invalid("unknown field \(member.key)")
        }
        guard let sources = document["sources"]?.members else { throw Invalid("no sources object") }
        var snapshot = GuardSnapshot()
        for (key, value) in sources {
            guard isFingerprint(key) else { throw Invalid("a key is not a source fingerprint") }
            snapshot.sources[key] = try record(value)
        }
        if let sessions = document["sessions"] {
            guard version == 2, case .array(let list) = sessions, list.count <= maximumSessions else {
                throw Invalid("sessions are not a list of at most \(maximumSessions)")
            }
            var ids = Set<String>()
            for value in list {
                let session = try session(value)
                guard ids.insert(session.id).inserted else { throw Invalid("a session id is repeated") }
                snapshot.sessions.append(session)
            }
        }
        return snapshot
    }

    static func record(_ value: StrictJSON) throws(Invalid) -> SourceRecord {
        guard let fields = value.members else { throw Invalid("a record is not an object") }
        for field in fields where !["failures", "windowStart", "blockedUntil"].contains(field.key) {
            throw Invalid("unknown record field \(field.key)")
        }
        guard let failures = value["failures"]?.integer(in: 0...maximumFailures) else {
            throw Invalid("failures out of range")
        }
        guard let windowStart = value["windowStart"].flatMap(timestamp) else {
            throw Invalid("windowStart out of range")
        }
        var blockedUntil: Timestamp? = nil
        if let until = value["blockedUntil"] {
            guard let parsed = timestamp(until) else { throw Invalid("blockedUntil out of range") }
            blockedUntil = parsed
        }
        return SourceRecord(failures: Int(failures), windowStart: windowStart, blockedUntil: blockedUntil)
    }

    static func session(_ value: StrictJSON) throws(Invalid) -> TrackedSession {
        guard let fields = value.members else { throw Invalid("a session is not an object") }
        let names = ["id", "source", "userToken", "keys", "started", "lastSeen", "provenUntil"]
        for field in fields where !names.contains(field.key) { throw Invalid("unknown session field \(field.key)") }
        func fingerprint(_ name: String) throws(Invalid) -> String {
            guard case .string(let text)? = value[name], isFingerprint(text) else {
                throw Invalid("session \(name) is not a fingerprint")
            }
            return text
        }
        func time(_ name: String) throws(Invalid) -> Timestamp {
            guard let parsed = value[name].flatMap(timestamp) else { throw Invalid("session \(name) out of range") }
            return parsed
        }
        guard case .array(let list)? = value["keys"], !list.isEmpty, list.count <= maximumKeysPerSession else {
            throw Invalid("session keys are not a list of 1 to \(maximumKeysPerSession)")
        }
        var keys = Set<PlaybackKey>()
        for entry in list {
            guard case .string(let text) = entry, let key = playbackKey(text) else {
                throw Invalid("a session key is not kind=fingerprint")
            }
            keys.insert(key)
        }
        return TrackedSession(
            id: try fingerprint("id"), source: try fingerprint("source"), userToken: try fingerprint("userToken"),
            keys: keys, started: try time("started"), lastSeen: try time("lastSeen"),
            provenUntil: try time("provenUntil"))
    }

    /// Deterministic bytes (keys sorted), so the file diffs cleanly.
    public static func encode(_ snapshot: GuardSnapshot) -> [UInt8] {
        var text = #"{"version":2,"sources":{"#
        for (index, key) in snapshot.sources.keys.sorted().enumerated() {
            let record = snapshot.sources[key]!
            if index > 0 { text += "," }
            text += "\"\(key)\":{\"failures\":\(record.failures),\"windowStart\":\(seconds(record.windowStart))"
            if let until = record.blockedUntil { text += ",\"blockedUntil\":\(seconds(until))" }
            text += "}"
        }
        text += #"},"sessions":["#
        for (index, session) in snapshot.sessions.sorted(by: { $0.id < $1.id }).enumerated() {
            if index > 0 { text += "," }
            let keys = session.keys.sorted().map { "\"\($0.kind.rawValue)=\($0.fingerprint)\"" }.joined(separator: ",")
            text += "{\"id\":\"\(session.id)\",\"source\":\"\(session.source)\",\"userToken\":\"\(session.userToken)\""
            text +=
                ",\"keys\":[\(keys)],\"started\":\(seconds(session.started)),\"lastSeen\":\(seconds(session.lastSeen))"
            text += ",\"provenUntil\":\(seconds(session.provenUntil))}"
        }
        text += "]}\n"
        return Array(text.utf8)
    }

    /// `sha256:` and 16 lower-case hex digits.
    public static func isFingerprint(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        return bytes.count == 23 && bytes.starts(with: Array("sha256:".utf8))
            && bytes.dropFirst(7).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// `kind=sha256:…`.
    static func playbackKey(_ text: String) -> PlaybackKey? {
        guard let equals = text.firstIndex(of: "="), let kind = PlaybackKey.Kind(rawValue: String(text[..<equals]))
        else { return nil }
        let fingerprint = String(text[text.index(after: equals)...])
        return isFingerprint(fingerprint) ? PlaybackKey(kind, fingerprint: fingerprint) : nil
    }

    /// Unix seconds `[0, latestSecond]` with up to nine decimals, read exactly (no floating point).
    static func timestamp(_ value: StrictJSON) -> Timestamp? {
        guard case .number(let text) = value, !text.hasPrefix("-"),
            !text.contains(where: { $0 == "e" || $0 == "E" })
        else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = Int64(parts[0]), whole <= latestSecond else { return nil }
        var nanoseconds: Int64 = 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard fraction.count <= 9, let digits = Int64(fraction) else { return nil }
            nanoseconds = digits * Int64(pow10(9 - fraction.count))
        }
        return Timestamp(unixNanoseconds: whole * 1_000_000_000 + nanoseconds)
    }

    private static func pow10(_ exponent: Int) -> Int { (0..<exponent).reduce(1) { value, _ in value * 10 } }

    /// `1800000000.5` (fraction only when there is one, trailing zeros removed).
    static func seconds(_ timestamp: Timestamp) -> String {
        let nanoseconds = max(0, timestamp.unixNanoseconds)
        let whole = nanoseconds / 1_000_000_000
        var fraction = nanoseconds % 1_000_000_000
        guard fraction != 0 else { return String(whole) }
        var digits = 9
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let text = String(fraction)
        return "\(whole)." + String(repeating: "0", count: digits - text.count) + text
    }

    /// Why restored state cannot be trusted, or `nil`. Beyond the format's own ranges: a window, a session
    /// or a proof that starts in the future, a block longer than this policy ever gives, or a session token
    /// proven for more than a day ahead means the file was not written by this service as configured (one
    /// minute of clock skew allowed).
    public static func implausibility(of snapshot: GuardSnapshot, policy: AbusePolicy, now: Timestamp) -> String? {
        let skew = Duration.seconds(60)
        for record in snapshot.sources.values {
            if record.windowStart > now + skew { return "a failure window starts in the future" }
            if let until = record.blockedUntil, until > now + policy.blockDuration + skew {
                return "a block ends later than \(GoDuration.format(policy.blockDuration)) from now"
            }
        }
        for session in snapshot.sessions {
            if session.started > now + skew || session.lastSeen > now + skew || session.started > session.lastSeen {
                return "a playback session was seen in the future"
            }
            if session.provenUntil > now + .seconds(86_400) { return "a playback session is proven too far ahead" }
        }
        return nil
    }
}
