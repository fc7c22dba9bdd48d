import GLMSupport

/// A regular expression over Unicode scalars (what JSON Schema's `pattern`, `format`, `minLength`/`maxLength`
/// and `enum` say about a string's decoded characters). It becomes a byte regex through an `Encoding`: the
/// characters as they appear inside a JSON string literal (escapes included), or raw UTF-8.
indirect enum CharRegex: Hashable, Sendable {
    case set(CharSet)
    case sequence([CharRegex])
    case alternatives([CharRegex])
    /// `r{lo,hi}`, `hi` nil = unbounded.
    case repetition(CharRegex, Int, Int?)
    case intersection([CharRegex])
    /// Every string not in the language.
    case complement(CharRegex)
    /// Strings from an alphabet except a few words (see `excluding`).
    case excludingWords(ExcludedWords)
    /// A pattern's `$` inside a group; only `PatternParser.resolvingEnds` sees it (it never reaches `compile`).
    case endOfText

    static let empty = CharRegex.sequence([])
    static let nothing = CharRegex.alternatives([])
    static let anyString = CharRegex.repetition(.set(.all), 0, nil)

    static func literal(_ text: String) -> CharRegex {
        .sequence(text.unicodeScalars.map { .set(CharSet(scalar: $0.value)) })
    }

    static func char(_ c: Character) -> CharRegex { literal(String(c)) }

    /// Strings containing `inner` somewhere.
    static func containing(_ inner: CharRegex) -> CharRegex { .sequence([anyString, inner, anyString]) }

    /// Whether the language holds the empty string (`endOfText` counts as empty).
    var isNullable: Bool {
        switch self {
        case .set: return false
        case .sequence(let parts): return parts.allSatisfy(\.isNullable)
        case .alternatives(let parts): return parts.contains(where: \.isNullable)
        case .repetition(let inner, let lo, _): return lo == 0 || inner.isNullable
        case .intersection(let parts): return parts.allSatisfy(\.isNullable)
        case .complement(let inner): return !inner.isNullable
        case .excludingWords(let spec): return spec.allowEmpty && !spec.words.contains("")
        case .endOfText: return true
        }
    }

    var containsEndOfText: Bool {
        switch self {
        case .endOfText: return true
        case .set, .excludingWords: return false
        case .sequence(let parts), .alternatives(let parts), .intersection(let parts):
            return parts.contains(where: \.containsEndOfText)
        case .repetition(let inner, _, _), .complement(let inner): return inner.containsEndOfText
        }
    }

    /// The shortest and longest length (in characters) of the strings in the language, `max` nil when
    /// unbounded; an over-approximation for intersections and complements.
    var lengthBounds: (min: Int, max: Int?) {
        func add(_ a: Int?, _ b: Int?) -> Int? { guard let a, let b else { return nil }; return a + b }
        switch self {
        case .set: return (1, 1)
        case .sequence(let parts):
            return parts.reduce((0, 0)) { acc, p in
                let b = p.lengthBounds
                return (acc.0 + b.min, add(acc.1, b.max))
            }
        case .alternatives(let parts):
            guard !parts.isEmpty else { return (0, 0) }
            let bounds = parts.map(\.lengthBounds)
            let maxes = bounds.map(\.max)
            return (bounds.map(\.min).min() ?? 0, maxes.contains { $0 == nil } ? nil : maxes.compactMap { $0 }.max())
        case .repetition(let inner, let lo, let hi):
            let b = inner.lengthBounds
            return (b.min * lo, hi.flatMap { h in b.max.map { $0 * h } })
        case .intersection(let parts):
            let bounds = parts.map(\.lengthBounds)
            return (bounds.map(\.min).max() ?? 0, bounds.compactMap(\.max).min())
        case .complement: return (0, nil)
        case .excludingWords(let spec): return (spec.allowEmpty ? 0 : 1, spec.maxLength)
        case .endOfText: return (0, 0)
        }
    }

    /// Strings of a first character from `first` and then characters from `rest` (at most `maxLength` in all;
    /// the empty string when `allowEmpty`), except `words`. Compiled as a trie of the words with an escape at
    /// every node, so it needs no intersection or complement (whose derivatives cost far more), and every trie
    /// node is known to accept any `rest` characters from there on, which the vocabulary slices use.
    static func excluding(_ words: [String], first: CharSet = .all, rest: CharSet = .all, allowEmpty: Bool = true,
                          maxLength: Int? = nil) -> CharRegex {
        .excludingWords(ExcludedWords(words: words, first: first, rest: rest, allowEmpty: allowEmpty, maxLength: maxLength))
    }
}

