import GLMSupport

/// A regular expression with the semantics of Oniguruma (Ruby syntax), the engine HF tokenizers runs `Split`
/// pre-tokenizer patterns on: leftmost-first alternation, greedy/lazy/possessive quantifiers, lookahead,
/// atomic groups, `(?i)` with simple case folding, `\p{...}` General_Category classes, `\s` = White_Space,
/// `.` excluding `\n`, `^`/`$` at line boundaries. Matching runs on Unicode scalars with a backtracking VM.
///
/// Not supported (clear error at load): backreferences, lookbehind, script properties (`\p{Han}`),
/// class intersection `&&`, conditionals.
///
/// Cost: without backreferences, whether the rest of the pattern can match from a given (instruction,
/// position) does not depend on how the VM got there, so within one search the VM never explores a state
/// twice (`PatternMemoPlan`), and a quantified set entered again inside a run it already scanned fails at once.
/// That keeps the shipped pre-tokenizer patterns linear in the text (a few dozen steps per scalar on any
/// input) and a search at most polynomial instead of exponential. Every search spends from a step budget
/// that covers the whole call (`PatternBudget`): a pattern that needs more ends the call with
/// `.limitExceeded`, never with a different split.
public struct PatternRegex: Sendable {
    public let pattern: String
    let program: [PatternInstruction]
    let sets: [PatternCharSet]
    let plan: PatternMemoPlan

    public init(_ pattern: String) throws(GLMError) {
        self.pattern = pattern
        var parser = PatternParser(pattern: pattern)
        let tree = try parser.parse()
        var compiler = PatternCompiler(sets: parser.sets)
        try compiler.emit(tree)
        compiler.program.append(.match)
        program = compiler.program
        // At least one set, so the VM always has a base address to index (a pattern of anchors has none).
        sets = compiler.sets.isEmpty ? [PatternCharSet()] : compiler.sets
        plan = PatternMemoPlan(program)
    }

    /// All non-overlapping matches, left to right (an empty match is skipped and the search moves on by one).
    /// The call's budget in `scratch` first grows by this text's allowance; throws `.limitExceeded` when the
    /// budget runs out.
    func matches(in text: ScalarText, scratch: inout PatternScratch, into result: inout [Range<Int>]) throws(GLMError) {
        let n = text.count
        scratch.state.limit += PatternBudget.perScalar * (n + 1)
        // One bit per (position from the search's start, memo slot); all zero between searches.
        let words = Swift.max(1, ((n + 1) * plan.memoSlotCount + 63) / 64)
        if scratch.explored.count < words {
            scratch.explored.append(contentsOf: repeatElement(0, count: words - scratch.explored.count))
        }
        let runCount = Swift.max(1, 2 * plan.runSlotCount)
        if scratch.runs.count < runCount {
            scratch.runs.append(contentsOf: repeatElement(-1, count: runCount - scratch.runs.count))
        }
        var exhausted = false
        program.withUnsafeBufferPointer { prog in
            sets.withUnsafeBufferPointer { sets in
                plan.memoSlots.withUnsafeBufferPointer { memoSlots in
                    plan.runSlots.withUnsafeBufferPointer { runSlots in
                        scratch.explored.withUnsafeMutableBufferPointer { explored in
                            scratch.runs.withUnsafeMutableBufferPointer { runs in
                                guard let bits = explored.baseAddress, let runs = runs.baseAddress,
                                      let sets = sets.baseAddress else { return }
                                var vm = PatternVM(program: prog, sets: sets, memoSlots: memoSlots,
                                                   memoSlotCount: plan.memoSlotCount, firstBodySlot: plan.firstBodySlot,
                                                   runSlots: runSlots, runSlotCount: plan.runSlotCount,
                                                   explored: bits, runs: runs, windowStart: 0, text: text)
                                var position = 0
                                while position <= n {
                                    vm.windowStart = position
                                    let found = vm.search(from: position, state: &scratch.state)
                                    if found == PatternVM.exhausted {
                                        exhausted = true
                                        return
                                    }
                                    guard found >= 0 else { return }
                                    let end = scratch.state.matchEnd
                                    if end == found {
                                        position = end + 1
                                        continue
                                    }
                                    result.append(found..<end)
                                    position = end
                                }
                            }
                        }
                    }
                }
            }
        }
        if exhausted { throw scratch.budgetError(pattern: pattern) }
    }
}

