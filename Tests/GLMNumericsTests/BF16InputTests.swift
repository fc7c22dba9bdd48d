import Testing
import Glibc
import CGLMKernels
@testable import GLMNumerics
import GLMSupport

/// bf16 weights under `BF16Inputs.bf16` (bf16dot.c): inputs rounded to bf16 once, then exact products summed in f32
/// (vdpbf16ps on the avx512 path of a CPU with AVX-512 BF16; the f32-input kernels on the rounded values elsewhere).
@Suite struct BF16InputTests {
    /// The rounding both input forms use: nearest even (ties to the even mantissa), NaN kept quiet, subnormals to
    /// signed zero (what vdpbf16ps does with them), infinities and overflow to infinity.
    static func rounded(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
        if bits & 0x7F80_0000 == 0 { return UInt16(truncatingIfNeeded: bits >> 16) & 0x8000 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// Values around every case of the rounding (ties both ways, carries into the exponent, the largest finite
    /// values, subnormals, zeros, infinities, NaN with payload) and random ones, at every position of the 16- and
    /// 8-wide vector loops and their scalar tails.
    static func specialInputs() -> [Float] {
        var values: [Float] = [1, -1, 1 + 1.0 / 256, 1 + 3.0 / 256, -(1 + 1.0 / 256), 1 + 1.0 / 256 + 1.0 / 65536,
                               Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                               Float(bitPattern: 0x3FFF_FFFF), Float(bitPattern: 0x7F7F_FFFF),
                               Float(bitPattern: 0xFF7F_8000), Float(bitPattern: 0x7F7F_7FFF),
                               Float.leastNonzeroMagnitude, -Float.leastNormalMagnitude / 2, Float.leastNormalMagnitude,
                               0, -0.0, .infinity, -.infinity, .nan, Float(bitPattern: 0x7F80_0001),
                               Float(bitPattern: 0xFFC1_2345)]
        var numbers = KernelTests.Numbers(state: 5)
        while values.count < 77 { values.append(numbers.next() * 1000) }
        return values
    }

    @Test(arguments: [0, 1])
    func roundingIsNearestEvenWithNaNAndSubnormalsHandled(native: Int32) {
        let x = BF16InputTests.specialInputs()
        for columns in [1, 7, 8, 15, 16, 17, 33, x.count] {
            let tokens = x.count / columns
            let rowBytes = glm_bf16act_row_bytes(columns, native)
            var act = [UInt8](repeating: 0xAB, count: rowBytes * tokens)
            glm_bf16act_round(x, columns, columns, tokens, &act, native)
            for t in 0..<tokens {
                for c in 0..<columns {
                    let expected = BF16InputTests.rounded(x[t * columns + c])
                    let got: UInt16
                    if native == 1 {
                        got = UInt16(act[t * rowBytes + 2 * c]) | UInt16(act[t * rowBytes + 2 * c + 1]) << 8
                    } else {
                        let o = t * rowBytes + 4 * c
                        let word = UInt32(act[o]) | UInt32(act[o + 1]) << 8 | UInt32(act[o + 2]) << 16
                            | UInt32(act[o + 3]) << 24
                        #expect(word & 0xFFFF == 0)
                        got = UInt16(word >> 16)
                    }
                    #expect(got == expected, "native \(native) columns \(columns) value \(x[t * columns + c])")
                }
                if native == 1 {
                    // The padding to whole blocks of 32 is zero (the kernel reads it against masked weights).
                    #expect(act[(t * rowBytes + 2 * columns)..<((t + 1) * rowBytes)].allSatisfy { $0 == 0 })
                }
            }
        }
        // Finite values match the model's own fp32 → bf16 (HalfPrecision, used for the KV cache) where normal.
        for v in x where v.isFinite && (v == 0 || abs(v) >= Float.leastNormalMagnitude) {
            #expect(BF16InputTests.rounded(v) == HalfPrecision.floatToBF16(v))
        }
    }

    /// The paths to test: on a CPU with AVX-512 BF16 the avx512 path runs vdpbf16ps, every path runs the rounded-f32
    /// form through the f32 kernels.
    static let paths = KernelPath.available()

    /// Every shape through ProjectionBatch, against the definition in double precision: Σ bf16(w) · round(x). The
    /// products are exact, so only the f32 summation separates the kernel from it.
    @Test(arguments: BF16InputTests.paths)
    func productsMatchTheDefinition(path: KernelPath) throws {
        var numbers = KernelTests.Numbers(state: 17)
        for (rows, columns) in [(1, 1), (5, 13), (9, 31), (6, 32), (7, 33), (70, 37), (130, 64), (9, 200), (17, 600),
                                (5, 2081)] {
            for tokens in [1, 2, 3, 4, 5, 8, 11, 40, 101] {
                let weights = numbers.array(rows * columns).map(HalfPrecision.floatToBF16)
                let input = numbers.array(tokens * columns)
                let batch = try ProjectionBatch(workers: Workers(threads: 3), path: path, bf16Inputs: .bf16)
                var output = [Float](repeating: .nan, count: tokens * (rows + 2))
                weights.withUnsafeBufferPointer { w in
                    input.withUnsafeBufferPointer { x in
                        output.withUnsafeMutableBufferPointer { y in
                            batch.append(Projection(WeightMatrix(rows: rows, columns: columns, storage: .bf16(w.baseAddress!)),
                                                    input: x.baseAddress!, inputStride: columns, tokens: tokens,
                                                    output: y.baseAddress! + 1, outputStride: rows + 2))
                            batch.run()
                        }
                    }
                }
                var worst = 0.0
                for t in 0..<tokens {
                    for r in 0..<rows {
                        var sum = 0.0
                        for c in 0..<columns {
                            let x = HalfPrecision.bf16ToFloat(BF16InputTests.rounded(input[t * columns + c]))
                            sum += Double(HalfPrecision.bf16ToFloat(weights[r * columns + c])) * Double(x)
                        }
                        worst = max(worst, abs(sum - Double(output[t * (rows + 2) + 1 + r])))
                    }
                    #expect(output[t * (rows + 2)].isNaN && output[t * (rows + 2) + rows + 1].isNaN)
                }
                #expect(worst < 1e-5 * Double(columns), "\(path) rows \(rows) columns \(columns) tokens \(tokens)")
            }
        }
    }

    /// The inputs really are rounded: with f32 inputs the same product differs from the bf16-input one by what the
    /// rounding moves (and agrees with the rounded inputs fed as f32).
    @Test func inputsAreRoundedNotKept() throws {
        let columns = 64
        let weights = [UInt16](repeating: HalfPrecision.floatToBF16(1), count: columns)
        let input = [Float](repeating: 1 + 1.0 / 512, count: columns)   // rounds to 1 (below the halfway point)
        for path in BF16InputTests.paths {
            for inputs in BF16Inputs.allCases {
                let batch = try ProjectionBatch(workers: Workers(threads: 1), path: path, bf16Inputs: inputs)
                var output: [Float] = [0]
                weights.withUnsafeBufferPointer { w in
                    input.withUnsafeBufferPointer { x in
                        output.withUnsafeMutableBufferPointer { y in
                            batch.append(Projection(WeightMatrix(rows: 1, columns: columns, storage: .bf16(w.baseAddress!)),
                                                    input: x.baseAddress!, inputStride: columns, tokens: 1,
                                                    output: y.baseAddress!, outputStride: 1))
                            batch.run()
                        }
                    }
                }
                #expect(output[0] == (inputs == .bf16 ? 64 : 64 + 64.0 / 512), "\(path) \(inputs)")
            }
        }
    }

    /// vdpbf16ps gives every output one order of summation whatever the number of rows and tokens around it (and
    /// whether the columns are split into chunks), so
    /// decode, speculative verification and prefill agree bit for bit. Only on a CPU with AVX-512 BF16.
    @Test(.enabled(if: glm_bf16act_native_available() != 0))
    func nativeKernelGivesTheSameBitsForAnyTiling() {
        var numbers = KernelTests.Numbers(state: 23)
        // 4100 and 6150 columns: more than one 2048-column chunk (bf16dot.c's blocking, from 7 tokens on), the last
        // partial; 50 tokens: more than one group of 48.
        for (rows, columns, tokenCounts) in [(1, 5, [2, 3, 4]), (3, 13, [2, 5, 7]), (9, 64, [3, 7, 9]),
                                             (10, 70, [4, 16]), (37, 203, [5, 9]), (70, 96, [7, 13]),
                                             (6, 4100, [2, 7, 50]), (37, 6150, [9])] {
            for tokens in tokenCounts {
                let weights = numbers.array(rows * columns).map(HalfPrecision.floatToBF16)
                let input = numbers.array(tokens * columns)
                let rowBytes = glm_bf16act_row_bytes(columns, 1)
                var act = [UInt8](repeating: 0, count: rowBytes * tokens)
                glm_bf16act_round(input, columns, columns, tokens, &act, 1)
                var together = [Float](repeating: 0, count: tokens * rows)
                var alone = [Float](repeating: 0, count: tokens * rows)
                #expect(glm_matmul_rows_bf16act(weights, columns, rows, columns, act, tokens, &together, rows) == 0)
                act.withUnsafeBytes { a in
                    alone.withUnsafeMutableBufferPointer { y in
                        for t in 0..<tokens {
                            for r in 0..<rows {
                                _ = weights.withUnsafeBufferPointer { w in
                                    glm_matmul_rows_bf16act(w.baseAddress! + r * columns, columns, 1, columns,
                                                            a.baseAddress! + t * rowBytes, 1,
                                                            y.baseAddress! + t * rows + r, rows)
                                }
                            }
                        }
                    }
                }
                #expect(together.map(\.bitPattern) == alone.map(\.bitPattern),
                        "rows \(rows) columns \(columns) tokens \(tokens)")
            }
        }
    }

    /// vdpbf16ps against the rounded-f32 form through the f32 kernels (same exact products, another summation
    /// order): close to f32 rounding. Only on a CPU with AVX-512 BF16.
    @Test(.enabled(if: glm_bf16act_native_available() != 0 && BF16InputTests.paths.contains(.avx512)))
    func nativeAndRoundedF32FormsAgree() throws {
        var numbers = KernelTests.Numbers(state: 29)
        let rows = 48, columns = 640, tokens = 37
        let weights = numbers.array(rows * columns).map(HalfPrecision.floatToBF16)
        let input = numbers.array(tokens * columns)
        var results: [[Float]] = []
        for path in [KernelPath.avx512, .avx2] {
            let batch = try ProjectionBatch(workers: Workers(threads: 2), path: path, bf16Inputs: .bf16)
            var output = [Float](repeating: 0, count: tokens * rows)
            weights.withUnsafeBufferPointer { w in
                batch.append(Projection(WeightMatrix(rows: rows, columns: columns, storage: .bf16(w.baseAddress!)),
                                        input: input, inputStride: columns, tokens: tokens, output: &output,
                                        outputStride: rows))
                batch.run()
            }
            results.append(output)
        }
        let worst = zip(results[0], results[1]).map { abs(Double($0) - Double($1)) }.max() ?? 0
        print("bf16 inputs, vdpbf16ps vs the f32 kernels on the rounded inputs: max |Δ| \(worst)")
        #expect(worst < 1e-5 * Double(columns).squareRoot())
    }

    /// Weights whose last block is partial are read with a masked load: a row ending exactly at the end of a
    /// mapping (the last row of a tensor at the end of a file) must not fault. The matrix sits at the end of a
    /// page followed by a PROT_NONE page.
    @Test(.enabled(if: glm_bf16act_native_available() != 0))
    func lastRowEndingAtAPageBoundaryIsNotOverread() {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let base = mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED else { Issue.record("mmap failed"); return }
        defer { munmap(base, 2 * page) }
        #expect(mprotect(base + page, page, PROT_NONE) == 0)
        let rows = 3, columns = 37
        let weights = (base + page - 2 * rows * columns).assumingMemoryBound(to: UInt16.self)
        for i in 0..<(rows * columns) { weights[i] = HalfPrecision.floatToBF16(Float(i % 7) - 3) }
        let input = [Float](repeating: 0.5, count: columns)
        var act = [UInt8](repeating: 0, count: glm_bf16act_row_bytes(columns, 1))
        glm_bf16act_round(input, columns, columns, 1, &act, 1)
        var output = [Float](repeating: 0, count: rows)
        #expect(glm_matmul_rows_bf16act(weights, columns, rows, columns, act, 1, &output, rows) == 0)
        for r in 0..<rows {
            let expected = (0..<columns).reduce(0.0) { $0 + (Double((r * columns + $1) % 7) - 3) * 0.5 }
            #expect(Double(output[r]) == expected)
        }
    }
}
