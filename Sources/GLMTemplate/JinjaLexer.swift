import GLMJSON
import GLMSupport

/// One token of a template, with the byte offset it starts at (for error positions).
struct Token {
    enum Kind {
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Value)
        case float(Double)
        case op(String)
        case eof
    }

    var kind: Kind
    var offset: Int
}

/// The template source after jinja2's newline normalisation, with offset-to-position mapping for messages.
struct TemplateSource {
    let bytes: [UInt8]
    /// Byte offset where each line starts, so a line number costs a binary search: an inline `if` without
    /// `else` names its line in the undefined value it returns, at every evaluation.
    private let lineStarts: [Int]

    /// jinja2 turns `\r\n` and `\r` into `\n` and, without `keep_trailing_newline`, drops one trailing newline.
    init(_ text: String) {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var previousCR = false
        for b in text.utf8 {
            if b == 0x0D {
                out.append(0x0A)
                previousCR = true
                continue
            }
            if b == 0x0A && previousCR { previousCR = false; continue }
            previousCR = false
            out.append(b)
        }
        if out.last == 0x0A { out.removeLast() }
        bytes = out
        var starts = [0]
        for (i, b) in out.enumerated() where b == 0x0A { starts.append(i + 1) }
        lineStarts = starts
    }

    /// 1-based line of a byte offset.
    func line(of offset: Int) -> Int {
        var low = 0, high = lineStarts.count
        // The number of line starts at or before `offset`.
        while low < high {
            let mid = (low + high) / 2
            if lineStarts[mid] <= offset { low = mid + 1 } else { high = mid }
        }
        return max(1, low)
    }

    /// 1-based line and column (in code points) of a byte offset.
    func position(of offset: Int) -> (line: Int, column: Int) {
        var line = 1, column = 1
        for i in 0..<min(offset, bytes.count) {
            if bytes[i] == 0x0A { line += 1; column = 1 } else if bytes[i] & 0xC0 != 0x80 { column += 1 }
        }
        return (line, column)
    }

    func syntaxError(_ message: String, at offset: Int) -> GLMError {
        let (line, column) = position(of: offset)
        return .template("TemplateSyntaxError: \(message) (template line \(line), column \(column))")
    }
}

/// Splits a template into tokens exactly as jinja2's lexer does with `trim_blocks=True, lstrip_blocks=True`:
/// `-` strips all whitespace on that side, `+` disables lstrip/trim, a block or comment tag alone on its line
/// takes the line's leading spaces with it, and the first newline after a block or comment tag is removed.
struct JinjaLexer {
    let source: TemplateSource
    let bytes: [UInt8]
    var pos = 0
    var tokens: [Token] = []
    /// Whether the last match ended with a newline (jinja2's `line_starting`, used by lstrip_blocks).
    var lineStarting = true

    static let operators = ["//", "**", "==", "!=", ">=", "<=",
                            "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":",
                            "|", ",", ";"].map { Array($0.utf8) }

    init(source: TemplateSource) {
        self.source = source
        bytes = source.bytes
    }

    static func tokenize(_ source: TemplateSource) throws(GLMError) -> [Token] {
        var lexer = JinjaLexer(source: source)
        try lexer.run()
        return lexer.tokens
    }

    private func byte(_ i: Int) -> UInt8 { i < bytes.count ? bytes[i] : 0 }

    private func matches(_ text: String, at i: Int) -> Bool {
        var j = i
        for b in text.utf8 {
            if byte(j) != b || j >= bytes.count { return false }
            j += 1
        }
        return true
    }

    /// Byte length of the whitespace code point at `i` (Python's `\s`), 0 if none.
    private func whitespaceLength(at i: Int) -> Int {
        guard i < bytes.count else { return 0 }
        let b = bytes[i]
        if b < 0x80 { return (b == 0x20 || (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x1F)) ? 1 : 0 }
        let (scalar, length) = decodeScalar(at: i)
        return PythonString.isSpace(scalar) ? length : 0
    }

    private func decodeScalar(at i: Int) -> (Unicode.Scalar, Int) {
        let b = bytes[i]
        var length = 1
        if b >= 0xF0 { length = 4 } else if b >= 0xE0 { length = 3 } else if b >= 0xC0 { length = 2 }
        let end = min(bytes.count, i + length)
        let text = String(decoding: bytes[i..<end], as: UTF8.self)
        return (text.unicodeScalars.first ?? "\u{FFFD}", end - i)
    }

    private func skipWhitespace(from i: Int) -> Int {
        var j = i
        while true {
            let n = whitespaceLength(at: j)
            if n == 0 { return j }
            j += n
        }
    }

