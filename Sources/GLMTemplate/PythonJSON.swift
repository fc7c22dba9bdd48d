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
        case .string(let s), .markup(let s): JSONWriter.writeString(s, ensureASCII: ensureASCII, into: &out)
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
                JSONWriter.writeString(key, ensureASCII: ensureASCII, into: &out)
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
}
