import GLMSupport

/// A regular expression with the semantics of Oniguruma (Ruby syntax), the engine HF tokenizers runs `Split`
/// pre-tokenizer patterns on: leftmost-first alternation, greedy/lazy/possessive quantifiers, lookahead,
/// atomic groups, `(?i)` with simple case folding, `\p{...}` General_Category classes, `\s` = White_Space,
/// `.` excluding `\n`, `^`/`$` at line boundaries. Matching runs on Unicode scalars with a backtracking VM.
///
/// Not supported (clear error at load): backreferences, lookbehind, script properties (`\p{Han}`),
/// class intersection `&&`, conditionals.
public struct PatternRegex: Sendable {
    public let pattern: String
    let program: [PatternInstruction]
    let sets: [PatternCharSet]

    public init(_ pattern: String) throws(GLMError) {
        self.pattern = pattern
        var parser = PatternParser(pattern: pattern)
        let tree = try parser.parse()
        var compiler = PatternCompiler(sets: parser.sets)
        try compiler.emit(tree)
        compiler.program.append(.match)
        program = compiler.program
        sets = compiler.sets
    }

    /// Finds the leftmost match starting at or after `from`, as a scalar index range.
    func firstMatch(in text: ScalarText, from: Int, stack: inout [PatternBacktrack]) -> Range<Int>? {
        var start = from
        let n = text.count
        while start <= n {
            if let end = program.withUnsafeBufferPointer({ prog in
                sets.withUnsafeBufferPointer { sets in
                    PatternVM(program: prog, sets: sets, text: text).run(pc: 0, position: start, stack: &stack)
                }
            }) {
                return start..<end
            }
            start += 1
        }
        return nil
    }

    /// All non-overlapping matches, left to right (an empty match is skipped and the search moves on by one).
    func matches(in text: ScalarText, stack: inout [PatternBacktrack], into result: inout [Range<Int>]) {
        var position = 0
        while position <= text.count, let m = firstMatch(in: text, from: position, stack: &stack) {
            if m.isEmpty {
                position = m.upperBound + 1
                continue
            }
            result.append(m)
            position = m.upperBound
        }
    }
}

/// Text as the VM sees it: scalars and their `UnicodeClasses` bits, side by side.
struct ScalarText {
    let scalars: UnsafeBufferPointer<UInt32>
    let bits: UnsafeBufferPointer<UInt32>
    var count: Int { scalars.count }
}

enum PatternInstruction: Equatable {
    /// One scalar from set `set`.
    case char(set: Int32)
    /// `min...max` scalars from `set` (max -1: unbounded), greedy, lazy or possessive.
    case charRepeat(set: Int32, min: Int32, max: Int32, mode: RepeatMode)
    /// Try `first`, on failure `second`.
    case split(first: Int32, second: Int32)
    case jump(Int32)
    /// Run the sub-program at `body` (it ends in `.subEnd`) without backtracking into it, then continue at
    /// `next`: as a positive or negative lookahead (position unchanged) or as an atomic group.
    case sub(body: Int32, next: Int32, kind: SubKind)
    case subEnd
    case assert(AssertKind)
    case match

    enum RepeatMode: Equatable { case greedy, lazy, possessive }
    enum SubKind: Equatable { case lookahead, negativeLookahead, atomic }
    enum AssertKind: Equatable { case lineStart, lineEnd, textStart, textEnd, textEndOrFinalNewline, wordBoundary, notWordBoundary }
}

/// One saved alternative: resume at `pc` with position `position`; for a quantified set it also stands for
/// the further positions up to `limit` in steps of `step` (so a greedy `\p{L}+` over 40 letters is one entry).
struct PatternBacktrack {
    var pc: Int32
    var step: Int32
    var position: Int
    var limit: Int
}

struct PatternVM {
    static let backtrackLimit = 10_000_000
    let program: UnsafeBufferPointer<PatternInstruction>
    let sets: UnsafeBufferPointer<PatternCharSet>
    let text: ScalarText

