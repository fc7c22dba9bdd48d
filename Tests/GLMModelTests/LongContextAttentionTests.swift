import Testing
import Glibc
import GLMFormats
import GLMNumerics
import GLMSupport
@testable import GLMModel

/// Attention over long caches: the tiled online softmax and split-K decode against a direct double-precision
/// softmax over the values the cache stores, and long prompts through chunks and prefix reuse against one prefill.
@Suite struct LongContextAttentionTests {
    /// A session's layer-0 cache filled at positions 0 ..< positions with random rows (stored in the cache's type),
    /// and random queries for `rows` rows.
    struct Setup {
        let session: Session
        let cache: KVCache
        let queries: [Float]
        let heads, kvHeads, headDim: Int

        init(model: Model, type: KVType, positions: Int, rows: Int, threads: Int, seed: UInt64) throws {
            let c = model.config
            session = try Session(model: model, contextLength: positions, threads: threads,
                                  batchSize: min(positions, 256), mtp: false, keyType: type, valueType: type)
            cache = session.caches[0]
            heads = c.numAttentionHeads
            kvHeads = c.numKeyValueHeads
            headDim = c.headDim
            var state = seed
            func next() -> Float {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23) * 2   // [-2, 2)
            }
            var row = [Float](repeating: 0, count: kvHeads * headDim)
            for s in 0..<positions {
                for j in row.indices { row[j] = next() }
                KVKernels.store(type, row, into: cache.keys.pointer + s * cache.keyRowBytes, heads: kvHeads,
                                headDim: headDim)
                for j in row.indices { row[j] = next() }
                KVKernels.store(type, row, into: cache.values.pointer + s * cache.valueRowBytes, heads: kvHeads,
                                headDim: headDim)
            }
            queries = (0..<(rows * heads * headDim)).map { _ in next() }
        }

        /// The cached head `kv` of position s, in f32, for keys or values.
        func stored(values: Bool, position s: Int, kv: Int) -> [Float] {
            var out = [Float](repeating: 0, count: headDim)
            let type = values ? cache.valueType : cache.keyType
            let base = values ? cache.values.pointer + s * cache.valueRowBytes : cache.keys.pointer + s * cache.keyRowBytes
            KVKernels.load(type, base + kv * type.headBytes(headDim: headDim), into: &out, headDim: headDim)
            return out
        }

        /// libglm's attention of query rows firstQuery ..< firstQuery + rows at positions start ..< start + rows;
        /// `splitLength`: the session's forced split-K range length (0: unsplit), nil: its own choice.
        func attend(rows: Int, start: Int, splitLength: Int? = nil, firstQuery: Int = 0) -> [Float] {
            var output = [Float](repeating: .nan, count: rows * heads * headDim)
            var q = Array(queries[(firstQuery * heads * headDim)..<((firstQuery + rows) * heads * headDim)])
            session.forcedAttentionSplitLength = splitLength
            q.withUnsafeMutableBufferPointer { qp in
                output.withUnsafeMutableBufferPointer { op in
                    session.attendCausally(query: qp.baseAddress!, rows: rows, start: start, cache: cache,
                                           output: op.baseAddress!)
                }
            }
            session.forcedAttentionSplitLength = nil
            return output
        }

