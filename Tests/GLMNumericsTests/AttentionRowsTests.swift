import Testing
import Glibc
@testable import GLMNumerics
import GLMSupport

/// `glm_attend_rows` (attention.c), the decode / verification attention: against the definition in double precision
/// for every cache type, head sizes with and without the constant-size kernels, masks, position ranges that start and
/// end inside a key block, and partial output; and its two promises: a row's bits do not depend on the rows beside it,
/// nor on the kernel path.
@Suite struct AttentionRowsTests {
    /// A cache of `positions` rows, each `kvHeads` heads of `headDim` values stored as `type`, plus the values the
    /// cache holds (per the conversion's definition, KVKernelTests.expected).
    struct Cache {
        let type: KVType
        let positions, kvHeads, headDim: Int
        let bytes: [UInt8]
        let held: [Float]    // [position][kvHead][headDim]

        init(type: KVType, positions: Int, kvHeads: Int, headDim: Int, numbers: inout KernelTests.Numbers,
             magnitude: Float = 1) {
            self.type = type
            self.positions = positions
            self.kvHeads = kvHeads
            self.headDim = headDim
            let values = numbers.array(positions * kvHeads * headDim).map { $0 * magnitude }
            var bytes: [UInt8] = []
            var held: [Float] = []
            for s in 0..<positions {
                let row = Array(values[(s * kvHeads * headDim)..<((s + 1) * kvHeads * headDim)])
                bytes += KVKernelTests.stored(type, row, heads: kvHeads, headDim: headDim)
                for h in 0..<kvHeads {
                    held += KVKernelTests.expected(type, Array(row[(h * headDim)..<((h + 1) * headDim)]))
                }
            }
            self.bytes = bytes
            self.held = held
        }

        var rowBytes: Int { kvHeads * type.headBytes(headDim: headDim) }
        func value(_ s: Int, _ head: Int, _ c: Int) -> Double { Double(held[(s * kvHeads + head) * headDim + c]) }
    }

    /// One call: `tokens` query tokens × `group` heads of KV head `kv`, token t seeing positions below
    /// `firstLimit + t`, over positions first ..< end. Returns [tokens][group][headDim (+ 2 when partial)].
    static func attend(keys: Cache, values: Cache, kv: Int, query: [Float], tokens: Int, group: Int,
                       firstLimit: Int, first: Int, end: Int, partial: Bool, avx512: Bool) -> [Float] {
        let d = keys.headDim, width = partial ? d + 2 : d
        var out = [Float](repeating: .nan, count: tokens * group * width)
        var scratch = [Float](repeating: .nan, count: KVKernels.attendRowsScratchCount(headDim: d, rows: tokens * group))
        keys.bytes.withUnsafeBytes { k in
            values.bytes.withUnsafeBytes { v in
                query.withUnsafeBufferPointer { q in
                    out.withUnsafeMutableBufferPointer { o in
                        scratch.withUnsafeMutableBufferPointer { s in
                            KVKernels.attendRows(
                                keys: KVKernels.Head(type: keys.type,
                                                     base: k.baseAddress! + kv * keys.type.headBytes(headDim: d),
                                                     stride: keys.rowBytes),
                                values: KVKernels.Head(type: values.type,
                                                       base: v.baseAddress! + kv * values.type.headBytes(headDim: d),
                                                       stride: values.rowBytes),
                                headDim: d, rows: tokens * group, group: group,
                                query: KVKernels.Rows(q.baseAddress!, tokenStride: group * d, headStride: d),
                                firstLimit: firstLimit, positions: first..<end, scale: 1 / Float(d).squareRoot(),
                                output: KVKernels.Rows(o.baseAddress!, tokenStride: group * width, headStride: width),
                                partial: partial, scratch: s.baseAddress!, path: avx512 ? .avx512 : .avx2)
                        }
                    }
                }
            }
        }
        return out
    }

    static let paths = KernelPath.available()

