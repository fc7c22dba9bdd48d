import GLMNumerics
import GLMSupport
import Glibc

/// `glm-bench attention [DEPTHS [ROWS [KV]]]`: decode attention (`glm_attend_rows`) of one layer of GLM-4.7's shape
/// (8 KV heads of 128, 12 query heads each) over a cache of each depth, one thread, on every kernel path this CPU
/// has, the paths alternating per round: milliseconds per layer and token, useful multiply-adds per second
/// (2 · 96 heads · 128 · depth · rows / time) and the KV bytes read per second. ROWS: query tokens per call (1:
/// decode; 2–4: MTP verification). Random cache contents (scores of a realistic spread), written once.
func attentionBenchmark(arguments: [String]) throws {
    let depths = arguments.count > 0 ? arguments[0].split(separator: ",").compactMap { Int($0) } : [2048, 8192, 32768]
    let tokens = arguments.count > 1 ? Int(arguments[1]) ?? 1 : 1
    let kv = arguments.count > 2 ? KVType(name: arguments[2]) : .f16
    guard !depths.isEmpty, depths.allSatisfy({ $0 > 0 }), (1...4).contains(tokens), let kv else {
        fputs("usage: glm-bench attention [DEPTH1,DEPTH2,... [ROWS 1-4 [f16|bf16|f32|q8_0]]]\n", stderr)
        exit(2)
    }
    let kvHeads = 8, group = 12, headDim = 128
    let headBytes = kv.headBytes(headDim: headDim), rowBytes = kvHeads * headBytes
    let paths = KernelPath.available()
    print("attention: GLM-4.7 shape (\(kvHeads) KV heads × \(group) query heads of \(headDim)), KV \(kv.name),"
          + " \(tokens) query token(s) per call, 1 thread, paths \(paths.map(\.rawValue).joined(separator: ", "))")
    var state: UInt64 = 0x9E3779B97F4A7C15
    func random() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
    }
    for depth in depths {
        let keys = try ByteBuffer(count: depth * rowBytes, purpose: "benchmark keys")
        let values = try ByteBuffer(count: depth * rowBytes, purpose: "benchmark values")
        let row = try FloatBuffer(count: kvHeads * headDim, purpose: "benchmark row")
        for s in 0..<depth {
            for i in 0..<(kvHeads * headDim) { row.pointer[i] = 2 * random() }
            KVKernels.store(kv, row.pointer, into: keys.pointer + s * rowBytes, heads: kvHeads, headDim: headDim)
            for i in 0..<(kvHeads * headDim) { row.pointer[i] = random() }
            KVKernels.store(kv, row.pointer, into: values.pointer + s * rowBytes, heads: kvHeads, headDim: headDim)
        }
        let width = kvHeads * group * headDim
        let query = try FloatBuffer(count: tokens * width, purpose: "benchmark queries")
        for i in 0..<(tokens * width) { query.pointer[i] = random() }
        let output = try FloatBuffer(count: tokens * width, purpose: "benchmark output")
        let scratch = try FloatBuffer(count: KVKernels.attendRowsScratchCount(headDim: headDim, rows: tokens * group),
                                      purpose: "benchmark scratch")
        func layer(_ path: KernelPath) {
            for head in 0..<kvHeads {
                KVKernels.attendRows(
                    keys: KVKernels.Head(type: kv, base: UnsafeRawPointer(keys.pointer + head * headBytes),
                                         stride: rowBytes),
                    values: KVKernels.Head(type: kv, base: UnsafeRawPointer(values.pointer + head * headBytes),
                                           stride: rowBytes),
                    headDim: headDim, rows: tokens * group, group: group,
                    query: KVKernels.Rows(UnsafePointer(query.pointer + head * group * headDim), tokenStride: width,
                                          headStride: headDim),
                    firstLimit: depth - tokens + 1, positions: 0..<depth, scale: 1 / Float(headDim).squareRoot(),
                    output: KVKernels.Rows(output.pointer + head * group * headDim, tokenStride: width,
                                           headStride: headDim),
                    partial: false, scratch: scratch.pointer, path: path)
            }
        }
        let repeats = max(3, min(200, 50_000_000 / (depth * tokens)))
        var best = [Double](repeating: .infinity, count: paths.count)
        for _ in 0..<repeats {
            for (i, path) in paths.enumerated() {
                let start = monotonicSeconds()
                layer(path)
                best[i] = min(best[i], monotonicSeconds() - start)
            }
        }
        let multiplyAdds = 2.0 * Double(kvHeads * group * headDim) * Double(depth) * Double(tokens)
        for (i, path) in paths.enumerated() {
            print("depth \(depth) \(path.rawValue): \(fixed(best[i] * 1e3, 3)) ms per layer,"
                  + " \(fixed(multiplyAdds / best[i] / 1e9, 1)) G multiply-adds/s,"
                  + " KV \(fixed(Double(2 * depth * rowBytes) / best[i] / 1e9, 2)) GB/s (best of \(repeats))")
        }
    }
}
