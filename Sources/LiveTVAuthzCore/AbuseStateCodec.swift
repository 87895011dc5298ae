/// The state file's format (`IPTV_TUNERR_PROXY_ABUSE_STATE_FILE`), pure: bytes in, records out, and back.
///
/// `{"version":1,"sources":{"sha256:…":{"failures":n,"windowStart":s,"blockedUntil":s}}}` with Unix
/// seconds (up to nine decimals). Keys are source fingerprints, never addresses.
///
/// Decoding is strict and range-checked, because the file is input the service did not necessarily
/// write: every number must be in range before it becomes a `Timestamp`, and any problem refuses the
/// whole file (the runtime then moves it aside and starts empty) instead of trapping at load or at the
/// next failure.
public enum AbuseStateCodec {
    /// Latest instant a state file may name: 9,000,000,000 s after 1970 (year 2255), below what a
    /// nanosecond `Timestamp` holds, so no conversion can overflow.
    public static let latestSecond: Int64 = 9_000_000_000
    /// Most failures a record may hold.
    public static let maximumFailures: Int64 = 1_000_000

    /// Why a file was refused.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public static func decode(_ bytes: [UInt8]) throws(Invalid) -> [String: SourceRecord] {
        guard let document = StrictJSON.parse(bytes), let members = document.members else {
            throw Invalid("not a JSON object")
        }
        guard document["version"]?.integer(in: 1...1) == 1 else { throw Invalid("unknown version") }
        for member in members where member.key != "version" && member.key != "sources" {
            throw Invalid("unknown field \(member.key)")
        }
        guard let sources = document["sources"]?.members else { throw Invalid("no sources object") }
        var records: [String: SourceRecord] = [:]
        for (key, value) in sources {
            guard isFingerprint(key) else { throw Invalid("a key is not a source fingerprint") }
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
            records[key] = SourceRecord(failures: Int(failures), windowStart: windowStart, blockedUntil: blockedUntil)
        }
        return records
    }

    /// Deterministic bytes (keys sorted), so the file diffs cleanly.
    public static func encode(_ records: [String: SourceRecord]) -> [UInt8] {
        var text = #"{"version":1,"sources":{"#
        for (index, key) in records.keys.sorted().enumerated() {
            let record = records[key]!
            if index > 0 { text += "," }
            text += "\"\(key)\":{\"failures\":\(record.failures),\"windowStart\":\(seconds(record.windowStart))"
            if let until = record.blockedUntil { text += ",\"blockedUntil\":\(seconds(until))" }
            text += "}"
        }
        text += "}}\n"
        return Array(text.utf8)
    }

    /// `sha256:` and 16 lower-case hex digits.
    public static func isFingerprint(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        return bytes.count == 23 && bytes.starts(with: Array("sha256:".utf8))
            && bytes.dropFirst(7).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
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
}

extension AbuseBlocker {
    /// Why restored records cannot be trusted, or `nil`. Beyond the format's own ranges: a window that
    /// starts in the future, or a block longer than this policy ever gives, means the file was not
    /// written by this service as configured (one minute of clock skew allowed).
    public static func implausibility(of records: [String: SourceRecord], policy: AbusePolicy, now: Timestamp)
        -> String?
    {
        let skew = Duration.seconds(60)
        for record in records.values {
            if record.windowStart > now + skew { return "a failure window starts in the future" }
            if let until = record.blockedUntil, until > now + policy.blockDuration + skew {
                return "a block ends later than \(GoDuration.format(policy.blockDuration)) from now"
            }
        }
        return nil
    }
}