    /// Runs from `pc` at `position` until `.match`/`.subEnd`; returns the end position or nil.
    func run(pc startPC: Int, position startPosition: Int, stack: inout [PatternBacktrack]) -> Int? {
        let base = stack.count
        defer { stack.removeSubrange(base...) }
        var pc = startPC
        var pos = startPosition
        let n = text.count
        var backtracks = 0
        while true {
            var failed = false
            switch program[pc] {
            case .char(let s):
                if pos < n && sets[Int(s)].contains(text.scalars[pos], bits: text.bits[pos]) {
                    pos += 1
                    pc += 1
                } else {
                    failed = true
                }
            case .charRepeat(let s, let min, let max, let mode):
                let set = sets[Int(s)]
                let limit = max < 0 ? n : Swift.min(n, pos + Int(max))
                var end = pos
                let minEnd = pos + Int(min)
                if mode == .lazy {
                    while end < minEnd && end < limit && set.contains(text.scalars[end], bits: text.bits[end]) { end += 1 }
                    if end < minEnd { failed = true; break }
                    var far = end
                    while far < limit && set.contains(text.scalars[far], bits: text.bits[far]) { far += 1 }
                    if far > end {
                        stack.append(PatternBacktrack(pc: Int32(pc + 1), step: 1, position: end + 1, limit: far))
                    }
                } else {
                    while end < limit && set.contains(text.scalars[end], bits: text.bits[end]) { end += 1 }
                    if end < minEnd { failed = true; break }
                    if mode == .greedy && end > minEnd {
                        stack.append(PatternBacktrack(pc: Int32(pc + 1), step: -1, position: end - 1, limit: minEnd))
                    }
                }
                pos = end
                pc += 1
            case .split(let first, let second):
                stack.append(PatternBacktrack(pc: second, step: 0, position: pos, limit: pos))
                pc = Int(first)
            case .jump(let target):
                pc = Int(target)
            case .sub(let body, let next, let kind):
                let end = run(pc: Int(body), position: pos, stack: &stack)
                switch kind {
                case .lookahead: failed = end == nil
                case .negativeLookahead: failed = end != nil
                case .atomic:
                    if let end { pos = end } else { failed = true }
                }
                pc = Int(next)
            case .subEnd, .match:
                return pos
            case .assert(let kind):
                failed = !check(kind, at: pos)
                pc += 1
            }
            if failed {
                backtracks += 1
                // A pathological pattern (nested quantifiers) could backtrack exponentially; like onig's
                // retry limit, give up on this start position instead of hanging.
                guard backtracks <= PatternVM.backtrackLimit, stack.count > base, let top = stack.last else { return nil }
                pc = Int(top.pc)
                pos = top.position
                if top.position == top.limit {
                    stack.removeLast()
                } else {
                    stack[stack.count - 1].position += Int(top.step)
                }
            }
        }
    }

    private func isWord(_ i: Int) -> Bool {
        i >= 0 && i < text.count && text.bits[i] & UnicodeClasses.word != 0
    }

    private func check(_ kind: PatternInstruction.AssertKind, at pos: Int) -> Bool {
        let n = text.count
        switch kind {
        case .textStart: return pos == 0
        case .textEnd: return pos == n
        case .textEndOrFinalNewline: return pos == n || (pos == n - 1 && text.scalars[pos] == 0x0A)
        case .lineStart: return pos == 0 || text.scalars[pos - 1] == 0x0A
        case .lineEnd: return pos == n || text.scalars[pos] == 0x0A
        case .wordBoundary: return isWord(pos - 1) != isWord(pos)
        case .notWordBoundary: return isWord(pos - 1) == isWord(pos)
        }
    }
}

// MARK: - Parsing

indirect enum PatternNode {
    case empty
    case set(Int)
    case concat([PatternNode])
    case alternation([PatternNode])
    case quantified(PatternNode, min: Int, max: Int?, mode: PatternInstruction.RepeatMode)
    case sub(PatternNode, PatternInstruction.SubKind)
    case assert(PatternInstruction.AssertKind)

    var canMatchEmpty: Bool {
        switch self {
        case .empty, .assert, .sub(_, .lookahead), .sub(_, .negativeLookahead): return true
        case .set: return false
        case .concat(let items): return items.allSatisfy { $0.canMatchEmpty }
        case .alternation(let items): return items.contains { $0.canMatchEmpty }
        case .quantified(let node, let min, _, _): return min == 0 || node.canMatchEmpty
        case .sub(let node, _): return node.canMatchEmpty
        }
    }
}

struct PatternParser {
    let scalars: [UInt32]
    let pattern: String
    var pos = 0
    var sets: [PatternCharSet] = []
    var depth = 0
    static let maxDepth = 64

    init(pattern: String) {
        self.pattern = pattern
        scalars = pattern.unicodeScalars.map(\.value)
    }

