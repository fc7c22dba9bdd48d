import Testing
import Foundation
import CGLMKernels
import GLMNumerics

/// glm_dequantize against gguf-py's reference dequantisers (llama.cpp's quants.py), bit for bit: the fixtures of
/// Tests/Fixtures/formats/gguf_quants are made by tools/make_gguf_quant_fixtures.py from random blocks and edge
/// blocks (zero, subnormal, largest, infinite and NaN scales; all-zero and all-ones blocks).
@Suite struct GGUFDequantTests {
    static let directory: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures/formats/gguf_quants/"
    }()

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

    /// The integer kernel against its definition evaluated in double: Σ_blocks d_x · Σ_j w[j] · q_x[j], with w the
    /// exactly dequantised weights (glm_dequantize, checked against gguf-py above), the activations quantised by
    /// glm_quantize_row_q8_0 (checked against gguf-py above) and the fixtures' random weight blocks. The kernel sums
    /// s·Σq·x − m·Σx per group in f32: 1e-6 of Σ|terms| (measured ≤ 4e-8).
    @Test(arguments: types.filter { $0.2 > 1 }.map(\.0))
    func integerDotMatchesDefinition(_ name: String) throws {
        let (_, type, block) = try #require(GGUFDequantTests.types.first { $0.0 == name })
        let blockBytes = [32: [2: 18, 3: 20, 6: 22, 7: 24, 8: 34, 20: 18], 256: [10: 84, 11: 110, 12: 144, 13: 176, 14: 210, 23: 136]][block]![Int(type)]!
        let weights = try GGUFDequantTests.bytes(name + ".blocks")
        let (rows, blocksPerRow, tokens) = block == 32 ? (4, 12, 3) : (3, 4, 3)   // the fixtures' random blocks
        let columns = block * blocksPerRow
        let rowBytes = blocksPerRow * blockBytes
        #expect(weights.count >= rows * rowBytes)
        var state: UInt64 = 12345
        let x: [Float] = (0..<(tokens * columns)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
        }
        var y = [Float](repeating: .nan, count: tokens * rows)
        #expect(glm_matmul_rows_q8act(type, weights, rowBytes, rows, columns, x, columns, tokens, &y, rows) == 0)
        var w = [Float](repeating: 0, count: rows * columns)
        #expect(glm_dequantize_rows(type, weights, rowBytes, rows, columns, &w) == 0)
        func half(_ lo: UInt8, _ hi: UInt8) -> Double { Double(HalfPrecision.f16ToFloat(UInt16(lo) | UInt16(hi) << 8)) }
        var worstRatio = 0.0
        for t in 0..<tokens {
            var xq = [UInt8](repeating: 0, count: columns / 32 * 34)
            x.withUnsafeBufferPointer { p in glm_quantize_row_q8_0(p.baseAddress! + t * columns, &xq, columns) }
            for r in 0..<rows {
                var sum = 0.0, magnitude = 0.0
                for c in 0..<columns {
                    let b = c / 32
                    let term = Double(w[r * columns + c]) * Double(Int8(bitPattern: xq[b * 34 + 2 + c % 32]))
                        * half(xq[b * 34], xq[b * 34 + 1])
                    sum += term
                    magnitude += abs(term)
                }
                let got = Double(y[t * rows + r])
                worstRatio = max(worstRatio, abs(got - sum) / magnitude)
                #expect(abs(got - sum) <= 1e-6 * magnitude, "\(name) token \(t) row \(r): \(got) vs \(sum)")
            }
        }
        print("\(name): integer kernel vs definition, worst |Δ| / Σ|terms| = \(worstRatio)")
        // Non-finite inputs reach the output instead of vanishing in the quantisation.
        var bad = x
        bad[5] = .nan
        #expect(glm_matmul_rows_q8act(type, weights, rowBytes, rows, columns, bad, columns, 1, &y, rows) == 0)
        #expect(y[0..<rows].allSatisfy { $0.isNaN })
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
