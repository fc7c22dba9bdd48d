/// A set of Unicode scalars as one regex atom matches it: a literal, `.`, `\s`, `\p{L}`, `[^\r\n\p{L}\p{N}]`...
/// ASCII is answered from a 128-bit map; other scalars from their `UnicodeClasses` bits and explicit ranges.
struct PatternCharSet: Equatable {
    var ranges: [ClosedRange<UInt32>] = []
    /// Scalars whose class bits intersect this mask are members.
    var propertyMask: UInt32 = 0
    /// Scalars whose class bits do NOT intersect one of these masks are members (`\S`, `\P{L}` inside a class).
    var complementMasks: [UInt32] = []
    var negated = false
    /// Case-insensitive: a scalar is a member when it or its simple case fold is.
    var caseInsensitive = false
    private(set) var asciiLow: UInt64 = 0
    private(set) var asciiHigh: UInt64 = 0

    /// Computes the ASCII map; call once after the set is complete. Case-insensitivity is dropped when no
    /// member has another case (`(?i:'s)` starts with `'`: no fold lookups on every scalar tried).
    mutating func finish() {
        if caseInsensitive && !hasCasedMember { caseInsensitive = false }
        asciiLow = 0
        asciiHigh = 0
        for c in 0..<UInt32(128) where slowContains(c) {
            if c < 64 { asciiLow |= 1 << UInt64(c) } else { asciiHigh |= 1 << UInt64(c - 64) }
        }
    }

    private var hasCasedMember: Bool {
        for r in ranges {
            if r.count > 512 { return true }
            for c in r {
                if let scalar = Unicode.Scalar(c), scalar.properties.changesWhenCaseMapped || UnicodeClasses.simpleFold(c) != c {
                    return true
                }
            }
        }
        return false
    }

    @inline(__always)
    func contains(_ scalar: UInt32, bits: UInt32) -> Bool {
        if scalar < 64 { return asciiLow & (1 << UInt64(scalar)) != 0 }
        if scalar < 128 { return asciiHigh & (1 << UInt64(scalar - 64)) != 0 }
        return nonASCIIContains(scalar, bits: bits)
    }

    private func rawContains(_ scalar: UInt32, bits: UInt32) -> Bool {
        if bits & propertyMask != 0 { return true }
        for m in complementMasks where bits & m == 0 { return true }
        for r in ranges where r.contains(scalar) { return true }
        return false
    }

    private func nonASCIIContains(_ scalar: UInt32, bits: UInt32) -> Bool {
        var member = rawContains(scalar, bits: bits)
        if !member && caseInsensitive { member = foldedContains(scalar) }
        return member != negated
    }

    private func foldedContains(_ scalar: UInt32) -> Bool {
        let folded = UnicodeClasses.simpleFold(scalar)
        if folded != scalar && rawContains(folded, bits: UnicodeClasses.bits(folded)) { return true }
        // A range written in one case (`[A-Z]`) also holds the other case of its members.
        for r in ranges {
            for c in r where c < 0x20000 {
                if UnicodeClasses.simpleFold(c) == folded { return true }
                if r.count > 512 { break }
            }
        }
        return false
    }

    private func slowContains(_ scalar: UInt32) -> Bool {
        var member = rawContains(scalar, bits: UnicodeClasses.bits(scalar))
        if !member && caseInsensitive {
            let folded = UnicodeClasses.simpleFold(scalar)
            member = rawContains(folded, bits: UnicodeClasses.bits(folded))
            if !member {
                // ASCII letters: the other case.
                if scalar >= 0x41 && scalar <= 0x5A { member = rawContains(scalar + 32, bits: UnicodeClasses.bits(scalar + 32)) }
                if scalar >= 0x61 && scalar <= 0x7A { member = rawContains(scalar - 32, bits: UnicodeClasses.bits(scalar - 32)) }
            }
        }
        return member != negated
    }

    static func single(_ scalar: UInt32, caseInsensitive: Bool) -> PatternCharSet {
        var s = PatternCharSet()
        s.ranges = [scalar...scalar]
        s.caseInsensitive = caseInsensitive
        s.finish()
        return s
    }
}
