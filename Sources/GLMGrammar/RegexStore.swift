import GLMSupport

/// Regular expressions over bytes, hash-consed, with Brzozowski derivatives: the lexer's automaton is built
/// lazily from them (a state is a regex, its transition on a byte is the derivative), so compiling a constraint
/// costs only building the expressions, never a whole DFA.
///
/// Smart constructors keep expressions in a normal form (flattened, sorted and deduplicated alternatives and
/// intersections, right-nested concatenations, ∅ and ε absorbed), which keeps the number of distinct
/// derivatives finite and small. Intersection and complement are supported because JSON Schema needs them
/// (a pattern and a length bound on one string, "any key but the declared ones"); nodes that use them may
/// denote the empty language without being ∅, so `isEmptyLanguage` decides that by exploring derivatives.
struct RegexStore {
    typealias ID = Int32

    enum Kind: UInt8 {
        case nothing, empty, full, bytes, concat, or, and, not, `repeat`
    }

    struct Node: Hashable {
        var kind: Kind
        var a: ID = -1
        var b: ID = -1
        /// `repeat`: minimum and maximum count (`hi` -1 = unbounded).
        var lo: Int32 = 0
        var hi: Int32 = 0
        var list: [ID] = []
        var bytes = ByteSet()
    }

    static let nothing: ID = 0
    static let empty: ID = 1
    static let full: ID = 2

    /// The interning table's copy of each node; the derivative reads the flat per-field arrays below, which
    /// cost no reference counting.
    private(set) var nodes: [Node] = []
    private(set) var kinds: [Kind] = []
    private var childA: [ID] = []
    private var childB: [ID] = []
    private var repeatLo: [Int32] = []
    private var repeatHi: [Int32] = []
    private var byteSets: [ByteSet] = []
    private(set) var nullable: [Bool] = []
    /// Whether the node contains an intersection or complement (its language may be empty though it is not ∅).
    private(set) var usesBoolean: [Bool] = []
    private var index: [Node: ID] = [:]
    private var derivatives = IntMap(capacity: 4096)
    /// Nodes known to stay alive for any run of characters of one encoded set, and how long a run: the trie
    /// nodes of `CharRegex.excluding` (they differ from a plain repetition only where they may stop).
    var liveRuns: [ID: (set: ID, run: Int)] = [:]
    /// Nodes that match the encoding of every plain character (resp. every text character) as one unit.
    var coversPlain = Set<ID>()
    var coversText = Set<ID>()
    /// Encodings of character sets already built (`encode`), by encoding.
    var encodings: [StringEncoding: [CharSet: ID]] = [:]
    /// 1 = empty language, 0 = not empty.
    private var emptiness = IntMap(capacity: 256)

    /// Bounds the memory hostile constraints can make the store use.
    static let maxNodes = 300_000

    init() {
        _ = insert(Node(kind: .nothing), nullable: false, boolean: false)
        _ = insert(Node(kind: .empty), nullable: true, boolean: false)
        _ = insert(Node(kind: .full), nullable: true, boolean: false)
    }

    var count: Int { nodes.count }

    private mutating func insert(_ node: Node, nullable: Bool, boolean: Bool) -> ID {
        if let id = index[node] { return id }
        let id = ID(nodes.count)
        nodes.append(node)
        kinds.append(node.kind)
        childA.append(node.a)
        childB.append(node.b)
        repeatLo.append(node.lo)
        repeatHi.append(node.hi)
        byteSets.append(node.bytes)
        self.nullable.append(nullable)
        usesBoolean.append(boolean)
        index[node] = id
        return id
    }

    private func checkSize() throws(GLMError) {
        if nodes.count >= RegexStore.maxNodes {
            throw GLMError(.limitExceeded, "the constraint needs more than \(RegexStore.maxNodes) regular-expression"
                + " nodes; simplify the schema or pattern")
        }
    }

    // MARK: constructors

    mutating func bytes(_ set: ByteSet) -> ID {
        if set.isEmpty { return RegexStore.nothing }
        return insert(Node(kind: .bytes, bytes: set), nullable: false, boolean: false)
    }

    mutating func byte(_ b: UInt8) -> ID {
        var s = ByteSet()
        s.insert(b)
        return bytes(s)
    }

    mutating func literal<S: Sequence>(_ bytes: S) -> ID where S.Element == UInt8 {
        let list = Array(bytes)
        var result = RegexStore.empty
        for b in list.reversed() { result = concat(byte(b), result) }
        return result
    }

    mutating func literal(_ text: String) -> ID { literal(Array(text.utf8)) }