/// Where the VM keeps memory of what a search already explored, decided once per pattern.
///
/// Memo slots: a state (instruction, position) can only be explored twice when its instruction is reached
/// along more than one path: a join (several predecessors, counting the start for instruction 0), the
/// continuation of a quantified set whose length varies (entered from many positions), or what follows an
/// atomic group (different starts can end at the same position). Those instructions get a bit per position;
/// every other state is reached from exactly one memoized or starting state, so it is explored at most once
/// per such state. Instructions inside a lookahead or atomic body get slots numbered from `firstBodySlot`:
/// a body that succeeds is left before its exploration is over, so the bits it set are cleared again when it
/// returns a match (they are kept when it fails: those states failed whatever ran the body).
///
/// Run slots: an unbounded greedy or possessive quantified set remembers the last run it scanned, [start,
/// end]. Entered again at a position inside that run, it would scan to the same end and could only continue
/// at positions it already continued at, so it fails at once instead of rescanning (`\s+$` over a long run of
/// spaces would otherwise rescan the run from every start position). Lazy sets are left out: they try the
/// short continuations first, so the earlier run has not tried the long ones yet.
///
/// Why an explored state means failure: a search tries start positions in order and stops at the first
/// match, so every state explored by an earlier start failed; within one start the VM explores depth-first
/// and cannot come back to a state on its current path without consuming input (an unbounded repeat of
/// something that can match empty is rejected at parse time), so an explored state's exploration is over
/// and it failed. Run slots are kept outside lookahead and atomic bodies only, for the reason above.
struct PatternMemoPlan: Sendable {
    /// Per instruction, its slot in the explored-state bitmap, or -1.
    let memoSlots: [Int32]
    let memoSlotCount: Int
    /// Slots from this one on are inside a lookahead or atomic body.
    let firstBodySlot: Int
    /// Per instruction, its slot in the scanned-run table, or -1.
    let runSlots: [Int32]
    let runSlotCount: Int

    init(_ program: [PatternInstruction]) {
        let n = program.count
        var predecessors = [Int](repeating: 0, count: n)
        var variable = [Bool](repeating: false, count: n)
        var insideSub = [Bool](repeating: false, count: n)
        func edge(_ to: Int) { if to >= 0 && to < n { predecessors[to] += 1 } }
        edge(0)
        for (i, instruction) in program.enumerated() {
            switch instruction {
            case .char, .assert: edge(i + 1)
            case .charRepeat(_, let min, let max, _):
                edge(i + 1)
                if min != max && i + 1 < n { variable[i + 1] = true }
            case .split(let first, let second):
                edge(Int(first))
                edge(Int(second))
            case .jump(let target): edge(Int(target))
            case .sub(let body, let next, let kind):
                edge(Int(body))
                edge(Int(next))
                if kind == .atomic && Int(next) < n { variable[Int(next)] = true }
                for j in Swift.max(0, Int(body))..<Swift.min(Int(next), n) { insideSub[j] = true }
            case .subEnd, .match: break
            }
        }
        // A jump chain ending in `.match` always succeeds: nothing to remember there.
        func succeeds(_ pc: Int) -> Bool {
            var pc = pc
            for _ in 0..<n {
                switch program[pc] {
                case .match: return true
                case .jump(let target): pc = Int(target)
                default: return false
                }
            }
            return false
        }
        var memo = [Int32](repeating: -1, count: n)
        var runs = [Int32](repeating: -1, count: n)
        var memoCount = 0, runCount = 0
        for pc in 0..<n where !insideSub[pc] {
            if (predecessors[pc] > 1 || variable[pc]) && !succeeds(pc) {
                memo[pc] = Int32(memoCount)
                memoCount += 1
            }
            if case .charRepeat(_, _, let max, let mode) = program[pc], max < 0, mode != .lazy {
                runs[pc] = Int32(runCount)
                runCount += 1
            }
        }
        firstBodySlot = memoCount
        for pc in 0..<n where insideSub[pc] && (predecessors[pc] > 1 || variable[pc]) {
            if case .subEnd = program[pc] { continue }
            memo[pc] = Int32(memoCount)
            memoCount += 1
        }
        memoSlots = memo
        memoSlotCount = memoCount
        runSlots = runs
        runSlotCount = runCount
    }
}

