import GLMSupport

/// Parses a regular expression in JSON Schema's dialect (ECMA-262, the subset that describes a regular
/// language) into a `CharRegex`. What would make the language depend on the matcher (backreferences,
/// lookaround, word boundaries, possessive quantifiers) is refused with an error naming it and its offset.
///
/// Character classes are resolved so that a generated string satisfies the pattern under both ECMA-262 and
/// Python's `re` (what jsonschema validates with): `\d`, `\w`, `\s` mean their ASCII sets, which both
/// dialects include; their negations and negated classes exclude the wider Unicode sets Python uses, and `.`
/// excludes every line terminator either dialect knows.
struct PatternParser {
    /// A top-level alternative and whether it was anchored with `^` / `$`.
    struct Branch {
        var regex: CharRegex
        var anchoredStart: Bool
        var anchoredEnd: Bool
    }

    static let maxLength = 20_000
    static let maxRepeat = 10_000
    static let maxNesting = 100

    private let scalars: [Unicode.Scalar]
    private var position = 0
    private let source: String

    init(_ pattern: String) {
        source = pattern
        scalars = Array(pattern.unicodeScalars)
    }

    /// The pattern as `re.search` reads it: strings that contain a match.
    static func searchLanguage(_ pattern: String) throws(GLMError) -> CharRegex {
        var parser = PatternParser(pattern)
        let branches = try parser.parseTopLevel()
        var options: [CharRegex] = []
        for b in branches {
            let tail: CharRegex = b.anchoredEnd ? .empty : .anyString
            let body = try parser.resolvingEnds(b.regex, then: tail)
            options.append(b.anchoredStart ? body : .sequence([.anyString, body]))
        }
        return .alternatives(options)
    }

    /// The pattern as a whole-text match (anchors at its ends are allowed and change nothing).
    static func fullMatchLanguage(_ pattern: String) throws(GLMError) -> CharRegex {
        var parser = PatternParser(pattern)
        var options: [CharRegex] = []
        for b in try parser.parseTopLevel() { options.append(try parser.resolvingEnds(b.regex, then: .empty)) }
        return .alternatives(options)
    }

    /// `regex` followed by `tail`, where an `endOfText` marker inside means "the text ends here": it is
    /// replaced by the empty string when what follows it can be empty (the tail included), by nothing
    /// otherwise. Regexes without markers are just followed by the tail.
    func resolvingEnds(_ regex: CharRegex, then tail: CharRegex) throws(GLMError) -> CharRegex {
        guard regex.containsEndOfText else { return .sequence([regex, tail]) }
        switch regex {
        case .endOfText:
            return tail.isNullable ? .empty : .nothing
        case .sequence(let items):
            var result = tail
            for item in items.reversed() { result = try resolvingEnds(item, then: result) }
            return result
        case .alternatives(let options):
            var out: [CharRegex] = []
            for o in options { out.append(try resolvingEnds(o, then: tail)) }
            return .alternatives(out)
        default:
            throw unsupported("'$' inside a repetition", at: 0)
        }
    }

    private func error(_ message: String, at offset: Int? = nil) -> GLMError {
        .invalidArgument("pattern \(JSONQuote.quote(source)): \(message) at offset \(offset ?? position)")
    }

    private func unsupported(_ what: String, at offset: Int) -> GLMError {
        .unsupported("pattern \(JSONQuote.quote(source)): \(what) at offset \(offset) is not supported"
            + " (constrained decoding needs a regular language)")
    }

    mutating func parseTopLevel() throws(GLMError) -> [Branch] {
        guard scalars.count <= PatternParser.maxLength else {
            throw GLMError(.limitExceeded, "a pattern is longer than \(PatternParser.maxLength) characters")
        }
        var branches: [Branch] = []
        while true {
            var start = false
            if peek == "^" { start = true; position += 1 }
            var terms = try parseSequence(depth: 0, topLevel: true)
            var end = false
            if peek == "$" { end = true; position += 1 }
            if case .sequence(let items) = terms, items.isEmpty { terms = .empty }
            branches.append(Branch(regex: terms, anchoredStart: start, anchoredEnd: end))
            if peek == "|" { position += 1; continue }
            if position < scalars.count {
                if peek == ")" { throw error("unmatched ')'") }
                throw error("unexpected '\(scalars[position])'")
            }
            return branches
        }
    }

