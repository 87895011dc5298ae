import FuzzReplay
import LiveTVAuthzCore

/// The state-file decoder on arbitrary bytes. Invariants: it never traps or hangs; whatever it accepts
/// re-encodes to bytes it accepts again, unchanged (so a written file always loads back as written), and
/// every accepted number is within the format's range.
let stateFileTarget: FuzzTarget = { data, size in
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let records = try? AbuseStateCodec.decode(bytes) else { return 0 }
    let latest = Timestamp(unixSeconds: AbuseStateCodec.latestSecond)
    for record in records.values {
        precondition(record.failures >= 0 && Int64(record.failures) <= AbuseStateCodec.maximumFailures)
        precondition(record.windowStart <= latest && (record.blockedUntil ?? latest) <= latest)
    }
    let again = try? AbuseStateCodec.decode(AbuseStateCodec.encode(records))
    precondition(again == records, "a decoded state does not survive encode and decode")
    // The plausibility check and the blocker's arithmetic must not trap either.
    let now = Timestamp(unixSeconds: 1_800_000_000)
    _ = AbuseBlocker.implausibility(of: records, policy: AbusePolicy(), now: now)
    var blocker = AbuseBlocker(policy: AbusePolicy(), restoring: records, now: now)
    for key in records.keys.prefix(4) { _ = blocker.recordFailure(source: key, at: now) }
    return 0
}

@main
struct StateFileFuzz {
    static func main() { FuzzMain.run(stateFileTarget) }
}