/// How much matching one call (one `encode`) may do: `base` steps plus `perScalar` for every scalar it splits,
/// so the allowance grows with the input. The shipped patterns stay far below it on any text (see
/// PatternComplexityTests), while a pattern that backtracks without end stops after a bounded amount of work.
/// A step is one VM instruction, one scalar scanned by a quantifier, or one backtrack.
enum PatternBudget {
    static let base = 1_000_000
    static let perScalar = 1_000
}

/// Reusable matching memory for one call: the backtrack stack, the explored-state bitmap, and the step
/// budget every search of the call spends from.
struct PatternScratch {
    var state = PatternMatchState()
    var explored: [UInt64] = []
    var runs: [Int] = []

    /// Steps used so far in this call.
    var steps: Int { state.steps }

    func budgetError(pattern: String) -> GLMError {
        let shown = pattern.unicodeScalars.count > 200
            ? String(String.UnicodeScalarView(pattern.unicodeScalars.prefix(200))) + "..." : pattern
        return GLMError(.limitExceeded, "pre-tokenizer regex '\(shown)' exceeded its matching budget of"
            + " \(state.limit) steps for this text (PatternBudget: \(PatternBudget.base) + \(PatternBudget.perScalar)"
            + " per character); the pattern backtracks too much on this input")
    }
}

struct PatternMatchState {
    var stack: [PatternBacktrack] = []
    var steps = 0
    var limit = PatternBudget.base
    /// Highest word of the explored bitmap set in the current search, -1 when none.
    var exploredHigh = -1
    /// Explored bits set inside lookahead and atomic bodies, in order, so a body that matches can clear its own.
    var bodyLog: [Int] = []
    /// End of the match the last search found.
    var matchEnd = 0
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
    /// `run` results besides an end position.
    static let noMatch = -1
    static let exhausted = -2

    let program: UnsafeBufferPointer<PatternInstruction>
    /// The pattern's sets, used in place: copying a set out (`let set = buffer[i]`) retains and releases its
    /// arrays on every instruction.
    let sets: UnsafePointer<PatternCharSet>
    let memoSlots: UnsafeBufferPointer<Int32>
    let memoSlotCount: Int
    let firstBodySlot: Int
    let runSlots: UnsafeBufferPointer<Int32>
    let runSlotCount: Int
    /// Bit (position - windowStart) * memoSlotCount + slot is set once that state was explored in this search.
    let explored: UnsafeMutablePointer<UInt64>
    /// Per run slot, the start and end of the last run scanned in this search (-1, -1 before the first).
    let runs: UnsafeMutablePointer<Int>
    /// The position the current search started from: the explored bitmap's position 0.
    var windowStart: Int
    let text: ScalarText

    /// The leftmost match starting at or after `from`: returns its start and leaves its end in
    /// `state.matchEnd`; `noMatch` or `exhausted` otherwise.
    func search(from: Int, state: inout PatternMatchState) -> Int {
        let n = text.count
        // Memo bits and scanned runs hold for this search only.
        runs.update(repeating: -1, count: 2 * runSlotCount)
        var result = PatternVM.noMatch
        var start = from
        while start <= n {
            let end = run(pc: 0, position: start, state: &state)
            if end >= 0 {
                state.matchEnd = end
                result = start
                break
            }
            if end == PatternVM.exhausted {
                result = end
                break
            }
            start += 1
        }
        // Only what this search touched is cleared, so a search costs what it explored.
        if state.exploredHigh >= 0 {
            explored.update(repeating: 0, count: state.exploredHigh + 1)
            state.exploredHigh = -1
        }
        state.bodyLog.removeAll(keepingCapacity: true)
        return result
    }

