import Testing
import Foundation
import CGLMKernels

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
