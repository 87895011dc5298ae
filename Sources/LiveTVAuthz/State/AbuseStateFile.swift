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

        public var description: String {
            switch self {
            case .symlink(let path): return "refusing to write through a symlink at \(path)"
            case .system(let what, let code): return "\(what): \(String(cString: strerror(code)))"
            }
        }
    }

    /// Loads the records, dropping expired ones. A missing file is an empty state. A file that cannot be
    /// read or parsed (or a symlink in its place) is moved aside as `<name>.corrupt-<unix time>`, reported
    /// in one log line, and the service starts empty.
    public func load(policy: AbusePolicy, now: Timestamp, logger: Logger) -> [String: SourceRecord] {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0 {
            let code = errno
            if code == ENOENT { return [:] }
            moveAside(
                now: now, logger: logger, why: code == ELOOP ? "it is a symlink" : String(cString: strerror(code)))
            return [:]
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 {
                moveAside(now: now, logger: logger, why: String(cString: strerror(errno)))
                return [:]
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            if bytes.count > Self.maximumSize {
                moveAside(now: now, logger: logger, why: "larger than \(Self.maximumSize) bytes")
                return [:]
            }
        }
        guard let records = Self.decode(bytes) else {
            moveAside(now: now, logger: logger, why: "not a valid state file")
            return [:]
        }
        return AbuseBlocker(policy: policy, restoring: records, now: now).sources
    }

    /// Writes the records atomically.
    public func write(_ records: [String: SourceRecord]) throws {
        let directory =
            (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw StateFileError.system("cannot create \(directory)", errno)
        }
        var status = stat()
        if lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFLNK {
            throw StateFileError.symlink(path)
        }
        let temporary = "\(directory)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StateFileError.system("cannot create \(temporary)", errno) }
        let data = Self.encode(records)
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

    /// `{"version":1,"sources":{"sha256:…":{"failures":n,"windowStart":s,"blockedUntil":s}}}` with Unix
    /// seconds (fractional). Keys sorted so the file diffs cleanly.
    static func encode(_ records: [String: SourceRecord]) -> Data {
        var sources: [String: Any] = [:]
        for (key, record) in records {
            var entry: [String: Any] = [
                "failures": record.failures,
                "windowStart": Double(record.windowStart.unixNanoseconds) / 1e9,
            ]
            if let until = record.blockedUntil { entry["blockedUntil"] = Double(until.unixNanoseconds) / 1e9 }
            sources[key] = entry
        }
        let object: [String: Any] = ["version": 1, "sources": sources]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// Strict: anything unexpected, including a key that is not a fingerprint, makes the whole file invalid.
    static func decode(_ bytes: [UInt8]) -> [String: SourceRecord]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            object["version"] as? Int == 1, let sources = object["sources"] as? [String: Any]
        else { return nil }
        var records: [String: SourceRecord] = [:]
        for (key, value) in sources {
            guard Self.isFingerprint(key), let entry = value as? [String: Any],
                let failures = entry["failures"] as? Int, failures >= 0,
                let windowStart = (entry["windowStart"] as? NSNumber)?.doubleValue, windowStart.isFinite
            else { return nil }
            var blockedUntil: Timestamp? = nil
            if let until = entry["blockedUntil"] {
                guard let seconds = (until as? NSNumber)?.doubleValue, seconds.isFinite else { return nil }
                blockedUntil = Timestamp(unixNanoseconds: Int64(seconds * 1e9))
            }
            records[key] = SourceRecord(
                failures: failures, windowStart: Timestamp(unixNanoseconds: Int64(windowStart * 1e9)),
                blockedUntil: blockedUntil)
        }
        return records
    }

    static func isFingerprint(_ key: String) -> Bool {
        key.hasPrefix("sha256:") && key.count == 23
            && key.dropFirst(7).allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }
}