    private mutating func emitData(_ start: Int, _ end: Int) {
        if end > start { tokens.append(Token(kind: .data(String(decoding: bytes[start..<end], as: UTF8.self)), offset: start)) }
    }

    /// Applies `-` or lstrip_blocks to the text before a tag and emits it.
    private mutating func emitText(_ start: Int, _ end: Int, sign: UInt8, isVariable: Bool) {
        var end = end
        if sign == UInt8(ascii: "-") {
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            end = start + PythonString.strip(text, characters: nil, leading: false, trailing: true).utf8.count
        } else if sign != UInt8(ascii: "+") && !isVariable {
            var lineStart = end
            while lineStart > start && bytes[lineStart - 1] != 0x0A { lineStart -= 1 }
            if lineStart > start || lineStarting, lineStart < end, skipWhitespace(from: lineStart) == end {
                end = lineStart
            }
        }
        emitData(start, end)
    }

    mutating func run() throws(GLMError) {
        while pos < bytes.count {
            guard let tagStart = nextTagStart(from: pos) else {
                emitData(pos, bytes.count)
                pos = bytes.count
                break
            }
            let kind = bytes[tagStart + 1]
            var sign: UInt8 = 0
            if byte(tagStart + 2) == UInt8(ascii: "-") || byte(tagStart + 2) == UInt8(ascii: "+") { sign = byte(tagStart + 2) }
            if kind == UInt8(ascii: "%"), let rawEnd = rawBeginEnd(at: tagStart) {
                emitText(pos, tagStart, sign: sign, isVariable: false)
                lineStarting = bytes[rawEnd - 1] == 0x0A
                try lexRawBody(from: rawEnd, tagStart: tagStart)
                continue
            }
            emitText(pos, tagStart, sign: sign, isVariable: kind == UInt8(ascii: "{"))
            let afterStart = tagStart + 2 + (sign != 0 ? 1 : 0)
            switch kind {
            case UInt8(ascii: "#"): try lexComment(from: afterStart, tagStart: tagStart)
            case UInt8(ascii: "%"):
                tokens.append(Token(kind: .blockBegin, offset: tagStart))
                try lexTag(from: afterStart, isBlock: true)
            default:
                tokens.append(Token(kind: .variableBegin, offset: tagStart))
                try lexTag(from: afterStart, isBlock: false)
            }
        }
        tokens.append(Token(kind: .eof, offset: bytes.count))
    }