    func error(_ what: String) -> GLMError {
        .format("pre-tokenizer regex: \(what) at position \(pos) in '\(pattern)'")
    }

    func unsupported(_ what: String) -> GLMError {
        .unsupported("pre-tokenizer regex: \(what) (position \(pos) in '\(pattern)') is not supported")
    }

    mutating func parse() throws(GLMError) -> PatternNode {
        let node = try parseAlternation(caseInsensitive: false)
        if pos < scalars.count { throw error("unbalanced ')'") }
        return node
    }

    var atEnd: Bool { pos >= scalars.count }
    func peek(_ offset: Int = 0) -> UInt32? { pos + offset < scalars.count ? scalars[pos + offset] : nil }

    mutating func addSet(_ set: PatternCharSet) -> Int {
        var s = set
        s.finish()
        if let i = sets.firstIndex(of: s) { return i }
        sets.append(s)
        return sets.count - 1
    }

    mutating func parseAlternation(caseInsensitive: Bool) throws(GLMError) -> PatternNode {
        depth += 1
        defer { depth -= 1 }
        guard depth <= PatternParser.maxDepth else { throw error("groups nested deeper than \(PatternParser.maxDepth)") }
        var branches: [PatternNode] = []
        var ci = caseInsensitive
        while true {
            branches.append(try parseConcat(caseInsensitive: &ci))
            if peek() == 0x7C { pos += 1 } else { break } // |
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    /// A sequence up to `|` or `)`; an inline `(?i)` switches case-insensitivity for the rest of the group.
    mutating func parseConcat(caseInsensitive: inout Bool) throws(GLMError) -> PatternNode {
        var items: [PatternNode] = []
        while let c = peek(), c != 0x7C, c != 0x29 {
            if c == 0x28, peek(1) == 0x3F, let flagged = try parseInlineFlags() {
                caseInsensitive = flagged
                continue
            }
            var atom = try parseAtom(caseInsensitive: caseInsensitive)
            atom = try parseQuantifiers(atom)
            items.append(atom)
        }
        if items.isEmpty { return .empty }
        return items.count == 1 ? items[0] : .concat(items)
    }

    /// `(?i)` / `(?-i)` standing alone: returns the new flag and consumes it; otherwise consumes nothing.
    mutating func parseInlineFlags() throws(GLMError) -> Bool? {
        var i = pos + 2
        var on = true
        var value: Bool? = nil
        while i < scalars.count {
            switch scalars[i] {
            case 0x2D: on = false // -
            case 0x69: value = on // i
            case 0x6D, 0x73, 0x78: throw unsupported("inline flag '\(Character(Unicode.Scalar(scalars[i]) ?? "?"))'")
            case 0x29:
                guard let v = value else { return nil }
                pos = i + 1
                return v
            default: return nil
            }
            i += 1
        }
        return nil
    }

    mutating func parseQuantifiers(_ atom: PatternNode) throws(GLMError) -> PatternNode {
        var node = atom
        while let c = peek() {
            var min = 0, max: Int? = nil
            switch c {
            case 0x2A: pos += 1                       // *
            case 0x2B: min = 1; pos += 1              // +
            case 0x3F: max = 1; pos += 1              // ?
            case 0x7B:                                // {
                guard let (lo, hi) = try parseBraces() else { return node }
                min = lo
                max = hi
            default: return node
            }
            var mode = PatternInstruction.RepeatMode.greedy
            if peek() == 0x3F { mode = .lazy; pos += 1 } else if peek() == 0x2B { mode = .possessive; pos += 1 }
            if case .assert = node { throw error("quantifier after an anchor") }
            if node.canMatchEmpty, max == nil { throw unsupported("an unbounded quantifier over an expression that can match empty") }
            node = .quantified(node, min: min, max: max, mode: mode)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}`, `{,m}`; nil (nothing consumed) when the brace is a literal, as in onig.
    mutating func parseBraces() throws(GLMError) -> (Int, Int?)? {
        var i = pos + 1
        func number(_ i: inout Int) -> Int? {
            var value = 0, digits = 0
            while i < scalars.count, scalars[i] >= 0x30, scalars[i] <= 0x39, digits < 6 {
                value = value * 10 + Int(scalars[i] - 0x30)
                digits += 1
                i += 1
            }
            return digits > 0 ? value : nil
        }
        let lo = number(&i)
        var hi: Int?
        if i < scalars.count, scalars[i] == 0x2C {
            i += 1
            hi = number(&i)
            if lo == nil && hi == nil { return nil }
        } else {
            guard lo != nil else { return nil }
            hi = lo
        }
        guard i < scalars.count, scalars[i] == 0x7D else { return nil }
        let low = lo ?? 0
        if let h = hi, h < low { throw error("quantifier {\(low),\(h)} has max < min") }
        if low > 1000 || (hi ?? 0) > 1000 { throw unsupported("a counted repetition above 1000") }
        pos = i + 1
        return (low, hi)
    }

    mutating func parseAtom(caseInsensitive ci: Bool) throws(GLMError) -> PatternNode {
        guard let c = peek() else { throw error("unexpected end") }
        switch c {
        case 0x28: return try parseGroup(caseInsensitive: ci)
        case 0x5B:
            pos += 1
            return .set(addSet(try parseClass(caseInsensitive: ci)))
        case 0x2E:
            pos += 1
            var s = PatternCharSet()
            s.ranges = [0x0A...0x0A]
            s.negated = true
            return .set(addSet(s))
        case 0x5E: pos += 1; return .assert(.lineStart)
        case 0x24: pos += 1; return .assert(.lineEnd)
        case 0x5C:
            pos += 1
            if let node = try parseAnchorEscape() { return node }
            return .set(addSet(try parseEscape(inClass: false, caseInsensitive: ci)))
        case 0x2A, 0x2B, 0x3F: throw error("quantifier without anything to repeat")
        default:
            pos += 1
            return .set(addSet(.single(c, caseInsensitive: ci)))
        }
    }

    mutating func parseAnchorEscape() throws(GLMError) -> PatternNode? {
        guard let c = peek() else { throw error("pattern ends with '\\'") }
        switch c {
        case 0x41: pos += 1; return .assert(.textStart)              // \A
        case 0x7A: pos += 1; return .assert(.textEnd)                // \z
        case 0x5A: pos += 1; return .assert(.textEndOrFinalNewline)  // \Z
        case 0x62: pos += 1; return .assert(.wordBoundary)           // \b
        case 0x42: pos += 1; return .assert(.notWordBoundary)        // \B
        case 0x31...0x39: throw unsupported("backreference")
        case 0x6B, 0x67: throw unsupported("named backreference or subexpression call")
        default: return nil
        }
    }

    mutating func parseGroup(caseInsensitive ci: Bool) throws(GLMError) -> PatternNode {
        pos += 1 // (
        var kind: PatternInstruction.SubKind? = nil
        var inner = ci
        if peek() == 0x3F { // ?
            pos += 1
            guard let c = peek() else { throw error("unterminated group") }
            switch c {
            case 0x3A: pos += 1                                  // (?:
            case 0x3D: pos += 1; kind = .lookahead               // (?=
            case 0x21: pos += 1; kind = .negativeLookahead       // (?!
            case 0x3E: pos += 1; kind = .atomic                  // (?>
            case 0x3C:                                           // (?<name> or lookbehind
                if peek(1) == 0x3D || peek(1) == 0x21 { throw unsupported("lookbehind") }
                try skipGroupName(close: 0x3E)
            case 0x50:                                           // (?P<name>
                pos += 1
                guard peek() == 0x3C else { throw unsupported("(?P construct") }
                try skipGroupName(close: 0x3E)
            case 0x27: try skipGroupName(close: 0x27)
            default:
                var on = true
                var sawFlag = false
                while let f = peek(), f != 0x3A {
                    switch f {
                    case 0x2D: on = false
                    case 0x69: inner = on; sawFlag = true
                    default: throw unsupported("group flag '\(Character(Unicode.Scalar(f) ?? "?"))'")
                    }
                    pos += 1
                }
                guard sawFlag, peek() == 0x3A else { throw error("malformed group flags") }
                pos += 1
            }
        }
        let body = try parseAlternation(caseInsensitive: inner)
        guard peek() == 0x29 else { throw error("missing ')'") }
        pos += 1
        if let kind { return .sub(body, kind) }
        return body
    }

    mutating func skipGroupName(close: UInt32) throws(GLMError) {
        pos += 1
        while let c = peek(), c != close { pos += 1 }
        guard peek() == close else { throw error("unterminated group name") }
        pos += 1
    }

    /// After `[`: a bracket expression, up to and including its `]`.
    mutating func parseClass(caseInsensitive ci: Bool) throws(GLMError) -> PatternCharSet {
        var set = PatternCharSet()
        set.caseInsensitive = ci
        if peek() == 0x5E { set.negated = true; pos += 1 }
        var first = true
        while true {
            guard let c = peek() else { throw error("unterminated character class") }
            if c == 0x5D && !first { pos += 1; break }
            first = false
            if c == 0x5B {
                if peek(1) == 0x3A { throw unsupported("POSIX bracket class") }
                throw unsupported("nested character class")
            }
            if c == 0x26 && peek(1) == 0x26 { throw unsupported("class intersection '&&'") }
            var low: UInt32
            if c == 0x5C {
                pos += 1
                let escaped = try parseEscape(inClass: true, caseInsensitive: ci)
                if escaped.ranges.count == 1, escaped.propertyMask == 0, escaped.complementMasks.isEmpty,
                   !escaped.negated, let r = escaped.ranges.first, r.lowerBound == r.upperBound {
                    low = r.lowerBound
                } else {
                    merge(escaped, into: &set)
                    continue
                }
            } else {
                low = c
                pos += 1
            }
            if peek() == 0x2D, let next = peek(1), next != 0x5D {
                pos += 1
                var high: UInt32
                if next == 0x5C {
                    pos += 1
                    let escaped = try parseEscape(inClass: true, caseInsensitive: ci)
                    guard escaped.ranges.count == 1, let r = escaped.ranges.first, r.lowerBound == r.upperBound,
                          escaped.propertyMask == 0, escaped.complementMasks.isEmpty, !escaped.negated else {
                        throw error("class range ends in a class escape")
                    }
                    high = r.lowerBound
                } else {
                    high = next
                    pos += 1
                }
                guard low <= high else { throw error("class range out of order") }
                set.ranges.append(low...high)
            } else {
                set.ranges.append(low...low)
            }
        }
        return set
    }

    func merge(_ part: PatternCharSet, into set: inout PatternCharSet) {
        if part.negated {
            // `\S`, `\D`, `\W`, `\P{..}` inside a class: members are those lacking the property.
            set.complementMasks.append(part.propertyMask)
        } else {
            set.propertyMask |= part.propertyMask
            set.ranges += part.ranges
        }
    }

    /// After `\`: one escape as a set (single scalar or class).
    mutating func parseEscape(inClass: Bool, caseInsensitive ci: Bool) throws(GLMError) -> PatternCharSet {
        guard let c = peek() else { throw error("pattern ends with '\\'") }
        pos += 1
        func property(_ mask: UInt32, negated: Bool) -> PatternCharSet {
            var s = PatternCharSet()
            s.propertyMask = mask
            s.negated = negated
            return s
        }
        func literal(_ v: UInt32) -> PatternCharSet { .single(v, caseInsensitive: ci) }
        switch c {
        case 0x73: return property(UnicodeClasses.whiteSpaceBit, negated: false)   // \s
        case 0x53: return property(UnicodeClasses.whiteSpaceBit, negated: true)    // \S
        case 0x64: return property(UnicodeClasses.mask(UnicodeClasses.nd), negated: false) // \d
        case 0x44: return property(UnicodeClasses.mask(UnicodeClasses.nd), negated: true)
        case 0x77: return property(UnicodeClasses.word, negated: false)            // \w
        case 0x57: return property(UnicodeClasses.word, negated: true)
        case 0x70, 0x50:                                                          // \p{..} \P{..}
            guard peek() == 0x7B else { throw error("\\p without {name}") }
            pos += 1
            var name = ""
            var negated = c == 0x50
            if peek() == 0x5E { negated.toggle(); pos += 1 }
            while let ch = peek(), ch != 0x7D {
                name.unicodeScalars.append(Unicode.Scalar(ch) ?? "?")
                pos += 1
                if name.count > 64 { throw error("property name too long") }
            }
            guard peek() == 0x7D else { throw error("unterminated \\p{") }
            pos += 1
            guard let mask = UnicodeClasses.mask(forProperty: name) else {
                throw unsupported("Unicode property \\p{\(name)}")
            }
            return property(mask, negated: negated)
        case 0x6E: return literal(0x0A)
        case 0x72: return literal(0x0D)
        case 0x74: return literal(0x09)
        case 0x66: return literal(0x0C)
        case 0x76: return literal(0x0B)
        case 0x61: return literal(0x07)
        case 0x65: return literal(0x1B)
        case 0x30: return literal(0)
        case 0x78:                                                                 // \xHH or \x{H..}
            if peek() == 0x7B {
                pos += 1
                let v = try hexDigits(max: 8, until: 0x7D)
                return literal(v)
            }
            return literal(try hexDigits(max: 2, until: nil))
        case 0x75: return literal(try hexDigits(max: 4, until: nil))               // \uHHHH
        case 0x55: return literal(try hexDigits(max: 8, until: nil))               // \UHHHHHHHH
        case 0x68, 0x48: throw unsupported("\\h / \\H")
        default:
            if (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) {
                throw unsupported("escape '\\\(Character(Unicode.Scalar(c) ?? "?"))'")
            }
            return literal(c)
        }
    }

    mutating func hexDigits(max: Int, until close: UInt32?) throws(GLMError) -> UInt32 {
        var value: UInt32 = 0
        var count = 0
        while count < max, let c = peek() {
            let d: UInt32
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default:
                if count == 0 { throw error("expected hex digits") }
                if let close, c == close { pos += 1; return try checkScalar(value) }
                if close == nil { return try checkScalar(value) }
                throw error("malformed hex escape")
            }
            value = value * 16 + d
            count += 1
            pos += 1
        }
        if let close {
            guard peek() == close else { throw error("malformed hex escape") }
            pos += 1
        }
        if count == 0 { throw error("expected hex digits") }
        return try checkScalar(value)
    }

    func checkScalar(_ v: UInt32) throws(GLMError) -> UInt32 {
        guard Unicode.Scalar(v) != nil else { throw error("escape U+\(String(v, radix: 16)) is not a Unicode scalar") }
        return v
    }
}

// MARK: - Compiling

struct PatternCompiler {
    var sets: [PatternCharSet]
    var program: [PatternInstruction] = []
    static let maxProgramSize = 200_000

    init(sets: [PatternCharSet]) { self.sets = sets }

    var here: Int32 { Int32(program.count) }

    mutating func append(_ i: PatternInstruction) throws(GLMError) {
        guard program.count < PatternCompiler.maxProgramSize else {
            throw .unsupported("pre-tokenizer regex: compiled program exceeds \(PatternCompiler.maxProgramSize) instructions")
        }
        program.append(i)
    }

    mutating func emit(_ node: PatternNode) throws(GLMError) {
        switch node {
        case .empty: break
        case .set(let s): try append(.char(set: Int32(s)))
        case .assert(let k): try append(.assert(k))
        case .concat(let items): for item in items { try emit(item) }
        case .alternation(let branches):
            // split L1, next; L1: branch; jump end; next: split ... ; last branch
            var jumpsToEnd: [Int] = []
            for (i, branch) in branches.enumerated() {
                if i < branches.count - 1 {
                    let splitAt = program.count
                    try append(.split(first: 0, second: 0))
                    try emit(branch)
                    jumpsToEnd.append(program.count)
                    try append(.jump(0))
                    program[splitAt] = .split(first: Int32(splitAt + 1), second: here)
                } else {
                    try emit(branch)
                }
            }
            for j in jumpsToEnd { program[j] = .jump(here) }
        case .sub(let body, let kind):
            let at = program.count
            try append(.sub(body: 0, next: 0, kind: kind))
            try emit(body)
            try append(.subEnd)
            program[at] = .sub(body: Int32(at + 1), next: here, kind: kind)
        case .quantified(let inner, let min, let max, let mode):
            if case .set(let s) = inner {
                try append(.charRepeat(set: Int32(s), min: Int32(min), max: Int32(max ?? -1), mode: mode))
                return
            }
            if mode == .possessive {
                try emit(.sub(.quantified(inner, min: min, max: max, mode: .greedy), .atomic))
                return
            }
            for _ in 0..<min { try emit(inner) }
            if let max {
                // Optional copies, nested: (x(x(x)?)?)?
                var pendingSplits: [Int] = []
                for _ in min..<max {
                    pendingSplits.append(program.count)
                    try append(.split(first: 0, second: 0))
                    try emit(inner)
                }
                for at in pendingSplits {
                    program[at] = mode == .lazy ? .split(first: here, second: Int32(at + 1))
                                                : .split(first: Int32(at + 1), second: here)
                }
            } else {
                let loop = program.count
                try append(.split(first: 0, second: 0))
                try emit(inner)
                try append(.jump(Int32(loop)))
                program[loop] = mode == .lazy ? .split(first: here, second: Int32(loop + 1))
                                              : .split(first: Int32(loop + 1), second: here)
            }
        }
    }
}
