import GLMSupport
import Glibc

/// A constraint compiled against one tokenizer's vocabulary: the grammar's parse tables, the lexemes' regexes
/// and the ids that end a sequence. Immutable apart from the lexer cache it keeps as a template for matchers;
/// may be shared between threads when every matcher copies that cache (`GrammarMatcher(grammar)`, the default).
public final class CompiledGrammar: @unchecked Sendable {
    public let vocabulary: TokenVocabulary
    let tables: ParseTables
    /// The lexer cache matchers start from (see `GrammarMatcher.init(_:sharingCache:)`).
    let automaton: LexerAutomaton
    /// Ids that end the output; allowed exactly when the constraint is complete.
    public let endTokenIDs: [Int32]
    /// A short description for messages ("JSON schema", "regex", "tool call").
    public let kind: String
    /// Schema keywords that were ignored (non-strict mode), with where they were.
    public let notes: [String]
    private let lock: UnsafeMutablePointer<pthread_mutex_t>

    init(vocabulary: TokenVocabulary, tables: ParseTables, store: RegexStore, endTokenIDs: [Int32], kind: String,
         notes: [String]) {
        self.vocabulary = vocabulary
        self.tables = tables
        self.automaton = LexerAutomaton(store: store, lexemeRegex: tables.lexemeRegex, lexemeLive: tables.lexemeLive)
        self.endTokenIDs = endTokenIDs.filter { $0 >= 0 && Int($0) < vocabulary.size }
        self.kind = kind
        self.notes = notes
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Statistics for messages and benchmarks.
    public var lexemeCount: Int { tables.lexemeCount }
    public var ruleCount: Int { tables.ruleCount }

    func copyCache() -> LexerAutomaton {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return automaton.copy()
    }
}

/// The state of one output under a compiled constraint: which tokens may come next (`fillMask`), and the
/// advance by the token chosen (`accept`). A token is allowed exactly when the text so far plus its bytes is
/// a prefix of some output the constraint accepts; an end id exactly when the text is a complete output.
///
/// One thread at a time. Lexing is maximal munch: a lexeme ends where the next byte cannot continue it (the
/// grammars libglm builds never need a shorter lexeme to complete).
public final class GrammarMatcher {
    public let grammar: CompiledGrammar
    let automaton: LexerAutomaton
    private var parser: EarleyParser
    /// The lexer state inside the current lexeme (the top row's start state when none has begun).
    private var lexerState: Int32
    /// Whether the current lexeme has consumed bytes (an end id needs it complete, or no lexeme begun).
    private var lexemeStarted = false
    private var history: [Snapshot] = []
    public private(set) var isTerminated = false

    private struct Snapshot {
        var rows: Int
        var lexerState: Int32
        var lexemeStarted: Bool
        var terminated: Bool
    }

    // Walk scratch, one entry per trie depth.
    private var walkLexer: UnsafeMutablePointer<Int32>
    private var walkRow: UnsafeMutablePointer<Int32>
    private var walkEndRow: UnsafeMutablePointer<Int32>
    private var walkEndStart: UnsafeMutablePointer<Int32>
    private var walkEndStamp: UnsafeMutablePointer<UInt32>
    private let walkCapacity: Int
    private var mask: [UInt64]
    /// Rows pushed by lexeme ends during the current mask, by (row, lexer state); validated by row stamp.
    private var scanCache: [UInt64: (row: Int32, stamp: UInt32, start: Int32)] = [:]

    /// Not yet computed / the lexeme ended but no parse continues with it.
    private static let endUnknown: Int32 = -1
    private static let endFailed: Int32 = -2

    /// A matcher at the start of the output. With `sharingCache` it uses the grammar's own lexer cache (so what
    /// it learns stays for the next matcher); the caller then guarantees no other matcher of this grammar runs
    /// at the same time. Without it the matcher works on a copy and any number may run in parallel.
    public init(_ grammar: CompiledGrammar, sharingCache: Bool = false) throws(GLMError) {
        self.grammar = grammar
        automaton = sharingCache ? grammar.automaton : grammar.copyCache()
        parser = try EarleyParser(tables: grammar.tables, automaton: automaton)
        lexerState = parser.rowLexerState[0]
        walkCapacity = max(grammar.vocabulary.full.maxDepth, 1) + 2
        walkLexer = .allocate(capacity: walkCapacity)
        walkRow = .allocate(capacity: walkCapacity)
        walkEndRow = .allocate(capacity: walkCapacity)
        walkEndStart = .allocate(capacity: walkCapacity)
        walkEndStamp = .allocate(capacity: walkCapacity)
        mask = [UInt64](repeating: 0, count: grammar.vocabulary.wordCount)
    }