    mutating func concat(_ a: ID, _ b: ID) -> ID {
        if a == RegexStore.nothing || b == RegexStore.nothing { return RegexStore.nothing }
        if a == RegexStore.empty { return b }
        if b == RegexStore.empty { return a }
        if kinds[Int(a)] == .concat {
            // Right-nested normal form: (x y) b = x (y b).
            return concat(childA[Int(a)], concat(childB[Int(a)], b))
        }
        return insert(Node(kind: .concat, a: a, b: b), nullable: nullable[Int(a)] && nullable[Int(b)],
                      boolean: usesBoolean[Int(a)] || usesBoolean[Int(b)])
    }

    mutating func concat(_ parts: [ID]) -> ID {
        var result = RegexStore.empty
        for p in parts.reversed() { result = concat(p, result) }
        return result
    }

    mutating func or(_ parts: [ID]) -> ID {
        var flat: [ID] = []
        var set = ByteSet()
        var hasBytes = false
        var stack = parts
        while let p = stack.popLast() {
            switch kinds[Int(p)] {
            case .nothing: continue
            case .full: return RegexStore.full
            case .or: stack.append(contentsOf: nodes[Int(p)].list)
            case .bytes:
                set = set.union(byteSets[Int(p)])
                hasBytes = true
            default: flat.append(p)
            }
        }
        if hasBytes { flat.append(bytes(set)) }
        flat.sort()
        var unique: [ID] = []
        unique.reserveCapacity(flat.count)
        for p in flat where unique.last != p { unique.append(p) }
        // ε | r = r when r already matches the empty string.
        if unique.count > 1, let e = unique.firstIndex(of: RegexStore.empty),
           unique.contains(where: { $0 != RegexStore.empty && nullable[Int($0)] }) {
            unique.remove(at: e)
        }
        if unique.isEmpty { return RegexStore.nothing }
        if unique.count == 1 { return unique[0] }
        return insert(Node(kind: .or, list: unique), nullable: unique.contains { nullable[Int($0)] },
                      boolean: unique.contains { usesBoolean[Int($0)] })
    }

    mutating func or(_ a: ID, _ b: ID) -> ID { or([a, b]) }

    mutating func and(_ parts: [ID]) -> ID {
        var flat: [ID] = []
        var set = ByteSet.all
        var hasBytes = false
        var hasEmpty = false
        var stack = parts
        while let p = stack.popLast() {
            switch kinds[Int(p)] {
            case .nothing: return RegexStore.nothing
            case .full: continue
            case .empty: hasEmpty = true
            case .and: stack.append(contentsOf: nodes[Int(p)].list)
            case .bytes:
                set = set.intersection(byteSets[Int(p)])
                hasBytes = true
            default: flat.append(p)
            }
        }
        if hasEmpty {
            // ε ∩ r is ε when r is nullable, else ∅ (a byte set never is).
            if hasBytes { return RegexStore.nothing }
            return flat.allSatisfy { nullable[Int($0)] } ? RegexStore.empty : RegexStore.nothing
        }
        if hasBytes {
            if set.isEmpty { return RegexStore.nothing }
            // A one-byte language intersected with others: keep the bytes whose derivative survives.
            flat.append(bytes(set))
        }
        flat.sort()
        var unique: [ID] = []
        for p in flat where unique.last != p { unique.append(p) }
        if unique.isEmpty { return RegexStore.full }
        if unique.count == 1 { return unique[0] }
        return insert(Node(kind: .and, list: unique), nullable: unique.allSatisfy { nullable[Int($0)] }, boolean: true)
    }

    mutating func and(_ a: ID, _ b: ID) -> ID { and([a, b]) }

    mutating func not(_ a: ID) -> ID {
        if a == RegexStore.nothing { return RegexStore.full }
        if a == RegexStore.full { return RegexStore.nothing }
        if kinds[Int(a)] == .not { return childA[Int(a)] }
        return insert(Node(kind: .not, a: a), nullable: !nullable[Int(a)], boolean: true)
    }

    /// `a{lo,hi}`; `hi` nil = unbounded.
    mutating func `repeat`(_ a: ID, _ lo: Int, _ hi: Int?) -> ID {
        let lo32 = Int32(clamping: lo), hi32 = hi.map { Int32(clamping: $0) } ?? -1
        if hi32 == 0 { return RegexStore.empty }
        if a == RegexStore.nothing { return lo == 0 ? RegexStore.empty : RegexStore.nothing }
        if a == RegexStore.empty { return RegexStore.empty }
        if a == RegexStore.full { return RegexStore.full }
        if lo32 == 1 && hi32 == 1 { return a }
        if kinds[Int(a)] == .repeat && repeatLo[Int(a)] == 0 && repeatHi[Int(a)] == -1 && lo32 <= 1 && hi32 == -1 { return a }
        return insert(Node(kind: .repeat, a: a, lo: lo32, hi: hi32),
                      nullable: lo32 == 0 || nullable[Int(a)], boolean: usesBoolean[Int(a)])
    }

