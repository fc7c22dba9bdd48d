import Testing
import Foundation
import CGLMKernels
import GLMNumerics
import GLMSupport

/// glm_dequantize against gguf-py's reference dequantisers (llama.cpp's quants.py), bit for bit: the fixtures of
/// Tests/Fixtures/formats/gguf_quants are made by tools/make_gguf_quant_fixtures.py from random blocks and edge
/// blocks (zero, subnormal, largest, infinite and NaN scales; all-zero and all-ones blocks).
@Suite struct GGUFDequantTests {
    static let directory: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures/formats/gguf_quants/"
    }()

    /// The integer kernels' builds this CPU runs (glm_matmul_rows_q8act's avx512 argument): 2 the AVX2 build
    /// (forced), 0 the AVX-VNNI build where the CPU has AVX-VNNI, 1 the AVX-512 VNNI build where it has that. Every
    /// product below runs on each and must give the same bits.
    static let integerPaths: [Int32] = [2] + (glm_q8act_avxvnni_available() != 0 ? [0] : [])
        + (glm_q8act_vnni_available() != 0 ? [1] : [])

    /// The first `tokens` rows of `x` times weight rows 0..<rows on integer build `path`, through both entry points:
    /// glm_matmul_rows_q8act (f32 input) and glm_q8act_quantize + glm_matmul_rows_q8act_pre (quantised once, as
    /// ProjectionBatch runs it); the tests expect the two to give the same bits.
    static func integerProducts(_ type: Int32, _ weights: [UInt8], rowBytes: Int, rows: Int, columns: Int,
                                _ x: [Float], tokens: Int, path: Int32) -> (direct: [Float], twoStep: [Float]) {
        var y = [Float](repeating: .nan, count: tokens * rows)
        #expect(glm_matmul_rows_q8act(type, weights, rowBytes, rows, columns, x, columns, tokens, &y, rows, path) == 0)
        var act = [UInt8](repeating: 0, count: tokens * glm_q8act_row_bytes(type, columns) + 32)
        var y2 = [Float](repeating: .nan, count: tokens * rows)
        act.withUnsafeMutableBytes { a in
            let aligned = UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: a.baseAddress!) + 31) & ~31)!
            #expect(glm_q8act_quantize(type, x, columns, columns, tokens, aligned) == 0)
            #expect(glm_matmul_rows_q8act_pre(type, weights, rowBytes, rows, columns, aligned, tokens, &y2, rows,
                                              path) == 0)
        }
        return (y, y2)
    }

    static let types: [(String, Int32, Int)] = [
        ("F32", Int32(GLM_GGML_F32), 1), ("F16", Int32(GLM_GGML_F16), 1), ("BF16", Int32(GLM_GGML_BF16), 1),
        ("Q4_0", Int32(GLM_GGML_Q4_0), 32), ("Q4_1", Int32(GLM_GGML_Q4_1), 32), ("Q5_0", Int32(GLM_GGML_Q5_0), 32),
        ("Q5_1", Int32(GLM_GGML_Q5_1), 32), ("Q8_0", Int32(GLM_GGML_Q8_0), 32), ("Q2_K", Int32(GLM_GGML_Q2_K), 256),
        ("Q3_K", Int32(GLM_GGML_Q3_K), 256), ("Q4_K", Int32(GLM_GGML_Q4_K), 256), ("Q5_K", Int32(GLM_GGML_Q5_K), 256),
        ("Q6_K", Int32(GLM_GGML_Q6_K), 256), ("IQ4_NL", Int32(GLM_GGML_IQ4_NL), 32),
        ("IQ4_XS", Int32(GLM_GGML_IQ4_XS), 256),
    ]

    @Test(arguments: types.map(\.0))
    func matchesReferenceBitForBit(_ name: String) throws {
        let (_, type, block) = try #require(GGUFDequantTests.types.first { $0.0 == name })
        let raw = try Data(contentsOf: URL(fileURLWithPath: GGUFDequantTests.directory + name + ".blocks"))
        let expectedData = try Data(contentsOf: URL(fileURLWithPath: GGUFDequantTests.directory + name + ".f32"))
        let count = expectedData.count / 4
        #expect(count > 0 && count % block == 0)
        let expected: [UInt32] = expectedData.withUnsafeBytes { p in (0..<count).map { p.load(fromByteOffset: 4 * $0, as: UInt32.self) } }
        var out = [Float](repeating: -1, count: count)
        let rc = raw.withUnsafeBytes { src in glm_dequantize(type, src.baseAddress!, &out, count) }
        #expect(rc == 0)
        #expect(glm_ggml_dequantizable(type) == 1)
        var mismatches = 0
        var nonFinite = 0
        for i in 0..<count where out[i].bitPattern != expected[i] {
            if mismatches < 5 {
                Issue.record("\(name) element \(i) (block \(i / block)): 0x\(String(out[i].bitPattern, radix: 16)) (\(out[i])) vs reference 0x\(String(expected[i], radix: 16)) (\(Float(bitPattern: expected[i])))")
            }
            mismatches += 1
        }
        for i in 0..<count where !out[i].isFinite { nonFinite += 1 }
        #expect(mismatches == 0)
        // The edge blocks do reach Inf/NaN (the test would not notice a dequantiser that flushed them otherwise).
        #expect(nonFinite > 0)
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + name)))
    }

    /// Activations are quantised to Q8_0 exactly as ggml's reference quantiser (gguf-py) does, byte for byte.
    @Test func activationQuantisationMatchesReference() throws {
        let raw = try GGUFDequantTests.bytes("activations.f32")
        let expected = try GGUFDequantTests.bytes("activations.q8_0")
        let x: [Float] = raw.withUnsafeBytes { p in (0..<(raw.count / 4)).map { p.load(fromByteOffset: 4 * $0, as: Float.self) } }
        #expect(x.count % 32 == 0 && expected.count == x.count / 32 * 34)
        var out = [UInt8](repeating: 0xAA, count: expected.count)
        glm_quantize_row_q8_0(x, &out, x.count)
        for b in 0..<(x.count / 32) where Array(out[(34 * b)..<(34 * b + 34)]) != Array(expected[(34 * b)..<(34 * b + 34)]) {
            Issue.record("block \(b): \(Array(out[(34 * b)..<(34 * b + 34)])) vs reference \(Array(expected[(34 * b)..<(34 * b + 34)]))")
        }
    }

    /// ggml's reference Q8_K quantiser (quantize_row_q8_K_ref in ggml-quants.c), written out here: m = the first
    /// element of largest magnitude, iscale = −127/m, q = min(127, round-half-even(iscale·x)), bsums = Σq per 16,
    /// d = 1/iscale; an all-zero block is d = 0, q = 0.
    static func referenceQ8K(_ x: ArraySlice<Float>) -> (d: Float, q: [Int8], bsums: [Int16]) {
        var amax: Float = 0, max: Float = 0
        for v in x where abs(v) > amax { amax = abs(v); max = v }
        if amax == 0 { return (0, [Int8](repeating: 0, count: 256), [Int16](repeating: 0, count: 16)) }
        let iscale = -127 / max
        let q: [Int8] = x.map { Int8(Swift.min(127, Int((iscale * $0).rounded(.toNearestOrEven)))) }
        let bsums: [Int16] = (0..<16).map { j in Int16(q[(16 * j)..<(16 * j + 16)].reduce(0) { $0 + Int($1) }) }
        return (1 / iscale, q, bsums)
    }

    /// Activations quantised to Q8_K (the K-quants' activation type) exactly as ggml's reference quantiser, byte
    /// for byte, on the fixture's activation rows (magnitudes from 1e-30 to 1e30, zero blocks, rounding boundaries).
    @Test func activationQuantisationQ8KMatchesReference() throws {
        let raw = try GGUFDequantTests.bytes("activations.f32")
        var x: [Float] = raw.withUnsafeBytes { p in (0..<(raw.count / 4)).map { p.load(fromByteOffset: 4 * $0, as: Float.self) } }
        x = Array(x.prefix(x.count / 256 * 256))
        #expect(x.count >= 512)
        var out = [UInt8](repeating: 0xAA, count: x.count / 256 * 292)
        #expect(glm_quantize_row_q8_k(x, &out, x.count) == 0)
        for b in 0..<(x.count / 256) {
            let expected = GGUFDequantTests.referenceQ8K(x[(256 * b)..<(256 * b + 256)])
            let block = Array(out[(292 * b)..<(292 * b + 292)])
            let d = block.withUnsafeBytes { $0.load(as: Float.self) }
            let q = block[4..<260].map { Int8(bitPattern: $0) }
            let bsums: [Int16] = (0..<16).map { j in Int16(bitPattern: UInt16(block[260 + 2 * j]) | UInt16(block[261 + 2 * j]) << 8) }
            #expect(d.bitPattern == expected.d.bitPattern, "block \(b): d \(d) vs \(expected.d)")
            #expect(q == expected.q, "block \(b): values differ")
            #expect(bsums == expected.bsums, "block \(b): bsums differ")
        }
        #expect(glm_quantize_row_q8_k(x, &out, 255) == -1)
    }

    /// The integer kernels against their definition evaluated in double: Σ_blocks d_x · Σ_j w[j] · q_x[j], with w the
    /// exactly dequantised weights (glm_dequantize, checked against gguf-py above), the activations quantised by
    /// glm_quantize_row_q8_0 / glm_quantize_row_q8_k (checked against the references above; Q8_K for the K-quants
    /// and IQ4_XS as in ggml) and weight rows made of the fixtures' random blocks. The kernels sum the integer
    /// products exactly and scale in f32: 1e-6 of Σ|terms| (measured ≤ 1e-7). Every kernel shape runs: tokens 1, 3
    /// (the decode kernel, row by row) and 4, 6, 9 (prefill tiles of 4 tokens and the remainder) over rows 1..9
    /// (the K types' 2-row prefill tile and its remainder); every shape must give the same bits as one row times
    /// one token.
    @Test(arguments: types.filter { $0.2 > 1 }.map(\.0))
    func integerDotMatchesDefinition(_ name: String) throws {
        let (_, type, block) = try #require(GGUFDequantTests.types.first { $0.0 == name })
        let blockBytes = [32: [2: 18, 3: 20, 6: 22, 7: 24, 8: 34, 20: 18], 256: [10: 84, 11: 110, 12: 144, 13: 176, 14: 210, 23: 136]][block]![Int(type)]!
        let fixture = try GGUFDequantTests.bytes(name + ".blocks")
        let randoms = block == 32 ? 48 : 12   // tools/make_gguf_quant_fixtures.py: the random blocks come first
        #expect(fixture.count >= randoms * blockBytes)
        let (rows, blocksPerRow, maxTokens) = (9, block == 32 ? 9 : 2, 9)   // 9 blocks: pairs and a last one alone
        let columns = block * blocksPerRow
        let rowBytes = blocksPerRow * blockBytes
        var weights = [UInt8]()
        for r in 0..<rows {
            for j in 0..<blocksPerRow {
                let source = (r * 5 + j) % randoms
                weights += fixture[(source * blockBytes)..<((source + 1) * blockBytes)]
            }
        }
        var state: UInt64 = 12345
        let x: [Float] = (0..<(maxTokens * columns)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
        }
        var w = [Float](repeating: 0, count: rows * columns)
        #expect(glm_dequantize_rows(type, weights, rowBytes, rows, columns, &w) == 0)
        let kQuant = block == 256
        // The activations as the kernel sees them: per element the int8 value times its block's scale.
        func quantised(_ t: Int) -> [Double] {
            var out = [Double](repeating: 0, count: columns)
            x.withUnsafeBufferPointer { p in
                if kQuant {
                    var xq = [UInt8](repeating: 0, count: columns / 256 * 292)
                    _ = glm_quantize_row_q8_k(p.baseAddress! + t * columns, &xq, columns)
                    for c in 0..<columns {
                        let b = c / 256
                        let d = xq.withUnsafeBytes { $0.load(fromByteOffset: 292 * b, as: Float.self) }
                        out[c] = Double(Int8(bitPattern: xq[292 * b + 4 + c % 256])) * Double(d)
                    }
                } else {
                    var xq = [UInt8](repeating: 0, count: columns / 32 * 34)
                    glm_quantize_row_q8_0(p.baseAddress! + t * columns, &xq, columns)
                    for c in 0..<columns {
                        let b = c / 32
                        let d = HalfPrecision.f16ToFloat(UInt16(xq[b * 34]) | UInt16(xq[b * 34 + 1]) << 8)
                        out[c] = Double(Int8(bitPattern: xq[b * 34 + 2 + c % 32])) * Double(d)
                    }
                }
            }
            return out
        }
        // One row × one token at a time: the reference shape for the bit-identity checks.
        var single = [Float](repeating: .nan, count: maxTokens * rows)
        for t in 0..<maxTokens {
            for r in 0..<rows {
                var one: Float = .nan
                x.withUnsafeBufferPointer { p in
                    weights.withUnsafeBufferPointer { wp in
                        #expect(glm_matmul_rows_q8act(type, wp.baseAddress! + r * rowBytes, rowBytes, 1, columns,
                                                      p.baseAddress! + t * columns, columns, 1, &one, 1, 0) == 0)
                    }
                }
                single[t * rows + r] = one
            }
        }
        var worstRatio = 0.0
        for t in 0..<maxTokens {
            let xd = quantised(t)
            for r in 0..<rows {
                var sum = 0.0, magnitude = 0.0
                for c in 0..<columns {
                    let term = Double(w[r * columns + c]) * xd[c]
                    sum += term
                    magnitude += abs(term)
                }
                let got = Double(single[t * rows + r])
                worstRatio = max(worstRatio, abs(got - sum) / magnitude)
                #expect(abs(got - sum) <= 1e-6 * magnitude, "\(name) token \(t) row \(r): \(got) vs \(sum)")
            }
        }
        print("\(name): integer kernel vs definition, worst |Δ| / Σ|terms| = \(worstRatio)")
        let actRow = glm_q8act_row_bytes(type, columns)
        #expect(actRow > 0 && actRow % 32 == 0)
        for tokens in [1, 3, 4, 6, 9] {
            for shapeRows in 1...rows {
                var first: [Float]? = nil   // the AVX2 build's result: every other build's must be the same bits
                for path in GGUFDequantTests.integerPaths {
                    // The two-step form (quantised once, as ProjectionBatch runs it) gives the same bits.
                    let (y, y2) = GGUFDequantTests.integerProducts(type, weights, rowBytes: rowBytes, rows: shapeRows,
                                                                   columns: columns, x, tokens: tokens, path: path)
                    // From glm_q8act_panel_min_tokens on, the panel kernel sums in another float order
                    // (integerPanelMatchesScalarOrder checks it); the row × token tiles below it equal 1 × 1.
                    let panelFrom = Int(glm_q8act_panel_min_tokens(type))
                    let rowKernel = panelFrom == 0 || tokens < panelFrom
                    for t in 0..<tokens {
                        for r in 0..<shapeRows {
                            #expect(!rowKernel || y[t * shapeRows + r].bitPattern == single[t * rows + r].bitPattern,
                                    "\(name) \(shapeRows) rows × \(tokens) tokens, build \(path): token \(t) row \(r) differs from 1 × 1")
                            #expect(y2[t * shapeRows + r].bitPattern == y[t * shapeRows + r].bitPattern)
                        }
                    }
                    if let first {
                        #expect(y.map(\.bitPattern) == first.map(\.bitPattern),
                                "\(name) \(shapeRows) rows × \(tokens) tokens: build \(path) differs from the AVX2 build")
                    } else {
                        first = y
                    }
                }
            }
        }
        // Non-finite inputs reach the output instead of vanishing in the quantisation.
        var bad = x
        bad[5] = .nan
        var y = [Float](repeating: 0, count: rows)
        for path in GGUFDequantTests.integerPaths {
            bad[5] = .nan
            #expect(glm_matmul_rows_q8act(type, weights, rowBytes, rows, columns, bad, columns, 1, &y, rows, path) == 0)
            #expect(y[0..<rows].allSatisfy { $0.isNaN })
            bad[5] = .infinity
            #expect(glm_matmul_rows_q8act(type, weights, rowBytes, rows, columns, bad, columns, 1, &y, rows, path) == 0)
            #expect(y[0..<rows].allSatisfy { $0.isNaN })
        }
    }

    /// The prefill panel kernel (quantdot.c: 8 weight rows repacked per K range, lanes = rows) against a scalar
    /// evaluation of its documented order: per output and block the exact integer sum S = Σ q_w·q_x (q_w the
    /// weight's integer values, offsets included; q_x from glm_quantize_row_q8_0), then acc = fma(Float(S),
    /// d_w·d_x, acc) over the blocks in order from 0. Every output must match bit for bit, for every shape: rows
    /// 1..17 (panels of 8 and the partial one), glm_q8act_panel_min_tokens..70 tokens (tiles of 4, remainders, two 64-token
    /// blocks), 70 blocks per row (two K ranges of the panel) and 3, through both entry points (the f32 one
    /// quantises in token groups). Random blocks, with scales drawn from ±0, subnormals, ordinary values and ±65504.
    @Test(arguments: ["Q4_0", "Q5_0", "Q8_0", "IQ4_NL"])
    func integerPanelMatchesScalarOrder(_ name: String) throws {
        let (_, type, _) = try #require(GGUFDequantTests.types.first { $0.0 == name })
        let panelFrom = Int(glm_q8act_panel_min_tokens(type))
        #expect(panelFrom >= 5, "speculative verification's ≤ 4-token rows must stay on the row kernel")
        let blockBytes = [Int32(GLM_GGML_Q4_0): 18, Int32(GLM_GGML_Q5_0): 22, Int32(GLM_GGML_Q8_0): 34,
                          Int32(GLM_GGML_IQ4_NL): 18][type]!
        var state: UInt64 = 99
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        let scales: [UInt16] = [0x0000, 0x8000, 0x0001, 0x83FF, 0x3C00, 0xB800, 0x2E66, 0x7BFF, 0xFBFF, 0x1400]
        for blocksPerRow in [70, 3] {
            let (rows, maxTokens, columns) = (17, 70, 32 * blocksPerRow)
            let rowBytes = blocksPerRow * blockBytes
            var weights = (0..<(rows * rowBytes)).map { _ in UInt8(truncatingIfNeeded: next()) }
            // The integer values: each block dequantised with its scale set to 1 (exact small integers).
            var unit = weights
            for b in 0..<(rows * blocksPerRow) {
                let scale = next() % 4 == 0 ? scales[Int(next() % UInt64(scales.count))] : UInt16(0x2000 | next() % 0x1000)
                weights[b * blockBytes] = UInt8(scale & 0xFF)
                weights[b * blockBytes + 1] = UInt8(scale >> 8)
                unit[b * blockBytes] = 0x00
                unit[b * blockBytes + 1] = 0x3C
            }
            var qw = [Float](repeating: 0, count: rows * columns)
            #expect(glm_dequantize_rows(type, unit, rowBytes, rows, columns, &qw) == 0)
            var dw = [Float](repeating: 0, count: rows * blocksPerRow)
            for b in 0..<(rows * blocksPerRow) {
                dw[b] = HalfPrecision.f16ToFloat(UInt16(weights[b * blockBytes]) | UInt16(weights[b * blockBytes + 1]) << 8)
            }
            let x: [Float] = (0..<(maxTokens * columns)).map { _ in
                Float(Int64(next() % 2_000_001) - 1_000_000) / Float(1 << Int(next() % 12))
            }
            var xq = [UInt8](repeating: 0, count: maxTokens * blocksPerRow * 34)
            x.withUnsafeBufferPointer { p in
                xq.withUnsafeMutableBytes { q in
                    for t in 0..<maxTokens {
                        glm_quantize_row_q8_0(p.baseAddress! + t * columns, q.baseAddress! + t * blocksPerRow * 34, columns)
                    }
                }
            }
            var expected = [Float](repeating: 0, count: maxTokens * rows)
            var worst = 0.0
            for t in 0..<maxTokens {
                for r in 0..<rows {
                    var acc: Float = 0
                    var exact = 0.0, magnitude = 0.0
                    for b in 0..<blocksPerRow {
                        let xb = (t * blocksPerRow + b) * 34
                        let dx = HalfPrecision.f16ToFloat(UInt16(xq[xb]) | UInt16(xq[xb + 1]) << 8)
                        var sum = 0, absSum = 0
                        for j in 0..<32 {
                            let term = Int(qw[r * columns + 32 * b + j]) * Int(Int8(bitPattern: xq[xb + 2 + j]))
                            sum += term
                            absSum += abs(term)
                        }
                        acc = acc.addingProduct(Float(sum), dw[r * blocksPerRow + b] * dx)
                        exact += Double(dw[r * blocksPerRow + b]) * Double(dx) * Double(sum)
                        magnitude += abs(Double(dw[r * blocksPerRow + b]) * Double(dx)) * Double(absSum)
                    }
                    expected[t * rows + r] = acc
                    // The order's error bound: one rounding of d_w·d_x and one of the FMA per block.
                    let error = abs(Double(acc) - exact)
                    #expect(error <= Double(2 * blocksPerRow + 1) * 0x1p-24 * magnitude)
                    if magnitude > 0 { worst = max(worst, error / magnitude) }
                }
            }
            print("\(name) panel, \(blocksPerRow) blocks: vs the exact product, worst |Δ| / Σ|terms| = \(worst)")
            for tokens in [panelFrom, panelFrom + 1, panelFrom + 3, 64, 67, 70] {
                for shapeRows in [1, 7, 8, 9, 16, 17] {
                  for path in GGUFDequantTests.integerPaths {
                    let (y, y2) = GGUFDequantTests.integerProducts(type, weights, rowBytes: rowBytes, rows: shapeRows,
                                                                   columns: columns, x, tokens: tokens, path: path)
                    var mismatches = 0
                    for t in 0..<tokens {
                        for r in 0..<shapeRows {
                            let want = expected[t * rows + r]
                            let same = y[t * shapeRows + r].bitPattern == want.bitPattern
                                && y2[t * shapeRows + r].bitPattern == want.bitPattern
                            if !same { mismatches += 1 }
                            if !same && mismatches <= 3 {
                                Issue.record("\(name) \(blocksPerRow) blocks, \(shapeRows) rows × \(tokens) tokens, build \(path): token \(t) row \(r): \(y[t * shapeRows + r]) / \(y2[t * shapeRows + r]) vs \(want)")
                            }
                        }
                    }
                    #expect(mismatches == 0)
                  }
                }
            }
        }
    }

    /// The K-quants' panel kernel against a scalar evaluation of its documented order: per output and block the
    /// exact integers S = Σ scale·u·x (from the block dequantised with d = 1, dmin = 0: scale·u for the types with
    /// mins, scale·(u − offset) = S − M for Q3_K and Q6_K) and M = Σ min·Σx (d = 0, dmin = 1: −min per element),
    /// then value = (d·d_x)·Float(S) − (dmin·d_x)·Float(M) fused (types with mins) or (d·d_x)·Float(S − M), and
    /// acc = acc + value over the blocks in order from 0. Bit for bit, for rows 1..17, tokens from glm_q8act_panel_min_tokens to 70 and 10 blocks
    /// per row (two K ranges of the panel) and 1; random blocks with scales from ±0, subnormals, ordinary values,
    /// ±65504; activations quantised by glm_quantize_row_q8_k.
    @Test(arguments: ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
    func integerKPanelMatchesScalarOrder(_ name: String) throws {
        let (_, type, _) = try #require(GGUFDequantTests.types.first { $0.0 == name })
        let panelFrom = Int(glm_q8act_panel_min_tokens(type))
        #expect(panelFrom >= 5, "speculative verification's ≤ 4-token rows must stay on the row kernel")
        // block bytes, byte offset of d, of dmin (nil: the type has an offset instead of mins)
        let (blockBytes, dOffset, minOffset): (Int, Int, Int?) = [
            Int32(GLM_GGML_Q2_K): (84, 80, 82), Int32(GLM_GGML_Q3_K): (110, 108, nil), Int32(GLM_GGML_Q4_K): (144, 0, 2),
            Int32(GLM_GGML_Q5_K): (176, 0, 2), Int32(GLM_GGML_Q6_K): (210, 208, nil)][type]!
        var state: UInt64 = 4242
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        let extremes: [UInt16] = [0x0000, 0x8000, 0x0001, 0x83FF, 0x3C00, 0xB800, 0x2E66, 0x7BFF, 0xFBFF, 0x1400]
        func scale() -> UInt16 { next() % 4 == 0 ? extremes[Int(next() % UInt64(extremes.count))] : UInt16(0x1800 | next() % 0x1000) }
        func put(_ bytes: inout [UInt8], _ offset: Int, _ h: UInt16) {
            bytes[offset] = UInt8(h & 0xFF)
            bytes[offset + 1] = UInt8(h >> 8)
        }
        func f16(_ bytes: [UInt8], _ offset: Int) -> Float {
            HalfPrecision.f16ToFloat(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
        }
        for blocksPerRow in [10, 1] {
            let (rows, maxTokens, columns) = (17, 70, 256 * blocksPerRow)
            let rowBytes = blocksPerRow * blockBytes
            var weights = (0..<(rows * rowBytes)).map { _ in UInt8(truncatingIfNeeded: next()) }
            var scalesOnly = weights, minsOnly = weights
            for b in 0..<(rows * blocksPerRow) {
                put(&weights, b * blockBytes + dOffset, scale())
                put(&scalesOnly, b * blockBytes + dOffset, 0x3C00)
                put(&minsOnly, b * blockBytes + dOffset, 0)
                if let m = minOffset {
                    put(&weights, b * blockBytes + m, scale())
                    put(&scalesOnly, b * blockBytes + m, 0)
                    put(&minsOnly, b * blockBytes + m, 0x3C00)
                }
            }
            var sw = [Float](repeating: 0, count: rows * columns), mw = sw
            #expect(glm_dequantize_rows(type, scalesOnly, rowBytes, rows, columns, &sw) == 0)
            #expect(glm_dequantize_rows(type, minsOnly, rowBytes, rows, columns, &mw) == 0)
            let x: [Float] = (0..<(maxTokens * columns)).map { _ in
                Float(Int64(next() % 2_000_001) - 1_000_000) / Float(1 << Int(next() % 12))
            }
            var xq = [UInt8](repeating: 0, count: maxTokens * blocksPerRow * 292)
            x.withUnsafeBufferPointer { p in
                xq.withUnsafeMutableBytes { q in
                    for t in 0..<maxTokens {
                        _ = glm_quantize_row_q8_k(p.baseAddress! + t * columns, q.baseAddress! + t * blocksPerRow * 292, columns)
                    }
                }
            }
            var expected = [Float](repeating: 0, count: maxTokens * rows)
            var worst = 0.0
            for t in 0..<maxTokens {
                for r in 0..<rows {
                    var acc: Float = 0
                    var exact = 0.0, magnitude = 0.0
                    for b in 0..<blocksPerRow {
                        let xb = (t * blocksPerRow + b) * 292
                        let dx = xq.withUnsafeBytes { $0.load(fromByteOffset: xb, as: Float.self) }
                        var s = 0, m = 0, sAbs = 0, mAbs = 0
                        for j in 0..<256 {
                            let qx = Int(Int8(bitPattern: xq[xb + 4 + j]))
                            s += Int(sw[r * columns + 256 * b + j]) * qx
                            m -= Int(mw[r * columns + 256 * b + j]) * qx
                            sAbs += abs(Int(sw[r * columns + 256 * b + j]) * qx)
                            mAbs += abs(Int(mw[r * columns + 256 * b + j]) * qx)
                        }
                        let wb = (r * blocksPerRow + b) * blockBytes
                        let d = f16(weights, wb + dOffset)
                        let dmin = minOffset.map { f16(weights, wb + $0) } ?? 0
                        if minOffset != nil {
                            acc = acc + (d * dx * Float(s)).addingProduct(-(dmin * dx), Float(m))
                        } else {
                            acc = acc + d * dx * Float(s)
                        }
                        exact += Double(d) * Double(dx) * Double(s) - Double(dmin) * Double(dx) * Double(m)
                        magnitude += abs(Double(d) * Double(dx)) * Double(sAbs) + abs(Double(dmin) * Double(dx)) * Double(mAbs)
                    }
                    expected[t * rows + r] = acc
                    // The order's error bound: per block d·d_x, dmin·d_x, float(S), the product, the fused
                    // subtraction and the add each round once.
                    let error = abs(Double(acc) - exact)
                    #expect(error <= Double(6 * blocksPerRow + 1) * 0x1p-24 * magnitude)
                    if magnitude > 0 { worst = max(worst, error / magnitude) }
                }
            }
            print("\(name) panel, \(blocksPerRow) blocks: vs the exact product, worst |Δ| / Σ|terms| = \(worst)")
            for tokens in [panelFrom, panelFrom + 1, panelFrom + 3, 64, 70] {
                for shapeRows in [1, 7, 8, 9, 17] {
                  for path in GGUFDequantTests.integerPaths {
                    let (y, y2) = GGUFDequantTests.integerProducts(type, weights, rowBytes: rowBytes, rows: shapeRows,
                                                                   columns: columns, x, tokens: tokens, path: path)
                    var mismatches = 0
                    for t in 0..<tokens {
                        for r in 0..<shapeRows {
                            let want = expected[t * rows + r]
                            let same = y[t * shapeRows + r].bitPattern == want.bitPattern
                                && y2[t * shapeRows + r].bitPattern == want.bitPattern
                            if !same { mismatches += 1 }
                            if !same && mismatches <= 3 {
                                Issue.record("\(name) \(blocksPerRow) blocks, \(shapeRows) rows × \(tokens) tokens, build \(path): token \(t) row \(r): \(y[t * shapeRows + r]) / \(y2[t * shapeRows + r]) vs \(want)")
                            }
                        }
                    }
                    #expect(mismatches == 0)
                  }
                }
            }
        }
    }

    /// ProjectionBatch quantises each input once and shares it between projections with the same input and
    /// activation type (here Q4_0 and Q8_0 share Q8_0 activations, Q4_K and Q6_K share Q8_K ones, and one input
    /// feeds both kinds): every output must be bit-identical to the kernel run on its own f32 input, for decode
    /// (1 token, row tiles) and prefill (9 tokens, in parallel quantisation tasks of 16 tokens and GEMM tiles).
    @Test(arguments: [1, 9, 37], KernelPath.available())
    func projectionBatchSharesQuantisedInputs(tokens: Int, path: KernelPath) throws {
        let columns = 512, rows = 70
        var state: UInt64 = 777
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        // (type, block elements, block bytes, f16 scale offsets): random blocks with finite scales
        let specs: [(Int32, Int, Int, [Int])] = [(Int32(GLM_GGML_Q4_0), 32, 18, [0]), (Int32(GLM_GGML_Q8_0), 32, 34, [0]),
                                                 (Int32(GLM_GGML_Q4_K), 256, 144, [0, 2]), (Int32(GLM_GGML_Q6_K), 256, 210, [208])]
        var storages: [UnsafeMutableRawPointer] = []
        defer { for p in storages { p.deallocate() } }
        var weights: [WeightMatrix] = []
        for (type, block, blockBytes, scales) in specs {
            let rowBytes = columns / block * blockBytes
            let raw = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
            storages.append(raw)
            let bytes = raw.assumingMemoryBound(to: UInt8.self)
            for i in 0..<(rows * rowBytes) { bytes[i] = UInt8(truncatingIfNeeded: next()) }
            for b in 0..<(rows * rowBytes / blockBytes) {
                for o in scales { bytes[b * blockBytes + o] = UInt8(truncatingIfNeeded: next()); bytes[b * blockBytes + o + 1] = 0x20 }
            }
            weights.append(WeightMatrix(rows: rows, columns: columns,
                                        storage: .ggml(type: type, base: UnsafeRawPointer(raw), rowBytes: rowBytes)))
        }
        let inputA = (0..<(tokens * columns)).map { _ in Float(Int(next() % 2001) - 1000) / 500 }
        let inputB = (0..<(tokens * columns)).map { _ in Float(Int(next() % 2001) - 1000) / 700 }
        // A feeds Q4_0, Q8_0, Q4_K, Q6_K; B feeds Q4_K again (a second Q8_K quantisation of another input).
        let uses: [(Int, [Float])] = [(0, inputA), (1, inputA), (2, inputA), (3, inputA), (2, inputB)]
        var outputs = [[Float]](repeating: [Float](repeating: .nan, count: tokens * rows), count: uses.count)
        let batch = try ProjectionBatch(workers: Workers(threads: 2), path: path)
        try inputA.withUnsafeBufferPointer { a in
            try inputB.withUnsafeBufferPointer { b in
                var pointers: [UnsafeMutablePointer<Float>] = []
                defer { for p in pointers { p.deallocate() } }
                for (i, use) in uses.enumerated() {
                    let out = UnsafeMutablePointer<Float>.allocate(capacity: tokens * rows)
                    pointers.append(out)
                    batch.append(weights[use.0], tokens: tokens, input: i == 4 ? b.baseAddress! : a.baseAddress!, output: out)
                }
                batch.run()
                for i in uses.indices { outputs[i] = Array(UnsafeBufferPointer(start: pointers[i], count: tokens * rows)) }
                _ = try #require(pointers.count == uses.count)
            }
        }
        for (i, use) in uses.enumerated() {
            guard case .ggml(let type, let base, let rowBytes) = weights[use.0].storage else { continue }
            var expected = [Float](repeating: .nan, count: tokens * rows)
            // The AVX2 build (forced) on one f32 input: every path (VNNI, AVX-VNNI where the CPU has them) must give
            // its bits too.
            #expect(glm_matmul_rows_q8act(type, base, rowBytes, rows, columns, use.1, columns, tokens, &expected, rows, 2) == 0)
            #expect(outputs[i].map(\.bitPattern) == expected.map(\.bitPattern), "projection \(i), \(tokens) tokens, \(path)")
        }
    }

    @Test func refusesUnsupportedTypesAndPartialBlocks() {
        var out = [Float](repeating: 0, count: 256)
        let zeros = [UInt8](repeating: 0, count: 1024)
        for type: Int32 in [16, 17, 18, 19, 21, 22, 29, 9, 15, 99] {   // IQ2/IQ3/IQ1 grids, Q8_1, Q8_K, unknown
            #expect(glm_ggml_dequantizable(type) == 0)
            #expect(glm_dequantize(type, zeros, &out, 256) == -1)
        }
        #expect(glm_dequantize(Int32(GLM_GGML_Q4_0), zeros, &out, 31) == -1)
        #expect(glm_dequantize(Int32(GLM_GGML_Q4_K), zeros, &out, 32) == -1)
    }
}
