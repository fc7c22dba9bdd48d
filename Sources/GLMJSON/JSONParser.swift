import GLMSupport

extension JSONValue {
    /// Parses JSON text as Python's `json.loads` does (strict RFC 8259 plus `NaN`, `Infinity`, `-Infinity`;
    /// duplicate keys: the last value wins, at the first key's position). Errors name the line and column.
    /// Nesting deeper than `maxDepth` is rejected instead of exhausting the stack.
    public static func parse(_ text: String, maxDepth: Int = 512) throws(GLMError) -> JSONValue {
        var utf8 = Array(text.utf8)
        return try utf8.withUnsafeMutableBufferPointer { buffer throws(GLMError) in
            var parser = JSONParser(bytes: UnsafeBufferPointer(buffer), maxDepth: maxDepth)
            return try parser.parseDocument()
        }
    }

    /// Parses UTF-8 bytes (invalid UTF-8 inside strings is an error, as in Python).
    public static func parse(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int = 512) throws(GLMError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth)
        return try parser.parseDocument()
    }
}

struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var pos = 0
    var depth = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    mutating func parseDocument() throws(GLMError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        if pos != bytes.count { throw error("extra data after the JSON value") }
        return value
    }

    func error(_ what: String) -> GLMError {
        let (line, column) = JSONEscape.lineAndColumn(of: pos, in: bytes)
        return .format("invalid JSON: \(what) at line \(line), column \(column) (byte \(pos))")
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(GLMError) -> JSONValue {
        guard pos < bytes.count else { throw error("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "N"): try expectWord("NaN"); return .double(.nan)
        case UInt8(ascii: "I"): try expectWord("Infinity"); return .double(.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character")
        }
    }

    mutating func expectWord(_ word: StaticString) throws(GLMError) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw error("unexpected end of input") }
        for i in 0..<n where bytes[pos + i] != word.utf8Start[i] { throw error("unexpected character") }
        pos += n
    }

    mutating func enter() throws(GLMError) {
        depth += 1
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth)") }
    }

    mutating func parseObject() throws(GLMError) -> JSONValue {
        try enter()
        pos += 1
        var object = JSONObject()
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; depth -= 1; return .object(object) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected ':'") }
            pos += 1
            skipWhitespace()
            object[key] = try parseValue()
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; break }
            throw error("expected ',' or '}'")
        }
        depth -= 1
        return .object(object)
    }

    mutating func parseArray() throws(GLMError) -> JSONValue {
        try enter()
        pos += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; depth -= 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; break }
            throw error("expected ',' or ']'")
        }
        depth -= 1
        return .array(items)
    }

    mutating func parseNumber() throws(GLMError) -> JSONValue {
        let start = pos
        if bytes[pos] == UInt8(ascii: "-") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "I") { try expectWord("Infinity"); return .double(-.infinity) }
        }
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        guard pos < bytes.count, isDigit(bytes[pos]) else { throw error("invalid number") }
        if bytes[pos] == UInt8(ascii: "0") { pos += 1 } else { while pos < bytes.count, isDigit(bytes[pos]) { pos += 1 } }
        var isInteger = true
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            let dot = pos
            pos += 1
            while pos < bytes.count, isDigit(bytes[pos]) { pos += 1 }
            // Python's scanner: "1." is the int 1 followed by garbage.
            if pos == dot + 1 { pos = dot } else { isInteger = false }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            let e = pos
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            let digits = pos
            while pos < bytes.count, isDigit(bytes[pos]) { pos += 1 }
            if pos == digits { pos = e } else { isInteger = false }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        if isInteger { return .integer(text == "-0" ? "0" : text) }
        guard let d = Double(text) else { throw error("invalid number") }
        return .double(d)
    }

    mutating func parseString() throws(GLMError) -> String {
        var out: [UInt8] = []
        do {
            pos = try JSONEscape.decodeString(bytes, from: pos + 1, into: &out)
        } catch {
            pos = error.offset
            throw self.error(error.message)
        }
        // decodeString validated every byte sequence, so the bytes are UTF-8.
        return String(decoding: out, as: UTF8.self)
    }

}

/// Pieces of JSON syntax shared by every JSON reader of the project (this parser and the tokenizer's streaming
/// scanner), so strings decode by one rule everywhere.
public enum JSONEscape {
    /// Why a string could not be decoded, and the byte offset where.
    public struct StringError: Error {
        public let message: String
        public let offset: Int
    }

