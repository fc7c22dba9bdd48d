import Testing
import Glibc
@testable import GLMNumerics
import GLMSupport

/// Kernels against direct double-precision evaluation of their definitions, on shapes that exercise every
/// vector tail (columns not a multiple of 8, rows not a multiple of 4, token counts around the 4-wide groups).
@Suite struct KernelTests {
    /// Deterministic values in [-1, 1).
    struct Numbers {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
        }
        mutating func array(_ n: Int) -> [Float] { (0..<n).map { _ in next() } }
    }

    enum Kind: CaseIterable { case f32, bf16, f16 }

    /// The weights as the kernel sees them (rounded to the storage type) and the matrix over them.
    func withMatrix<R>(_ values: [Float], rows: Int, columns: Int, kind: Kind,
                       _ body: (WeightMatrix, [Float]) -> R) -> R {
        switch kind {
        case .f32:
            return values.withUnsafeBufferPointer { p in
                body(WeightMatrix(rows: rows, columns: columns, storage: .f32(p.baseAddress!)), values)
            }
        case .bf16:
            let bits = values.map(HalfPrecision.floatToBF16)
            return bits.withUnsafeBufferPointer { p in
                body(WeightMatrix(rows: rows, columns: columns, storage: .bf16(p.baseAddress!)),
                     bits.map(HalfPrecision.bf16ToFloat))
            }
        case .f16:
            let bits = values.map { Float16($0).bitPattern }
            return bits.withUnsafeBufferPointer { p in
                body(WeightMatrix(rows: rows, columns: columns, storage: .f16(p.baseAddress!)),
                     bits.map(HalfPrecision.f16ToFloat))
            }
        }
    }

    /// Every kernel path this CPU runs (AVX2 everywhere; AVX-512 too where the CPU has it).
    static let paths = KernelPath.available()

    @Test func thisCPURunsTheKernels() {
        #expect(!KernelTests.paths.isEmpty, "missing: \(CPUFeatures.host.missingForKernels)")
        #expect(KernelTests.paths.contains(.avx2))
        #expect(KernelTests.paths.contains(.avx512) == CPUFeatures.host.has("avx512f"))
    }

    @Test(arguments: Kind.allCases, KernelTests.paths)
    func projectionMatchesDoublePrecision(kind: Kind, path: KernelPath) throws {
        var numbers = Numbers(state: 7)
        for (rows, columns) in [(1, 1), (5, 13), (70, 37), (130, 64), (9, 200), (17, 600)] {
            for tokens in [1, 2, 3, 4, 5, 8, 11, 40, 101] {
                let weights = numbers.array(rows * columns)
                let input = numbers.array(tokens * columns)
                let workers = Workers(threads: 3)
                let batch = try ProjectionBatch(workers: workers, path: path)
                var output = [Float](repeating: .nan, count: tokens * (rows + 2))
                let maxError: Double = withMatrix(weights, rows: rows, columns: columns, kind: kind) { w, exact in
                    input.withUnsafeBufferPointer { x in
                        output.withUnsafeMutableBufferPointer { y in
                            batch.append(Projection(w, input: x.baseAddress!, inputStride: columns, tokens: tokens,
                                                    output: y.baseAddress! + 1, outputStride: rows + 2))
                            batch.run()
                        }
                    }
                    var worst = 0.0
                    for t in 0..<tokens {
                        for r in 0..<rows {
                            var sum = 0.0
                            for c in 0..<columns { sum += Double(exact[r * columns + c]) * Double(input[t * columns + c]) }
                            worst = max(worst, abs(sum - Double(output[t * (rows + 2) + 1 + r])))
                        }
                    }
                    return worst
                }
                #expect(maxError < 1e-5 * Double(columns), "\(kind) rows \(rows) columns \(columns) tokens \(tokens)")
                // Entries outside the output rows are untouched (strides honoured).
                for t in 0..<tokens {
                    #expect(output[t * (rows + 2)].isNaN && output[t * (rows + 2) + rows + 1].isNaN)
                }
            }
        }
    }

    /// The row kernel gives every token the same bits whether it runs alone or beside up to 6 others (speculative
    /// decoding verifies k + 1 tokens in one pass and must reproduce one-token decoding exactly).
    @Test(arguments: Kind.allCases)
    func fewTokenRowsEqualOneTokenRowsBitForBit(kind: Kind) {
        var numbers = Numbers(state: 11)
        for (rows, columns) in [(1, 5), (3, 13), (9, 64), (10, 70), (17, 203)] {
            for tokens in 2...7 {
                let weights = numbers.array(rows * columns)
                let input = numbers.array(tokens * columns)
                withMatrix(weights, rows: rows, columns: columns, kind: kind) { w, _ in
                    var together = [Float](repeating: 0, count: tokens * rows)
                    var alone = [Float](repeating: 0, count: tokens * rows)
                    input.withUnsafeBufferPointer { x in
                        together.withUnsafeMutableBufferPointer { y in
                            w.multiply(rows: 0..<rows, input: x.baseAddress!, inputStride: columns, tokens: tokens,
                                       output: y.baseAddress!, outputStride: rows, path: .avx2)
                        }
                        alone.withUnsafeMutableBufferPointer { y in
                            for t in 0..<tokens {
                                w.multiply(rows: 0..<rows, input: x.baseAddress! + t * columns, inputStride: columns,
                                           tokens: 1, output: y.baseAddress! + t * rows, outputStride: rows, path: .avx2)
                            }
                        }
                    }
                    #expect(together.map(\.bitPattern) == alone.map(\.bitPattern),
                            "\(kind) rows \(rows) columns \(columns) tokens \(tokens)")
                }
            }
        }
    }

    @Test func rmsNormMatchesDefinition() {
        var numbers = Numbers(state: 3)
        for count in [1, 7, 8, 64, 67] {
            let x = numbers.array(count), w = numbers.array(count)
            var y = [Float](repeating: 0, count: count)
            VectorKernels.rmsNorm(x, weight: w, into: &y, count: count, eps: 1e-5)
            let mean = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(count)
            for i in 0..<count {
                let expected = Double(w[i]) * Double(x[i]) / (mean + 1e-5).squareRoot()
                #expect(abs(expected - Double(y[i])) < 1e-6 * max(1, abs(expected)))
            }
        }
    }

    @Test func siluMultiplyMatchesDefinition() {
        var numbers = Numbers(state: 11)
        let gate = numbers.array(37).map { $0 * 30 } + [-100, 100, -87.5, 88.5, 0]
        let up = numbers.array(gate.count)
        var out = [Float](repeating: 0, count: gate.count)
        VectorKernels.siluMultiply(gate: gate, up: up, into: &out, count: gate.count)
        for i in 0..<gate.count {
            let g = Double(gate[i])
            let expected = g / (1 + Glibc.exp(-g)) * Double(up[i])
            #expect(abs(expected - Double(out[i])) <= 1e-6 * max(1, abs(expected)), "gate \(g)")
        }
    }

    @Test func softmaxMatchesDefinitionAndMasks() {
        var numbers = Numbers(state: 5)
        for count in [1, 5, 8, 19, 100] {
            var x = numbers.array(count).map { $0 * 20 }
            if count > 2 { x[1] = -.infinity }
            let m = x.max()!
            let exps = x.map { Glibc.exp(Double($0 - m)) }
            let sum = exps.reduce(0, +)
            VectorKernels.softmax(&x, count: count)
            for i in 0..<count {
                #expect(abs(exps[i] / sum - Double(x[i])) < 1e-6)
            }
            if count > 2 { #expect(x[1] == 0) }
        }
    }

    @Test func ropeRotatesPairsHalfApartAndLeavesTheRest() {
        var numbers = Numbers(state: 9)
        let x = numbers.array(16)
        let half = 4
        let angles = (0..<half).map { Double($0) * 0.3 + 0.1 }
        let cosSin = angles.flatMap { [Float(Glibc.cos($0)), Float(Glibc.sin($0))] }
        var y = x
        VectorKernels.rotateNeoX(&y, cosSin: cosSin, half: half)
        for i in 0..<half {
            let c = Glibc.cos(angles[i]), s = Glibc.sin(angles[i])
            #expect(abs(Double(x[i]) * c - Double(x[i + half]) * s - Double(y[i])) < 1e-6)
            #expect(abs(Double(x[i + half]) * c + Double(x[i]) * s - Double(y[i + half])) < 1e-6)
        }
        #expect(Array(y[(2 * half)...]) == Array(x[(2 * half)...]))
    }

    @Test func bf16RoundsToNearestEven() {
        #expect(HalfPrecision.floatToBF16(1.0) == 0x3F80)
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0).
        #expect(HalfPrecision.floatToBF16(1.0 + 1.0 / 256) == 0x3F80)
        #expect(HalfPrecision.floatToBF16(1.0 + 3.0 / 256) == 0x3F82)
        #expect(HalfPrecision.bf16ToFloat(0xC000) == -2)
    }
}