    /// Runs from `pc` at `position` until `.match`/`.subEnd`; returns the end position, `noMatch`, or
    /// `exhausted` when the step budget in `state` ran out.
    func run(pc startPC: Int, position startPosition: Int, state: inout PatternMatchState) -> Int {
        let base = state.stack.count
        // The count lives in a local while this run executes (written back before a nested run and at exit).
        var steps = state.steps
        let limit = state.limit
        defer {
            state.steps = steps
            state.stack.removeSubrange(base...)
        }
        var pc = startPC
        var pos = startPosition
        let n = text.count
        while true {
            steps &+= 1
            if steps > limit { return PatternVM.exhausted }
            var failed = false
            let slot = Int(memoSlots[pc])
            if slot >= 0 {
                let bit = (pos - windowStart) * memoSlotCount + slot
                let word = bit >> 6
                let mask = UInt64(1) << UInt64(bit & 63)
                if explored[word] & mask != 0 {
                    failed = true
                } else {
                    explored[word] |= mask
                    if word > state.exploredHigh { state.exploredHigh = word }
                    if slot >= firstBodySlot { state.bodyLog.append(bit) }
                }
            }
            if !failed {
                switch program[pc] {
                case .char(let s):
                    if pos < n && sets[Int(s)].contains(text.scalars[pos], bits: text.bits[pos]) {
                        pos += 1
                        pc += 1
                    } else {
                        failed = true
                    }
                case .charRepeat(let s, let min, let max, let mode):
                    let runSlot = Int(runSlots[pc])
                    if runSlot >= 0 {
                        if runs[2 * runSlot] <= pos && pos <= runs[2 * runSlot + 1] { failed = true; break }
                        runs[2 * runSlot] = pos
                    }
                    let set = sets + Int(s)
                    let limit = max < 0 ? n : Swift.min(n, pos + Int(max))
                    var end = pos
                    let minEnd = pos + Int(min)
                    if mode == .lazy {
                        while end < minEnd && end < limit && set.pointee.contains(text.scalars[end], bits: text.bits[end]) { end += 1 }
                        if end < minEnd { failed = true; break }
                        var far = end
                        while far < limit && set.pointee.contains(text.scalars[far], bits: text.bits[far]) { far += 1 }
                        steps &+= far - pos
                        if far > end {
                            state.stack.append(PatternBacktrack(pc: Int32(pc + 1), step: 1, position: end + 1, limit: far))
                        }
                    } else {
                        while end < limit && set.pointee.contains(text.scalars[end], bits: text.bits[end]) { end += 1 }
                        steps &+= end - pos
                        if runSlot >= 0 { runs[2 * runSlot + 1] = end }
                        if end < minEnd { failed = true; break }
                        if mode == .greedy && end > minEnd {
                            state.stack.append(PatternBacktrack(pc: Int32(pc + 1), step: -1, position: end - 1, limit: minEnd))
                        }
                    }
                    pos = end
                    pc += 1
                case .split(let first, let second):
                    state.stack.append(PatternBacktrack(pc: second, step: 0, position: pos, limit: pos))
                    pc = Int(first)
                case .jump(let target):
                    pc = Int(target)
                case .sub(let body, let next, let kind):
                    let logged = state.bodyLog.count
                    state.steps = steps
                    let end = run(pc: Int(body), position: pos, state: &state)
                    steps = state.steps
                    if end == PatternVM.exhausted { return end }
                    if end >= 0 && state.bodyLog.count > logged {
                        for bit in state.bodyLog[logged...] { explored[bit >> 6] &= ~(UInt64(1) << UInt64(bit & 63)) }
                        state.bodyLog.removeSubrange(logged...)
                    }
                    switch kind {
                    case .lookahead: failed = end < 0
                    case .negativeLookahead: failed = end >= 0
                    case .atomic:
                        if end >= 0 { pos = end } else { failed = true }
                    }
                    pc = Int(next)
                case .subEnd, .match:
                    return pos
                case .assert(let kind):
                    failed = !check(kind, at: pos)
                    pc += 1
                }
            }
            if failed {
                guard state.stack.count > base, let top = state.stack.last else { return PatternVM.noMatch }
                pc = Int(top.pc)
                pos = top.position
                if top.position == top.limit {
                    state.stack.removeLast()
                } else {
                    state.stack[state.stack.count - 1].position += Int(top.step)
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
