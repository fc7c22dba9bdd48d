import Testing
import Glibc
@testable import GLMNumerics
import GLMSupport

/// The KV cache's conversions against their definitions (IEEE half and bf16 round to nearest even; ggml's
/// quantize_row_q8_0_ref), and the tile conversion attention uses.
@Suite struct KVKernelTests {
    typealias Numbers = KernelTests.Numbers

    /// bf16 round to nearest even, NaN kept NaN (PyTorch's conversion).
    static func bf16(_ x: Float) -> Float {
        if x.isNaN { return x }
        let bits = x.bitPattern
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return Float(bitPattern: rounded & 0xFFFF_0000)
    }

    /// ggml's quantize_row_q8_0_ref then dequantization, one block of `values` (<= 32, zero-padded).
    static func q8_0(_ values: ArraySlice<Float>) -> [Float] {
        let amax = values.map { abs($0) }.max() ?? 0
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        let stored = Float(Float16(d))
        return values.map { Float(Int8(($0 * id).rounded(.toNearestOrAwayFromZero))) * stored }
    }

    /// What the cache holds for one head, per the definitions above.
    static func expected(_ type: KVType, _ head: [Float]) -> [Float] {
        switch type {
        case .f32: return head
        case .f16: return head.map { Float(Float16($0)) }
        case .bf16: return head.map(bf16)
        case .q8_0:
            return stride(from: 0, to: head.count, by: 32).flatMap { q8_0(head[$0..<min($0 + 32, head.count)]) }
        }
    }

    static func stored(_ type: KVType, _ values: [Float], heads: Int, headDim: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xAB, count: heads * type.headBytes(headDim: headDim))
        values.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { dst in
                KVKernels.store(type, src.baseAddress!, into: dst.baseAddress!, heads: heads, headDim: headDim)
            }
        }
        return bytes
    }

    static func loaded(_ type: KVType, _ bytes: [UInt8], heads: Int, headDim: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: heads * headDim)
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    KVKernels.load(type, src.baseAddress! + h * type.headBytes(headDim: headDim),
                                   into: dst.baseAddress! + h * headDim, headDim: headDim)
                }
            }
        }
        return out
    }

    @Test(arguments: KVType.allCases, [8, 16, 20, 32, 128])
    func storeThenLoadIsTheDefinition(type: KVType, headDim: Int) {
        var numbers = Numbers(state: UInt64(headDim))
        let heads = 3
        // Scales from tiny to large, an all-zero head (q8_0's d = 0) and exact ties for the rounding.
        var values = numbers.array(heads * headDim).enumerated().map { i, x in x * [1e-3, 1, 300][i / headDim] }
        for j in 0..<headDim { values[j] = 0 }
        values[headDim] = 127; values[headDim + 1] = 0.5; values[headDim + 2] = -1.5   // q8_0: x/d hits .5 ties
        let bytes = KVKernelTests.stored(type, values, heads: heads, headDim: headDim)
        let back = KVKernelTests.loaded(type, bytes, heads: heads, headDim: headDim)
        var want: [Float] = []
        for h in 0..<heads { want += KVKernelTests.expected(type, Array(values[(h * headDim)..<((h + 1) * headDim)])) }
        #expect(back.map(\.bitPattern) == want.map(\.bitPattern), "\(type) D=\(headDim)")
        if type == .q8_0 && headDim % 32 == 0 {
            // ggml's layout: the block's f16 scale, then 32 int8.
            let o = type.headBytes(headDim: headDim)
            let d = Float16(bitPattern: UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8)
            #expect(Float(d) == Float(Float16(KVKernelTests.q8_0(values[(headDim)..<(headDim + 32)]).map(abs).max()! / 127)))
        }
    }

    @Test func bf16KeepsNaNAndRoundsToEven() {
        let values: [Float] = [.nan, 1 + Float(1) / 256, 1 + Float(3) / 256, -.infinity, 3.0e38, 1e-40, 0, 0]
        let back = KVKernelTests.loaded(.bf16, KVKernelTests.stored(.bf16, values, heads: 1, headDim: 8),
                                        heads: 1, headDim: 8)
        #expect(back[0].isNaN)
        #expect(Array(back[1...]).map(\.bitPattern) == values[1...].map { KVKernelTests.bf16($0).bitPattern })
    }

    /// A tile of one head over consecutive positions converts to the same f32 values as per-head loads, into rows
    /// of any stride.
    @Test(arguments: KVType.allCases, [16, 40, 128])
    func tileConversionEqualsPerHeadLoads(type: KVType, headDim D: Int) {
        var numbers = Numbers(state: 99)
        let heads = 3, positions = 37, head = 1, ldd = D + 5
        let rowBytes = heads * type.headBytes(headDim: D)
        var cache: [UInt8] = []
        var stored: [Float] = []
        for _ in 0..<positions {
            let bytes = KVKernelTests.stored(type, numbers.array(heads * D), heads: heads, headDim: D)
            cache += bytes
            stored += KVKernelTests.loaded(type, bytes, heads: heads, headDim: D)
        }
        var tile = [Float](repeating: .nan, count: positions * ldd)
        cache.withUnsafeBytes { c in
            tile.withUnsafeMutableBufferPointer { t in
                KVKernels.loadRows(type, c.baseAddress! + head * type.headBytes(headDim: D), stride: rowBytes,
                                   count: positions, into: t.baseAddress!, ldd: ldd, headDim: D)
            }
        }
        for s in 0..<positions {
            let expected = stored[(s * heads + head) * D..<((s * heads + head + 1) * D)]
            #expect(tile[(s * ldd)..<(s * ldd + D)].map(\.bitPattern) == expected.map(\.bitPattern), "\(type) \(s)")
        }
    }
}
