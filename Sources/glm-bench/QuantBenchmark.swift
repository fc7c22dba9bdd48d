import CGLMKernels
import GLMNumerics
import GLMSupport
import Glibc

/// `glm-bench quant ROWS COLUMNS [REPEATS]`: one decode-shaped product (one input row) over a ROWS × COLUMNS weight
/// matrix in each weight encoding, on one thread: milliseconds per product, weight bytes read per second, and time
/// relative to BF16 in the same run. Every block type runs its integer kernel (Q8_0 activations). The matrices hold random blocks (scales set to a finite value) and are far larger
/// than the caches at the default size, so this measures what decode pays per weight byte.
func quantBenchmark(arguments: [String]) throws {
    let rows = arguments.count > 0 ? Int(arguments[0]) ?? 12288 : 12288
    let columns = arguments.count > 1 ? Int(arguments[1]) ?? 5120 : 5120
    let repeats = arguments.count > 2 ? Int(arguments[2]) ?? 20 : 20
    guard rows > 0, columns > 0, columns % 256 == 0, repeats > 0 else {
        fputs("usage: glm-bench quant ROWS COLUMNS(multiple of 256) [REPEATS]\n", stderr)
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

    // (name, ggml type or nil for BF16, block elements, block bytes, byte offsets of f16 scales in a block)
    let kinds: [(String, Int32?, Int, Int, [Int])] = [
        ("BF16", nil, 1, 2, []),
        ("Q8_0", Int32(GLM_GGML_Q8_0), 32, 34, [0]),
        ("Q4_0", Int32(GLM_GGML_Q4_0), 32, 18, [0]),
        ("Q4_1", Int32(GLM_GGML_Q4_1), 32, 20, [0, 2]),
        ("Q5_0", Int32(GLM_GGML_Q5_0), 32, 22, [0]),
        ("Q5_1", Int32(GLM_GGML_Q5_1), 32, 24, [0, 2]),
        ("IQ4_NL", Int32(GLM_GGML_IQ4_NL), 32, 18, [0]),
        ("Q2_K", Int32(GLM_GGML_Q2_K), 256, 84, [80, 82]),
        ("Q3_K", Int32(GLM_GGML_Q3_K), 256, 110, [108]),
        ("Q4_K", Int32(GLM_GGML_Q4_K), 256, 144, [0, 2]),
        ("Q5_K", Int32(GLM_GGML_Q5_K), 256, 176, [0, 2]),
        ("Q6_K", Int32(GLM_GGML_Q6_K), 256, 210, [208]),
        ("IQ4_XS", Int32(GLM_GGML_IQ4_XS), 256, 136, [0]),
    ]
    print("decode product \(rows) x \(columns), 1 thread, \(repeats) repeats, CPU: \(CPUFeatures.host.brand)")
    var bf16Time = 0.0
    for (name, type, block, blockBytes, scales) in kinds {
        let rowBytes = columns / block * blockBytes
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
        let words = bytes.bindMemory(to: UInt64.self, capacity: rows * rowBytes / 8)
        for i in 0..<(rows * rowBytes / 8) { words[i] = random() }
        if type == nil {
            let halves = bytes.bindMemory(to: UInt16.self, capacity: rows * columns)
            for i in 0..<(rows * columns) { halves[i] = 0x3C00 | (halves[i] & 0x807F) }   // bf16 in ±[0.0078, 0.0156)
        } else {
            let raw = bytes.assumingMemoryBound(to: UInt8.self)
            for b in 0..<(rows * rowBytes / blockBytes) {
                for o in scales { raw[b * blockBytes + o] = 0x00; raw[b * blockBytes + o + 1] = 0x20 }  // f16 0.0078
            }
        }
        let storage: WeightMatrix.Storage = type.map { .ggml(type: $0, base: UnsafeRawPointer(bytes), rowBytes: rowBytes) }
            ?? .bf16(UnsafePointer(bytes.assumingMemoryBound(to: UInt16.self)))
        let w = WeightMatrix(rows: rows, columns: columns, storage: storage)
        w.multiply(rows: 0..<rows, input: input, inputStride: columns, tokens: 1, output: output, outputStride: rows)
        let start = monotonicSeconds()
        for _ in 0..<repeats {
            w.multiply(rows: 0..<rows, input: input, inputStride: columns, tokens: 1, output: output, outputStride: rows)
        }
        let seconds = (monotonicSeconds() - start) / Double(repeats)
        if type == nil { bf16Time = seconds }
        let gbs = Double(rows * rowBytes) / seconds / 1e9
        print("\(name + String(repeating: " ", count: max(0, 6 - name.count))) \(fixed(seconds * 1e3, 2)) ms  "
            + "\(fixed(gbs, 2)) GB/s of weights  \(fixed(Double(rows * rowBytes) / 1e6, 1)) MB  "
            + "time vs BF16 \(fixed(seconds / bf16Time, 2))x")
        bytes.deallocate()
    }
}