@Suite struct PackedGEMMTests {
    /// The AVX2 (6×16) and AVX-512 (12×32) micro-kernels give bit-identical results (same summation order), so the
    /// CPU a model runs on never changes its outputs. Shapes cover partial panels, several KC blocks and MC blocks.
    @Test func microKernelsAgreeBitForBit() {
        var numbers = KernelTests.Numbers(state: 21)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: WeightMatrix.packedScratchCount)
        defer { scratch.deallocate() }
        for (rows, columns, tokens) in [(64, 600, 101), (33, 257, 13), (7, 9, 200), (64, 1024, 96)] {
            let weights = numbers.array(rows * columns).map(HalfPrecision.floatToBF16)
            let input = numbers.array(tokens * columns)
            var results: [[Float]] = []
            // On a CPU without AVX-512 the .avx512 request runs the AVX2 kernel (the C side refuses to fault).
            for path in KernelPath.allCases {
                var output = [Float](repeating: 0, count: tokens * rows)
                weights.withUnsafeBufferPointer { w in
                    let matrix = WeightMatrix(rows: rows, columns: columns, storage: .bf16(w.baseAddress!))
                    matrix.multiplyPacked(rows: 0..<rows, input: input, inputStride: columns, tokens: tokens,
                                          output: &output, outputStride: rows, scratch: scratch, path: path)
                }
                results.append(output)
            }
            #expect(results[0] == results[1], "rows \(rows) columns \(columns) tokens \(tokens)")
        }
    }
}

