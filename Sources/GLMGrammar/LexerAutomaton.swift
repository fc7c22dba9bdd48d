import GLMSupport
import Glibc

/// The lexer's DFA, built lazily. A state is the set of lexemes still possible with the regex each still has to
/// match (a derivative of the lexeme's regex); its transition on a byte takes every derivative and drops the
/// dead ones. Transitions live in a flat table (`state << 8 | byte`) so walking the token trie is one load per
/// byte; a missing entry is computed from the regexes once.
///
/// Mutable caches, one owner at a time: a compiled grammar keeps one as a template and every matcher made for
/// another thread works on its own copy (`copy()`); a single-threaded owner (a chat session) may let its
/// matchers share the grammar's, so what one request learned speeds up the next.
final class LexerAutomaton {
    static let unknown: Int32 = -2
    static let dead: Int32 = -1
    /// Bounds the memory a hostile constraint can take (about 2 KiB per state with its caches).
    static let maxStates = 30_000

    var store: RegexStore
    let lexemeRegex: [RegexStore.ID]
    let lexemeLive: [Bool]

    /// Each state's (lexeme, regex) pairs, packed lexeme << 32 | regex, sorted.
    private(set) var statePairs: [[UInt64]] = []
    private var stateIndex: [[UInt64]: Int32] = [:]
    /// Lexemes complete in each state (their remaining regex matches the empty string).
    private(set) var acceptedLexemes: [[Int32]] = []
    private(set) var table: UnsafeMutablePointer<Int32>
    private var tableCapacity: Int
    private var startStates: [[Int32]: Int32] = [:]

    /// Per state: which vocabulary slices it contains (see `TokenVocabulary`); -1 = not yet computed.
    var sliceMasks: [Int64] = []
    /// Per state: slices none of whose tokens is allowed (valid once `sliceMasks` is computed).
    var sliceExcluded: [UInt64] = []
    private var stateClasses: [[UInt8]?] = []
    private var stateClassSets: [[ByteSet]?] = []
    /// Token bitsets of unions of slices, by the slice mask.
    var sliceUnions: [UInt64: [UInt64]] = [:]
    /// Regexes of the slices' character classes in `store` (filled on first use).
    var classRegex: [RegexStore.ID] = []
    var classTransitionCache: [RegexStore.ID: [(RegexStore.ID, ByteSet)]] = [:]

    var stateCount: Int { statePairs.count }

    init(store: RegexStore, lexemeRegex: [RegexStore.ID], lexemeLive: [Bool]) {
        self.store = store
        self.lexemeRegex = lexemeRegex
        self.lexemeLive = lexemeLive
        tableCapacity = 64
        table = UnsafeMutablePointer<Int32>.allocate(capacity: tableCapacity * 256)
    }

    private init(copying other: LexerAutomaton) {
        store = other.store
        lexemeRegex = other.lexemeRegex
        lexemeLive = other.lexemeLive
        statePairs = other.statePairs
        stateIndex = other.stateIndex
        acceptedLexemes = other.acceptedLexemes
        tableCapacity = max(64, other.tableCapacity)
        table = UnsafeMutablePointer<Int32>.allocate(capacity: tableCapacity * 256)
        table.update(from: other.table, count: other.statePairs.count * 256)
        startStates = other.startStates
        sliceMasks = other.sliceMasks
        sliceExcluded = other.sliceExcluded
        stateClasses = other.stateClasses
        stateClassSets = other.stateClassSets
        sliceUnions = other.sliceUnions
        classRegex = other.classRegex
        classTransitionCache = other.classTransitionCache
    }

    deinit { table.deallocate() }

    func copy() -> LexerAutomaton { LexerAutomaton(copying: self) }

    @inline(__always) func isAccepting(_ state: Int32) -> Bool { !acceptedLexemes[Int(state)].isEmpty }

