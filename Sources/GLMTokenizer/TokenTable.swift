/// Token byte strings in one arena, with an open-addressing index from bytes to id.
/// Built once at load (no per-token allocations), so a 150k vocabulary costs a few MB and loads in milliseconds.
struct TokenTable: Sendable {
    private(set) var arena: [UInt8] = []
    /// `starts[id]..<starts[id + 1]` is token `id`'s bytes.
    private(set) var starts: [Int32] = [0]
    /// Slots hold id + 1 (0 = empty). Only ids added with `indexed: true` are findable by bytes.
    private var slots: [Int32] = []
    private var mask = 0
    private var indexedCount = 0

    var count: Int { starts.count - 1 }

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
        starts.reserveCapacity(capacity + 1)
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        // FNV-1a: fast on short keys, good spread for the open-addressing table.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Appends the next id's bytes. Returns the id already indexed under the same bytes, if any
    /// (the new id is then not indexed; the caller decides which one wins).
    @discardableResult
    mutating func append(_ bytes: UnsafeRawBufferPointer, indexed: Bool) -> Int32? {
        let id = Int32(count)
        arena.append(contentsOf: bytes)
        starts.append(Int32(arena.count))
        guard indexed else { return nil }
        if let existing = find(bytes) { return existing }
        if (indexedCount + 1) * 2 > slots.count { grow() }
        insert(id: id, hash: TokenTable.hash(bytes))
        indexedCount += 1
        return nil
    }

    private mutating func insert(id: Int32, hash: Int) {
        var i = hash & mask
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = id + 1
    }

    private mutating func grow() {
        let old = slots
        slots = [Int32](repeating: 0, count: old.count * 2)
        mask = slots.count - 1
        for s in old where s != 0 { insert(id: s - 1, hash: withBytes(of: s - 1) { TokenTable.hash($0) }) }
    }

    func bytes(of id: Int32) -> ArraySlice<UInt8> {
        arena[Int(starts[Int(id)])..<Int(starts[Int(id) + 1])]
    }

    func withBytes<R>(of id: Int32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let lo = Int(starts[Int(id)]), hi = Int(starts[Int(id) + 1])
        return arena.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[lo..<hi])) }
    }

    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer) -> Int32? {
        arena.withUnsafeBytes { arenaBytes in
            starts.withUnsafeBufferPointer { starts in
                slots.withUnsafeBufferPointer { slots in
                    var i = TokenTable.hash(key) & mask
                    while true {
                        let s = slots[i]
                        if s == 0 { return nil }
                        let id = Int(s - 1)
                        let lo = Int(starts[id]), hi = Int(starts[id + 1])
                        if hi - lo == key.count {
                            guard let a = arenaBytes.baseAddress, let k = key.baseAddress else { return Int32(id) }
                            if memcmpEqual(a + lo, k, key.count) { return Int32(id) }
                        }
                        i = (i + 1) & mask
                    }
                }
            }
        }
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}

/// Merge ranks: (left id, right id) → (rank, merged id), open addressing on a packed 64-bit key.
struct MergeTable: Sendable {
    private var keys: [UInt64] = []
    private var values: [UInt64] = []   // rank << 32 | merged id
    private var mask = 0
    private(set) var count = 0
    static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: MergeTable.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Inserts or overwrites (a later duplicate pair wins, as when HF builds its merge map).
    mutating func set(left: Int32, right: Int32, rank: Int32, merged: Int32) {
        if (count + 1) * 2 > keys.count { grow() }
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var i = MergeTable.slot(key, mask)
        while keys[i] != MergeTable.empty && keys[i] != key { i = (i + 1) & mask }
        if keys[i] == MergeTable.empty { count += 1 }
        keys[i] = key
        values[i] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = [UInt64](repeating: MergeTable.empty, count: oldKeys.count * 2)
        values = [UInt64](repeating: 0, count: oldKeys.count * 2)
        mask = keys.count - 1
        for (k, v) in zip(oldKeys, oldValues) where k != MergeTable.empty {
            var i = MergeTable.slot(k, mask)
            while keys[i] != MergeTable.empty { i = (i + 1) & mask }
            keys[i] = k
            values[i] = v
        }
    }

    /// (rank, merged id) packed as rank << 32 | id, or UInt64.max when the pair does not merge.
    @inline(__always)
    func lookup(left: Int32, right: Int32) -> UInt64 {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        return keys.withUnsafeBufferPointer { keys in
            var i = MergeTable.slot(key, mask)
            while true {
                let k = keys[i]
                if k == key { return values.withUnsafeBufferPointer { $0[i] } }
                if k == MergeTable.empty { return UInt64.max }
                i = (i + 1) & mask
            }
        }
    }
}
