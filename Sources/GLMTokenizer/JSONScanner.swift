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
        let (line, column) = JSONEscape.lineAndColumn(of: pos, in: bytes)
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

    /// A JSON string's decoded UTF-8 bytes, appended to `out` (GLMJSON's one string rule).
    mutating func readString(into out: inout [UInt8]) throws(GLMError) {
        try expect(0x22, "a string")
        do {
            pos = try JSONEscape.decodeString(bytes, from: pos, into: &out)
        } catch {
            pos = error.offset
            throw self.error(error.message)
        }
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
