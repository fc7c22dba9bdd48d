/// Writes JSON exactly as Python's `json.dumps` does, with its options.
public struct JSONWriter: Sendable {
    /// `ensure_ascii`: escape every non-ASCII character as `\uXXXX` (surrogate pairs above the BMP).
    public var ensureASCII: Bool
    /// `indent`: nil for one line; otherwise the string placed once per nesting level after each newline
    /// (Python's `indent=2` is `"  "`).
    public var indent: String?
    /// `separators`: between items and between key and value. nil means Python's default for the indent
    /// (`", "`/`": "` on one line, `","`/`": "` when indenting).
    public var itemSeparator: String
    public var keySeparator: String
    /// `sort_keys`.
    public var sortKeys: Bool

    public init(ensureASCII: Bool = false, indent: String? = nil, separators: (item: String, key: String)? = nil,
                sortKeys: Bool = false) {
        self.ensureASCII = ensureASCII
        self.indent = indent
        self.itemSeparator = separators?.item ?? (indent == nil ? ", " : ",")
        self.keySeparator = separators?.key ?? ": "
        self.sortKeys = sortKeys
    }

    /// `json.dumps(v, ensure_ascii=False)`: what transformers' `tojson` filter produces by default.
    public static let python = JSONWriter()
    /// Compact output for machine consumers (`separators=(",", ":")`, raw UTF-8).
    public static let compact = JSONWriter(separators: (",", ":"))

    public func string(_ value: JSONValue) -> String {
        var out = ""
        write(value, level: 0, into: &out)
        return out
    }

    public func write(_ value: JSONValue, level: Int, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let text): out += text
        case .double(let d): out += PythonFloat.jsonRepr(d)
        case .string(let s): JSONWriter.writeString(s, ensureASCII: ensureASCII, into: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                write(item, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out += "]"
        case .object(let object):
            if object.isEmpty { out += "{}"; return }
            out += "{"
            var pairs = object.pairs
            if sortKeys { pairs.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) } }
            for (i, pair) in pairs.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                JSONWriter.writeString(pair.key, ensureASCII: ensureASCII, into: &out)
                out += keySeparator
                write(pair.value, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out += "}"
        }
    }

    private func newline(_ level: Int, into out: inout String) {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    /// A JSON string literal with Python's escapes: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other controls as
    /// `\u00XX`, and with `ensureASCII` every non-ASCII character as `\uXXXX` (a surrogate pair above the BMP).
    /// Runs of characters that need no escape are copied at once.
    public static func writeString(_ s: String, ensureASCII: Bool, into out: inout String) {
        out += "\""
        let utf8 = s.utf8
        var runStart = utf8.startIndex
        var i = utf8.startIndex
        while i < utf8.endIndex {
            let b = utf8[i]
            if b >= 0x20 && b != 0x22 && b != 0x5C && (b < 0x80 || !ensureASCII) {
                i = utf8.index(after: i)
                continue
            }
            out += s[runStart..<i]
            if b >= 0x80 {
                let scalar = s.unicodeScalars[i]
                if scalar.value < 0x10000 {
                    out += "\\u" + hex4(scalar.value)
                } else {
                    let v = scalar.value - 0x10000
                    out += "\\u" + hex4(0xD800 + (v >> 10)) + "\\u" + hex4(0xDC00 + (v & 0x3FF))
                }
                i = s.unicodeScalars.index(after: i)
            } else {
                switch b {
                case 0x22: out += "\\\""
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                case 0x09: out += "\\t"
                case 0x08: out += "\\b"
                case 0x0C: out += "\\f"
                default: out += "\\u" + hex4(UInt32(b))
                }
                i = utf8.index(after: i)
            }
            runStart = i
        }
        out += s[runStart..<i]
        out += "\""
    }

    private static func hex4(_ v: UInt32) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(v >> 12 & 0xF)], digits[Int(v >> 8 & 0xF)], digits[Int(v >> 4 & 0xF)], digits[Int(v & 0xF)]])
    }
}

extension JSONValue {
    /// `json.dumps(self, ensure_ascii=False)`.
    public var pythonJSON: String { JSONWriter.python.string(self) }
    /// Compact JSON (`,` and `:` separators).
    public var compactJSON: String { JSONWriter.compact.string(self) }
}

/// Python's float formatting (`repr`/`str`), which `json.dumps` and Jinja's `{{ x }}` both use.
public enum PythonFloat {
    /// `repr(x)`: shortest round-trip digits; scientific when the decimal exponent is < -4 or >= 16;
    /// always a `.0` on integral values; `inf`, `-inf`, `nan`.
    public static func repr(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        return format(x)
    }

    /// As `json.dumps` writes a float: `NaN`, `Infinity`, `-Infinity` for the non-finite values.
    public static func jsonRepr(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x < 0 ? "-Infinity" : "Infinity" }
        return format(x)
    }

    private static func format(_ x: Double) -> String {
        // Swift's description gives the shortest round-trip digits; only the layout differs from Python's.
        let (negative, digits, exponent) = shortestDigits(x)
        var out = negative ? "-" : ""
        // decpt: position of the decimal point relative to the digit string (Python's naming).
        let decpt = exponent + 1
        if decpt > -4 && decpt <= 16 {
            if decpt <= 0 {
                out += "0." + String(repeating: "0", count: -decpt) + digits
            } else if decpt >= digits.count {
                out += digits + String(repeating: "0", count: decpt - digits.count) + ".0"
            } else {
                let i = digits.index(digits.startIndex, offsetBy: decpt)
                out += digits[..<i] + "." + digits[i...]
            }
        } else {
            out += String(digits.first ?? "0")
            if digits.count > 1 { out += "." + digits.dropFirst() }
            let e = decpt - 1
            out += (e < 0 ? "e-" : "e+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
        }
        return out
    }

    /// Sign, significant digits without leading/trailing zeros, and the decimal exponent of the first digit.
    static func shortestDigits(_ x: Double) -> (Bool, String, Int) {
        if x == 0 { return (x.sign == .minus, "0", 0) }
        var text = x.magnitude.description
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var intPart = text
        var fracPart = ""
        if let dot = text.firstIndex(of: ".") {
            intPart = String(text[..<dot])
            fracPart = String(text[text.index(after: dot)...])
        }
        var digits = intPart + fracPart
        var firstExponent = exponent + intPart.count - 1
        while digits.first == "0" && digits.count > 1 { digits.removeFirst(); firstExponent -= 1 }
        while digits.last == "0" && digits.count > 1 { digits.removeLast() }
        return (x.sign == .minus, digits, firstExponent)
    }
}
