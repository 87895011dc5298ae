import Crypto

/// A Plex token. Its `description` and `debugDescription` print only the fingerprint, so a token
/// interpolated into a log message by accident leaks nothing; the raw value must be asked for by name.
public struct PlexToken: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The trimmed, decoded token. Only decision headers, the PMS validation call and `explain` read it.
    public let value: String

    /// Longest token accepted (plex-wire §1: opaque, 1–4096 characters; JWTs are a few hundred).
    public static let maximumLength = 4096

    /// A usable token: after trimming, 1–4096 bytes of visible ASCII. Anything else (control bytes,
    /// inner spaces, non-ASCII) could not be put into a header safely and is no Plex token.
    public init?(_ raw: some Collection<UInt8>) {
        self.init(slice: Array(raw)[...])
    }

    /// A usable token from array bytes (the hot path: query values are already slices of the target).
    public init?(slice raw: ArraySlice<UInt8>) {
        let trimmed = raw.trimmedBytes()
        guard !trimmed.isEmpty, trimmed.count <= Self.maximumLength,
            trimmed.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        self.value = String(decoding: trimmed, as: UTF8.self)
    }

    public init?(_ string: String) {
        self.init(slice: Array(string.utf8)[...])
    }

    /// `sha256:` + the first 16 lower-case hex digits of SHA-256 of the token.
    public var fingerprint: String { Fingerprint.of(value) }

    /// Equality whose time does not depend on where two tokens of equal length differ, for comparisons
    /// with the owner token (`==` may stop at the first differing byte).
    public func constantTimeEquals(_ other: PlexToken) -> Bool {
        ConstantTime.equals(value.utf8, other.value.utf8)
    }

    public var description: String { fingerprint }
    public var debugDescription: String { "PlexToken(\(fingerprint))" }
}

/// Short SHA-256 fingerprints for tokens and addresses (elevation-rules §9): enough to correlate log
/// lines, useless for recovering the value.
public enum Fingerprint {
    /// Written for a request without a token.
    public static let missing = "missing"

    /// `sha256:` + the first 16 lower-case hex digits of SHA-256 of the trimmed value.
    /// Runs on every audited decision (source and token), so it hashes the string's own bytes and writes
    /// the 23 characters in place: no intermediate arrays.
    public static func of(_ value: String) -> String {
        let digest = sha256(value)
        return String(unsafeUninitializedCapacity: 23) { out in
            for (index, byte) in "sha256:".utf8.enumerated() { out[index] = byte }
            digest.withUnsafeBytes { hash in
                for index in 0..<8 {
                    out[7 + 2 * index] = ASCII.lowerHexDigits[Int(hash[index] >> 4)]
                    out[8 + 2 * index] = ASCII.lowerHexDigits[Int(hash[index] & 0x0F)]
                }
            }
            return 23
        }
    }

    /// SHA-256 of the trimmed value's UTF-8 bytes, hashed in place (fingerprints, and the validation
    /// cache's key, whose token is trimmed already).
    public static func sha256(_ value: String) -> SHA256.Digest {
        var value = value
        return value.withUTF8 { bytes in
            var start = 0
            var end = bytes.count
            while start < end, ASCII.isWhitespace(bytes[start]) { start += 1 }
            while end > start, ASCII.isWhitespace(bytes[end - 1]) { end -= 1 }
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<end])))
            return hasher.finalize()
        }
    }
}

extension ASCII {
    static let lowerHexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}
