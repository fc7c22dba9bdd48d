import Glibc

// Timing and formatting shared by the benchmark subcommands.

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// CPU seconds the calling thread has run (not counting time it waited for a core).
func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// `x` with `decimals` digits after the point (printf's %.Nf).
func fixed(_ x: Double, _ decimals: Int) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([x]) { vsnprintf(&buffer, buffer.count, "%.\(decimals)f", $0) }
    return String(cString: buffer)
}

/// The id of the largest logit (the first on ties): greedy decoding in the benchmarks.
func argmax(_ x: some RandomAccessCollection<Float>) -> Int32 {
    var best = 0, bestValue = -Float.infinity
    for (i, value) in x.enumerated() where value > bestValue { best = i; bestValue = value }
    return Int32(best)
}