@Suite struct MatrixProductTests {
    /// Q·Kᵀ and P·V shapes (strided rows) through both the few-row path and the packed GEMM, against doubles.
    @Test(arguments: KernelTests.paths)
    func stridedProductsMatchDoublePrecision(path: KernelPath) {
        var numbers = KernelTests.Numbers(state: 33)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: MatrixProducts.scratchCount)
        defer { scratch.deallocate() }
        for (m, n, depth) in [(1, 5, 16), (3, 40, 32), (9, 300, 16), (33, 17, 70)] {
            let lda = depth + 3, ldb = depth + 5, ldc = n + 2
            let a = numbers.array(m * lda), b = numbers.array(n * ldb)
            var c = [Float](repeating: 0, count: m * ldc)
            MatrixProducts.multiplyTransposed(a, lda: lda, rows: m, b, ldb: ldb, rows: n, depth: depth,
                                              into: &c, ldc: ldc, scratch: scratch, path: path)
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for k in 0..<depth { sum += Double(a[i * lda + k]) * Double(b[j * ldb + k]) }
                    worst = max(worst, abs(sum - Double(c[i * ldc + j])))
                }
            }
            #expect(worst < 1e-5, "A·Bᵀ m \(m) n \(n) depth \(depth)")

            // c = a · bk with bk stored [depth][n] (row stride n + 4).
            let ldk = n + 4
            let bk = numbers.array(depth * ldk)
            MatrixProducts.multiply(a, lda: lda, rows: m, bk, ldb: ldk, depth: depth, columns: n,
                                    into: &c, ldc: ldc, scratch: scratch, path: path)
            worst = 0
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for k in 0..<depth { sum += Double(a[i * lda + k]) * Double(bk[k * ldk + j]) }
                    worst = max(worst, abs(sum - Double(c[i * ldc + j])))
                }
            }
            #expect(worst < 1e-5, "A·B m \(m) n \(n) depth \(depth)")
        }
    }
}
