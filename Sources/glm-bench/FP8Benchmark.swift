import CGLMKernels
import GLMNumerics
import GLMSupport
import Glibc

/// `glm-bench fp8 [ROWS COLUMNS REPEATS]`: one decode-shaped product (one input row) over a ROWS × COLUMNS weight
/// matrix on one thread, in BF16 and in FP8 E4M3 with per-channel and with 128×128-block scales, beside a streaming
/// read of the same number of bytes as the FP8 matrix: milliseconds per product, weight GB/s, and the share of the
/// single-thread read bandwidth measured in the same run (the bound a memory-bound kernel works against). Random
/// finite codes, matrices far larger than the caches at the default size (GLM-4.7's dense up projection).
func fp8Benchmark(arguments: [String]) throws {
    let rows = arguments.count > 0 ? Int(arguments[0]) ?? 12288 : 12288
    let columns = arguments.count > 1 ? Int(arguments[1]) ?? 5120 : 5120
    let repeats = arguments.count > 2 ? Int(arguments[2]) ?? 20 : 20
    guard rows > 0, columns > 0, repeats > 0 else {
        fputs("usage: glm-bench fp8 [ROWS COLUMNS REPEATS]\n", stderr)
        exit(2)
    }
    var state: UInt64 = 88172645463325252
    func random() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    let input = UnsafeMutablePointer<Float>.allocate(capacity: columns)
    for c in 0..<columns { input[c] = Float(Int(random() % 2001) - 1000) / 1000 }
    let output = UnsafeMutablePointer<Float>.allocate(capacity: rows)
    let count = rows * columns

    let bf16 = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
    for i in 0..<count { bf16[i] = 0x3C00 | (UInt16(truncatingIfNeeded: random()) & 0x807F) }
    let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
    for i in 0..<count {
        var b = UInt8(truncatingIfNeeded: random())
        if b & 0x7F == 0x7F { b ^= 0x01 }   // no NaN codes
        codes[i] = b
    }
    let channelScales = (0..<rows).map { _ in Float(0.001) * Float(random() % 1000 + 1) }
    let blockCount = ((rows + 127) / 128) * ((columns + 127) / 128)
    let blockScales = (0..<blockCount).map { _ in Float(0.001) * Float(random() % 1000 + 1) }
    let probe = try FloatBuffer(count: count / 4, purpose: "bandwidth probe")
    for i in 0..<(count / 4) { probe.pointer[i] = 1 }

    func time(_ body: () -> Void) -> Double {
        body()
        let start = monotonicSeconds()
        for _ in 0..<repeats { body() }
        return (monotonicSeconds() - start) / Double(repeats)
    }
    print("decode product \(rows) x \(columns), 1 thread, \(repeats) repeats, CPU: \(CPUFeatures.host.brand)")
    var sink: Float = 0
    let readSeconds = time { sink += glm_stream_read(probe.pointer, count / 4) }
    let readBandwidth = Double(count) / readSeconds
    print("streaming read of \(fixed(Double(count) / 1e6, 1)) MB: \(fixed(readBandwidth / 1e9, 2)) GB/s")
    channelScales.withUnsafeBufferPointer { channel in
        blockScales.withUnsafeBufferPointer { block in
            let kinds: [(String, WeightMatrix.Storage, Int)] = [
                ("BF16", .bf16(UnsafePointer(bf16)), 2 * count),
                ("FP8 channel", .fp8(base: UnsafePointer(codes), scales: glm_fp8_scales(
                    scales: channel.baseAddress, block_rows: 1, block_columns: columns, scale_stride: 1)), count),
                ("FP8 block 128", .fp8(base: UnsafePointer(codes), scales: glm_fp8_scales(
                    scales: block.baseAddress, block_rows: 128, block_columns: 128,
                    scale_stride: (columns + 127) / 128)), count),
            ]
            var bf16Time = 0.0
            for (name, storage, bytes) in kinds {
                let w = WeightMatrix(rows: rows, columns: columns, storage: storage)
                // Every kernel path this CPU has (FP8's decode step has an AVX-512 build; BF16's row kernel is one).
                for path in name == "BF16" ? [KernelPath.avx2] : KernelPath.available() {
                    let seconds = time {
                        w.multiply(rows: 0..<rows, input: input, inputStride: columns, tokens: 1, output: output,
                                   outputStride: rows, path: path)
                    }
                    if bf16Time == 0 { bf16Time = seconds }
                    let gbs = Double(bytes) / seconds
                    let label = name == "BF16" ? name : "\(name) \(path.rawValue)"
                    print("\(label + String(repeating: " ", count: max(0, 20 - label.count))) \(fixed(seconds * 1e3, 2)) ms  "
                        + "\(fixed(gbs / 1e9, 2)) GB/s of weights = \(fixed(100 * gbs / readBandwidth, 1))% of the read"
                        + " bandwidth  time vs BF16 \(fixed(seconds / bf16Time, 2))x")
                }
            }
        }
    }
    if sink == 42 { print("") }
}
