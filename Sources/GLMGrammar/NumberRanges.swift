import GLMJSON

/// A decimal number as digit strings: `negative`, integer digits (canonical: no leading zeros, "0" for zero)
/// and fraction digits (no trailing zeros). Bounds from a schema become these, so ranges are exact for any
/// size (no rounding to 64-bit integers or doubles).
struct Decimal: Comparable {
    var negative: Bool
    var integer: [UInt8]   // digit values
    var fraction: [UInt8]

    var isZero: Bool { integer == [0] && fraction.isEmpty }

    init(negative: Bool, integer: [UInt8], fraction: [UInt8]) {
        var i = Array(integer.drop { $0 == 0 })
        if i.isEmpty { i = [0] }
        var f = fraction
        while f.last == 0 { f.removeLast() }
        self.integer = i
        self.fraction = f
        self.negative = negative && !(i == [0] && f.isEmpty)
    }

    /// Parses a JSON number's text (sign, digits, fraction, exponent).
    init?(text: String) {
        var s = Substring(text)
        var negative = false
        if s.first == "-" { negative = true; s = s.dropFirst() } else if s.first == "+" { s = s.dropFirst() }
        var mantissa = s
        var exponent = 0
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = s[..<e]
            guard let x = Int(s[s.index(after: e)...]), abs(x) < 100_000 else { return nil }
            exponent = x
        }
        var intPart = mantissa, fracPart: Substring = ""
        if let dot = mantissa.firstIndex(of: ".") {
            intPart = mantissa[..<dot]
            fracPart = mantissa[mantissa.index(after: dot)...]
        }
        guard !(intPart.isEmpty && fracPart.isEmpty) else { return nil }
        var digits: [UInt8] = []
        for c in intPart + fracPart {
            guard let v = c.wholeNumberValue, c.isASCII else { return nil }
            digits.append(UInt8(v))
        }
        // Shift the decimal point by the exponent.
        var point = intPart.count + exponent
        if point < 0 {
            digits = Array(repeating: 0, count: -point) + digits
            point = 0
        }
        if point > digits.count { digits += Array(repeating: 0, count: point - digits.count) }
        self.init(negative: negative, integer: Array(digits[..<point]), fraction: Array(digits[point...]))
    }

    init?(_ value: JSONValue) {
        switch value {
        case .integer(let t): self.init(text: t)
        case .double(let d):
            guard d.isFinite else { return nil }
            self.init(text: PythonFloat.repr(d))
        default: return nil
        }
    }

    static func < (a: Decimal, b: Decimal) -> Bool {
        if a.negative != b.negative { return a.negative }
        let magnitudeLess = Decimal.magnitudeLess(a, b)
        return a.negative ? Decimal.magnitudeLess(b, a) : magnitudeLess
    }

    private static func magnitudeLess(_ a: Decimal, _ b: Decimal) -> Bool {
        if a.integer.count != b.integer.count { return a.integer.count < b.integer.count }
        if a.integer != b.integer { return a.integer.lexicographicallyPrecedes(b.integer) }
        return a.fraction.lexicographicallyPrecedes(b.fraction)
    }

    /// The smallest integer >= self (`ceil`) and the largest <= self (`floor`).
    var ceiling: Decimal {
        if fraction.isEmpty || negative { return Decimal(negative: negative, integer: integer, fraction: []) }
        return Decimal(negative: false, integer: Decimal.increment(integer), fraction: [])
    }

    var floor: Decimal {
        if fraction.isEmpty || !negative { return Decimal(negative: negative, integer: integer, fraction: []) }
        return Decimal(negative: true, integer: Decimal.increment(integer), fraction: [])
    }

    /// self + 1 and self - 1 for integers.
    var successor: Decimal {
        if !negative { return Decimal(negative: false, integer: Decimal.increment(integer), fraction: []) }
        return Decimal(negative: true, integer: Decimal.decrement(integer), fraction: [])
    }

    var predecessor: Decimal {
        if negative || isZero { return Decimal(negative: true, integer: Decimal.increment(integer), fraction: []) }
        return Decimal(negative: false, integer: Decimal.decrement(integer), fraction: [])
    }

    private static func increment(_ digits: [UInt8]) -> [UInt8] {
        var d = digits
        var i = d.count - 1
        while i >= 0 {
            if d[i] < 9 { d[i] += 1; return d }
            d[i] = 0
            i -= 1
        }
        return [1] + d
    }

    private static func decrement(_ digits: [UInt8]) -> [UInt8] {
        var d = digits
        var i = d.count - 1
        while i >= 0 {
            if d[i] > 0 { d[i] -= 1; break }
            d[i] = 9
            i -= 1
        }
        return d
    }
}

