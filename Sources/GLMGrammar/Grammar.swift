import GLMSupport

/// A symbol of a production: a lexeme (a regular language, matched by the lexer) or a rule.
enum GrammarSymbol: Hashable {
    case lexeme(Int32)
    case rule(Int32)
}

/// Builds a context-free grammar whose terminals are lexemes. Lexemes are deduplicated by their regex, so two
/// places that expect the same language share one lexeme and the lexer scans it once for both.
struct GrammarBuilder {
    var store = RegexStore()
    private(set) var lexemes: [RegexStore.ID] = []
    private(set) var lexemeLive: [Bool] = []
    private(set) var lexemeGap: [Bool] = []
    private var lexemeIndex: [UInt64: Int32] = [:]
    /// Whitespace between lexemes: at most this many characters before a `gap` lexeme (0: none).
    var gapWidth = 0
    /// Whether whitespace (up to `gapWidth`) may also follow the whole output.
    var trailingGap = false
    private(set) var rules: [[[GrammarSymbol]]] = []
    private(set) var ruleNames: [String] = []

    /// Bounds what a hostile schema can make the grammar hold.
    static let maxRules = 200_000
    static let maxSymbols = 2_000_000
    private var symbolCount = 0

    /// The lexeme matching `regex`. `live`: every derivative of it reached by a prefix of the language still
    /// has a non-empty language (true of "any text without X, then X"), so the lexer need not check. `gap`:
    /// up to `gapWidth` whitespace characters may come before it (JSON's insignificant whitespace).
    mutating func lexeme(_ regex: RegexStore.ID, live: Bool = false, gap: Bool = false) throws(GLMError) -> GrammarSymbol {
        guard !store.nullable[Int(regex)] else {
            throw GLMError(.internal, "a lexeme matches the empty string")
        }
        let key = UInt64(UInt32(bitPattern: regex)) << 1 | (gap ? 1 : 0)
        if let id = lexemeIndex[key] {
            if !live { lexemeLive[Int(id)] = false }
            return .lexeme(id)
        }
        let id = Int32(lexemes.count)
        lexemes.append(regex)
        lexemeLive.append(live)
        lexemeGap.append(gap)
        lexemeIndex[key] = id
        return .lexeme(id)
    }

    mutating func literal(_ text: String) throws(GLMError) -> GrammarSymbol {
        try lexeme(store.literal(text))
    }

    mutating func newRule(_ name: String) throws(GLMError) -> Int32 {
        guard rules.count < GrammarBuilder.maxRules else {
            throw GLMError(.limitExceeded, "the constraint needs more than \(GrammarBuilder.maxRules) grammar rules")
        }
        rules.append([])
        ruleNames.append(name)
        return Int32(rules.count - 1)
    }

    mutating func addAlternative(_ rule: Int32, _ symbols: [GrammarSymbol]) throws(GLMError) {
        symbolCount += symbols.count + 1
        guard symbolCount <= GrammarBuilder.maxSymbols else {
            throw GLMError(.limitExceeded, "the constraint's grammar is larger than \(GrammarBuilder.maxSymbols) symbols")
        }
        rules[Int(rule)].append(symbols)
    }

    /// A rule with the given alternatives.
    mutating func rule(_ name: String, _ alternatives: [[GrammarSymbol]]) throws(GLMError) -> GrammarSymbol {
        let r = try newRule(name)
        for a in alternatives { try addAlternative(r, a) }
        return .rule(r)
    }

    func alternatives(of rule: Int32) -> [[GrammarSymbol]] { rules[Int(rule)] }