    private func nextTagStart(from start: Int) -> Int? {
        var i = start
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: "{") {
                let n = bytes[i + 1]
                if n == UInt8(ascii: "{") || n == UInt8(ascii: "%") || n == UInt8(ascii: "#") { return i }
            }
            i += 1
        }
        return nil
    }

    /// If `{% raw %}` starts at `i`, the offset just after it.
    private func rawBeginEnd(at i: Int) -> Int? {
        var j = i + 2
        if byte(j) == UInt8(ascii: "-") || byte(j) == UInt8(ascii: "+") { j += 1 }
        j = skipWhitespace(from: j)
        guard matches("raw", at: j) else { return nil }
        j = skipWhitespace(from: j + 3)
        if matches("-%}", at: j) { return skipWhitespace(from: j + 3) }
        if matches("%}", at: j) { return j + 2 }
        return nil
    }

    private mutating func lexRawBody(from start: Int, tagStart: Int) throws(GLMError) {
        var i = start
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: "{") && bytes[i + 1] == UInt8(ascii: "%") {
                var j = i + 2
                var sign: UInt8 = 0
                if byte(j) == UInt8(ascii: "-") || byte(j) == UInt8(ascii: "+") { sign = byte(j); j += 1 }
                j = skipWhitespace(from: j)
                if matches("endraw", at: j) {
                    j = skipWhitespace(from: j + 6)
                    var end: Int? = nil
                    if matches("+%}", at: j) { end = j + 3 }
                    else if matches("-%}", at: j) { end = skipWhitespace(from: j + 3) }
                    else if matches("%}", at: j) { end = j + 2 + (byte(j + 2) == 0x0A && j + 2 < bytes.count ? 1 : 0) }
                    if let end {
                        emitText(start, i, sign: sign, isVariable: false)
                        pos = end
                        lineStarting = bytes[end - 1] == 0x0A
                        return
                    }
                }
            }
            i += 1
        }
        throw source.syntaxError("Missing end of raw directive", at: tagStart)
    }

    private mutating func lexComment(from start: Int, tagStart: Int) throws(GLMError) {
        var j = start
        while j < bytes.count {
            if bytes[j] == UInt8(ascii: "+") && matches("#}", at: j + 1) {
                pos = j + 3
                lineStarting = false
                return
            }
            if bytes[j] == UInt8(ascii: "-") && matches("#}", at: j + 1) {
                pos = skipWhitespace(from: j + 3)
                lineStarting = bytes[pos - 1] == 0x0A
                return
            }
            if matches("#}", at: j) {
                pos = j + 2
                if byte(pos) == 0x0A && pos < bytes.count { pos += 1 }
                lineStarting = bytes[pos - 1] == 0x0A
                return
            }
            j += 1
        }
        throw source.syntaxError("Missing end of comment tag", at: tagStart)
    }

    /// Tokens inside `{% %}` or `{{ }}`, up to and including the end tag.
    private mutating func lexTag(from start: Int, isBlock: Bool) throws(GLMError) {
        var i = start
        var balance: [UInt8] = []
        while i < bytes.count {
            if balance.isEmpty {
                if isBlock {
                    if matches("+%}", at: i) { return finishTag(at: i, end: i + 3, isBlock: true) }
                    if matches("-%}", at: i) { return finishTag(at: i, end: skipWhitespace(from: i + 3), isBlock: true) }
                    if matches("%}", at: i) {
                        let end = i + 2 + (byte(i + 2) == 0x0A && i + 2 < bytes.count ? 1 : 0)
                        return finishTag(at: i, end: end, isBlock: true)
                    }
                } else {
                    if matches("-}}", at: i) { return finishTag(at: i, end: skipWhitespace(from: i + 3), isBlock: false) }
                    if matches("}}", at: i) { return finishTag(at: i, end: i + 2, isBlock: false) }
                }
            }
            let ws = whitespaceLength(at: i)
            if ws > 0 { i += ws; continue }
            let b = bytes[i]
            if let (value, end) = lexNumber(at: i) {
                tokens.append(Token(kind: value, offset: i))
                i = end
            } else if isNameStart(at: i) {
                var j = i
                while j < bytes.count && isNameContinue(at: j) { j += nameCharLength(at: j) }
                tokens.append(Token(kind: .name(String(decoding: bytes[i..<j], as: UTF8.self)), offset: i))
                i = j
            } else if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") {
                var j = i + 1
                while j < bytes.count && bytes[j] != b {
                    j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard j < bytes.count else { throw source.syntaxError("unexpected char \(pythonRepr(String(UnicodeScalar(b)))) at \(i)", at: i) }
                let raw = String(decoding: bytes[(i + 1)..<j], as: UTF8.self)
                tokens.append(Token(kind: .string(try decodeEscapes(raw, at: i)), offset: i))
                i = j + 1
            } else if let op = JinjaLexer.operators.first(where: { matchesBytes($0, at: i) }) {
                let text = String(decoding: op, as: UTF8.self)
                switch text {
                case "{": balance.append(UInt8(ascii: "}"))
                case "(": balance.append(UInt8(ascii: ")"))
                case "[": balance.append(UInt8(ascii: "]"))
                case "}", ")", "]":
                    guard let expected = balance.popLast() else { throw source.syntaxError("unexpected '\(text)'", at: i) }
                    if expected != op[0] { throw source.syntaxError("unexpected '\(text)', expected '\(String(UnicodeScalar(expected)))'", at: i) }
                default: break
                }
                tokens.append(Token(kind: .op(text), offset: i))
                i += op.count
            } else {
                let (scalar, _) = decodeScalar(at: i)
                throw source.syntaxError("unexpected char \(pythonRepr(String(scalar))) at \(i)", at: i)
            }
        }
        pos = bytes.count
    }

    private mutating func finishTag(at i: Int, end: Int, isBlock: Bool) {
        tokens.append(Token(kind: isBlock ? .blockEnd : .variableEnd, offset: i))
        pos = end
        lineStarting = end > 0 && bytes[end - 1] == 0x0A
    }

    private func matchesBytes(_ op: [UInt8], at i: Int) -> Bool {
        guard i + op.count <= bytes.count else { return false }
        for k in 0..<op.count where bytes[i + k] != op[k] { return false }
        return true
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private func isNameStart(at i: Int) -> Bool {
        let b = bytes[i]
        if b < 0x80 { return (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F }
        return decodeScalar(at: i).0.properties.isXIDStart
    }

    private func isNameContinue(at i: Int) -> Bool {
        let b = bytes[i]
        if b < 0x80 { return (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || isDigit(b) }
        return decodeScalar(at: i).0.properties.isXIDContinue
    }

    private func nameCharLength(at i: Int) -> Int { bytes[i] < 0x80 ? 1 : decodeScalar(at: i).1 }

    /// Digits with single underscores between them (`1_000`), as jinja2's number patterns allow.
    private func digitRun(at i: Int, _ isValid: (UInt8) -> Bool) -> Int? {
        guard i < bytes.count, isValid(bytes[i]) else { return nil }
        var j = i + 1
        while j < bytes.count {
            if isValid(bytes[j]) { j += 1 }
            else if bytes[j] == UInt8(ascii: "_") && j + 1 < bytes.count && isValid(bytes[j + 1]) { j += 2 }
            else { break }
        }
        return j
    }

    /// jinja2's float pattern first, then its integer pattern.
    private func lexNumber(at i: Int) -> (Token.Kind, Int)? {
        guard isDigit(bytes[i]) else { return nil }
        if i == 0 || bytes[i - 1] != UInt8(ascii: ".") {
            if let intEnd = digitRun(at: i, isDigit) {
                var j = intEnd
                var isFloat = false
                if byte(j) == UInt8(ascii: "."), let fracEnd = digitRun(at: j + 1, isDigit) {
                    j = fracEnd
                    isFloat = true
                }
                if byte(j) == UInt8(ascii: "e") || byte(j) == UInt8(ascii: "E") {
                    var k = j + 1
                    if byte(k) == UInt8(ascii: "+") || byte(k) == UInt8(ascii: "-") { k += 1 }
                    if let expEnd = digitRun(at: k, isDigit) { j = expEnd; isFloat = true }
                }
                if isFloat {
                    let text = String(decoding: bytes[i..<j].filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
                    return (.float(Double(text) ?? 0), j)
                }
            }
        }
        // Integers: 0b, 0o, 0x prefixes, or decimal without leading zeros ("0", "00" allowed).
        if bytes[i] == UInt8(ascii: "0") {
            let p = byte(i + 1) | 0x20
            let radixes: [(UInt8, Int, (UInt8) -> Bool)] = [
                (UInt8(ascii: "b"), 2, { $0 == 0x30 || $0 == 0x31 }),
                (UInt8(ascii: "o"), 8, { $0 >= 0x30 && $0 <= 0x37 }),
                (UInt8(ascii: "x"), 16, { ($0 >= 0x30 && $0 <= 0x39) || (($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x66) }),
            ]
            for (letter, radix, valid) in radixes where p == letter {
                var j = i + 2
                if byte(j) == UInt8(ascii: "_") { j += 1 }
                if let end = digitRun(at: j, valid) {
                    let digits = String(decoding: bytes[(i + 2)..<end].filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
                    if let v = Int(digits, radix: radix) { return (.integer(.int(v)), end) }
                    return (.integer(.bigInt(digits)), end)
                }
            }
            var j = i + 1
            while true {
                if byte(j) == UInt8(ascii: "0") && j < bytes.count { j += 1 }
                else if byte(j) == UInt8(ascii: "_") && byte(j + 1) == UInt8(ascii: "0") && j + 1 < bytes.count { j += 2 }
                else { break }
            }
            return (.integer(.int(0)), j)
        }
        guard let end = digitRun(at: i, isDigit) else { return nil }
        let digits = String(decoding: bytes[i..<end].filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        return (.integer(Int(digits).map { .int($0) } ?? .bigInt(digits)), end)
    }

    /// Python's `unicode-escape` decoding, which jinja2 applies to string literals.
    private func decodeEscapes(_ raw: String, at offset: Int) throws(GLMError) -> String {
        guard raw.utf8.contains(UInt8(ascii: "\\")) else { return raw }
        let scalars = Array(raw.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        func hex(_ count: Int) throws(GLMError) -> Unicode.Scalar {
            var v: UInt32 = 0
            for k in 0..<count {
                guard i + 1 + k < scalars.count, let d = UInt32(String(scalars[i + 1 + k]), radix: 16) else {
                    throw source.syntaxError("truncated \\\(scalars[i]) escape in string literal", at: offset)
                }
                v = v * 16 + d
            }
            i += count
            guard let s = Unicode.Scalar(v) else { throw source.syntaxError("invalid escape in string literal", at: offset) }
            return s
        }
        while i < scalars.count {
            let c = scalars[i]
            guard c == "\\", i + 1 < scalars.count else { out.append(c); i += 1; continue }
            i += 1
            let e = scalars[i]
            switch e {
            case "\n": break
            case "\\", "'", "\"": out.append(e)
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "x": out.append(try hex(2))
            case "u": out.append(try hex(4))
            case "U": out.append(try hex(8))
            case "0"..."7":
                var v = e.value - 48
                var k = 1
                while k < 3, i + 1 < scalars.count, ("0"..."7").contains(scalars[i + 1]) {
                    i += 1; k += 1
                    v = v * 8 + scalars[i].value - 48
                }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            default:
                out.append("\\")
                out.append(e)
            }
            i += 1
        }
        return String(out)
    }
}
