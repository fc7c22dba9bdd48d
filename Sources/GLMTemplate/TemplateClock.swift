import GLMJSON
import GLMSupport
#if canImport(Glibc)
import Glibc
#endif

/// The "now" that `strftime_now` formats. transformers reads the wall clock (`datetime.now()`, local time), so
/// a template that prints today's date (Llama 3.x, Mistral, ...) renders differently every day; a caller that
/// needs reproducible prompts (tests, caches keyed by prompt, reproducible builds) fixes the clock.
///
/// Precedence: an explicit time given with the render request, else `SOURCE_DATE_EPOCH` (the reproducible-builds
/// convention: seconds since the Unix epoch) when it is set, else the real clock. A fixed time is formatted in
/// UTC; the real clock in the process's local time zone, as transformers does. Either way the names of days
/// and months are the C locale's (English), whatever locale the host process set, as in a default Python.
public enum TemplateClock: Sendable, Equatable {
    /// The real clock, local time.
    case system
    /// A fixed instant, seconds since 1970-01-01T00:00:00Z, formatted in UTC.
    case fixed(epochSeconds: Int64)

    public static let sourceDateEpochVariable = "SOURCE_DATE_EPOCH"
    /// The variable's value now (read at every render, so a host may set it at any time).
    public static var sourceDateEpochValue: String? { getenv(sourceDateEpochVariable).map { String(cString: $0) } }

    /// The clock a render uses: `explicit` if given, else `SOURCE_DATE_EPOCH` if set, else `.system`.
    /// A malformed `SOURCE_DATE_EPOCH` is an error (the convention says to fail rather than guess).
    public static func resolve(explicit: Int64?, sourceDateEpoch: String? = sourceDateEpochValue)
        throws(GLMError) -> TemplateClock {
        if let explicit { return .fixed(epochSeconds: explicit) }
        guard let raw = sourceDateEpoch, !raw.isEmpty else { return .system }
        guard raw.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seconds = Int64(raw), seconds <= maxEpochSeconds
        else {
            throw .invalidArgument("\(sourceDateEpochVariable) is '\(raw)'; expected a non-negative integer of seconds since 1970")
        }
        return .fixed(epochSeconds: seconds)
    }

    /// The latest instant accepted (year 9999, Python's datetime.MAXYEAR), so a year always has four digits.
    public static let maxEpochSeconds: Int64 = 253_402_300_799
    public static let minEpochSeconds: Int64 = -62_135_596_800   // 0001-01-01T00:00:00Z, datetime.MINYEAR

    /// Checks that `seconds` is an instant Python's datetime can represent (years 1 to 9999).
    public static func validate(epochSeconds seconds: Int64) throws(GLMError) {
        guard seconds >= minEpochSeconds, seconds <= maxEpochSeconds else {
            throw .invalidArgument("now must be between \(minEpochSeconds) and \(maxEpochSeconds) seconds since 1970 (years 1 to 9999), got \(seconds)")
        }
    }

    /// The `now` field of a request: absent or null → nil; an integer of seconds since the epoch in Python's
    /// datetime range → that; anything else is an error naming `field`.
    public static func epochSeconds(_ value: JSONValue?, field: String) throws(GLMError) -> Int64? {
        switch value {
        case nil, .null?: return nil
        case .integer(let text)?:
            guard let seconds = Int64(text) else {
                throw .invalidArgument("\(field) is \(text); expected seconds since 1970 (years 1 to 9999)")
            }
            try validate(epochSeconds: seconds)
            return seconds
        case let other?:
            throw .invalidArgument("\(field) is \(other.compactJSON); expected an integer of seconds since 1970")
        }
    }

    /// `datetime.strftime(format)` at this clock's instant.
    public func format(_ format: String) -> String {
        var parts = tm()
        switch self {
        case .system:
            var now = time(nil)
            localtime_r(&now, &parts)
        case .fixed(let seconds):
            var instant = time_t(seconds)
            gmtime_r(&instant, &parts)
            // Python names a UTC datetime's zone "UTC" (glibc's gmtime says "GMT").
            parts.tm_zone = TemplateClock.utcName
        }
        guard let locale = TemplateClock.cLocale else { return "" }
        var capacity = 256
        while capacity <= 1 << 16 {
            var buffer = [CChar](repeating: 0, count: capacity)
            let written = strftime_l(&buffer, capacity, format, &parts, locale)
            if written > 0 || format.isEmpty {
                return String(decoding: buffer.prefix(written).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            capacity *= 4
        }
        return ""
    }

    /// The "C" locale, created once: day and month names independent of the host's setlocale().
    private static let cLocale: locale_t? = newlocale(Int32(1) << LC_TIME, "C", nil)  // LC_TIME_MASK (a macro Swift cannot import)
    private static let utcName: UnsafePointer<CChar> = {
        // A static C string that lives as long as the process (tm_zone is read by strftime only).
        let bytes = UnsafeMutablePointer<CChar>.allocate(capacity: 4)
        for (i, c) in "UTC\0".utf8.enumerated() { bytes[i] = CChar(bitPattern: c) }
        return UnsafePointer(bytes)
    }()
}