    /// Flattens the grammar for the parser, dropping alternatives that can never be completed (an empty
    /// lexeme, or a rule with no finite derivation). Throws if `start` itself derives nothing.
    mutating func finish(start: GrammarSymbol, what: String) throws(GLMError) -> ParseTables {
        // Productive lexemes and rules, to a fixed point.
        var lexemeLive = [Bool](repeating: false, count: lexemes.count)
        for (i, regex) in lexemes.enumerated() { lexemeLive[i] = !(try store.isEmptyLanguage(regex)) }
        var ruleLive = [Bool](repeating: false, count: rules.count)
        func live(_ s: GrammarSymbol) -> Bool {
            switch s {
            case .lexeme(let l): return lexemeLive[Int(l)]
            case .rule(let r): return ruleLive[Int(r)]
            }
        }
        var changed = true
        while changed {
            changed = false
            for r in rules.indices where !ruleLive[r] {
                if rules[r].contains(where: { $0.allSatisfy(live) }) {
                    ruleLive[r] = true
                    changed = true
                }
            }
        }
        guard live(start) else {
            throw GLMError(.invalidArgument, "\(what) admits no output at all (contradictory constraints)")
        }
        // Augmented start rule: S' -> S.
        let augmented = try newRule("start")
        try addAlternative(augmented, [start])
        ruleLive.append(true)

        // The whitespace between lexemes is a lexeme of its own that the parser never sees (see
        // `EarleyParser.rowAfterGap`): one small automaton shared by every gap instead of a whitespace prefix on
        // every lexeme, which cost a counter state per lexeme set.
        var regexes = lexemes
        var liveFlags = lexemeLive
        var gaps = lexemeGap
        var gapLexeme: Int32 = -1
        if gapWidth > 0 && (lexemeGap.contains(true) || trailingGap) {
            gapLexeme = Int32(regexes.count)
            regexes.append(store.repeat(store.bytes(ByteSet([0x20, 0x09, 0x0A, 0x0D])), 1, gapWidth))
            liveFlags.append(true)
            gaps.append(false)
        } else {
            gaps = gaps.map { _ in false }
        }
        var tables = ParseTables(lexemeCount: regexes.count, ruleCount: rules.count)
        tables.lexemeRegex = regexes
        tables.lexemeLive = liveFlags
        tables.lexemeGap = gaps
        tables.gapLexeme = gapLexeme
        tables.trailingGap = trailingGap && gapLexeme >= 0
        tables.ruleNames = ruleNames
        for r in rules.indices {
            for alt in rules[r] where alt.allSatisfy(live) {
                tables.addProduction(lhs: Int32(r), alt)
            }
        }
        tables.start = augmented
        tables.finish()
        return tables
    }
}

/// The grammar as the Earley parser reads it. Productions are laid out in one array of symbol codes, each
/// followed by an end marker, so an Earley item is a position in that array plus an origin row:
/// `0..<lexemeCount` is a lexeme, `lexemeCount...` a rule (`code - lexemeCount`), negative the end of a production
/// of rule `-1 - code`.
struct ParseTables: Sendable {
    let lexemeCount: Int
    let ruleCount: Int
    var lexemeRegex: [RegexStore.ID] = []
    /// Lexemes whose derivatives never need an emptiness check (see `GrammarBuilder.lexeme(_:live:)`).
    var lexemeLive: [Bool] = []
    /// Lexemes that whitespace may precede, the whitespace lexeme (-1: none), and whether whitespace may end
    /// the output.
    var lexemeGap: [Bool] = []
    var gapLexeme: Int32 = -1
    var trailingGap = false
    var ruleNames: [String] = []
    var codes: [Int32] = []
    /// Start positions of each rule's productions.
    var productions: [[Int32]]
    var nullable: [Bool]
    var start: Int32 = 0
    /// The end marker position of the start production (the item that means "the whole input is accepted").
    var acceptPosition: Int32 = 0

    init(lexemeCount: Int, ruleCount: Int) {
        self.lexemeCount = lexemeCount
        self.ruleCount = ruleCount
        productions = Array(repeating: [], count: ruleCount + 1)
        nullable = Array(repeating: false, count: ruleCount + 1)
    }

    mutating func addProduction(lhs: Int32, _ symbols: [GrammarSymbol]) {
        if Int(lhs) >= productions.count {
            productions.append(contentsOf: Array(repeating: [], count: Int(lhs) + 1 - productions.count))
            nullable.append(contentsOf: Array(repeating: false, count: Int(lhs) + 1 - nullable.count))
        }
        productions[Int(lhs)].append(Int32(codes.count))
        for s in symbols {
            switch s {
            case .lexeme(let l): codes.append(l)
            case .rule(let r): codes.append(Int32(lexemeCount) + r)
            }
        }
        codes.append(-1 - lhs)
    }

    mutating func finish() {
        // Nullable rules, to a fixed point.
        var changed = true
        while changed {
            changed = false
            for r in productions.indices where !nullable[r] {
                for p in productions[r] {
                    var pos = Int(p)
                    var allNullable = true
                    while codes[pos] >= 0 {
                        let c = codes[pos]
                        if c < Int32(lexemeCount) || !nullable[Int(c) - lexemeCount] { allNullable = false; break }
                        pos += 1
                    }
                    if allNullable { nullable[r] = true; changed = true; break }
                }
            }
        }
        acceptPosition = (productions[Int(start)].first ?? 0) + 1
    }

    @inline(__always) func isLexeme(_ code: Int32) -> Bool { code >= 0 && code < Int32(lexemeCount) }
    @inline(__always) func isRule(_ code: Int32) -> Bool { code >= Int32(lexemeCount) }
}