/// The parameters of `CharRegex.excluding`.
struct ExcludedWords: Hashable, Sendable {
    var words: [String]
    var first: CharSet
    var rest: CharSet
    var allowEmpty: Bool
    var maxLength: Int?
}

/// How the characters of a string appear in the generated text.
enum StringEncoding: Hashable, Sendable {
    /// Inside a JSON string literal: printable characters raw (except `"` and `\`), the two-character escapes,
    /// and `\uXXXX` (either case) for any character of the Basic Multilingual Plane. Characters above it are
    /// written raw only (no surrogate pairs).
    case json
    /// Raw UTF-8, every character as itself (tool-call argument values).
    case raw
}

extension RegexStore {
    /// The UTF-8 encodings of the scalars in `set`.
    mutating func utf8(_ set: CharSet) -> ID {
        var sequences: [[ClosedRange<UInt8>]] = []
        for r in set.ranges { UTF8Ranges.split(r.lowerBound, r.upperBound, into: &sequences) }
        // Merge sequences by their first byte range so the alternatives share prefixes where they can.
        var parts: [ID] = []
        parts.reserveCapacity(sequences.count)
        for seq in sequences {
            parts.append(concat(seq.map { bytes(ByteSet($0)) }))
        }
        return or(parts)
    }

    /// The byte regex of `regex` under `encoding`.
    mutating func compile(_ regex: CharRegex, _ encoding: StringEncoding) throws(GLMError) -> ID {
        var cache = encodings[encoding] ?? [:]
        defer { encodings[encoding] = cache }
        return try compile(regex, encoding, &cache, depth: 0)
    }

    private mutating func compile(_ regex: CharRegex, _ encoding: StringEncoding, _ cache: inout [CharSet: ID],
                                  depth: Int) throws(GLMError) -> ID {
        guard depth < 200 else { throw GLMError(.limitExceeded, "a regular expression is nested more than 200 deep") }
        switch regex {
        case .set(let set):
            if let known = cache[set] { return known }
            let id = encode(set, encoding)
            cache[set] = id
            return id
        case .sequence(let parts):
            var ids: [ID] = []
            for p in parts { ids.append(try compile(p, encoding, &cache, depth: depth + 1)) }
            return concat(ids)
        case .alternatives(let parts):
            var ids: [ID] = []
            for p in parts { ids.append(try compile(p, encoding, &cache, depth: depth + 1)) }
            return or(ids)
        case .repetition(let inner, let lo, let hi):
            return self.repeat(try compile(inner, encoding, &cache, depth: depth + 1), lo, hi)
        case .intersection(let parts):
            var ids: [ID] = []
            for p in parts { ids.append(try compile(p, encoding, &cache, depth: depth + 1)) }
            return and(ids)
        case .complement(let inner):
            // Complement within the encoded strings: every encoding decodes to exactly one character string,
            // so "an encoding of a string not in L" is "a valid encoding that is not an encoding of L".
            let all = star(encode(.all, encoding))
            return and(all, not(try compile(inner, encoding, &cache, depth: depth + 1)))
        case .excludingWords(let spec):
            return compileExcluding(spec, encoding, &cache)
        case .endOfText:
            throw GLMError(.internal, "an unresolved '$' reached the byte compiler")
        }
    }

