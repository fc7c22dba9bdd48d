import GLMJSON

/// Python's number spelling (`int(str)`, `float(str)`) and whitespace on UTF-8 bytes, which vLLM's parser
/// inherits; `str.isspace()`/`str.strip()` themselves are GLMJSON's `PythonString`, shared with the templates.
enum PythonText {
    static func isSpace(_ v: UInt32) -> Bool { PythonString.isSpace(v) }

    /// `str.strip()`.
    static func strip(_ s: String) -> String { PythonString.strip(s) }

    /// Where the trailing whitespace of valid UTF-8 `bytes` starts (`bytes.count` when it has none).
    static func trailingWhitespaceStart(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var end = bytes.count
        while end > 0 {
            var start = end - 1
            while start > 0 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
            guard let scalar = decodeScalar(bytes, from: start, to: end), isSpace(scalar) else { return end }
            end = start
        }
        return 0
    }

    /// Whether valid UTF-8 `bytes` are all whitespace (true for no bytes).
    static func isAllWhitespace(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < bytes.count {
            let lead = bytes[i]
            let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            guard let scalar = decodeScalar(bytes, from: i, to: min(i + length, bytes.count)), isSpace(scalar) else {
                return false
            }
            i += length
        }
        return true
    }

    /// The scalar encoded in `bytes[from..<to]`; nil for sequences longer than 3 bytes (never whitespace).
    private static func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> UInt32? {
        switch to - from {
        case 1: return UInt32(bytes[from])
        case 2: return UInt32(bytes[from] & 0x1F) << 6 | UInt32(bytes[from + 1] & 0x3F)
        case 3: return UInt32(bytes[from] & 0x0F) << 12 | UInt32(bytes[from + 1] & 0x3F) << 6 | UInt32(bytes[from + 2] & 0x3F)
        default: return nil
        }
    }

    /// `int(s)` as Python parses a string: surrounding whitespace, one sign, decimal digits of any script with
    /// single underscores between them. Returns the normalised decimal text, or nil where Python raises.
    static func integer(_ s: String) -> String? {
        let scalars = Array(strip(s).unicodeScalars)
        var i = 0
        var negative = false
        if i < scalars.count, scalars[i] == "+" || scalars[i] == "-" {
            negative = scalars[i] == "-"
            i += 1
        }
        var digits: [UInt8] = []
        var lastWasDigit = false
        while i < scalars.count {
            let scalar = scalars[i]
            if scalar == "_" {
                guard lastWasDigit, i + 1 < scalars.count, decimalDigit(scalars[i + 1]) != nil else { return nil }
                lastWasDigit = false
            } else if let d = decimalDigit(scalar) {
                if !(digits.isEmpty && d == 0) { digits.append(UInt8(ascii: "0") + d) }
                lastWasDigit = true
            } else {
                return nil
            }
            i += 1
        }
        guard lastWasDigit else { return nil }
        if digits.isEmpty { return "0" }
        return (negative ? "-" : "") + String(decoding: digits, as: UTF8.self)
    }

    /// `float(s)` for finite results: the same spelling rules as `integer` plus a fraction and an exponent.
    /// nil where Python raises and for `inf`/`nan` (vLLM discards non-finite numbers).
    static func finiteFloat(_ s: String) -> Double? {
        var ascii: [UInt8] = []
        for scalar in strip(s).unicodeScalars {
            if let d = decimalDigit(scalar) {
                ascii.append(UInt8(ascii: "0") + d)
            } else if scalar.isASCII {
                ascii.append(UInt8(scalar.value))
            } else {
                return nil
            }
        }
        guard let plain = removingDigitUnderscores(ascii) else { return nil }
        guard let value = Double(String(decoding: plain, as: UTF8.self)), value.isFinite else { return nil }
        return value
    }

    /// Checks Python's float grammar (`[sign] (digits [. [digits]] | . digits) [e [sign] digits]`, single
    /// underscores only between digits) and returns the text without underscores; nil if it does not match.
    private static func removingDigitUnderscores(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        func digitPart() -> Int {
            var count = 0
            while i < text.count {
                if isDigit(text[i]) {
                    out.append(text[i]); count += 1; i += 1
                } else if text[i] == UInt8(ascii: "_"), count > 0, i + 1 < text.count, isDigit(text[i + 1]) {
                    i += 1
                } else {
                    break
                }
            }
            return count
        }
        if i < text.count, text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") { out.append(text[i]); i += 1 }
        var mantissaDigits = digitPart()
        if i < text.count, text[i] == UInt8(ascii: ".") {
            out.append(text[i]); i += 1
            mantissaDigits += digitPart()
        }
        guard mantissaDigits > 0 else { return nil }
        if i < text.count, text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E") {
            out.append(text[i]); i += 1
            if i < text.count, text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") { out.append(text[i]); i += 1 }
            guard digitPart() > 0 else { return nil }
        }
        return i == text.count ? out : nil
    }

    private static func decimalDigit(_ scalar: Unicode.Scalar) -> UInt8? {
        if scalar.value >= 0x30 && scalar.value <= 0x39 { return UInt8(scalar.value - 0x30) }
        guard scalar.value >= 0x80, scalar.properties.numericType == .decimal,
              let v = scalar.properties.numericValue, v >= 0, v <= 9 else { return nil }
        return UInt8(v)
    }

    /// `str(int(x))` for a finite, integral double: exact decimal digits, however large.
    static func exactIntegerText(_ x: Double) -> String {
        if x.magnitude < 9.0e18 { return String(Int64(x)) }
        // x = significand * 2^shift with a 53-bit integer significand; shift >= 10 here.
        var limbs: [UInt64] = []   // base 1e9, least significant first
        var significand = x.significandBitPattern | (1 << 52)
        while significand > 0 { limbs.append(significand % 1_000_000_000); significand /= 1_000_000_000 }
        var shift = Int(x.exponent) - 52
        while shift > 0 {
            let step = min(shift, 29)
            var carry: UInt64 = 0
            for j in limbs.indices {
                let v = limbs[j] << UInt64(step) + carry
                limbs[j] = v % 1_000_000_000
                carry = v / 1_000_000_000
            }
            while carry > 0 { limbs.append(carry % 1_000_000_000); carry /= 1_000_000_000 }
            shift -= step
        }
        var text = x < 0 ? "-" : ""
        text += String(limbs.last ?? 0)
        for limb in limbs.dropLast().reversed() {
            let part = String(limb)
            text += String(repeating: "0", count: 9 - part.count) + part
        }
        return text
    }
}
