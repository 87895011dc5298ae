import Foundation
import LiveTVAuthzCore

#if canImport(Glibc)
    import Glibc
#endif

/// One source the blocker remembers, as `blocks list` shows it: fingerprints only, never an address.
public struct BlockEntry: Codable, Sendable, Equatable {
    public var source: String
    public var failures: Int
    /// RFC 3339, when the current failure window started.
    public var windowStart: String
    /// RFC 3339, or `nil` while the source is only counting failures.
    public var blockedUntil: String?
    public var reason: String

    public init(source: String, record: SourceRecord, policy: AbusePolicy, now: Timestamp) {
        self.source = source
        failures = record.failures
        windowStart = record.windowStart.rfc3339
        let blocked = record.blockedUntil.flatMap { $0 > now ? $0 : nil }
        blockedUntil = blocked?.rfc3339
        reason =
            blocked != nil
            ? "\(record.failures) failed Live TV attempts within \(GoDuration.format(policy.window))"
            : "\(record.failures) of \(policy.threshold) failed Live TV attempts in the current window"
    }

    /// Every source a snapshot holds, in `sorted` order: what `blocks list` shows, live or from a state file.
    public static func list(_ snapshot: GuardSnapshot, policy: AbusePolicy, now: Timestamp) -> [BlockEntry] {
        sorted(snapshot.sources.map { BlockEntry(source: $0.key, record: $0.value, policy: policy, now: now) })
    }

    /// Blocked first (longest block first), then by failures, then by fingerprint.
    public static func sorted(_ entries: [BlockEntry]) -> [BlockEntry] {
        entries.sorted {
            switch ($0.blockedUntil, $1.blockedUntil) {
            case (let a?, let b?) where a != b: return a > b
            case (.some, nil): return true
            case (nil, .some): return false
            default: return $0.failures != $1.failures ? $0.failures > $1.failures : $0.source < $1.source
            }
        }
    }

    /// The table `blocks list` prints.
    public static func table(_ entries: [BlockEntry]) -> String {
        guard !entries.isEmpty else { return "no blocked or failing sources" }
        var lines = ["source                   failures  blocked until         reason"]
        for entry in entries {
            let until = entry.blockedUntil ?? "-"
            lines.append(
                entry.source.padding(toLength: 25, withPad: " ", startingAt: 0)
                    + String(entry.failures).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + until.padding(toLength: 22, withPad: " ", startingAt: 0) + entry.reason)
        }
        return lines.joined(separator: "\n")
    }
}

/// Lists and lifts blocks in the running service (the `/v1/blocks` operator endpoints). Every unblock is
/// audited: `plexlabelproxy_audit: outcome=operator_unblock source=… count=…`.
public struct BlockAdministration: Sendable {
    let state: any GuardStateStore
    let audit: AuditLog
    let policy: AbusePolicy
    let clock: any WallClock

    public init(state: any GuardStateStore, audit: AuditLog, policy: AbusePolicy, clock: any WallClock) {
        self.state = state
        self.audit = audit
        self.policy = policy
        self.clock = clock
    }

    public func list() -> [BlockEntry] {
        let now = clock.now()
        return BlockEntry.list(state.snapshot(at: now), policy: policy, now: now)
    }

    /// Forgets one source (a `sha256:` fingerprint) or, with `nil`, every source. The number forgotten.
    public func unblock(_ source: String?) -> Int {
        let count = state.forget(source: source)
        audit.recordOperator(action: "operator_unblock", source: source ?? "all", count: count)
        return count
    }

    /// Whether `text` is a source fingerprint as the service writes them.
    public static func isFingerprint(_ text: String) -> Bool {
        text.hasPrefix("sha256:") && text.count == 23
            && text.dropFirst(7).allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}

/// Held by a running service for its state file, so `blocks` never edits a file under a live service.
public final class StateFileLock: Sendable {
    public let path: String
    private let descriptor: Int32

    /// Takes the lock (`<state file>.lock`, `flock`), or throws when another process holds it.
    public init(stateFile: String) throws(AbuseStateFile.StateFileError) {
        path = stateFile + ".lock"
        let directory = AbuseStateFile(path: stateFile).directory
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw AbuseStateFile.StateFileError.system("cannot create \(directory)", errno)
        }
        // Read-only is enough for flock, and holds no file open for writing: a file system remounted
        // read-only under the service stays remountable, and an existing lock file works on one.
        var descriptor = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if descriptor < 0, errno == EROFS { descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        guard descriptor >= 0 else { throw AbuseStateFile.StateFileError.system("cannot open \(path)", errno) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(descriptor)
            if code == EWOULDBLOCK { throw AbuseStateFile.StateFileError.locked(path) }
            throw AbuseStateFile.StateFileError.system("cannot lock \(path)", code)
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}