    deinit {
        walkLexer.deallocate()
        walkRow.deallocate()
        walkEndRow.deallocate()
        walkEndStart.deallocate()
        walkEndStamp.deallocate()
    }

    public var vocabularySize: Int { grammar.vocabulary.size }
    public var lexerStateCount: Int { automaton.stateCount }

    /// Tokens accepted so far (an end id included).
    public var tokenCount: Int { history.count }

    /// Back to the start of the output (the lexer cache is kept).
    public func reset() {
        parser.truncate(to: 1)
        lexerState = parser.rowLexerState[0]
        lexemeStarted = false
        history.removeAll()
        isTerminated = false
    }

    /// Whether the text so far is a complete output (an end id would be accepted).
    public func canEnd() throws(GLMError) -> Bool {
        if isTerminated { return false }
        if !lexemeStarted { return parser.rowAccepts[parser.top] }
        guard automaton.isAccepting(lexerState) else { return false }
        if isGap(lexerState) { return parser.rowAccepts[parser.top] && grammar.tables.trailingGap }
        let rows = parser.rowCount
        defer { parser.truncate(to: rows) }
        guard try parser.scan(automaton.acceptedLexemes[Int(lexerState)], automaton: automaton) else { return false }
        return parser.rowAccepts[parser.top]
    }

    /// Whether the lexeme that ends in `state` is whitespace between lexemes (the parser does not see it).
    @inline(__always)
    private func isGap(_ state: Int32) -> Bool {
        let accepted = automaton.acceptedLexemes[Int(state)]
        return accepted.count == 1 && accepted[0] == grammar.tables.gapLexeme
    }

    // MARK: advancing

    /// Advances by `token`. A token the constraint does not allow is `invalidArgument` and changes nothing.
    public func accept(_ token: Int32) throws(GLMError) {
        guard !isTerminated else {
            throw .invalidArgument("the constrained output has already ended; token \(token) cannot follow")
        }
        let snapshot = Snapshot(rows: parser.rowCount, lexerState: lexerState, lexemeStarted: lexemeStarted,
                                terminated: false)
        if grammar.endTokenIDs.contains(token) {
            guard try canEnd() else {
                throw .invalidArgument("the end token \(token) is not allowed: the \(grammar.kind) output is incomplete")
            }
            history.append(snapshot)
            isTerminated = true
            return
        }
        guard grammar.vocabulary.isText(token) else {
            throw .invalidArgument("token \(token) is not allowed by the \(grammar.kind) constraint"
                + (token < 0 || Int(token) >= vocabularySize ? " (outside the vocabulary)" : " (special or empty)"))
        }
        let ok = try grammar.vocabulary.withBytes(of: token) { (bytes) throws(GLMError) -> Bool in
            for b in bytes where !(try step(b)) { return false }
            return true
        }
        guard ok else {
            restore(snapshot)
            throw .invalidArgument("token \(token) is not allowed by the \(grammar.kind) constraint here")
        }
        history.append(snapshot)
    }

    /// Advances by raw bytes (text forced by the caller); false (and no change) if they are not allowed.
    public func accept(bytes: [UInt8]) throws(GLMError) -> Bool {
        guard !isTerminated else { return false }
        let snapshot = Snapshot(rows: parser.rowCount, lexerState: lexerState, lexemeStarted: lexemeStarted,
                                terminated: false)
        for b in bytes where !(try step(b)) {
            restore(snapshot)
            return false
        }
        history.append(snapshot)
        return true
    }

    /// Undoes the last `count` accepted tokens.
    public func rollback(_ count: Int) throws(GLMError) {
        guard count >= 0 && count <= history.count else {
            throw .invalidArgument("cannot roll back \(count) tokens: \(history.count) were accepted")
        }
        guard count > 0 else { return }
        let snapshot = history[history.count - count]
        history.removeLast(count)
        restore(snapshot)
    }

    private func restore(_ s: Snapshot) {
        parser.truncate(to: s.rows)
        lexerState = s.lexerState
        lexemeStarted = s.lexemeStarted
        isTerminated = s.terminated
    }