    /// The state for a set of pairs (interned).
    private func intern(_ pairs: [UInt64]) throws(GLMError) -> Int32 {
        if pairs.isEmpty { return LexerAutomaton.dead }
        if let s = stateIndex[pairs] { return s }
        guard statePairs.count < LexerAutomaton.maxStates else {
            throw GLMError(.limitExceeded, "the constraint's lexer needs more than \(LexerAutomaton.maxStates) states")
        }
        let id = Int32(statePairs.count)
        if statePairs.count == tableCapacity {
            let bigger = UnsafeMutablePointer<Int32>.allocate(capacity: tableCapacity * 2 * 256)
            bigger.update(from: table, count: tableCapacity * 256)
            table.deallocate()
            table = bigger
            tableCapacity *= 2
        }
        (table + Int(id) * 256).initialize(repeating: LexerAutomaton.unknown, count: 256)
        statePairs.append(pairs)
        stateIndex[pairs] = id
        var accepted: [Int32] = []
        for p in pairs where store.nullable[Int(Int32(truncatingIfNeeded: p & 0xFFFF_FFFF))] {
            accepted.append(Int32(truncatingIfNeeded: p >> 32))
        }
        acceptedLexemes.append(accepted)
        sliceMasks.append(-1)
        sliceExcluded.append(0)
        stateClasses.append(nil)
        stateClassSets.append(nil)
        return id
    }

    /// The state that starts any of `lexemes` (sorted, unique); dead for none.
    func startState(_ lexemes: [Int32]) throws(GLMError) -> Int32 {
        if let s = startStates[lexemes] { return s }
        var pairs: [UInt64] = []
        for l in lexemes {
            let r = lexemeRegex[Int(l)]
            if try store.isEmptyLanguage(r) { continue }
            pairs.append(UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r)))
        }
        let s = try intern(pairs)
        startStates[lexemes] = s
        return s
    }

    /// The transition of `state` on `byte`.
    @inline(__always)
    func next(_ state: Int32, _ byte: UInt8) throws(GLMError) -> Int32 {
        let t = table[Int(state) << 8 | Int(byte)]
        if t != LexerAutomaton.unknown { return t }
        return try computeNext(state, byte)
    }

    /// The byte classes of a state: bytes with the same class have the same transition, so one derivative
    /// fills the table for the whole class.
    private func classes(of state: Int32) -> [UInt8] {
        if let known = stateClasses[Int(state)] { return known }
        let classes = store.byteClasses(statePairs[Int(state)].map { Int32(truncatingIfNeeded: $0 & 0xFFFF_FFFF) })
        stateClasses[Int(state)] = classes
        return classes
    }

    /// The byte classes of a state as sets (same partition as `classes(of:)`).
    func classSets(of state: Int32) -> [ByteSet] {
        if let known = stateClassSets[Int(state)] { return known }
        let classes = self.classes(of: state)
        var sets: [ByteSet] = []
        for b in 0..<256 {
            let c = Int(classes[b])
            while sets.count <= c { sets.append(ByteSet()) }
            sets[c].insert(UInt8(b))
        }
        stateClassSets[Int(state)] = sets
        return sets
    }

    private func computeNext(_ state: Int32, _ byte: UInt8) throws(GLMError) -> Int32 {
        var out: [UInt64] = []
        for p in statePairs[Int(state)] {
            let regex = Int32(truncatingIfNeeded: p & 0xFFFF_FFFF)
            let d = try store.derivative(regex, byte)
            if d == RegexStore.nothing { continue }
            if store.usesBoolean[Int(d)], !lexemeLive[Int(p >> 32)], try store.isEmptyLanguage(d) { continue }
            out.append(p & 0xFFFF_FFFF_0000_0000 | UInt64(UInt32(bitPattern: d)))
        }
        let s = try intern(out)
        let classes = self.classes(of: state)
        let cls = classes[Int(byte)]
        let row = table + (Int(state) << 8)
        for b in 0..<256 where classes[b] == cls { row[b] = s }
        return s
    }
}
