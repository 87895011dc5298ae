/// A wall-clock instant (Unix time). The core never reads a clock: callers pass `now` in, so tests can
/// move time by hours in microseconds, and persisted blocks mean the same thing after a restart.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    public var unixNanoseconds: Int64

    public init(unixNanoseconds: Int64) {
        self.unixNanoseconds = unixNanoseconds
    }

    /// Saturates at the representable range (about years 1677 to 2262) instead of wrapping.
    public init(unixSeconds: Int64) {
        let (scaled, overflow) = unixSeconds.multipliedReportingOverflow(by: 1_000_000_000)
        self.unixNanoseconds = overflow ? (unixSeconds < 0 ? .min : .max) : scaled
    }

    public var unixSeconds: Int64 { unixNanoseconds / 1_000_000_000 }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.unixNanoseconds < rhs.unixNanoseconds }

    /// Saturating: a tampered timestamp or a huge duration ends at the end of time, never wraps around
    /// into the past (which would lift a block) or traps.
    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        Timestamp(
            unixNanoseconds: saturating(lhs.unixNanoseconds.addingReportingOverflow(rhs.nanoseconds), rhs > .zero))
    }

    /// Saturating, like `+`.
    public static func - (lhs: Timestamp, rhs: Timestamp) -> Duration {
        .nanoseconds(
            saturating(lhs.unixNanoseconds.subtractingReportingOverflow(rhs.unixNanoseconds), lhs > rhs))
    }

    private static func saturating(_ result: (partialValue: Int64, overflow: Bool), _ upward: Bool) -> Int64 {
        result.overflow ? (upward ? .max : .min) : result.partialValue
    }

    /// RFC 3339 in UTC with second precision, e.g. `2026-11-25T14:28:18Z`.
    public var rfc3339: String {
        let seconds =
            unixNanoseconds >= 0 ? unixNanoseconds / 1_000_000_000 : (unixNanoseconds - 999_999_999) / 1_000_000_000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    public var description: String { rfc3339 }
}

extension Duration {
    /// The whole duration in nanoseconds (saturating).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return saturatingAdd(scaled, attoseconds / 1_000_000_000)
    }
}

private func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? (b > 0 ? .max : .min) : sum
}

/// Go `time.Duration` syntax, which the original proxy's env vars use (`5m`, `1h30m`, `-1s`, `300ms`).
public enum GoDuration {
    /// Parses a Go duration: an optional sign, then one or more `<decimal><unit>` with units `ns`, `us`
    /// (`µs`), `ms`, `s`, `m`, `h`. A bare `0` is zero. `nil` for anything else.
    public static func parse(_ text: String) -> Duration? {
        var scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { return nil }
        var negative = false
        if scalars[0] == "-" || scalars[0] == "+" {
            negative = scalars[0] == "-"
            scalars.removeFirst()
        }
        if scalars.count == 1, scalars[0] == "0" { return .zero }
        guard !scalars.isEmpty else { return nil }
        var total: Double = 0
        var index = 0
        while index < scalars.count {
            let numberStart = index
            while index < scalars.count, ("0"..."9").contains(scalars[index]) || scalars[index] == "." { index += 1 }
            guard index > numberStart,
                let value = Double(String(String.UnicodeScalarView(scalars[numberStart..<index])))
            else { return nil }
            let unitStart = index
            while index < scalars.count, !("0"..."9").contains(scalars[index]), scalars[index] != "." { index += 1 }
            let unit = String(String.UnicodeScalarView(scalars[unitStart..<index]))
            let nanosecondsPerUnit: Double
            switch unit {
            case "ns": nanosecondsPerUnit = 1
            case "us", "µs", "μs": nanosecondsPerUnit = 1_000
            case "ms": nanosecondsPerUnit = 1_000_000
            case "s": nanosecondsPerUnit = 1_000_000_000
            case "m": nanosecondsPerUnit = 60_000_000_000
            case "h": nanosecondsPerUnit = 3_600_000_000_000
            default: return nil
            }
            total += value * nanosecondsPerUnit
        }
        guard total < 9.2e18 else { return nil }
        return .nanoseconds(Int64(negative ? -total : total))
    }

    /// Formats like Go's `Duration.String()`: `5m0s`, `1h30m0s`, `2.5s`, `300ms`, `0s`.
    public static func format(_ duration: Duration) -> String {
        var nanoseconds = duration.nanoseconds
        if nanoseconds == 0 { return "0s" }
        let sign = nanoseconds < 0 ? "-" : ""
        nanoseconds = nanoseconds.magnitude > Int64.max.magnitude ? .max : abs(nanoseconds)
        if nanoseconds < 1_000_000_000 {
            if nanoseconds < 1_000 { return "\(sign)\(nanoseconds)ns" }
            if nanoseconds < 1_000_000 { return sign + fraction(nanoseconds, 1_000) + "µs" }
            return sign + fraction(nanoseconds, 1_000_000) + "ms"
        }
        let hours = nanoseconds / 3_600_000_000_000
        let minutes = nanoseconds / 60_000_000_000 % 60
        let seconds = fraction(nanoseconds % 60_000_000_000, 1_000_000_000) + "s"
        if hours > 0 { return "\(sign)\(hours)h\(minutes)m\(seconds)" }
        if minutes > 0 { return "\(sign)\(minutes)m\(seconds)" }
        return sign + seconds
    }

    /// `value / unit` with trailing zeros of the fraction removed (`1500, 1000` → `1.5`).
    private static func fraction(_ value: Int64, _ unit: Int64) -> String {
        let whole = value / unit
        var remainder = value % unit
        guard remainder != 0 else { return String(whole) }
        var digits = String(remainder)
        digits = String(repeating: "0", count: String(unit).count - 1 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        remainder = 0
        return "\(whole).\(digits)"
    }
}