    /// Decodes the JSON string whose body starts at `start` (just after its opening quote), appending its UTF-8
    /// bytes to `out`; returns the index after the closing quote. The rule, as serde_json (HF tokenizers) and
    /// pydantic/jiter (vLLM's request parsing) apply it: escapes per RFC 8259; a `\uD8xx\uDCxx` pair is one
    /// character; a lone surrogate escape, a raw control character or ill-formed UTF-8 is an error.
    public static func decodeString(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, into out: inout [UInt8])
        throws(StringError) -> Int {
        var pos = start
        var runStart = pos
        while true {
            guard pos < bytes.count else { throw StringError(message: "unterminated string", offset: pos) }
            let b = bytes[pos]
            if b == 0x22 {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<pos]))
                return pos + 1
            }
            if b < 0x20 { throw StringError(message: "control character in a string", offset: pos) }
            if b >= 0x80 {
                guard let n = utf8SequenceLength(bytes, at: pos) else {
                    throw StringError(message: "invalid UTF-8 in a string", offset: pos)
                }
                pos += n
                continue
            }
            if b != 0x5C { pos += 1; continue }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<pos]))
            pos += 1
            guard pos < bytes.count else { throw StringError(message: "unterminated string", offset: pos) }
            let e = bytes[pos]
            pos += 1
            switch e {
            case 0x22, 0x5C, 0x2F: out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var v = hex4(bytes, at: pos) else { throw StringError(message: "invalid \\u escape", offset: pos) }
                pos += 4
                if v >= 0xD800 && v < 0xDC00 {
                    guard pos + 1 < bytes.count, bytes[pos] == 0x5C, bytes[pos + 1] == UInt8(ascii: "u"),
                          let low = hex4(bytes, at: pos + 2), low >= 0xDC00 && low < 0xE000 else {
                        throw StringError(message: "lone surrogate \\u\(String(v, radix: 16)) (no low surrogate follows)",
                                          offset: pos - 6)
                    }
                    pos += 6
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                } else if v >= 0xDC00 && v < 0xE000 {
                    throw StringError(message: "lone surrogate \\u\(String(v, radix: 16)) (no high surrogate before it)",
                                      offset: pos - 6)
                }
                guard let scalar = Unicode.Scalar(v) else {
                    throw StringError(message: "invalid \\u escape", offset: pos - 6)
                }
                appendUTF8(scalar, to: &out)
            default:
                throw StringError(message: "invalid escape", offset: pos - 1)
            }
            runStart = pos
        }
    }

    private static func appendUTF8(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
        let v = scalar.value
        switch v {
        case 0..<0x80: out.append(UInt8(v))
        case 0x80..<0x800: out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        default:
            out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | v >> 12 & 0x3F))
            out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        }
    }

    /// Length of the well-formed UTF-8 sequence at `i` (Unicode Table 3-7), or nil.
    public static func utf8SequenceLength(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
        let b0 = bytes[i]
        let n: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch b0 {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: n = 2
        case 0xE0: n = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: n = 3
        case 0xED: n = 3; hi = 0x9F
        case 0xF0: n = 4; lo = 0x90
        case 0xF1...0xF3: n = 4
        case 0xF4: n = 4; hi = 0x8F
        default: return nil
        }
        guard i + n <= bytes.count, (lo...hi).contains(bytes[i + 1]) else { return nil }
        for k in 2..<n where bytes[i + k] & 0xC0 != 0x80 { return nil }
        return n
    }

    /// 1-based line and column (in characters) of byte offset `offset`, for error messages.
    public static func lineAndColumn(of offset: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (Int, Int) {
        var line = 1, column = 1
        for i in 0..<min(max(offset, 0), bytes.count) {
            if bytes[i] == 0x0A { line += 1; column = 1 } else if bytes[i] & 0xC0 != 0x80 { column += 1 }
        }
        return (line, column)
    }

    /// The value of the four hex digits at `index` (a `\u` escape's), or nil if they are not four hex digits.
    public static func hex4(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> UInt32? {
        guard index >= 0, index <= bytes.count - 4 else { return nil }
        var v: UInt32 = 0
        for c in bytes[index..<(index + 4)] {
            switch c {
            case 0x30...0x39: v = v << 4 | UInt32(c - 0x30)
            case 0x41...0x46: v = v << 4 | UInt32(c - 0x41 + 10)
            case 0x61...0x66: v = v << 4 | UInt32(c - 0x61 + 10)
            default: return nil
            }
        }
        return v
    }
}