/// Regular languages of number texts within bounds, built digit by digit as unions (no intersections, whose
/// derivatives cost far more in the lexer).
enum NumberRanges {
    private static func digits(_ lo: UInt8, _ hi: UInt8) -> CharRegex {
        lo > hi ? .nothing : .set(CharSet(UInt32(0x30 + lo)...UInt32(0x30 + hi)))
    }
    private static let anyDigit = digits(0, 9)
    private static let anyDigits = CharRegex.repetition(anyDigit, 0, nil)
    private static func exact<C: Collection>(_ ds: C) -> CharRegex where C.Element == UInt8 {
        .sequence(ds.map { digits($0, $0) })
    }
    /// Integer digits allowed before a fraction: Python reads at most about 17 significant digits, and with the
    /// two-digit exponent this keeps every float finite.
    static let maxFractionIntegerDigits = 16

    /// Equal-length digit strings from `lo` to `hi` (inclusive, lo <= hi).
    static func fixedWidth(_ lo: ArraySlice<UInt8>, _ hi: ArraySlice<UInt8>) -> CharRegex {
        guard let l0 = lo.first, let h0 = hi.first else { return .empty }
        let loRest = lo.dropFirst(), hiRest = hi.dropFirst()
        if loRest.isEmpty { return digits(l0, h0) }
        if l0 == h0 { return .sequence([digits(l0, l0), fixedWidth(loRest, hiRest)]) }
        let loZeros = loRest.allSatisfy { $0 == 0 }, hiNines = hiRest.allSatisfy { $0 == 9 }
        var options: [CharRegex] = []
        if !loZeros { options.append(.sequence([digits(l0, l0), fixedWidth(loRest, ArraySlice(repeating: 9, count: loRest.count))])) }
        let first = loZeros ? l0 : l0 + 1, last = hiNines ? h0 : h0 - 1
        if first <= last { options.append(.sequence([digits(first, last), .repetition(anyDigit, loRest.count, loRest.count)])) }
        if !hiNines { options.append(.sequence([digits(h0, h0), fixedWidth(ArraySlice(repeating: 0, count: hiRest.count), hiRest)])) }
        return .alternatives(options)
    }

    /// Canonical natural numbers ("0", "[1-9][0-9]*") from `a` to `b` inclusive (`b` nil: unbounded), with at
    /// most `maxDigits` digits when given.
    static func naturals(from a: [UInt8], to b: [UInt8]?, maxDigits: Int? = nil) -> CharRegex {
        let la = a.count
        var lb = b?.count ?? Int.max
        if let m = maxDigits { lb = min(lb, m) }
        if let b, la == b.count, b.lexicographicallyPrecedes(a) { return .nothing }
        guard la <= lb else { return .nothing }
        func smallest(_ length: Int) -> [UInt8] { length == 1 ? [0] : [1] + Array(repeating: 0, count: length - 1) }
        var options: [CharRegex] = []
        // The length of `a`.
        let topOfA = (b != nil && b!.count == la) ? b! : Array(repeating: 9, count: la)
        options.append(fixedWidth(a[...], topOfA[...]))
        // Lengths strictly between, as one run.
        let cappedEnd = b.map { $0.count == lb ? lb - 1 : lb } ?? lb
        if la + 1 <= cappedEnd {
            let hiRepeat: Int? = cappedEnd == Int.max ? nil : cappedEnd - 1
            options.append(.sequence([digits(1, 9), .repetition(anyDigit, la, hiRepeat)]))
        }
        // The length of `b`.
        if let b, b.count == lb, lb > la { options.append(fixedWidth(smallest(lb)[...], b[...])) }
        return .alternatives(options)
    }

    /// Canonical integer texts (no "-0") within [lower, upper] (both inclusive and integral when given).
    static func integers(lower: Decimal?, upper: Decimal?) -> CharRegex {
        if let lower, let upper, upper < lower { return .nothing }
        var options: [CharRegex] = []
        if upper.map({ !$0.negative }) ?? true {
            let from = lower.map { $0.negative ? [0] : $0.integer } ?? [0]
            options.append(naturals(from: from, to: upper?.integer))
        }
        if lower.map({ $0.negative }) ?? true {
            // -m with m from max(1, |upper|) to |lower|.
            var from: [UInt8] = [1]
            if let upper, upper.negative { from = upper.integer }
            options.append(.sequence([.literal("-"), naturals(from: from, to: lower?.integer)]))
        }
        return .alternatives(options)
    }

    /// Non-empty fraction digits F with 0.F > 0.f (`orEqual`: >=).
    static func fractionsAbove(_ f: [UInt8], orEqual: Bool) -> CharRegex {
        var options: [CharRegex] = []
        for i in f.indices where f[i] < 9 {
            options.append(.sequence([exact(f[..<i]), digits(f[i] + 1, 9), anyDigits]))
        }
        if orEqual {
            options.append(f.isEmpty ? .repetition(anyDigit, 1, nil) : .sequence([exact(f), anyDigits]))
        } else {
            options.append(.sequence([exact(f), anyDigits, digits(1, 9), anyDigits]))
        }
        return .alternatives(options)
    }

