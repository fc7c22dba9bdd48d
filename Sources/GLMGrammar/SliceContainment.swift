import GLMSupport

/// Which vocabulary slices a lexer state accepts whole (see `TokenVocabulary`).
extension LexerAutomaton {
    /// Bit k is set when every token of slice k is allowed from `state` without ending a lexeme, so the
    /// slice's bitset can be copied instead of walking its trie. Cached per state.
    func containedSlices(_ state: Int32, _ vocabulary: TokenVocabulary) throws(GLMError) -> UInt64 {
        let known = sliceMasks[Int(state)]
        if known >= 0 { return UInt64(known) }
        if classRegex.isEmpty {
            classRegex = [store.star(store.utf8(TokenVocabulary.plainCharacters)),
                          store.star(store.utf8(TokenVocabulary.textCharacters))]
        }
        var limits: [Int?] = [nil, nil]
        var structural = [0, 0]
        for p in statePairs[Int(state)] {
            let regex = Int32(truncatingIfNeeded: p & 0xFFFF_FFFF)
            for c in 0..<2 { structural[c] = max(structural[c], store.structuralRun(regex, characterClass: c)) }
        }
        var mask: UInt64 = 0
        for (k, slice) in vocabulary.slices.enumerated() where slice.characterClass >= 0 {
            let c = slice.characterClass
            if slice.maxCharacters <= structural[c] { mask |= 1 << UInt64(k); continue }
            // The search proves at most `containmentDepth` characters or "any length"; a bounded structure
            // already past that depth cannot be unbounded.
            if structural[c] >= TokenVocabulary.containmentDepth { continue }
            if limits[c] == nil { limits[c] = max(structural[c], try containedLength(state, characterClass: c)) }
            if let limit = limits[c], slice.maxCharacters <= limit { mask |= 1 << UInt64(k) }
        }
        // Slices that cannot fit at all: every token longer than the most plain characters the state accepts.
        var excluded: UInt64 = 0
        var maxRun: Int? = 0
        for p in statePairs[Int(state)] where maxRun != nil {
            let regex = Int32(truncatingIfNeeded: p & 0xFFFF_FFFF)
            if store.usesBoolean[Int(regex)] { maxRun = nil; break }
            if let r = store.structuralMaxPlainRun(regex, plainStarts: LexerAutomaton.plainStarts) {
                maxRun = max(maxRun ?? 0, r)
            } else {
                maxRun = nil
            }
        }
        if let maxRun {
            for (k, slice) in vocabulary.slices.enumerated() where slice.characterClass == 0 && slice.minCharacters > maxRun {
                excluded |= 1 << UInt64(k)
            }
        }
        sliceMasks[Int(state)] = Int64(mask)
        sliceExcluded[Int(state)] = excluded
        return mask
    }

    /// The first bytes of plain characters (ASCII other than controls, '"', '\\', '<'; UTF-8 lead bytes).
    static let plainStarts: ByteSet = {
        var s = ByteSet()
        for b in 0x20...0x7E where b != 0x22 && b != 0x5C && b != 0x3C { s.insert(UInt8(b)) }
        for b in 0xC2...0xF4 { s.insert(UInt8(b)) }
        return s
    }()

    /// The largest n such that every string of at most n characters of the class keeps `state` alive (no
    /// lexeme end needed), `Int.max` when that holds for every length, or `containmentDepth` when it holds
    /// that far and the search stops.
    private func containedLength(_ state: Int32, characterClass c: Int) throws(GLMError) -> Int {
        let start = classRegex[c]
        // The search may create lexer states the walk would never visit; past this many it stops and keeps what
        // it proved (shorter strings), and the walk handles the rest.
        let stateBudget = stateCount + 96
        var seenBoundary: Set<UInt64> = [LexerAutomaton.pair(start, state)]
        var frontier: [(RegexStore.ID, Int32)] = [(start, state)]
        for level in 0...TokenVocabulary.containmentDepth {
            var nextFrontier: [(RegexStore.ID, Int32)] = []
            var stack = frontier
            var seenPartial: Set<UInt64> = []
            while let (u, s) = stack.popLast() {
                // Bytes with the same class-regex successor and the same lexer class behave alike: one
                // transition per (successor, lexer class) instead of one per byte.
                let lexerClasses = classSets(of: s)
                for (u2, bytes) in try classTransitions(u) {
                    for cls in lexerClasses {
                        guard let b = cls.intersection(bytes).first else { continue }
                        let s2 = try next(s, b)
                        if s2 == LexerAutomaton.dead || stateCount > stateBudget { return level }
                        let key = LexerAutomaton.pair(u2, s2)
                        if u2 == start {
                            if seenBoundary.insert(key).inserted { nextFrontier.append((u2, s2)) }
                        } else if seenPartial.insert(key).inserted {
                            stack.append((u2, s2))
                        }
                    }
                }
            }
            if nextFrontier.isEmpty { return Int.max }
            frontier = nextFrontier
        }
        return TokenVocabulary.containmentDepth
    }

    private static func pair(_ u: RegexStore.ID, _ s: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: u)) << 32 | UInt64(UInt32(bitPattern: s))
    }

    /// The live transitions of a character-class regex state, grouped by successor.
    private func classTransitions(_ u: RegexStore.ID) throws(GLMError) -> [(RegexStore.ID, ByteSet)] {
        if let known = classTransitionCache[u] { return known }
        var out: [(RegexStore.ID, ByteSet)] = []
        for b in 0...255 {
            let d = try store.derivative(u, UInt8(b))
            if d == RegexStore.nothing { continue }
            if let i = out.firstIndex(where: { $0.0 == d }) { out[i].1.insert(UInt8(b)) } else {
                var set = ByteSet()
                set.insert(UInt8(b))
                out.append((d, set))
            }
        }
        classTransitionCache[u] = out
        return out
    }
}
