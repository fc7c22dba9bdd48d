/// Byte-level BPE over raw bytes: a pre-token's bytes start as one symbol each and the adjacent pair with the
/// lowest merge rank is merged (leftmost first among equals) until no pair merges, exactly as HF `tokenizers`
/// `BPE::merge_word` does. With `ignoreMerges` (tiktoken semantics) a pre-token that is itself a vocabulary
/// entry maps straight to its id.
struct BPEModel: Sendable {
    let tokens: TokenTable
    let merges: MergeTable
    /// Initial symbols for each byte (usually one id; byte-fallback/unknown handling may give zero or more).
    let initialSymbols: [[Int32]]
    let ignoreMerges: Bool

    /// Pre-tokens longer than this use the heap-based merge loop (quadratic scanning would be slow on them).
    static let scanLimit = 48

    func encode(_ word: UnsafeRawBufferPointer, scratch: inout BPEScratch, into out: inout [Int32]) {
        if word.count == 0 { return }
        if ignoreMerges || word.count == 1, let id = tokens.find(word) {
            out.append(id)
            return
        }
        if let cached = scratch.cache.lookup(word) {
            out.append(contentsOf: cached)
            return
        }
        let start = out.count
        scratch.symbols.removeAll(keepingCapacity: true)
        for b in word { scratch.symbols.append(contentsOf: initialSymbols[Int(b)]) }
        if scratch.symbols.count <= BPEModel.scanLimit {
            mergeByScanning(&scratch)
        } else {
            mergeWithHeap(&scratch)
        }
        out.append(contentsOf: scratch.symbols)
        scratch.cache.store(word, out[start...])
    }

    private func mergeByScanning(_ scratch: inout BPEScratch) {
        let n = scratch.symbols.count
        if n < 2 { return }
        scratch.ranks.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) { scratch.ranks.append(merges.lookup(left: scratch.symbols[i], right: scratch.symbols[i + 1])) }
        while true {
            var best = UInt64.max
            var at = -1
            scratch.ranks.withUnsafeBufferPointer { ranks in
                for i in 0..<ranks.count where ranks[i] < best {
                    best = ranks[i]
                    at = i
                }
            }
            if at < 0 { return }
            scratch.symbols[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            scratch.symbols.remove(at: at + 1)
            scratch.ranks.remove(at: at)
            if at > 0 {
                scratch.ranks[at - 1] = merges.lookup(left: scratch.symbols[at - 1], right: scratch.symbols[at])
            }
            if at < scratch.ranks.count {
                scratch.ranks[at] = merges.lookup(left: scratch.symbols[at], right: scratch.symbols[at + 1])
            }
        }
    }

    /// Linked symbols and a binary heap of candidate merges keyed (rank, position); stale entries are
    /// skipped when popped, as in HF's implementation.
    private func mergeWithHeap(_ scratch: inout BPEScratch) {
        let n = scratch.symbols.count
        if n < 2 { return }
        var next = (0..<n).map { $0 + 1 < n ? $0 + 1 : -1 }
        var prev = (0..<n).map { $0 - 1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            let r = merges.lookup(left: scratch.symbols[i], right: scratch.symbols[i + 1])
            if r != UInt64.max { heap.push(rankAndID: r, position: i) }
        }
        while let top = heap.pop() {
            let i = top.position
            guard alive[i] else { continue }
            let j = next[i]
            guard j >= 0 else { continue }
            // Stale entry: the pair at i changed since this candidate was pushed.
            guard merges.lookup(left: scratch.symbols[i], right: scratch.symbols[j]) == top.rankAndID else { continue }
            scratch.symbols[i] = Int32(truncatingIfNeeded: top.rankAndID & 0xFFFF_FFFF)
            alive[j] = false
            next[i] = next[j]
            if next[j] >= 0 { prev[next[j]] = i }
            if prev[i] >= 0 {
                let p = prev[i]
                let r = merges.lookup(left: scratch.symbols[p], right: scratch.symbols[i])
                if r != UInt64.max { heap.push(rankAndID: r, position: p) }
            }
            if next[i] >= 0 {
                let r = merges.lookup(left: scratch.symbols[i], right: scratch.symbols[next[i]])
                if r != UInt64.max { heap.push(rankAndID: r, position: i) }
            }
        }
        var k = 0
        var i = 0
        while i >= 0 && i < n {
            scratch.symbols[k] = scratch.symbols[i]
            k += 1
            i = next[i]
        }
        scratch.symbols.removeSubrange(k...)
    }
}