        /// softmax(q · kᵀ / sqrt(D)) · v over positions 0 ... start + t, in double precision, one row at a time.
        func reference(rows: Int, start: Int) -> [Double] {
            let D = headDim, G = heads / kvHeads
            var keys: [[[Float]]] = [], values: [[[Float]]] = []
            for kv in 0..<kvHeads {
                keys.append((0..<(start + rows)).map { stored(values: false, position: $0, kv: kv) })
                values.append((0..<(start + rows)).map { stored(values: true, position: $0, kv: kv) })
            }
            var out = [Double](repeating: 0, count: rows * heads * D)
            for t in 0..<rows {
                for h in 0..<heads {
                    let kv = h / G, q = (t * heads + h) * D
                    let seen = start + t + 1
                    var scores = [Double](repeating: 0, count: seen)
                    for s in 0..<seen {
                        var dot = 0.0
                        for j in 0..<D { dot += Double(queries[q + j]) * Double(keys[kv][s][j]) }
                        scores[s] = dot / Double(D).squareRoot()
                    }
                    let top = scores.max() ?? 0
                    let weights = scores.map { Glibc.exp($0 - top) }
                    let sum = weights.reduce(0, +)
                    for s in 0..<seen {
                        for j in 0..<D { out[q + j] += weights[s] / sum * Double(values[kv][s][j]) }
                    }
                }
            }
            return out
        }
    }

    static func worst(_ a: [Float], _ b: [Double]) -> Double {
        zip(a, b).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) }
    }

    /// Prefill and decode rows over caches of several tiles (128 keys each), query blocks (32 rows) cut by tiles,
    /// every KV type: within f32 rounding of the direct softmax over the stored values (the values lie in
    /// [-2, 2), so outputs do too; 1e-5 is some 100 f32 ulps of them).
    @Test(arguments: ["glm47", "grouped", "tied_shared2"], KVType.allCases)
    func tiledAttentionEqualsTheDirectSoftmax(name: String, type: KVType) throws {
        let model = try Model.load(directory: try ReferenceModel(name).directory, threads: 2)
        for (start, rows) in [(0, 200), (317, 70), (400, 1), (130, 3)] {
            let setup = try Setup(model: model, type: type, positions: 401, rows: rows, threads: 2, seed: 7)
            let error = LongContextAttentionTests.worst(setup.attend(rows: rows, start: start),
                                                        setup.reference(rows: rows, start: start))
            #expect(error < 1e-5, "\(name) \(type) start \(start) rows \(rows): \(error)")
        }
    }

    /// Split-K decode (positions in ranges, partials merged) equals unsplit attention within rounding, at
    /// several lengths, range lengths and thread counts, and both stay at the direct softmax. A chunk of a few rows
    /// (MTP verification) gives each row the very bits of that row computed alone, split or not.
    @Test(arguments: ["glm47", "grouped"])
    func splitDecodeEqualsUnsplit(name: String) throws {
        let model = try Model.load(directory: try ReferenceModel(name).directory, threads: 2)
        for (length, threads) in [(1, 2), (129, 1), (700, 3), (2_100, 2), (2_100, 5)] {
            for rows in [1, 3] where rows <= length {
                let setup = try Setup(model: model, type: .f16, positions: length, rows: rows, threads: threads,
                                      seed: UInt64(length))
                let start = length - rows
                let unsplit = setup.attend(rows: rows, start: start, splitLength: 0)
                let reference = setup.reference(rows: rows, start: start)
                #expect(LongContextAttentionTests.worst(unsplit, reference) < 1e-5, "\(name) \(length)")
                for splitLength in [128, 256, 640] {
                    let split = setup.attend(rows: rows, start: start, splitLength: splitLength)
                    let difference = zip(split, unsplit).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
                    #expect(difference < 1e-6, "\(name) length \(length) threads \(threads) range \(splitLength)")
                    if rows > 1 {
                        var alone: [Float] = []
                        for t in 0..<rows {
                            alone += setup.attend(rows: 1, start: start + t, splitLength: splitLength, firstQuery: t)
                        }
                        #expect(alone.map(\.bitPattern) == split.map(\.bitPattern), "\(name) \(length) \(splitLength)")
                    }
                }
                // The session's own choice (split or not) gives the same.
                let chosen = setup.attend(rows: rows, start: start)
                #expect(LongContextAttentionTests.worst(chosen, reference) < 1e-5, "\(name) \(length) chosen")
            }
        }
    }

    /// The session splits decode by position where its KV heads leave threads idle, in ranges of a length fixed
    /// per session (a multiple of the key tile, at least 512 positions, at most 2 · threads ranges per context).
    @Test func splitsAreChosenForIdleThreads() throws {
        let model = try Model.load(directory: try ReferenceModel("grouped").directory, threads: 2)   // 1 KV head
        let four = try Session(model: model, contextLength: 100_000, threads: 4, mtp: false)
        #expect(four.attentionSplitLength(kvHeads: 1) == 12_544)     // ⌈100000 / 8⌉ rounded up to 128
        #expect(four.attentionSplitLength(kvHeads: 8) == nil)
        let short = try Session(model: model, contextLength: 1000, threads: 4, mtp: false)
        #expect(short.attentionSplitLength(kvHeads: 1) == 512)
        let one = try Session(model: model, contextLength: 100_000, threads: 1, mtp: false)
        #expect(one.attentionSplitLength(kvHeads: 1) == nil)
    }

    /// A long prompt (many key tiles) through chunks smaller and larger than a tile, then prefix reuse (truncate
    /// and evaluate the tail again) and decode past it: the logits of one full prefill, within rounding.
    @Test(arguments: ["glm47", "grouped"], [KVType.f32, .f16])
    func longPromptsAgreeThroughChunksAndPrefixReuse(name: String, type: KVType) throws {
        let model = try Model.load(directory: try ReferenceModel(name).directory, threads: 2)
        let vocab = model.config.vocabSize
        var state: UInt64 = 99
        let tokens: [Int32] = (0..<600).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int32((state >> 33) % UInt64(vocab))
        }
        let full = try Session(model: model, contextLength: 600, threads: 2, batchSize: 600, keyType: type,
                               valueType: type).evaluate(tokens: tokens, logits: .all)
        let bound = type == .f32 ? 1e-5 : KVCacheTypeTests.tolerance(type)
        let chunked = try Session(model: model, contextLength: 600, threads: 3, batchSize: 97, keyType: type,
                                  valueType: type)
        try chunked.evaluate(tokens: Array(tokens[..<450]), logits: .none)
        let tail = try chunked.evaluate(tokens: Array(tokens[450...]), logits: .all)
        #expect(relativeError(tail, Array(full[(450 * vocab)...])) < bound, "\(name) \(type) chunked")
        try chunked.truncate(to: 300)
        let again = try chunked.evaluate(tokens: Array(tokens[300..<590]), logits: .all)
        #expect(relativeError(again, Array(full[(300 * vocab)..<(590 * vocab)])) < bound, "\(name) \(type) reuse")
        for t in 590..<600 {
            let row = try chunked.evaluate(tokens: [tokens[t]])
            #expect(relativeError(row, Array(full[(t * vocab)..<((t + 1) * vocab)])) < bound, "\(name) \(type) \(t)")
        }
    }
}
