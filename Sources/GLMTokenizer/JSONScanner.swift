import GLMJSON
import GLMSupport

/// A pull scanner over JSON bytes for the two big members of a tokenizer.json (`model.vocab`, `model.merges`):
/// their strings are decoded straight into byte buffers, with no JSON tree (a 150k vocabulary plus 300k merges
/// would otherwise cost hundreds of thousands of allocations). Everything else is cut out as a byte range and
/// parsed with `JSONValue`.
struct JSONScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    let path: String
    var pos = 0
    static let maxDepth = 512

    init(bytes: UnsafeBufferPointer<UInt8>, path: String) {
        self.bytes = bytes
        self.path = path
    }

    func error(_ what: String) -> GLMError {
        var line = 1, column = 1
        for i in 0..<min(pos, bytes.count) {
            if bytes[i] == 0x0A { line += 1; column = 1 } else if bytes[i] & 0xC0 != 0x80 { column += 1 }
        }
        return .format("'\(path)': invalid JSON: \(what) at line \(line), column \(column)")
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func peek() -> UInt8? {
        skipWhitespace()
        return pos < bytes.count ? bytes[pos] : nil
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(GLMError) {
        guard peek() == byte else { throw error("expected \(what)") }
        pos += 1
    }

    /// Iterates an object's members: `body` gets each key and must consume the value.
    mutating func forEachMember(_ body: (inout JSONScanner, String) throws(GLMError) -> Void) throws(GLMError) {
        try forEachMemberBytes { (s: inout JSONScanner, key: [UInt8]) throws(GLMError) in
            guard let k = String(validating: key, as: UTF8.self) else { throw s.error("invalid UTF-8 in a key") }
            try body(&s, k)
        }
    }

    /// `forEachMember` with the key as UTF-8 bytes (validated), without making a String per key.
    mutating func forEachMemberBytes(_ body: (inout JSONScanner, [UInt8]) throws(GLMError) -> Void) throws(GLMError) {
        try expect(0x7B, "'{'")
        if peek() == 0x7D { pos += 1; return }
        var key: [UInt8] = []
        while true {
            key.removeAll(keepingCapacity: true)
            try readString(into: &key)
            try expect(0x3A, "':'")
            try body(&self, key)
            guard let c = peek() else { throw error("unterminated object") }
            pos += 1
            if c == 0x7D { return }
            if c != 0x2C { throw error("expected ',' or '}'") }
        }
    }

    /// Iterates an array's elements: `body` must consume each one.
    mutating func forEachElement(_ body: (inout JSONScanner) throws(GLMError) -> Void) throws(GLMError) {
        try expect(0x5B, "'['")
        if peek() == 0x5D { pos += 1; return }
        while true {
            try body(&self)
            guard let c = peek() else { throw error("unterminated array") }
            pos += 1
            if c == 0x5D { return }
            if c != 0x2C { throw error("expected ',' or ']'") }
        }
    }

    /// A JSON string's decoded UTF-8 bytes, appended to `out`.
    mutating func readString(into out: inout [UInt8]) throws(GLMError) {
        try expect(0x22, "a string")
        while true {
            guard pos < bytes.count else { throw error("unterminated string") }
            let b = bytes[pos]
            if b == 0x22 { pos += 1; break }
            if b < 0x20 { throw error("control character in a string") }
            if b >= 0x80 {
                guard let n = utf8SequenceLength(at: pos) else { throw error("invalid UTF-8 in a string") }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[pos..<(pos + n)]))
                pos += n
                continue
            }
            if b != 0x5C {
                out.append(b)
                pos += 1
                continue
            }
            pos += 1
            guard pos < bytes.count else { throw error("unterminated escape") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case 0x22, 0x5C, 0x2F: out.append(e)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var v = try hex4()
                if v >= 0xD800 && v < 0xDC00 {
                    guard pos + 1 < bytes.count, bytes[pos] == 0x5C, bytes[pos + 1] == 0x75 else {
                        throw error("lone surrogate \\u\(String(v, radix: 16))")
                    }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw error("invalid surrogate pair") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                } else if v >= 0xDC00 && v < 0xE000 {
                    throw error("lone surrogate \\u\(String(v, radix: 16))")
                }
                guard let scalar = Unicode.Scalar(v) else { throw error("invalid \\u escape") }
                out.append(contentsOf: Array(String(scalar).utf8))
            default: throw error("invalid escape")
            }
        }
    }

    /// Length of the well-formed UTF-8 sequence at `i` (Unicode Table 3-7), or nil.
    private func utf8SequenceLength(at i: Int) -> Int? {
        let b0 = bytes[i]
        let n: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch b0 {
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

    private mutating func hex4() throws(GLMError) -> UInt32 {
        guard let v = JSONEscape.hex4(bytes, at: pos) else { throw error("invalid \\u escape") }
        pos += 4
        return v
    }

    /// A non-negative integer (token id).
    mutating func readInt() throws(GLMError) -> Int {
        _ = peek()
        var value = 0
        var digits = 0
        while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
            value = value * 10 + Int(bytes[pos] - 0x30)
            digits += 1
            pos += 1
            if digits > 12 { throw error("integer too large") }
        }
        guard digits > 0 else { throw error("expected a non-negative integer") }
        if pos < bytes.count, [0x2E, 0x65, 0x45].contains(bytes[pos]) { throw error("expected an integer") }
        return value
    }

    /// Skips one value and returns its byte range.
    mutating func skipValue() throws(GLMError) -> Range<Int> {
        guard let c = peek() else { throw error("unexpected end of input") }
        let start = pos
        switch c {
        case 0x22:
            var sink: [UInt8] = []
            try readString(into: &sink)
        case 0x7B, 0x5B:
            var depth = 0
            while pos < bytes.count {
                let b = bytes[pos]
                if b == 0x22 {
                    var sink: [UInt8] = []
                    try readString(into: &sink)
                    continue
                }
                pos += 1
                if b == 0x7B || b == 0x5B {
                    depth += 1
                    if depth > JSONScanner.maxDepth { throw error("nesting deeper than \(JSONScanner.maxDepth)") }
                } else if b == 0x7D || b == 0x5D {
                    depth -= 1
                    if depth == 0 { return start..<pos }
                }
            }
            throw error("unterminated value")
        default:
            while pos < bytes.count {
                switch bytes[pos] {
                case 0x2C, 0x7D, 0x5D, 0x20, 0x09, 0x0A, 0x0D: return start..<pos
                default: pos += 1
                }
            }
        }
        return start..<pos
    }

    /// Parses the value at the cursor with the full JSON parser (for the small members).
    mutating func readValue() throws(GLMError) -> JSONValue {
        let range = try skipValue()
        do {
            return try JSONValue.parse(bytes: UnsafeBufferPointer(rebasing: bytes[range]))
        } catch {
            throw .format("'\(path)': \(error.message) (in the value at byte \(range.lowerBound))")
        }
    }
}