/// Min-heap on (rank, position): lowest rank first, then leftmost, HF's merge order. Four children per node:
/// a pre-token of millions of bytes (a long run of spaces) keeps millions of entries, and with the four
/// children of a node in one cache line a pop touches half as many lines as a binary heap's.
struct MergeHeap {
    struct Entry { var rankAndID: UInt64; var position: Int }
    private var items: [Entry] = []

    @inline(__always)
    private static func less(_ a: Entry, _ b: Entry) -> Bool {
        let ra = a.rankAndID >> 32, rb = b.rankAndID >> 32
        return ra < rb || (ra == rb && a.position < b.position)
    }

    mutating func push(rankAndID: UInt64, position: Int) {
        items.append(Entry(rankAndID: rankAndID, position: position))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 4
            guard MergeHeap.less(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        let count = items.count
        if count > 0 {
            items.withUnsafeMutableBufferPointer { heap in
                var i = 0
                while true {
                    let child = 4 * i + 1
                    if child >= count { break }
                    var m = child
                    for c in (child + 1)..<Swift.min(child + 4, count) where MergeHeap.less(heap[c], heap[m]) { m = c }
                    guard MergeHeap.less(heap[m], last) else { break }
                    heap[i] = heap[m]
                    i = m
                }
                heap[i] = last
            }
        }
        return first
    }
}

/// Per-call working memory for encoding: symbol buffers and a cache of pre-token → ids for this call
/// (natural text repeats the same words; HF keeps a similar cache).
struct BPEScratch {
    var symbols: [Int32] = []
    var ranks: [UInt64] = []
    var cache = WordCache()
}

/// A direct-mapped cache from pre-token bytes to ids, stored in two arenas (no per-entry allocation).
struct WordCache {
    static let slotCount = 1 << 14
    static let maxKeyLength = 64
    private var hashes = [UInt64](repeating: 0, count: slotCount)
    private var keyRange = [(start: Int32, count: Int32)](repeating: (0, 0), count: slotCount)
    private var idRange = [(start: Int32, count: Int32)](repeating: (0, 0), count: slotCount)
    private var keys: [UInt8] = []
    private var ids: [Int32] = []

    @inline(__always)
    private static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h | 1
    }

    func lookup(_ key: UnsafeRawBufferPointer) -> ArraySlice<Int32>? {
        guard key.count <= WordCache.maxKeyLength else { return nil }
        let h = WordCache.hash(key)
        let slot = Int(truncatingIfNeeded: h >> 20) & (WordCache.slotCount - 1)
        guard hashes[slot] == h else { return nil }
        let k = keyRange[slot]
        guard Int(k.count) == key.count else { return nil }
        let same = keys.withUnsafeBytes { arena -> Bool in
            guard let a = arena.baseAddress, let b = key.baseAddress else { return key.count == 0 }
            return memcmpEqual(a + Int(k.start), b, key.count)
        }
        guard same else { return nil }
        let r = idRange[slot]
        return ids[Int(r.start)..<Int(r.start + r.count)]
    }

    mutating func store(_ key: UnsafeRawBufferPointer, _ value: ArraySlice<Int32>) {
        guard key.count <= WordCache.maxKeyLength else { return }
        if keys.count > 1 << 22 {
            keys.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            for i in 0..<hashes.count { hashes[i] = 0 }
        }
        let h = WordCache.hash(key)
        let slot = Int(truncatingIfNeeded: h >> 20) & (WordCache.slotCount - 1)
        hashes[slot] = h
        keyRange[slot] = (Int32(keys.count), Int32(key.count))
        keys.append(contentsOf: key)
        idRange[slot] = (Int32(ids.count), Int32(value.count))
        ids.append(contentsOf: value)
    }
}
