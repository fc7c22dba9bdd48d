import Testing
import Foundation
import CGLMKernels

/// glm_quantize_blocks against ggml's own quantisers (ggml_quantize_chunk without an importance matrix, what
/// llama-quantize runs), byte for byte: Tests/Fixtures/formats/gguf_quantize is made by
/// tools/make_gguf_quantize_fixtures.py from random rows at several magnitudes and edge rows (zero, constant, sparse,
/// one-signed, outliers, f16-subnormal and f16-overflowing scales, rounding ties, NaN, ±Inf and ±1e30 inside rows).
@Suite struct GGUFQuantizeTests {
    static let directory: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures/formats/gguf_quantize/"
    }()
    static let columns = 512

    /// name, ggml type, block size, bytes per block, the largest RMS round-trip error allowed on ordinary rows
    /// (relative to the row's RMS; roughly twice what these bit widths give on Gaussian data).
    static let types: [(String, Int32, Int, Int, Double)] = [
        ("Q4_0", Int32(GLM_GGML_Q4_0), 32, 18, 0.15), ("Q4_1", Int32(GLM_GGML_Q4_1), 32, 20, 0.12),
        ("Q5_0", Int32(GLM_GGML_Q5_0), 32, 22, 0.08), ("Q5_1", Int32(GLM_GGML_Q5_1), 32, 24, 0.06),
        ("Q8_0", Int32(GLM_GGML_Q8_0), 32, 34, 0.01), ("Q2_K", Int32(GLM_GGML_Q2_K), 256, 84, 0.6),
        ("Q3_K", Int32(GLM_GGML_Q3_K), 256, 110, 0.3), ("Q4_K", Int32(GLM_GGML_Q4_K), 256, 144, 0.15),
        ("Q5_K", Int32(GLM_GGML_Q5_K), 256, 176, 0.08), ("Q6_K", Int32(GLM_GGML_Q6_K), 256, 210, 0.04),
        ("F16", Int32(GLM_GGML_F16), 1, 2, 0.001), ("BF16", Int32(GLM_GGML_BF16), 1, 2, 0.01),
    ]

    static func input() throws -> [Float] {
        let raw = try Data(contentsOf: URL(fileURLWithPath: directory + "input.f32"))
        return raw.withUnsafeBytes { p in (0..<(raw.count / 4)).map { p.load(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    static func quantize(_ type: Int32, _ x: ArraySlice<Float>, bytes: Int) -> ([UInt8], Int32) {
        var out = [UInt8](repeating: 0xA5, count: bytes)
        let rc = x.withUnsafeBufferPointer { glm_quantize_blocks(type, $0.baseAddress!, &out, $0.count) }
        return (out, rc)
    }

    @Test(arguments: types.map(\.0))
    func matchesGGMLByteForByte(_ name: String) throws {
        let (_, type, block, blockBytes, _) = try #require(GGUFQuantizeTests.types.first { $0.0 == name })
        let x = try GGUFQuantizeTests.input()
        let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: GGUFQuantizeTests.directory + name + ".bin")))
        let rowBytes = GGUFQuantizeTests.columns / block * blockBytes
        let rows = x.count / GGUFQuantizeTests.columns
        #expect(rows >= 20 && expected.count == rows * rowBytes)
        #expect(glm_ggml_quantizable(type) == 1)
        let (out, rc) = GGUFQuantizeTests.quantize(type, x[...], bytes: expected.count)
        #expect(rc == 0)
        for r in 0..<rows {
            let range = (r * rowBytes)..<((r + 1) * rowBytes)
            if out[range] != expected[range] {
                let first = range.first { out[$0] != expected[$0] }!
                Issue.record("\(name) row \(r): first differing byte \(first - range.lowerBound) (block \((first - range.lowerBound) / blockBytes)): \(out[first]) vs ggml \(expected[first])")
            }
        }
        // Rows are independent: quantising one row at a time gives the same bytes (what threads rely on).
        for r in [0, 6, rows - 1] {
            let cols = GGUFQuantizeTests.columns
            let (one, rcOne) = GGUFQuantizeTests.quantize(type, x[(r * cols)..<((r + 1) * cols)], bytes: rowBytes)
            #expect(rcOne == 0)
            #expect(one[...] == expected[(r * rowBytes)..<((r + 1) * rowBytes)])
        }
    }

    /// The quantiser writes the layout the dequantiser reads: quantise, dequantise with glm_dequantize and compare
    /// with the input on the ordinary rows (a swapped nibble, scale or bit plane gives errors of the order of 100%).
    @Test(arguments: types.map(\.0))
    func roundTripsThroughDequantisation(_ name: String) throws {
        let (_, type, block, blockBytes, bound) = try #require(GGUFQuantizeTests.types.first { $0.0 == name })
        let x = try GGUFQuantizeTests.input()
        let cols = GGUFQuantizeTests.columns
        for r in 0..<5 {   // the five Gaussian rows, 1e-3 ... 30
            let row = x[(r * cols)..<((r + 1) * cols)]
            let (q, rc) = GGUFQuantizeTests.quantize(type, row, bytes: cols / block * blockBytes)
            #expect(rc == 0)
            var back = [Float](repeating: .nan, count: cols)
            #expect(glm_dequantize(type, q, &back, cols) == 0)
            var err = 0.0, norm = 0.0
            for (a, b) in zip(row, back) {
                err += Double(a - b) * Double(a - b)
                norm += Double(a) * Double(a)
            }
            let relative = (err / norm).squareRoot()
            #expect(relative < bound, "\(name) row \(r): relative RMS error \(relative)")
            #expect(relative > 0 || name == "F16" || name == "BF16")
        }
    }

    @Test func refusesWhatItCannotWrite() {
        let x = [Float](repeating: 1, count: 64)
        var out = [UInt8](repeating: 0, count: 256)
        #expect(glm_quantize_blocks(Int32(GLM_GGML_Q4_K), x, &out, 64) == -1)      // not a whole super-block
        #expect(glm_quantize_blocks(Int32(GLM_GGML_Q8_0), x, &out, 48) == -1)      // not a whole block
        #expect(glm_quantize_blocks(Int32(GLM_GGML_IQ4_NL), x, &out, 64) == -1)    // not a type it writes
        #expect(out.allSatisfy { $0 == 0 })
        #expect(glm_ggml_quantizable(Int32(GLM_GGML_IQ4_XS)) == 0)
        #expect(glm_ggml_quantizable(99) == 0)
    }
}
