import GLMSupport

/// An Earley parser over lexemes whose rows form a stack: a row is pushed when a lexeme is scanned and popped
/// by truncation, which is what walking the token trie needs (try a lexeme below one trie node, forget it when
/// the walk moves to a sibling) and what makes rollback free.
///
/// An item is (position in `ParseTables.codes`, origin row), packed in 64 bits. Nullable rules use the
/// Aycock–Horspool step (predicting a nullable rule also moves past it), so completions never need to look at
/// the row being built.
struct EarleyParser {
    let tables: ParseTables

    private(set) var items: [UInt64] = []
    /// Row r holds items[rowStart[r] ..< rowStart[r + 1]].
    private(set) var rowStart: [Int32] = [0]
    /// The lexer state that starts the lexemes a row expects (dead if it expects none), whitespace included
    /// where some of them allow it before them.
    private(set) var rowLexerState: [Int32] = []
    /// The lexer state after whitespace in that row: the lexemes that allow whitespace before them.
    private(set) var rowAfterGap: [Int32] = []
    private(set) var rowAccepts: [Bool] = []
    /// Bumped each time a row index is written, so cached row indices can tell they were overwritten.
    private(set) var rowStamp: [UInt32] = []
    private var stampCounter: UInt32 = 0

    // Scratch space for building a row: an open-addressing set of the row's items.
    private var seenKeys: [UInt64] = Array(repeating: 0, count: 256)
    private var seenMarks: [UInt32] = Array(repeating: 0, count: 256)
    private var seenGeneration: UInt32 = 0
    private var lexemeMarks: [UInt32]
    private var lexemeGeneration: UInt32 = 0
    private var expected: [Int32] = []

    /// Bounds one row (hostile grammars with huge ambiguity).
    static let maxRowItems = 200_000

    var rowCount: Int { rowLexerState.count }

    init(tables: ParseTables, automaton: LexerAutomaton) throws(GLMError) {
        self.tables = tables
        lexemeMarks = Array(repeating: 0, count: max(1, tables.lexemeCount))
        // Row 0: predict the start rule.
        beginRow()
        add(UInt64(UInt32(bitPattern: tables.productions[Int(tables.start)][0])) << 32 | 0)
        try closeRow(automaton: automaton)
    }

    var top: Int { rowCount - 1 }

    /// Forgets rows from `count` on.
    mutating func truncate(to count: Int) {
        guard count < rowCount else { return }
        items.removeLast(items.count - Int(rowStart[count]))
        rowStart.removeLast(rowStart.count - count - 1)
        rowLexerState.removeLast(rowLexerState.count - count)
        rowAfterGap.removeLast(rowAfterGap.count - count)
        rowAccepts.removeLast(rowAccepts.count - count)
    }

    // MARK: building rows

    private mutating func beginRow() {
        seenGeneration &+= 1
        if seenGeneration == 0 {
            for i in seenMarks.indices { seenMarks[i] = 0 }
            seenGeneration = 1
        }
    }

