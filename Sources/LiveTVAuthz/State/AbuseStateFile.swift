import Foundation
import LiveTVAuthzCore
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The persisted abuse state (`IPTV_TUNERR_PROXY_ABUSE_STATE_FILE`): blocks and failure windows keyed by
/// source fingerprint, so blocks survive restarts and no address is ever written to disk.
///
/// Writes are atomic (temporary file in the same directory, fsync, rename, fsync of the directory), the
/// file is 0600, a directory the service creates is 0700, and a symlink at the path is never followed.
public struct AbuseStateFile: Sendable {
    public let path: String
    /// Larger files are treated as corrupt rather than read into memory.
    public static let maximumSize = 32 * 1024 * 1024

    public init(path: String) {
        self.path = path
    }

    public enum StateFileError: Error, CustomStringConvertible {
        case symlink(String)
        case system(String, Int32)
        /// Another process (a running service) holds the state file's lock.
        case locked(String)

        public var description: String {
            switch self {
            case .symlink(let path): return "refusing to write through a symlink at \(path)"
            case .locked(let path): return "another plex-livetv-authz holds \(path): the service is running"
            case .system(let what, let code): return "\(what): \(String(cString: strerror(code)))"
            }
        }
    }

    /// Loads the records, dropping expired ones. A missing file is an empty state. A file that cannot be
    /// read or parsed (or a symlink in its place) is moved aside as `<name>.corrupt-<unix time>`, reported
    /// in one log line, and the service starts empty.
    public func load(
        policy: AbusePolicy, playback: PlaybackPolicy = PlaybackPolicy(), now: Timestamp, logger: Logger
    ) -> GuardSnapshot {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0 {
            let code = errno
            if code == ENOENT { return GuardSnapshot() }
            moveAside(
                now: now, logger: logger, why: code == ELOOP ? "it is a symlink" : String(cString: strerror(code)))
            return GuardSnapshot()
        }
        defer { close(descriptor) }
        // A file someone else could have written is not trusted (it decides who is blocked).
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            moveAside(now: now, logger: logger, why: String(cString: strerror(errno)))
            return GuardSnapshot()
        }
        if status.st_mode & 0o022 != 0 {
            moveAside(
                now: now, logger: logger,
                why: "it is writable by group or others (mode \(String(status.st_mode & 0o777, radix: 8)))")
            return GuardSnapshot()
        }
        if status.st_uid != geteuid() {
            moveAside(now: now, logger: logger, why: "it is owned by another user (uid \(status.st_uid))")
            return GuardSnapshot()
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 {
                moveAside(now: now, logger: logger, why: String(cString: strerror(errno)))
                return GuardSnapshot()
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            if bytes.count > Self.maximumSize {
                moveAside(now: now, logger: logger, why: "larger than \(Self.maximumSize) bytes")
                return GuardSnapshot()
            }
        }
        let snapshot: GuardSnapshot
        do {
            snapshot = try GuardStateCodec.decode(bytes)
        } catch {
            moveAside(now: now, logger: logger, why: "not a valid state file: \(error)")
            return GuardSnapshot()
        }
        if let implausible = GuardStateCodec.implausibility(of: snapshot, policy: policy, now: now) {
            moveAside(now: now, logger: logger, why: "not a state file this service wrote: \(implausible)")
            return GuardSnapshot()
        }
        // Expired records and idle sessions are dropped on the way in.
        return GuardSnapshot(
            sources: AbuseBlocker(policy: policy, restoring: snapshot.sources, now: now).sources,
            sessions: Array(
                PlaybackTracker(policy: playback, restoring: snapshot.sessions, now: now).sessions.values.sorted {
                    $0.id < $1.id
                }))
    }

    /// The folder the file lives in (`.` for a bare name).
    var directory: String {
        let folder = (path as NSString).deletingLastPathComponent
        return folder.isEmpty ? "." : folder
    }

    /// The name every temporary file of a write starts with (`.<name>.tmp-`), next to the file.
    var temporaryPrefix: String { ".\((path as NSString).lastPathComponent).tmp-" }

    /// Removes temporary files a killed writer left next to the state file (`.<name>.tmp-<pid>-<n>`); the
    /// number removed. Call only while holding the state file's lock: then no other writer exists.
    @discardableResult
    public func removeStaleTemporaries(logger: Logger) -> Int {
        let prefix = temporaryPrefix
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var removed = 0
        for name in names where name.hasPrefix(prefix) {
            if unlink("\(directory)/\(name)") == 0 { removed += 1 }
        }
        if removed > 0 {
            logger.notice("removed \(removed) temporary state file(s) left by an interrupted write in \(directory)")
        }
        return removed
    }

    /// Writes the records atomically.
    public func write(_ snapshot: GuardSnapshot) throws {
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw StateFileError.system("cannot create \(directory)", errno)
        }
        var status = stat()
        if lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFLNK {
            throw StateFileError.symlink(path)
        }
        let temporary = "\(directory)/\(temporaryPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StateFileError.system("cannot create \(temporary)", errno) }
        let data = GuardStateCodec.encode(snapshot)
        var written = 0
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            while written < raw.count {
                let count = Glibc.write(descriptor, raw.baseAddress! + written, raw.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                written += count
            }
        }
        if failure == 0, fchmod(descriptor, 0o600) != 0 { failure = errno }
        if failure == 0, fsync(descriptor) != 0 { failure = errno }
        close(descriptor)
        guard failure == 0 else {
            unlink(temporary)
            throw StateFileError.system("cannot write \(temporary)", failure)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw StateFileError.system("cannot rename onto \(path)", code)
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    private func moveAside(now: Timestamp, logger: Logger, why: String) {
        let aside = "\(path).corrupt-\(now.unixSeconds)"
        if rename(path, aside) == 0 {
            logger.error(
                "abuse state file \(path) is unusable (\(why)); moved it to \(aside) and starting with empty state")
        } else {
            logger.error(
                "abuse state file \(path) is unusable (\(why)) and could not be moved aside (\(String(cString: strerror(errno)))); starting with empty state"
            )
        }
    }
}
