import Glibc
import Synchronization

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64: the sampler's only source of randomness.
///
/// Why our own generator: the same seed must give the same tokens on every platform, run and thread count,
/// which the system RNG does not promise. The state is four words, so a session can save and restore it.
public struct SeededRandom: Sendable, Equatable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var mix = seed
        s0 = SeededRandom.splitMix(&mix)
        s1 = SeededRandom.splitMix(&mix)
        s2 = SeededRandom.splitMix(&mix)
        s3 = SeededRandom.splitMix(&mix)
    }

    private static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = SeededRandom.rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = SeededRandom.rotateLeft(s3, 45)
        return result
    }

    /// A uniform double in [0, 1) from the top 53 bits.
    public mutating func nextUnitInterval() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A seed for requests that did not give one: the wall clock mixed with a process-wide counter, so two
    /// requests in the same nanosecond still differ. Not reproducible, by design.
    public static func freshSeed() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let count = freshSeedCounter.add(1, ordering: .relaxed).oldValue
        var mix = UInt64(bitPattern: Int64(now.tv_sec)) &* 1_000_000_007 &+ UInt64(bitPattern: Int64(now.tv_nsec))
        mix ^= count &* 0x9E37_79B9_7F4A_7C15
        return splitMix(&mix)
    }
}

private let freshSeedCounter = Atomic<UInt64>(0)