    /// One byte: continue the current lexeme, or end it (maximal munch) and start the next.
    private func step(_ b: UInt8) throws(GLMError) -> Bool {
        guard lexerState != LexerAutomaton.dead else { return false }
        let t = try automaton.next(lexerState, b)
        if t != LexerAutomaton.dead {
            lexerState = t
            lexemeStarted = true
            return true
        }
        guard lexemeStarted, automaton.isAccepting(lexerState) else { return false }
        let start: Int32
        if isGap(lexerState) {
            start = parser.rowAfterGap[parser.top]
        } else {
            guard try parser.scan(automaton.acceptedLexemes[Int(lexerState)], automaton: automaton) else { return false }
            start = parser.rowLexerState[parser.top]
        }
        guard start != LexerAutomaton.dead else { return false }
        let t2 = try automaton.next(start, b)
        guard t2 != LexerAutomaton.dead else { return false }
        lexerState = t2
        lexemeStarted = true
        return true
    }

    // MARK: masks

    /// The allowed ids as a bitmask: bit `id % 32` of word `id / 32`. `words` must be at least
    /// `(vocabularySize + 31) / 32`. After the output ended no id is allowed.
    public func fillMask(_ out: UnsafeMutablePointer<UInt32>, words: Int) throws(GLMError) {
        try computeMaskWords()
        let needed = (vocabularySize + 31) / 32
        mask.withUnsafeBufferPointer { m in
            for w in 0..<needed {
                let word = m[w >> 1]
                out[w] = UInt32(truncatingIfNeeded: (w & 1) == 0 ? word : word >> 32)
            }
        }
        if words > needed { (out + needed).update(repeating: 0, count: words - needed) }
    }

    /// The allowed ids as 64-bit words (bit `id % 64` of word `id / 64`), valid until the next call.
    public func computeMask() throws(GLMError) -> [UInt64] {
        try computeMaskWords()
        return mask
    }

