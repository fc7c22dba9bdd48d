import CGLMKernels
import GLMNumerics
import GLMSupport
import Glibc

/// `glm-bench quant ROWS COLUMNS [REPEATS [TOKENS]]`: one product of TOKENS input rows (default 1: decode) with a
/// ROWS × COLUMNS weight matrix in each weight encoding, on one thread: milliseconds per product, weight bytes read
/// per second, and time relative to BF16 in the same run. BF16 runs the row kernel or, from
/// `ProjectionBatch.usesGEMM`'s threshold (32 tokens) on, the packed GEMM in tiles of 256 rows (prefill),
/// as `ProjectionBatch` does; every block type quantises the
/// input (Q8_0 or Q8_K, inside the timed product) and runs its integer kernel (the row kernel, the prefill tiles
/// from 4 tokens on, or the prefill panel kernel from `glm_q8act_panel_min_tokens` tokens on; the types with a
/// panel kernel then also run their row × token tiles as "TYPE tiles", before and after in one run; on the avx512
/// kernel path of a CPU with AVX-512 VNNI every block type also runs its AVX2 kernels as "TYPE avx2"). The matrices
/// hold random blocks (scales set to a finite value) and are far larger than the caches at the default size, so a
/// decode product measures what decode pays per weight byte. The encodings are timed in REPEATS rounds over all of
/// them (a busy moment of a shared machine hits them alike) and the fastest product of each counts, in wall time
/// and in the thread's CPU time (which leaves out time the thread waited for a core); the ratios use CPU time.
func quantBenchmark(arguments: [String]) throws {
    let rows = arguments.count > 0 ? Int(arguments[0]) ?? 12288 : 12288
    let columns = arguments.count > 1 ? Int(arguments[1]) ?? 5120 : 5120
    let repeats = arguments.count > 2 ? Int(arguments[2]) ?? 20 : 20
    let tokens = arguments.count > 3 ? Int(arguments[3]) ?? 1 : 1
    guard rows > 0, columns > 0, columns % 256 == 0, repeats > 0, tokens > 0 else {
        fputs("usage: glm-bench quant ROWS COLUMNS(multiple of 256) [REPEATS [TOKENS]]\n", stderr)
        exit(2)
    }
    var state: UInt64 = 88172645463325252
    func random() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    let input = UnsafeMutablePointer<Float>.allocate(capacity: columns * tokens)
    for c in 0..<(columns * tokens) { input[c] = Float(Int(random() % 2001) - 1000) / 1000 }
    let output = UnsafeMutablePointer<Float>.allocate(capacity: rows * tokens)
    let path = try KernelPath.resolve(nil)
    let scratch = try FloatBuffer(count: WeightMatrix.packedScratchCount, purpose: "GEMM panels")

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
    print("product of \(tokens) input row(s) with \(rows) x \(columns) weights, 1 thread, best of \(repeats) rounds,"
        + " CPU: \(CPUFeatures.host.brand), kernels \(path.rawValue)")
    var matrices: [(name: String, matrix: WeightMatrix, bytes: Int, storage: UnsafeMutableRawPointer?, panel: Bool,
                    path: KernelPath, bf16Inputs: BF16Inputs)] = []
    // On the avx512 path with AVX-512 VNNI the block types also run the AVX2 build of their kernels ("TYPE avx2").
    let compareAVX2 = path == .avx512 && glm_q8act_vnni_available() != 0
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
        let matrix = WeightMatrix(rows: rows, columns: columns, storage: storage)
        matrices.append((name, matrix, rows * rowBytes, bytes, true, path, .f32))
        if type != nil && compareAVX2 {
            matrices.append((name + " avx2", matrix, rows * rowBytes, nil, true, .avx2, .f32))
        }
        // BF16 also with its inputs rounded to bf16 (BF16Inputs.bf16: vdpbf16ps where the CPU has AVX-512 BF16).
        if type == nil { matrices.append(("BF16 bf16in", matrix, rows * rowBytes, nil, true, path, .bf16)) }
        // Before/after in one run: the types with a prefill panel kernel also run their row × token tiles.
        if let type, glm_q8act_panel_min_tokens(type) > 0, tokens >= Int(glm_q8act_panel_min_tokens(type)) {
            matrices.append((name + " tiles", matrix, rows * rowBytes, nil, false, path, .f32))
        }
    }
    defer { for m in matrices { m.storage?.deallocate() } }
    let quantizedBytes = (matrices.compactMap {
        $0.matrix.inputLayout(bf16Inputs: $0.bf16Inputs, path: $0.path)?.rowBytes
    }.max() ?? 0) * tokens
    let quantized = UnsafeMutableRawPointer.allocate(byteCount: max(quantizedBytes, 1), alignment: 64)
    defer { quantized.deallocate() }

    func product(_ w: WeightMatrix, panel: Bool, path: KernelPath, bf16Inputs: BF16Inputs) {
        glm_q8act_set_panel(panel ? 1 : 0)
        defer { glm_q8act_set_panel(1) }
        var input = UnsafePointer(input)
        if case .bf16 = w.storage, bf16Inputs == .bf16 {
            // As ProjectionBatch: round once, then vdpbf16ps, or the f32-input kernels on the rounded values.
            w.convertInput(input, inputStride: columns, tokens: tokens, into: quantized, bf16Inputs: .bf16, path: path)
            if WeightMatrix.bf16InputsRunNative(path: path),
               w.multiply(rows: 0..<rows, bf16Input: quantized, tokens: tokens, output: output, outputStride: rows) {
                return
            }
            input = UnsafePointer(quantized.assumingMemoryBound(to: Float.self))
        }
        if w.quantizedInputLayout != nil {
            w.quantizeInput(input, inputStride: columns, tokens: tokens, into: quantized)
            w.multiply(rows: 0..<rows, quantizedInput: quantized, tokens: tokens, output: output, outputStride: rows,
                       path: path)
        } else if !ProjectionBatch.usesGEMM(w, tokens: tokens) {
            w.multiply(rows: 0..<rows, input: input, inputStride: columns, tokens: tokens, output: output,
                       outputStride: rows, path: path)
        } else {
            var start = 0
            while start < rows {
                let end = min(rows, start + WeightMatrix.packedRowLimit)
                w.multiplyPacked(rows: start..<end, input: input, inputStride: columns, tokens: tokens,
                                 output: output + start, outputStride: rows, scratch: scratch.pointer, path: path)
                start = end
            }
        }
    }
    var wall = [Double](repeating: .infinity, count: matrices.count)
    var cpu = [Double](repeating: .infinity, count: matrices.count)
    for m in matrices { product(m.matrix, panel: m.panel, path: m.path, bf16Inputs: m.bf16Inputs) }   // page everything in
    for _ in 0..<repeats {
        for (i, m) in matrices.enumerated() {
            let startWall = monotonicSeconds(), startCPU = threadCPUSeconds()
            product(m.matrix, panel: m.panel, path: m.path, bf16Inputs: m.bf16Inputs)
            cpu[i] = min(cpu[i], threadCPUSeconds() - startCPU)
            wall[i] = min(wall[i], monotonicSeconds() - startWall)
        }
    }
    for (i, m) in matrices.enumerated() {
        print("\(m.name + String(repeating: " ", count: max(0, 12 - m.name.count)))"
            + " \(fixed(wall[i] * 1e3, 2)) ms wall, \(fixed(cpu[i] * 1e3, 2)) ms CPU"
            + "  \(fixed(Double(m.bytes) / cpu[i] / 1e9, 2)) GB/s of weights  \(fixed(Double(m.bytes) / 1e6, 1)) MB"
            + "  time vs BF16 \(fixed(cpu[i] / cpu[0], 2))x")
    }
}