    private mutating func compileExcluding(_ spec: ExcludedWords, _ encoding: StringEncoding,
                                           _ cache: inout [CharSet: ID]) -> ID {
        final class Node {
            var children: [UInt32: Node] = [:]
            var isWord = false
        }
        let root = Node()
        for w in spec.words {
            var n = root
            for u in w.unicodeScalars {
                if let c = n.children[u.value] { n = c } else {
                    let c = Node()
                    n.children[u.value] = c
                    n = c
                }
            }
            n.isWord = true
        }
        func set(_ s: CharSet, _ cache: inout [CharSet: ID]) -> ID {
            if let known = cache[s] { return known }
            let id = encode(s, encoding)
            cache[s] = id
            return id
        }
        let restID = set(spec.rest, &cache)
        func remaining(_ depth: Int) -> Int? { spec.maxLength.map { max(0, $0 - depth) } }
        func build(_ n: Node, _ depth: Int, _ cache: inout [CharSet: ID]) -> ID {
            var options: [ID] = []
            if !n.isWord && (depth > 0 || spec.allowEmpty) { options.append(RegexStore.empty) }
            if remaining(depth).map({ $0 > 0 }) ?? true {
                let alphabet = depth == 0 ? spec.first : spec.rest
                let taken = CharSet(n.children.keys.map { $0...$0 })
                let others = alphabet.subtracting(taken)
                if !others.isEmpty {
                    options.append(concat(set(others, &cache), self.repeat(restID, 0, remaining(depth + 1))))
                }
                for (c, child) in n.children.sorted(by: { $0.key < $1.key }) where alphabet.contains(c) {
                    options.append(concat(set(CharSet(scalar: c), &cache), build(child, depth + 1, &cache)))
                }
            }
            let id = or(options)
            // Every node takes any `rest` characters (up to the length bound; the root when its first character
            // comes from the same set): the words only forbid stopping at them.
            // With a length bound, a run that reaches the bound on a word is dead, so one character less is safe.
            if depth > 0 || spec.first == spec.rest {
                liveRuns[id] = (restID, remaining(depth).map { max(0, $0 - 1) } ?? Int.max)
            }
            return id
        }
        return build(root, 0, &cache)
    }

    /// The encodings of one character of `set`.
    mutating func encode(_ set: CharSet, _ encoding: StringEncoding) -> ID {
        let id = encodeUncached(set, encoding)
        // Remember which nodes take any plain (or text) character as one iteration: a repetition of such a
        // node accepts whole vocabulary slices (see `structuralRun`).
        if set.intersection(TokenVocabulary.plainCharacters) == TokenVocabulary.plainCharacters {
            coversPlain.insert(id)
            if encoding == .raw, set.intersection(TokenVocabulary.textCharacters) == TokenVocabulary.textCharacters {
                coversText.insert(id)
            }
        }
        return id
    }

    private mutating func encodeUncached(_ set: CharSet, _ encoding: StringEncoding) -> ID {
        switch encoding {
        case .raw:
            return utf8(set)
        case .json:
            var parts: [ID] = []
            let raw = set.subtracting(CharSet([0x00...0x1F, 0x22...0x22, 0x5C...0x5C]))
            parts.append(utf8(raw))
            var short = ByteSet()
            for (c, letter) in JSONEscapes.short where set.contains(c) { short.insert(letter) }
            var escaped: [ID] = []
            if !short.isEmpty { escaped.append(bytes(short)) }
            let bmp = set.intersection(CharSet(0...0xFFFF))
            if !bmp.isEmpty {
                var digits: [[ClosedRange<UInt32>]] = []
                for r in bmp.ranges { HexRanges.split(r.lowerBound, r.upperBound, width: 4, into: &digits) }
                var forms: [ID] = []
                for seq in digits {
                    forms.append(concat(seq.map { bytes(HexRanges.hexBytes($0)) }))
                }
                escaped.append(concat(byte(UInt8(ascii: "u")), or(forms)))
            }
            if !escaped.isEmpty { parts.append(concat(byte(UInt8(ascii: "\\")), or(escaped))) }
            return or(parts)
        }
    }
}

enum JSONEscapes {
    /// Characters with a two-character escape and the letter after the backslash.
    static let short: [(UInt32, UInt8)] = [
        (0x22, UInt8(ascii: "\"")), (0x5C, UInt8(ascii: "\\")), (0x2F, UInt8(ascii: "/")), (0x08, UInt8(ascii: "b")),
        (0x0C, UInt8(ascii: "f")), (0x0A, UInt8(ascii: "n")), (0x0D, UInt8(ascii: "r")), (0x09, UInt8(ascii: "t")),
    ]
}