    private var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

    private mutating func parseAlternatives(depth: Int) throws(GLMError) -> CharRegex {
        guard depth < PatternParser.maxNesting else {
            throw GLMError(.limitExceeded, "a pattern nests groups more than \(PatternParser.maxNesting) deep")
        }
        var options: [CharRegex] = [try parseSequence(depth: depth, topLevel: false)]
        while peek == "|" {
            position += 1
            options.append(try parseSequence(depth: depth, topLevel: false))
        }
        return options.count == 1 ? options[0] : .alternatives(options)
    }

    private mutating func parseSequence(depth: Int, topLevel: Bool) throws(GLMError) -> CharRegex {
        var items: [CharRegex] = []
        while let c = peek, c != "|", c != ")" {
            if c == "$" {
                // At the end of a top-level alternative it is that alternative's anchor; elsewhere (inside a
                // group: `^(a|$)`) a marker that `resolvingEnds` turns into "the text ends here".
                let next = position + 1 < scalars.count ? scalars[position + 1] : nil
                if topLevel && (next == nil || next == "|") { break }
                let at = position
                position += 1
                if let q = peek, q == "*" || q == "+" || q == "?" || q == "{" {
                    throw unsupported("a quantified '$'", at: at)
                }
                items.append(.endOfText)
                continue
            }
            if c == "^" { throw unsupported("'^' other than at the start of the pattern", at: position) }
            let atomStart = position
            var atom = try parseAtom(depth: depth)
            atom = try parseQuantifiers(atom, atomStart: atomStart)
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    private mutating func parseQuantifiers(_ atom: CharRegex, atomStart: Int) throws(GLMError) -> CharRegex {
        var result = atom
        var quantified = false
        while let c = peek {
            var lo = 0, hi: Int? = nil
            let at = position
            switch c {
            case "*": position += 1
            case "+": lo = 1; position += 1
            case "?": hi = 1; position += 1
            case "{":
                guard let (a, b) = try parseBraces() else { return result }
                lo = a; hi = b
            default: return result
            }
            if quantified { throw error("nothing to repeat", at: at) }
            quantified = true
            if peek == "?" { position += 1 }   // lazy: the same language
            else if peek == "+" { throw unsupported("a possessive quantifier", at: position) }
            result = .repetition(result, lo, hi)
        }
        return result
    }

    /// `{n}`, `{n,}`, `{n,m}`; nil (and nothing consumed) when the brace is a literal, as ECMA-262 Annex B and
    /// Python both read it.
    private mutating func parseBraces() throws(GLMError) -> (Int, Int?)? {
        let start = position
        position += 1
        func number(_ p: inout PatternParser) -> Int? {
            var value = 0, digits = 0
            while let c = p.peek, let d = c.properties.numericType == .decimal ? Int(String(c)) : nil,
                  c.isASCII {
                value = min(value * 10 + d, Int(Int32.max))
                digits += 1
                p.position += 1
            }
            return digits > 0 ? value : nil
        }
        guard let lo = number(&self) else { position = start; return nil }
        var hi: Int? = lo
        if peek == "," {
            position += 1
            hi = number(&self)
        }
        guard peek == "}" else { position = start; return nil }
        position += 1
        if let h = hi, h < lo { throw error("numbers out of order in {\(lo),\(h)} quantifier", at: start) }
        if lo > PatternParser.maxRepeat || (hi ?? 0) > PatternParser.maxRepeat {
            throw GLMError(.limitExceeded, "a pattern repeats more than \(PatternParser.maxRepeat) times")
        }
        return (lo, hi)
    }

    private mutating func parseAtom(depth: Int) throws(GLMError) -> CharRegex {
        guard let c = peek else { throw error("unexpected end") }
        let start = position
        switch c {
        case ".":
            position += 1
            return .set(.dot)
        case "(":
            position += 1
            if peek == "?" {
                position += 1
                switch peek {
                case ":": position += 1
                case "=", "!": throw unsupported("a lookahead", at: start)
                case "<":
                    let next = position + 1 < scalars.count ? scalars[position + 1] : nil
                    if next == "=" || next == "!" { throw unsupported("a lookbehind", at: start) }
                    try skipGroupName()
                case "P":
                    position += 1
                    if peek == "<" { try skipGroupName() } else { throw unsupported("'(?P' other than a named group", at: start) }
                default: throw unsupported("the group modifier '(?\(peek.map(String.init) ?? "")'", at: start)
                }
            }
            let inner = try parseAlternatives(depth: depth + 1)
            guard peek == ")" else { throw error("missing ')'", at: start) }
            position += 1
            return inner
        case "[":
            return .set(try parseClass())
        case "\\":
            return try parseEscape(inClass: false).regex
        case "*", "+", "?":
            throw error("nothing to repeat")
        case "{":
            if (try parseBraces()) != nil { throw error("nothing to repeat", at: start) }
            position += 1
            return .set(CharSet(scalar: c.value))
        default:
            position += 1
            return .set(CharSet(scalar: c.value))
        }
    }

    private mutating func skipGroupName() throws(GLMError) {
        let start = position
        position += 1   // '<'
        while let c = peek, c != ">" { position += 1 }
        guard peek == ">" else { throw error("unterminated group name", at: start) }
        position += 1
    }

    /// A class escape's narrow set (what a positive class adds) and wide set (what a negated class removes).
    private struct ClassItem {
        var narrow: CharSet
        var wide: CharSet
        var single: UInt32?
    }

    private mutating func parseEscape(inClass: Bool) throws(GLMError) -> (regex: CharRegex, item: ClassItem) {
        let start = position
        position += 1
        guard let c = peek else { throw error("the pattern ends with '\\'", at: start) }
        position += 1
        func single(_ v: UInt32) -> (CharRegex, ClassItem) {
            let s = CharSet(scalar: v)
            return (.set(s), ClassItem(narrow: s, wide: s, single: v))
        }
        func set(_ narrow: CharSet, _ wide: CharSet) -> (CharRegex, ClassItem) {
            (.set(narrow), ClassItem(narrow: narrow, wide: wide, single: nil))
        }
        switch c {
        case "d": return set(.asciiDigits, .wideDigits)
        case "D": return set(CharSet.wideDigits.complement, CharSet.asciiDigits.complement)
        case "w": return set(.asciiWord, .wideWord)
        case "W": return set(CharSet.wideWord.complement, CharSet.asciiWord.complement)
        case "s": return set(.commonSpace, .wideSpace)
        case "S": return set(CharSet.wideSpace.complement, CharSet.commonSpace.complement)
        case "t": return single(0x09)
        case "n": return single(0x0A)
        case "r": return single(0x0D)
        case "f": return single(0x0C)
        case "v": return single(0x0B)
        case "0":
            if let n = peek, n.properties.numericType == .decimal, n.isASCII {
                throw unsupported("an octal escape", at: start)
            }
            return single(0)
        case "b":
            if inClass { return single(0x08) }
            throw unsupported("a word boundary '\\b'", at: start)
        case "B": throw unsupported("'\\B'", at: start)
        case "x":
            guard let v = hexDigits(count: 2) else { throw error("'\\x' needs two hexadecimal digits", at: start) }
            return single(v)
        case "u":
            if peek == "{" {
                let save = position
                position += 1
                var value: UInt32 = 0, digits = 0
                while let h = peek, let d = PatternParser.hexValue(h) {
                    value = value &* 16 &+ d
                    digits += 1
                    position += 1
                    if digits > 6 { break }
                }
                if peek == "}" && digits > 0 && digits <= 6 && value <= CharSet.maxScalar {
                    position += 1
                    return single(value)
                }
                position = save
            }
            guard let v = hexDigits(count: 4) else { throw error("'\\u' needs four hexadecimal digits", at: start) }
            if (0xD800...0xDBFF).contains(v), peek == "\\", position + 1 < scalars.count, scalars[position + 1] == "u" {
                let save = position
                position += 2
                if let low = hexDigits(count: 4), (0xDC00...0xDFFF).contains(low) {
                    return single(0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00))
                }
                position = save
            }
            if (0xD800...0xDFFF).contains(v) { throw unsupported("a lone surrogate escape", at: start) }
            return single(v)
        case "c":
            guard let l = peek, l.isASCII, l.properties.isAlphabetic else { throw error("'\\c' needs a letter", at: start) }
            position += 1
            return single(l.value % 32)
        case "p", "P":
            throw unsupported("a Unicode property escape '\\\(c)'", at: start)
        case "k":
            throw unsupported("a named backreference", at: start)
        default:
            if c.isASCII, c.properties.numericType == .decimal {
                throw unsupported("a backreference", at: start)
            }
            if c.isASCII && (c.properties.isAlphabetic) {
                throw error("unknown escape '\\\(c)'", at: start)
            }
            return single(c.value)
        }
    }

    private static func hexValue(_ c: Unicode.Scalar) -> UInt32? {
        switch c.value {
        case 0x30...0x39: return c.value - 0x30
        case 0x41...0x46: return c.value - 0x41 + 10
        case 0x61...0x66: return c.value - 0x61 + 10
        default: return nil
        }
    }

    private mutating func hexDigits(count: Int) -> UInt32? {
        guard position + count <= scalars.count else { return nil }
        var v: UInt32 = 0
        for i in 0..<count {
            guard let d = PatternParser.hexValue(scalars[position + i]) else { return nil }
            v = v * 16 + d
        }
        position += count
        return v
    }

    private mutating func parseClass() throws(GLMError) -> CharSet {
        let start = position
        position += 1
        var negated = false
        if peek == "^" { negated = true; position += 1 }
        var narrow = CharSet(), wide = CharSet()
        if peek == "]" {
            // ECMA-262 reads `[]` as the empty class and `[^]` as any character; Python reads a leading `]` as a
            // member. A generated string must satisfy both, so the form is refused.
            throw unsupported("']' right after '[' (ECMA-262 and Python read it differently)", at: position)
        }
        while true {
            guard let c = peek else { throw error("missing ']'", at: start) }
            if c == "]" { position += 1; break }
            let low = try classAtom()
            if peek == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
                let dash = position
                position += 1
                let high = try classAtom()
                guard let a = low.single, let b = high.single else {
                    // ECMA-262 Annex B: a range with a class escape is the escape, '-', and the other end.
                    narrow = narrow.union(low.narrow).union(high.narrow).union(CharSet(scalar: 0x2D))
                    wide = wide.union(low.wide).union(high.wide).union(CharSet(scalar: 0x2D))
                    continue
                }
                guard a <= b else { throw error("range out of order in character class", at: dash) }
                narrow = narrow.union(CharSet(a...b))
                wide = wide.union(CharSet(a...b))
            } else {
                narrow = narrow.union(low.narrow)
                wide = wide.union(low.wide)
            }
        }
        return negated ? wide.complement : narrow
    }

    private mutating func classAtom() throws(GLMError) -> ClassItem {
        guard let c = peek else { throw error("missing ']'") }
        if c == "\\" { return try parseEscape(inClass: true).item }
        if c == "[" {
            let next = position + 1 < scalars.count ? scalars[position + 1] : nil
            if next == ":" || next == "=" || next == "." {
                throw unsupported("a POSIX class or nested set", at: position)
            }
        }
        position += 1
        let s = CharSet(scalar: c.value)
        return ClassItem(narrow: s, wide: s, single: c.value)
    }
}

/// JSON string quoting for messages.
enum JSONQuote {
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
