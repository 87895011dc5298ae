import Foundation
import LiveTVAuthzCore

#if canImport(Glibc)
    import Glibc
#endif

/// Secrets kept in files (the owner token, the frontend key): only the owner may read them.
public enum SecretFile {
    public struct FileError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The first line of a file that only its owner may read (mode 0600 or 0400), trimmed.
    public static func read(_ path: String) throws(FileError) -> String {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw FileError(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw FileError(
                description:
                    "\(path) is readable by group or others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it"
            )
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw FileError(description: "cannot read \(path)")
        }
        return String(text.split(whereSeparator: \.isNewline).first ?? "").trimmingCharacters(in: .whitespaces)
    }

    /// A Plex token kept in a secret file.
    public static func token(at path: String) throws(FileError) -> PlexToken {
        guard let token = PlexToken(try read(path)) else {
            throw FileError(description: "\(path) does not hold a usable token (1-4096 visible ASCII characters)")
        }
        return token
    }
}
