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
    /// Most bytes the text may have; the encoder stops with `EncodingFailure.tooLong` once it would pass them
    /// (a list can hold one big value many times, so the text can be far larger than the value's memory).
    var limit = Int.max
    /// Most work: bytes written plus `extraWork`; the encoder stops with `EncodingFailure.tooMuchWork` past it.
    var workLimit = Int.max

    /// The encoded text, or the Python error message (TypeError/ValueError text) when `value` cannot be dumped.
    func encode(_ value: Value) -> Result<String, EncodingFailure> {
        var extraWork = 0
        return encode(value, extraWork: &extraWork)
    }

    /// `encode`, adding to `extraWork` the work done beyond writing the text: sorting keys (each key read
    /// once more per level of the merge sort) and escaping strings byte by byte (`Interpreter.unicodeUnitsPerByte`
    /// per byte).
    func encode(_ value: Value, extraWork: inout Int) -> Result<String, EncodingFailure> {
        var out = ""
        if let failure = write(value, level: 0, into: &out, extraWork: &extraWork) { return .failure(failure) }
        return .success(out)
    }

    struct EncodingFailure: Error {
        let kind: String
        let message: String

        /// The text would have passed `limit`.
        static let tooLong = EncodingFailure(kind: "", message: "size")
        /// The work would have passed `workLimit`.
        static let tooMuchWork = EncodingFailure(kind: "", message: "work")
        /// One of the two limits was reached (not a Python error).
        var isLimit: Bool { kind.isEmpty }
    }

    /// The limit `out` plus `more` bytes (and the extra work) would pass, if any.
    private func overLimit(_ out: String, _ more: Int, _ extraWork: Int) -> EncodingFailure? {
        if more > limit &- out.utf8.count { return .tooLong }
        if more > workLimit &- out.utf8.count &- extraWork { return .tooMuchWork }
        return nil
    }

    private func write(_ value: Value, level: Int, into out: inout String, extraWork: inout Int) -> EncodingFailure? {
        if level > 512 { return EncodingFailure(kind: "RecursionError", message: "maximum recursion depth exceeded while encoding a JSON object") }
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .bigInt(let t): out += t
        case .float(let d): out += PythonFloat.jsonRepr(d)
        case .string(let s), .markup(let s):
            if let failure = writeString(s, into: &out, &extraWork) { return failure }
        case .list(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return nil }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0, let failure = append(itemSeparator, to: &out, extraWork) { return failure }
                if let failure = newline(level + 1, into: &out, extraWork) { return failure }
                if let failure = write(item, level: level + 1, into: &out, extraWork: &extraWork) { return failure }
            }
            if let failure = newline(level, into: &out, extraWork) { return failure }
            out += "]"
        case .dict(let d):
            if d.isEmpty { out += "{}"; return nil }
            var pairs: [(String, Value)] = []
            pairs.reserveCapacity(d.count)
            var keyBytes = 0
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
                keyBytes &+= key.utf8.count + 16
                pairs.append((key, v))
            }
            if sortKeys {
                // A merge sort reads each key about log2(n) times.
                extraWork &+= keyBytes &* (Int.bitWidth - pairs.count.leadingZeroBitCount)
                if let failure = overLimit(out, 0, extraWork) { return failure }
                pairs.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
            }
            out += "{"
            for (i, (key, v)) in pairs.enumerated() {
                if i > 0, let failure = append(itemSeparator, to: &out, extraWork) { return failure }
                if let failure = newline(level + 1, into: &out, extraWork) { return failure }
                if let failure = writeString(key, into: &out, &extraWork) { return failure }
                if let failure = append(keySeparator, to: &out, extraWork) { return failure }
                if let failure = write(v, level: level + 1, into: &out, extraWork: &extraWork) { return failure }
            }
            if let failure = newline(level, into: &out, extraWork) { return failure }
            out += "}"
        default:
            return EncodingFailure(kind: "TypeError", message: "Object of type \(value.typeName) is not JSON serializable")
        }
        // Every value writes at least one byte, so checking after each one bounds the walk by `limit` too.
        return overLimit(out, 0, extraWork)
    }

    private func append(_ text: String, to out: inout String, _ extraWork: Int) -> EncodingFailure? {
        if let failure = overLimit(out, text.utf8.count, extraWork) { return failure }
        out += text
        return nil
    }

    /// Writes a quoted string if its escaped form fits.
    private func writeString(_ s: String, into out: inout String, _ extraWork: inout Int) -> EncodingFailure? {
        // Text that needs no escape (the usual case) is copied whole.
        let ascii = ensureASCII
        if bytesAll(s, { $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C && ($0 < 0x80 || !ascii) }) {
            if let failure = overLimit(out, Interpreter.sum(s.utf8.count, 2), extraWork) { return failure }
            out += "\""
            out += s
            out += "\""
        } else {
            // Escaping at most multiplies the length by 6 (`\u0000`); measure exactly only when that could matter.
            if overLimit(out, Interpreter.sum(Interpreter.product(6, s.utf8.count), 2), extraWork) != nil,
               let failure = overLimit(out, PythonJSONEncoder.escapedLength(s, ensureASCII: ensureASCII), extraWork) {
                return failure
            }
            extraWork = Interpreter.sum(extraWork, Interpreter.product(Interpreter.unicodeUnitsPerByte, s.utf8.count))
            if let failure = overLimit(out, 0, extraWork) { return failure }
            JSONWriter.writeString(s, ensureASCII: ensureASCII, into: &out)
        }
        return nil
    }

    /// Bytes `JSONWriter.writeString` writes for `s`, quotes included.
    static func escapedLength(_ s: String, ensureASCII: Bool) -> Int {
        if let length = s.utf8.withContiguousStorageIfAvailable({ escapedLength($0, ensureASCII: ensureASCII) }) {
            return length
        }
        return escapedLength(Array(s.utf8), ensureASCII: ensureASCII)
    }

    private static func escapedLength<Bytes: Sequence<UInt8>>(_ bytes: Bytes, ensureASCII: Bool) -> Int {
        var length = 2
        for b in bytes {
            switch b {
            case 0x22, 0x5C, 0x0A, 0x0D, 0x09, 0x08, 0x0C: length += 2
            case 0x00..<0x20: length += 6
            case 0x80...0xBF where ensureASCII: break          // continuation byte: counted with its lead byte
            case 0xC0...0xEF where ensureASCII: length += 6     // \uXXXX
            case 0xF0...0xFF where ensureASCII: length += 12    // a surrogate pair
            default: length += 1
            }
        }
        return length
    }

    private func newline(_ level: Int, into out: inout String, _ extraWork: Int) -> EncodingFailure? {
        guard let indent else { return nil }
        if let failure = overLimit(out, Interpreter.sum(1, Interpreter.product(level, indent.utf8.count)), extraWork) {
            return failure
        }
        out += "\n"
        for _ in 0..<level { out += indent }
        return nil
    }
}
