import GLMJSON
import GLMSupport

/// transformers' `tojson` filter: Python `json.dumps(value, ensure_ascii, indent, separators, sort_keys)`
/// written straight from template values (no intermediate JSON tree; strings copied in runs).
struct PythonJSONEncoder {
    var ensureASCII = false
    var indent: String? = nil
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false

    /// The encoded text, or the Python error message (TypeError/ValueError text) when `value` cannot be dumped.
    func encode(_ value: Value) -> Result<String, EncodingFailure> {
        var out = ""
        if let failure = write(value, level: 0, into: &out) { return .failure(failure) }
        return .success(out)
    }

    struct EncodingFailure: Error {
        let kind: String
        let message: String
    }

    private func write(_ value: Value, level: Int, into out: inout String) -> EncodingFailure? {
        if level > 512 { return EncodingFailure(kind: "RecursionError", message: "maximum recursion depth exceeded while encoding a JSON object") }
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .bigInt(let t): out += t
        case .float(let d): out += PythonFloat.jsonRepr(d)
        case .string(let s), .markup(let s): writeString(s, into: &out)
        case .list(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return nil }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                if let failure = write(item, level: level + 1, into: &out) { return failure }
            }
            newline(level, into: &out)
            out += "]"
        case .dict(let d):
            if d.isEmpty { out += "{}"; return nil }
            var pairs: [(String, Value)] = []
            pairs.reserveCapacity(d.count)
            for (k, v) in d.pairs {
                let key: String
                switch k {
                case .string(let s), .markup(let s): key = s
                case .int(let i): key = String(i)
                case .bigInt(let t): key = t
                case .float(let f): key = PythonFloat.jsonRepr(f)
                case .bool(let b): key = b ? "true" : "false"
                case .none: key = "null"
                default: return EncodingFailure(kind: "TypeError", message: "keys must be str, int, float, bool or None, not \(k.typeName)")
                }
                pairs.append((key, v))
            }
            if sortKeys { pairs.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) } }
            out += "{"
            for (i, (key, v)) in pairs.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                writeString(key, into: &out)
                out += keySeparator
                if let failure = write(v, level: level + 1, into: &out) { return failure }
            }
            newline(level, into: &out)
            out += "}"
        default:
            return EncodingFailure(kind: "TypeError", message: "Object of type \(value.typeName) is not JSON serializable")
        }
        return nil
    }

    private func newline(_ level: Int, into out: inout String) {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    /// A JSON string literal with Python's escapes; runs of characters that need none are copied at once.
    private func writeString(_ s: String, into out: inout String) {
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
                // ensure_ascii: escape the whole code point (surrogate pair above the BMP).
                let scalarIndex = s.unicodeScalars.index(i, offsetBy: 0)
                let scalar = s.unicodeScalars[scalarIndex]
                if scalar.value < 0x10000 {
                    out += "\\u" + hexDigits(scalar.value, width: 4)
                } else {
                    let v = scalar.value - 0x10000
                    out += "\\u" + hexDigits(0xD800 + (v >> 10), width: 4) + "\\u" + hexDigits(0xDC00 + (v & 0x3FF), width: 4)
                }
                i = s.unicodeScalars.index(after: scalarIndex)
            } else {
                switch b {
                case 0x22: out += "\\\""
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                case 0x09: out += "\\t"
                case 0x08: out += "\\b"
                case 0x0C: out += "\\f"
                default: out += "\\u" + hexDigits(UInt32(b), width: 4)
                }
                i = utf8.index(after: i)
            }
            runStart = i
        }
        out += s[runStart..<i]
        out += "\""
    }
}