    /// softmax(q · kᵀ / sqrt(d)) · v over the visible positions in ranges, in double precision, per row, compared
    /// (normalised, or as partials merged by the definition) with the kernel's result.
    @Test(arguments: KVType.allCases)
    func matchesTheDefinition(type: KVType) throws {
        var numbers = KernelTests.Numbers(state: 23)
        for (headDim, group, tokens, positions, first, end, firstLimit) in [
            (128, 12, 1, 300, 0, 300, 300),        // GLM-4.7 decode
            (128, 12, 4, 300, 0, 300, 297),        // verification of 3 drafts: the later rows see more
            (128, 12, 4, 300, 37, 201, 150),       // a range starting and ending inside key blocks, rows masked
            (64, 2, 3, 77, 0, 77, 75),             // the 64-wide constant kernel, a partial lane vector
            (40, 5, 2, 50, 5, 50, 49),             // a head size of neither constant: the general loops
            (16, 1, 1, 1, 0, 1, 1),                // one key
            (32, 4, 2, 90, 70, 90, 70),            // token 0 sees nothing of its range (first_limit = first)
        ] {
            let kvHeads = 2, kv = 1
            let keys = Cache(type: type, positions: positions, kvHeads: kvHeads, headDim: headDim, numbers: &numbers,
                             magnitude: 3)
            let values = Cache(type: type, positions: positions, kvHeads: kvHeads, headDim: headDim, numbers: &numbers)
            let query = numbers.array(tokens * group * headDim)
            for partial in [false, true] {
                for path in Self.paths {
                    let out = Self.attend(keys: keys, values: values, kv: kv, query: query, tokens: tokens,
                                          group: group, firstLimit: firstLimit, first: first, end: end,
                                          partial: partial, avx512: path == .avx512)
                    let width = partial ? headDim + 2 : headDim
                    for t in 0..<tokens {
                        for g in 0..<group {
                            let q = (0..<headDim).map { Double(query[(t * group + g) * headDim + $0]) }
                            let visible = Array(first..<min(end, firstLimit + t))
                            let scores = visible.map { s in
                                (0..<headDim).reduce(0.0) { $0 + q[$1] * keys.value(s, kv, $1) }
                                    / Double(headDim).squareRoot()
                            }
                            let row = Array(out[((t * group + g) * width)..<((t * group + g + 1) * width)])
                            guard let top = scores.max() else {
                                // Nothing visible: partial max −inf and sum 0, output 0.
                                if partial {
                                    #expect(row[headDim] == -.infinity && row[headDim + 1] == 0)
                                } else {
                                    #expect(row.allSatisfy { $0 == 0 })
                                }
                                continue
                            }
                            let weights = scores.map { exp($0 - top) }
                            let sum = weights.reduce(0, +)
                            // A partial is relative to its own max m: acc / sum is the normalised output either way.
                            let scale = partial ? Double(row[headDim + 1]) : 1
                            if partial {
                                let m = Double(row[headDim])
                                #expect(abs(m - top) <= 1e-5 * max(1, abs(top)))
                                #expect(abs(scale - sum * exp(top - m)) <= 1e-5 * scale)
                            }
                            for c in 0..<headDim {
                                let expected = zip(visible, weights).reduce(0.0) { $0 + $1.1 * values.value($1.0, kv, c) }
                                    / sum
                                let got = Double(row[c]) / scale
                                #expect(abs(got - expected) <= 2e-6, "\(type) d \(headDim) t \(t) g \(g) c \(c) \(path)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every row alone (decode) equals the same row inside a 4-token call (verification), and the AVX2 and
    /// AVX-512 builds agree, bit for bit.
    /// The positions: 203 (all four tokens' last keys in one block) and 194 (the first token's last key in the block
    /// before the others': a block it sees nothing of), from position 0 and from 37 (a range start, as split-K has).
    @Test(arguments: KVType.allCases, [(203, 0), (194, 0), (194, 37)])
    func rowsAreBitIdenticalAloneAndTogetherOnEveryPath(type: KVType, range: (positions: Int, first: Int)) throws {
        var numbers = KernelTests.Numbers(state: 29)
        let headDim = 128, group = 12, tokens = 4, positions = range.positions, first = range.first, kvHeads = 2
        let keys = Cache(type: type, positions: positions, kvHeads: kvHeads, headDim: headDim, numbers: &numbers,
                         magnitude: 4)
        let values = Cache(type: type, positions: positions, kvHeads: kvHeads, headDim: headDim, numbers: &numbers)
        let query = numbers.array(tokens * group * headDim)
        let firstLimit = positions - tokens + 1
        for partial in [false, true] {
            let width = partial ? headDim + 2 : headDim
            var results: [[Float]] = []
            for path in Self.paths {
                let together = Self.attend(keys: keys, values: values, kv: 0, query: query, tokens: tokens,
                                           group: group, firstLimit: firstLimit, first: first, end: positions,
                                           partial: partial, avx512: path == .avx512)
                for t in 0..<tokens {
                    let alone = Self.attend(keys: keys, values: values, kv: 0,
                                            query: Array(query[(t * group * headDim)..<((t + 1) * group * headDim)]),
                                            tokens: 1, group: group, firstLimit: firstLimit + t, first: first,
                                            end: firstLimit + t, partial: partial, avx512: path == .avx512)
                    let part = Array(together[(t * group * width)..<((t + 1) * group * width)])
                    let differing = zip(alone, part).filter { $0.bitPattern != $1.bitPattern }.count
                    #expect(differing == 0, "\(type) token \(t) \(path): \(differing) values differ")
                }
                results.append(together)
            }
            for other in results.dropFirst() {
                let differing = zip(other, results[0]).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "\(type): \(differing) values differ between the kernel paths")
            }
        }
    }
}
