/// An open-addressing hash map from 64-bit keys to 32-bit values (linear probing, multiplicative hashing):
/// the derivative memo is looked up for every child of every expression a new lexer transition touches, and
/// Swift's Dictionary (SipHash, generic buckets) cost several times more there.
struct IntMap {
    private var keys: [UInt64]
    private var values: [Int32]
    private var mask: Int
    private(set) var count = 0
    private static let empty = UInt64.max

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = Array(repeating: IntMap.empty, count: size)
        values = Array(repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always) private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 29) & mask
    }

    /// The value for `key` (never UInt64.max), or nil.
    @inline(__always)
    subscript(key: UInt64) -> Int32? {
        get {
            keys.withUnsafeBufferPointer { k -> Int32? in
                var i = IntMap.slot(key, mask)
                while true {
                    let found = k[i]
                    if found == key { return values.withUnsafeBufferPointer { $0[i] } }
                    if found == IntMap.empty { return nil }
                    i = (i + 1) & mask
                }
            }
        }
        set {
            guard let newValue else { return }   // removal is not needed
            if (count + 1) * 2 > keys.count { grow() }
            var i = IntMap.slot(key, mask)
            while keys[i] != IntMap.empty && keys[i] != key { i = (i + 1) & mask }
            if keys[i] == IntMap.empty { count += 1 }
            keys[i] = key
            values[i] = newValue
        }
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = Array(repeating: IntMap.empty, count: oldKeys.count * 2)
        values = Array(repeating: 0, count: oldKeys.count * 2)
        mask = keys.count - 1
        for (k, v) in zip(oldKeys, oldValues) where k != IntMap.empty {
            var i = IntMap.slot(k, mask)
            while keys[i] != IntMap.empty { i = (i + 1) & mask }
            keys[i] = k
            values[i] = v
        }
    }
}
