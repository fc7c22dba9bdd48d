/// A set of bytes as four 64-bit words (bit `b & 63` of word `b >> 6`).
struct ByteSet: Hashable, Sendable {
    var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    init() {}

    init(_ range: ClosedRange<UInt8>) {
        for b in range { insert(b) }
    }

    init(_ bytes: [UInt8]) {
        for b in bytes { insert(b) }
    }

    static let all: ByteSet = {
        var s = ByteSet()
        s.w0 = .max; s.w1 = .max; s.w2 = .max; s.w3 = .max
        return s
    }()

    @inline(__always)
    func contains(_ b: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: return w0 & bit != 0
        case 1: return w1 & bit != 0
        case 2: return w2 & bit != 0
        default: return w3 & bit != 0
        }
    }

    mutating func insert(_ b: UInt8) {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: w0 |= bit
        case 1: w1 |= bit
        case 2: w2 |= bit
        default: w3 |= bit
        }
    }

    var isEmpty: Bool { (w0 | w1 | w2 | w3) == 0 }
    var isFull: Bool { (w0 & w1 & w2 & w3) == .max }
    var count: Int { w0.nonzeroBitCount + w1.nonzeroBitCount + w2.nonzeroBitCount + w3.nonzeroBitCount }

    func union(_ o: ByteSet) -> ByteSet {
        var s = self
        s.w0 |= o.w0; s.w1 |= o.w1; s.w2 |= o.w2; s.w3 |= o.w3
        return s
    }

    func intersection(_ o: ByteSet) -> ByteSet {
        var s = self
        s.w0 &= o.w0; s.w1 &= o.w1; s.w2 &= o.w2; s.w3 &= o.w3
        return s
    }

    func subtracting(_ o: ByteSet) -> ByteSet {
        var s = self
        s.w0 &= ~o.w0; s.w1 &= ~o.w1; s.w2 &= ~o.w2; s.w3 &= ~o.w3
        return s
    }

    var first: UInt8? {
        if w0 != 0 { return UInt8(w0.trailingZeroBitCount) }
        if w1 != 0 { return UInt8(64 + w1.trailingZeroBitCount) }
        if w2 != 0 { return UInt8(128 + w2.trailingZeroBitCount) }
        if w3 != 0 { return UInt8(192 + w3.trailingZeroBitCount) }
        return nil
    }
}

/// Partitions of the byte alphabet.
enum ByteClasses {
    /// The coarsest partition in which each of `sets` is a union of classes (classes numbered by first byte).
    static func refine(_ sets: [ByteSet]) -> [UInt8] {
        var parts: [ByteSet] = [.all]
        for set in sets where !set.isEmpty && !set.isFull {
            var next: [ByteSet] = []
            next.reserveCapacity(parts.count + 1)
            for p in parts {
                let inside = p.intersection(set)
                if inside.isEmpty || inside == p {
                    next.append(p)
                } else {
                    next.append(inside)
                    next.append(p.subtracting(set))
                }
            }
            parts = next
        }
        // Number the classes in order of their smallest byte.
        parts.sort { ($0.first ?? 0) < ($1.first ?? 0) }
        var classes = [UInt8](repeating: 0, count: 256)
        for (k, p) in parts.enumerated() {
            for b in 0..<256 where p.contains(UInt8(b)) { classes[b] = UInt8(truncatingIfNeeded: k) }
        }
        return classes
    }
}