    mutating func star(_ a: ID) -> ID { self.repeat(a, 0, nil) }
    mutating func optional(_ a: ID) -> ID { or(a, RegexStore.empty) }

    /// Strings that contain `needle` somewhere.
    mutating func containing(_ needle: ID) -> ID { concat([RegexStore.full, needle, RegexStore.full]) }

    // MARK: derivatives

    /// The derivative of `id` by `byte`: the strings `s` such that `byte s` is in the language.
    mutating func derivative(_ id: ID, _ byte: UInt8) throws(GLMError) -> ID {
        if id <= RegexStore.full { return id == RegexStore.full ? RegexStore.full : RegexStore.nothing }
        let key = UInt64(UInt32(bitPattern: id)) << 8 | UInt64(byte)
        if let known = derivatives[key] { return known }
        try checkSize()
        let i = Int(id)
        let result: ID
        switch kinds[i] {
        case .nothing, .empty: result = RegexStore.nothing
        case .full: result = RegexStore.full
        case .bytes: result = byteSets[i].contains(byte) ? RegexStore.empty : RegexStore.nothing
        case .concat:
            // Walk the right-nested chain iteratively: d(a b) = d(a) b | (a nullable ? d(b) : ∅).
            var terms: [ID] = []
            var current = id
            while true {
                let c = Int(current)
                guard kinds[c] == .concat else {
                    terms.append(try derivative(current, byte))
                    break
                }
                let head = childA[c], tail = childB[c]
                let d = try derivative(head, byte)
                if d != RegexStore.nothing { terms.append(concat(d, tail)) }
                if !nullable[Int(head)] { break }
                current = tail
            }
            result = terms.count == 1 ? terms[0] : or(terms)
        case .or:
            let list = nodes[i].list
            var terms: [ID] = []
            terms.reserveCapacity(list.count)
            for child in list {
                let d = try derivative(child, byte)
                if d != RegexStore.nothing { terms.append(d) }
            }
            result = terms.count == 1 ? terms[0] : or(terms)
        case .and:
            let list = nodes[i].list
            var terms: [ID] = []
            for child in list {
                let d = try derivative(child, byte)
                if d == RegexStore.nothing { terms = [RegexStore.nothing]; break }
                terms.append(d)
            }
            result = and(terms)
        case .not:
            result = not(try derivative(childA[i], byte))
        case .repeat:
            let inner = childA[i]
            let d = try derivative(inner, byte)
            if d == RegexStore.nothing {
                result = RegexStore.nothing
            } else {
                let hi = repeatHi[i]
                let rest = self.repeat(inner, max(Int(repeatLo[i]) - 1, 0), hi < 0 ? nil : Int(hi) - 1)
                result = concat(d, rest)
            }
        }
        derivatives[key] = result
        return result
    }

    /// Whether the language of `id` is empty. Exact for expressions without intersection or complement; for
    /// those, a depth-first search over derivatives for a nullable one. A live result marks the path to the
    /// witness live; a dead result marks everything the search reached dead (all of it lies below `id`).
    /// Past `budget` expressions the answer is "not empty", which only costs a later dead end, never a wrong
    /// acceptance.
    mutating func isEmptyLanguage(_ id: ID, budget: Int = 20_000) throws(GLMError) -> Bool {
        if id == RegexStore.nothing { return true }
        if !usesBoolean[Int(id)] || nullable[Int(id)] { return false }
        if let known = emptiness[UInt64(UInt32(bitPattern: id))] { return known == 1 }
        // Stack of (expression, its byte-class representatives, next one to try).
        var stack: [(ID, [UInt8], Int)] = [(id, representatives(id), 0)]
        var seen: Set<ID> = [id]
        func live(_ path: [(ID, [UInt8], Int)], _ store: inout RegexStore) -> Bool {
            for (n, _, _) in path { store.emptiness[UInt64(UInt32(bitPattern: n))] = 0 }
            return false
        }
        while var (node, reps, next) = stack.popLast() {
            while next < reps.count {
                let d = try derivative(node, reps[next])
                next += 1
                if d == RegexStore.nothing || seen.contains(d) { continue }
                let known = emptiness[UInt64(UInt32(bitPattern: d))]
                if !usesBoolean[Int(d)] || nullable[Int(d)] || known == 0 || seen.count >= budget {
                    stack.append((node, reps, next))
                    return live(stack, &self)
                }
                if known == 1 { continue }
                seen.insert(d)
                stack.append((node, reps, next))
                stack.append((d, representatives(d), 0))
                break
            }
        }
        for n in seen { emptiness[UInt64(UInt32(bitPattern: n))] = 1 }
        return true
    }