/// Splits a range of scalars into sequences of byte ranges, one per run of scalars whose UTF-8 encodings have
/// the same length and vary only in trailing positions (the standard construction behind UTF-8 automata).
enum UTF8Ranges {
    static func split(_ lo: UInt32, _ hi: UInt32, into out: inout [[ClosedRange<UInt8>]]) {
        if lo > hi { return }
        // Never encode surrogates.
        if lo <= 0xDFFF && hi >= 0xD800 {
            if lo < 0xD800 { split(lo, 0xD7FF, into: &out) }
            if hi > 0xDFFF { split(0xE000, hi, into: &out) }
            return
        }
        for boundary: UInt32 in [0x7F, 0x7FF, 0xFFFF] where lo <= boundary && hi > boundary {
            split(lo, boundary, into: &out)
            split(boundary + 1, hi, into: &out)
            return
        }
        if hi <= 0x7F {
            out.append([UInt8(lo)...UInt8(hi)])
            return
        }
        let length = hi <= 0x7FF ? 2 : (hi <= 0xFFFF ? 3 : 4)
        for i in 1..<length {
            let m: UInt32 = (1 << (6 * UInt32(i))) - 1
            if lo & ~m != hi & ~m {
                if lo & m != 0 {
                    split(lo, lo | m, into: &out)
                    split((lo | m) + 1, hi, into: &out)
                    return
                }
                if hi & m != m {
                    split(lo, (hi & ~m) - 1, into: &out)
                    split(hi & ~m, hi, into: &out)
                    return
                }
            }
        }
        let a = encode(lo), b = encode(hi)
        out.append((0..<a.count).map { a[$0]...b[$0] })
    }

    static func encode(_ c: UInt32) -> [UInt8] {
        switch c {
        case 0..<0x80: return [UInt8(c)]
        case 0x80..<0x800: return [UInt8(0xC0 | (c >> 6)), UInt8(0x80 | (c & 0x3F))]
        case 0x800..<0x10000:
            return [UInt8(0xE0 | (c >> 12)), UInt8(0x80 | ((c >> 6) & 0x3F)), UInt8(0x80 | (c & 0x3F))]
        default:
            return [UInt8(0xF0 | (c >> 18)), UInt8(0x80 | ((c >> 12) & 0x3F)), UInt8(0x80 | ((c >> 6) & 0x3F)),
                    UInt8(0x80 | (c & 0x3F))]
        }
    }
}

/// Splits a range of numbers into sequences of per-digit ranges of fixed-width base-16 numerals (`\uXXXX`).
enum HexRanges {
    static func split(_ lo: UInt32, _ hi: UInt32, width: Int, into out: inout [[ClosedRange<UInt32>]]) {
        DigitRanges.split(lo, hi, base: 16, width: width, prefix: [], into: &out)
    }

    /// The hexadecimal digit characters (both cases) for a range of digit values.
    static func hexBytes(_ digits: ClosedRange<UInt32>) -> ByteSet {
        var s = ByteSet()
        for d in digits {
            if d < 10 {
                s.insert(UInt8(48 + d))
            } else {
                s.insert(UInt8(97 + d - 10))
                s.insert(UInt8(65 + d - 10))
            }
        }
        return s
    }
}

/// Fixed-width numerals in any base: [lo, hi] as sequences of digit ranges, most significant first.
enum DigitRanges {
    static func split(_ lo: UInt32, _ hi: UInt32, base: UInt32, width: Int, prefix: [ClosedRange<UInt32>],
                      into out: inout [[ClosedRange<UInt32>]]) {
        if lo > hi { return }
        if width == 0 {
            out.append(prefix)
            return
        }
        var scale: UInt32 = 1
        for _ in 1..<width { scale *= base }
        let loDigit = lo / scale, hiDigit = hi / scale
        let loRest = lo % scale, hiRest = hi % scale
        if loDigit == hiDigit {
            split(loRest, hiRest, base: base, width: width - 1, prefix: prefix + [loDigit...loDigit], into: &out)
            return
        }
        var first = loDigit, last = hiDigit
        if loRest != 0 {
            split(loRest, scale - 1, base: base, width: width - 1, prefix: prefix + [loDigit...loDigit], into: &out)
            first += 1
        }
        var tail: (UInt32, UInt32)?
        if hiRest != scale - 1 {
            tail = (hiDigit, hiRest)
            last -= 1
        }
        if first <= last {
            out.append(prefix + [first...last] + Array(repeating: 0...(base - 1), count: width - 1))
        }
        if let (d, rest) = tail {
            split(0, rest, base: base, width: width - 1, prefix: prefix + [d...d], into: &out)
        }
    }
}