    /// Non-empty fraction digits F with 0.F < 0.f (`orEqual`: <=).
    static func fractionsBelow(_ f: [UInt8], orEqual: Bool) -> CharRegex {
        if f.isEmpty { return orEqual ? .repetition(digits(0, 0), 1, nil) : .nothing }
        var options: [CharRegex] = []
        for i in f.indices where f[i] > 0 {
            options.append(.sequence([exact(f[..<i]), digits(0, f[i] - 1), anyDigits]))
        }
        for k in 1..<max(1, f.count) { options.append(exact(f[..<k])) }   // proper prefixes: smaller
        if orEqual { options.append(.sequence([exact(f), .repetition(digits(0, 0), 0, nil)])) }
        return .alternatives(options)
    }

    /// Plain decimals "I" or "I.F" (I canonical, at most 16 digits when a fraction follows) whose value m
    /// satisfies the bounds (non-negative; `lower` nil = from 0 inclusive, `upper` nil = unbounded).
    static func magnitudes(lower: (Decimal, Bool)?, upper: (Decimal, Bool)?) -> CharRegex {
        let frac = CharRegex.sequence([.literal("."), .repetition(anyDigit, 1, nil)])
        let cap = maxFractionIntegerDigits
        func withFraction(_ i: [UInt8]) -> Bool { i.count <= cap }
        var options: [CharRegex] = []
        let lowI = lower?.0.integer, highI = upper?.0.integer
        if let lowI, let highI, highI.count < lowI.count || (highI.count == lowI.count && highI.lexicographicallyPrecedes(lowI)) {
            return .nothing
        }
        let sameInteger = lowI != nil && lowI == highI
        // Integer parts strictly inside: any fraction.
        if !sameInteger {
            let from = lowI.map { Decimal(negative: false, integer: $0, fraction: []).successor.integer } ?? [0]
            let to = highI.map { Decimal(negative: false, integer: $0, fraction: []).predecessor } 
            if to.map({ !$0.negative }) ?? true {
                let inside = naturals(from: from, to: to?.integer)
                options.append(inside)
                options.append(.sequence([naturals(from: from, to: to?.integer, maxDigits: cap), frac]))
            }
        }
        // The lower bound's integer part.
        if let (lo, exclusive) = lower, !sameInteger {
            if lo.fraction.isEmpty && !exclusive { options.append(exact(lo.integer)) }
            if withFraction(lo.integer) {
                options.append(.sequence([exact(lo.integer), .literal("."), fractionsAbove(lo.fraction, orEqual: !exclusive)]))
            }
        }
        // The upper bound's integer part.
        if let (hi, exclusive) = upper, !sameInteger {
            if !hi.fraction.isEmpty || !exclusive { options.append(exact(hi.integer)) }
            if withFraction(hi.integer) {
                options.append(.sequence([exact(hi.integer), .literal("."), fractionsBelow(hi.fraction, orEqual: !exclusive)]))
            }
        }
        // Both bounds share the integer part: the fraction lies between.
        if sameInteger, let (lo, le) = lower, let (hi, he) = upper {
            if lo.fraction.isEmpty && !le && (!hi.fraction.isEmpty || !he) { options.append(exact(lo.integer)) }
            if withFraction(lo.integer) {
                options.append(.sequence([exact(lo.integer), .literal("."),
                                          .intersection([fractionsAbove(lo.fraction, orEqual: !le),
                                                         fractionsBelow(hi.fraction, orEqual: !he)])]))
            }
        }
        return .alternatives(options)
    }

    /// Plain decimal texts (an optional '-', no exponent) whose value lies within the bounds.
    static func decimals(lower: (Decimal, Bool)?, upper: (Decimal, Bool)?) -> CharRegex {
        var options: [CharRegex] = []
        let zero = Decimal(negative: false, integer: [0], fraction: [])
        // Non-negative values.
        let nonNegativeExists = upper.map { (h, ex) in !h.negative && !(h.isZero && ex) } ?? true
        if nonNegativeExists {
            let lo = lower.flatMap { (l, ex) in l.negative ? nil : (l, ex) }
            options.append(magnitudes(lower: lo, upper: upper))
        }
        // Negative values -m (and "-0" forms when 0 is allowed).
        let negativeExists = lower.map { (l, ex) in l.negative || (l.isZero && !ex) } ?? true
        if negativeExists {
            var lo: (Decimal, Bool)?
            if let (h, ex) = upper, h.negative || (h.isZero && ex) { lo = (h.absolute, ex) }
            let hi = lower.map { (l, ex) in (l.isZero ? zero : l.absolute, ex) }
            options.append(.sequence([.literal("-"), magnitudes(lower: lo, upper: hi)]))
        }
        return .alternatives(options)
    }
}

extension Decimal {
    var absolute: Decimal { Decimal(negative: false, integer: integer, fraction: fraction) }
}