    // MARK: byte classes

    /// A partition of the 256 bytes such that bytes of one class have the same derivative for every one of
    /// `ids`: the byte sets that can meet the first byte (`collectFirstSets`) refined against each other.
    /// `result[b]` is b's class; classes are numbered in order of their smallest byte.
    func byteClasses(_ ids: [ID]) -> [UInt8] {
        var sets: [ByteSet] = []
        var seen = Set<ID>()
        for id in ids { collectFirstSets(id, into: &sets, seen: &seen) }
        return ByteClasses.refine(sets)
    }

    /// A lower bound on how many characters of class `c` (0 plain, 1 text) `id` accepts in a row from its start
    /// while staying alive, read off its structure: a repetition of a node that takes any such character, at
    /// the head of the expression (`Int.max` when unbounded). 0 when the structure says nothing. Cheap, and
    /// exact for the common case of a string with a length bound, where the derivative search would walk one
    /// lexer state per character.
    func structuralRun(_ id: ID, characterClass c: Int) -> Int {
        let covers = c == 0 ? coversPlain : coversText
        var best = 0
        var stack = [id]
        var steps = 0
        while let n = stack.popLast() {
            steps += 1
            if steps > 64 { break }
            let i = Int(n)
            if usesBoolean[i] { continue }
            if let live = liveRuns[n], covers.contains(live.set) { best = max(best, live.run) }
            switch kinds[i] {
            case .or: stack.append(contentsOf: nodes[i].list)
            case .concat: stack.append(childA[i])
            case .repeat:
                if covers.contains(childA[i]) {
                    best = max(best, repeatHi[i] < 0 ? Int.max : Int(repeatHi[i]))
                }
            default: break
            }
        }
        return best
    }

    /// An upper bound on how many plain characters `id` accepts in a row from its start, read off its
    /// structure (nil when the structure does not say): a bounded repetition of an encoded character set,
    /// followed by something no plain character can start (a JSON string's closing quote). Slices of tokens
    /// longer than that can be skipped without walking them.
    func structuralMaxPlainRun(_ id: ID, plainStarts: ByteSet) -> Int? {
        var best = 0
        var stack = [id]
        var steps = 0
        while let n = stack.popLast() {
            steps += 1
            if steps > 64 { return nil }
            let i = Int(n)
            switch kinds[i] {
            case .nothing: continue
            case .or: stack.append(contentsOf: nodes[i].list)
            case .concat:
                let head = Int(childA[i])
                if kinds[head] == .repeat, repeatHi[head] >= 0, coversPlain.contains(childA[head]) {
                    // What follows the repetition must not begin with a plain character.
                    guard !startsPlain(childB[i], plainStarts) else { return nil }
                    best = max(best, Int(repeatHi[head]))
                } else if startsPlain(n, plainStarts) {
                    return nil
                }
            case .bytes:
                if !byteSets[i].intersection(plainStarts).isEmpty { return nil }
            default: return nil
            }
        }
        return best
    }

    /// Whether `id` may begin with a byte in `starts` (or match the empty string, after which anything may).
    private func startsPlain(_ id: ID, _ starts: ByteSet) -> Bool {
        if nullable[Int(id)] { return true }
        var sets: [ByteSet] = []
        var seen = Set<ID>()
        collectFirstSets(id, into: &sets, seen: &seen)
        return sets.contains { !$0.intersection(starts).isEmpty }
    }

    /// One byte of each byte class of `id` (enough to explore all its derivatives).
    func representatives(_ id: ID) -> [UInt8] {
        let classes = byteClasses([id])
        var out: [UInt8] = []
        var next: UInt8 = 0
        for b in 0..<256 where classes[b] == next {
            out.append(UInt8(b))
            next &+= 1
        }
        return out
    }

    private func collectFirstSets(_ root: ID, into sets: inout [ByteSet], seen: inout Set<ID>) {
        var stack = [root]
        while let id = stack.popLast() {
            guard seen.insert(id).inserted else { continue }
            let i = Int(id)
            switch kinds[i] {
            case .nothing, .empty, .full: break
            case .bytes: sets.append(byteSets[i])
            case .concat:
                stack.append(childA[i])
                if nullable[Int(childA[i])] { stack.append(childB[i]) }
            case .or, .and: stack.append(contentsOf: nodes[i].list)
            case .not, .repeat: stack.append(childA[i])
            }
        }
    }

    /// Whether `bytes` is in the language of `id`.
    mutating func matches<S: Sequence>(_ id: ID, _ bytes: S) throws(GLMError) -> Bool where S.Element == UInt8 {
        var current = id
        for b in bytes {
            current = try derivative(current, b)
            if current == RegexStore.nothing { return false }
        }
        return nullable[Int(current)]
    }
}