    /// Sorted allowed ids (for tests and small vocabularies).
    public func allowedTokens() throws(GLMError) -> [Int32] {
        try computeMaskWords()
        var out: [Int32] = []
        for (w, word) in mask.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                let b = bits.trailingZeroBitCount
                out.append(Int32(w * 64 + b))
                bits &= bits - 1
            }
        }
        return out
    }

    /// Whether `token` is allowed now (a single check, no mask).
    public func isAllowed(_ token: Int32) throws(GLMError) -> Bool {
        if isTerminated { return false }
        if grammar.endTokenIDs.contains(token) { return try canEnd() }
        guard grammar.vocabulary.isText(token) else { return false }
        let snapshot = Snapshot(rows: parser.rowCount, lexerState: lexerState, lexemeStarted: lexemeStarted,
                                terminated: false)
        defer { restore(snapshot) }
        return try grammar.vocabulary.withBytes(of: token) { (bytes) throws(GLMError) -> Bool in
            for b in bytes where !(try step(b)) { return false }
            return true
        }
    }

    private func computeMaskWords() throws(GLMError) {
        let words = mask.count
        scanCache.removeAll(keepingCapacity: true)
        mask.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        if isTerminated { return }
        let vocabulary = grammar.vocabulary
        if try canEnd() {
            for id in grammar.endTokenIDs { mask[Int(id) >> 6] |= 1 << UInt64(id & 63) }
        }
        // No lexeme can start (the output is complete and nothing may follow): only the end ids.
        if lexerState == LexerAutomaton.dead { return }
        let contained = try automaton.containedSlices(lexerState, vocabulary)
        let excluded = automaton.sliceExcluded[Int(lexerState)]
        if contained == 0 && excluded == 0 {
            try walk(vocabulary.full)
            return
        }
        if contained != 0 {
            let union = try sliceUnion(contained, vocabulary)
            mask.withUnsafeMutableBufferPointer { m in
                union.withUnsafeBufferPointer { u in
                    for w in 0..<words { m[w] |= u[w] }
                }
            }
        }
        for (k, slice) in vocabulary.slices.enumerated() where (contained | excluded) & (1 << UInt64(k)) == 0 {
            try walk(slice.trie)
        }
    }

    private func sliceUnion(_ contained: UInt64, _ vocabulary: TokenVocabulary) throws(GLMError) -> [UInt64] {
        if let known = automaton.sliceUnions[contained] { return known }
        var union = [UInt64](repeating: 0, count: vocabulary.wordCount)
        for (k, slice) in vocabulary.slices.enumerated() where contained & (1 << UInt64(k)) != 0 {
            for w in union.indices { union[w] |= slice.bitset[w] }
        }
        automaton.sliceUnions[contained] = union
        return union
    }

    /// Walks `trie` from the current state, setting the bit of every token whose bytes the constraint allows.
    private func walk(_ trie: TokenTrie) throws(GLMError) {
        let n = trie.nodeCount
        if n == 0 { return }
        let baseRows = parser.rowCount
        defer { parser.truncate(to: baseRows) }
        walkLexer[0] = lexerState
        walkRow[0] = Int32(parser.top)
        walkEndRow[0] = GrammarMatcher.endUnknown
        let automaton = self.automaton
        try trie.bytes.withUnsafeBufferPointer { (bytes) throws(GLMError) in
            try trie.depth.withUnsafeBufferPointer { (depth) throws(GLMError) in
                try trie.skip.withUnsafeBufferPointer { (skip) throws(GLMError) in
                    try trie.token.withUnsafeBufferPointer { (token) throws(GLMError) in
                        try mask.withUnsafeMutableBufferPointer { (mask) throws(GLMError) in
                            var i = 0
                            while i < n {
                                let d = Int(depth[i])
                                let parentLexer = walkLexer[d - 1]
                                let byte = bytes[i]
                                var state = try automaton.next(parentLexer, byte)
                                var row = walkRow[d - 1]
                                if state == LexerAutomaton.dead {
                                    // The parent's lexeme must end before this byte (maximal munch).
                                    guard automaton.isAccepting(parentLexer) else { i = Int(skip[i]); continue }
                                    let ended = try endLexeme(at: d - 1)
                                    if ended == GrammarMatcher.endFailed { i = Int(skip[i]); continue }
                                    state = try automaton.next(walkEndStart[d - 1], byte)
                                    if state == LexerAutomaton.dead { i = Int(skip[i]); continue }
                                    row = ended
                                }
                                walkLexer[d] = state
                                walkRow[d] = row
                                walkEndRow[d] = GrammarMatcher.endUnknown
                                let id = token[i]
                                if id >= 0 {
                                    mask[Int(id) >> 6] |= 1 << UInt64(id & 63)
                                } else if id < -1 {
                                    let first = -2 - id
                                    mask[Int(first) >> 6] |= 1 << UInt64(first & 63)
                                    for m in trie.extra[Int32(i)] ?? [] { mask[Int(m) >> 6] |= 1 << UInt64(m & 63) }
                                }
                                i += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Ends the lexeme of walk level `level` and pushes the row after it (once per level; the row index is
    /// cached with the row's stamp, so a later overwrite of that row is noticed). Returns the row index or
    /// `endFailed`.
    private func endLexeme(at level: Int) throws(GLMError) -> Int32 {
        let cached = walkEndRow[level]
        if cached == GrammarMatcher.endFailed { return cached }
        if cached >= 0 && Int(cached) < parser.rowCount && parser.rowStamp[Int(cached)] == walkEndStamp[level] {
            return cached
        }
        let row = Int(walkRow[level])
        let lexer = walkLexer[level]
        // Many trie nodes end the same lexeme in the same lexer state from the same row (every token with a
        // closing quote in it): the row pushed for the first one serves the others while it is not overwritten.
        let key = UInt64(UInt32(row)) << 32 | UInt64(UInt32(bitPattern: lexer))
        if let hit = scanCache[key] {
            let index = Int32(truncatingIfNeeded: hit.row)
            if hit.row == GrammarMatcher.endFailed || (Int(index) < parser.rowCount && parser.rowStamp[Int(index)] == hit.stamp) {
                walkEndRow[level] = hit.row
                walkEndStamp[level] = hit.stamp
                walkEndStart[level] = hit.start
                return hit.row
            }
        }
        if isGap(lexer) {
            // Whitespace between lexemes: the same row, now expecting what may follow whitespace.
            let start = parser.rowAfterGap[row]
            if start == LexerAutomaton.dead {
                walkEndRow[level] = GrammarMatcher.endFailed
                return GrammarMatcher.endFailed
            }
            walkEndRow[level] = Int32(row)
            walkEndStamp[level] = parser.rowStamp[row]
            walkEndStart[level] = start
            return Int32(row)
        }
        parser.truncate(to: row + 1)
        var start = LexerAutomaton.dead
        if try parser.scan(automaton.acceptedLexemes[Int(lexer)], automaton: automaton) {
            start = parser.rowLexerState[parser.top]
        }
        if start == LexerAutomaton.dead {
            walkEndRow[level] = GrammarMatcher.endFailed
            scanCache[key] = (GrammarMatcher.endFailed, 0, 0)
            return GrammarMatcher.endFailed
        }
        let index = Int32(parser.top)
        walkEndRow[level] = index
        walkEndStamp[level] = parser.rowStamp[Int(index)]
        walkEndStart[level] = start
        scanCache[key] = (index, walkEndStamp[level], start)
        return index
    }
}
