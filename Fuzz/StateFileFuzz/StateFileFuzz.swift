import FuzzReplay
import LiveTVAuthzCore

/// The state-file decoder on arbitrary bytes. Invariants: it never traps or hangs; whatever it accepts
/// re-encodes to bytes it accepts again, unchanged (so a written file always loads back as written), and
/// every accepted number is within the format's range.
let stateFileTarget: FuzzTarget = { data, size in
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let snapshot = try? GuardStateCodec.decode(bytes) else { return 0 }
    let latest = Timestamp(unixSeconds: GuardStateCodec.latestSecond)
    for record in snapshot.sources.values {
        precondition(record.failures >= 0 && Int64(record.failures) <= GuardStateCodec.maximumFailures)
        precondition(record.windowStart <= latest && (record.blockedUntil ?? latest) <= latest)
    }
    for session in snapshot.sessions {
        precondition(!session.keys.isEmpty && session.keys.count <= GuardStateCodec.maximumKeysPerSession)
        precondition(session.lastSeen <= latest && session.provenUntil <= latest)
    }
    let again = try? GuardStateCodec.decode(GuardStateCodec.encode(snapshot))
    precondition(
        again?.sources == snapshot.sources && Set(again?.sessions ?? []) == Set(snapshot.sessions),
        "a decoded state does not survive encode and decode")
    // The plausibility check and the pure state types' arithmetic must not trap either.
    let now = Timestamp(unixSeconds: 1_800_000_000)
    _ = GuardStateCodec.implausibility(of: snapshot, policy: AbusePolicy(), now: now)
    var blocker = AbuseBlocker(policy: AbusePolicy(), restoring: snapshot.sources, now: now)
    for key in snapshot.sources.keys.prefix(4) { _ = blocker.recordFailure(source: key, at: now) }
    var tracker = PlaybackTracker(policy: PlaybackPolicy(), restoring: snapshot.sessions, now: now)
    for session in snapshot.sessions.prefix(4) {
        _ = tracker.session(named: session.keys, at: now)
        tracker.touch(session.id, learning: session.keys, provenUntil: session.provenUntil, at: now)
    }
    return 0
}

@main
struct StateFileFuzz {
    static func main() { FuzzMain.run(stateFileTarget) }
}