    @inline(__always) private static func hash(_ item: UInt64) -> Int {
        Int(truncatingIfNeeded: (item &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }

    /// Adds an item to the row being built unless it is there already.
    @inline(__always)
    private mutating func add(_ item: UInt64) {
        let rowSize = items.count - Int(rowStart[rowStart.count - 1])
        if (rowSize + 1) * 2 > seenKeys.count { growSeen() }
        let mask = seenKeys.count - 1
        var i = EarleyParser.hash(item) & mask
        while seenMarks[i] == seenGeneration {
            if seenKeys[i] == item { return }
            i = (i + 1) & mask
        }
        seenMarks[i] = seenGeneration
        seenKeys[i] = item
        items.append(item)
    }

    private mutating func growSeen() {
        let size = seenKeys.count * 2
        seenKeys = Array(repeating: 0, count: size)
        seenMarks = Array(repeating: 0, count: size)
        seenGeneration = 1
        let mask = size - 1
        for j in Int(rowStart[rowStart.count - 1])..<items.count {
            var i = EarleyParser.hash(items[j]) & mask
            while seenMarks[i] == seenGeneration { i = (i + 1) & mask }
            seenMarks[i] = seenGeneration
            seenKeys[i] = items[j]
        }
    }

    /// Predictions and completions for the row whose first items were added; then its lexer state.
    private mutating func closeRow(automaton: LexerAutomaton) throws(GLMError) {
        let row = UInt64(rowCount)
        let begin = Int(rowStart[rowStart.count - 1])
        var j = begin
        let lexemeCount = Int32(tables.lexemeCount)
        expected.removeAll(keepingCapacity: true)
        lexemeGeneration &+= 1
        if lexemeGeneration == 0 {
            for i in lexemeMarks.indices { lexemeMarks[i] = 0 }
            lexemeGeneration = 1
        }
        var accepts = false
        while j < items.count {
            guard items.count - begin <= EarleyParser.maxRowItems else {
                throw GLMError(.limitExceeded, "the constraint's parser state grew past \(EarleyParser.maxRowItems)"
                    + " items (a grammar this ambiguous is not supported)")
            }
            let item = items[j]
            j += 1
            let pos = Int32(truncatingIfNeeded: item >> 32)
            let origin = Int(item & 0xFFFF_FFFF)
            let code = tables.codes[Int(pos)]
            if code < 0 {
                // Completion: advance the items of the origin row that wait for this rule.
                if pos == tables.acceptPosition && origin == 0 { accepts = true }
                if origin == Int(row) { continue }   // nullable: the prediction already moved past it
                let ruleCode = lexemeCount + (-1 - code)   // the end marker of rule r is -1 - r
                let lo = Int(rowStart[origin]), hi = Int(rowStart[origin + 1])
                var k = lo
                while k < hi {
                    let waiting = items[k]
                    k += 1
                    let wpos = Int32(truncatingIfNeeded: waiting >> 32)
                    if tables.codes[Int(wpos)] == ruleCode {
                        add(waiting &+ (1 << 32))
                    }
                }
            } else if code < lexemeCount {
                if lexemeMarks[Int(code)] != lexemeGeneration {
                    lexemeMarks[Int(code)] = lexemeGeneration
                    expected.append(code)
                }
            } else {
                let r = Int(code - lexemeCount)
                for p in tables.productions[r] {
                    add(UInt64(UInt32(bitPattern: p)) << 32 | row)
                }
                if tables.nullable[r] { add(item &+ (1 << 32)) }
            }
        }
        rowStart.append(Int32(items.count))
        expected.sort()
        let gap = tables.gapLexeme
        if gap >= 0 {
            let afterGap = expected.filter { tables.lexemeGap[Int($0)] }
            var start = expected
            if !afterGap.isEmpty || (accepts && tables.trailingGap) { start.append(gap) }
            rowLexerState.append(try automaton.startState(start))
            rowAfterGap.append(try automaton.startState(afterGap))
        } else {
            rowLexerState.append(try automaton.startState(expected))
            rowAfterGap.append(LexerAutomaton.dead)
        }
        rowAccepts.append(accepts)
        stampCounter &+= 1
        let index = rowCount - 1
        if index < rowStamp.count { rowStamp[index] = stampCounter } else { rowStamp.append(stampCounter) }
    }

    /// Pushes the row after scanning `lexemes` (sorted) from the top row. Returns false, pushing nothing, when
    /// no item of the top row expects any of them.
    mutating func scan(_ lexemes: [Int32], automaton: LexerAutomaton) throws(GLMError) -> Bool {
        let from = top
        beginRow()
        let lo = Int(rowStart[from]), hi = Int(rowStart[from + 1])
        let lexemeCount = Int32(tables.lexemeCount)
        var k = lo
        while k < hi {
            let item = items[k]
            k += 1
            let code = tables.codes[Int(Int32(truncatingIfNeeded: item >> 32))]
            guard code >= 0 && code < lexemeCount else { continue }
            if lexemes.count == 1 ? code == lexemes[0] : lexemes.contains(code) {
                add(item &+ (1 << 32))
            }
        }
        if items.count == Int(rowStart[rowStart.count - 1]) { return false }
        try closeRow(automaton: automaton)
        return true
    }
}
