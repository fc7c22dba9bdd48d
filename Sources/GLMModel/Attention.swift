import GLMNumerics
import GLMSupport

extension Session {
    /// Self-attention (docs/MODEL.md §3.3, §3.4) of the normed rows `input` ([rows, H]) at positions
    /// `start ..< start + rows`, into `output` ([rows, H]); the rows' keys and values are written straight into their
    /// positions in `cache`:
    ///   q, k, v = Lin(a; Wq, bq), Lin(a; Wk, bk), Lin(a; Wv, bv)
    ///   q, k = RMSNorm per head (q_norm, k_norm), then partial NeoX RoPE at their positions
    ///   o[t, h] = Σ_{s ≤ t} softmax_s(q[t, h] · k[s, h / G] / sqrt(D)) · v[s, h / G]
    ///   output = Lin(concat_h o[t, h]; Wo)
    func selfAttention(_ w: AttentionWeights, input a: UnsafeMutablePointer<Float>, rows: Int, start: Int,
                       cache: KVCache, output: UnsafeMutablePointer<Float>) {
        let c = model.config
        let kvWidth = c.numKeyValueHeads * c.headDim
        let q = workspace.query.pointer, o = workspace.attention.pointer
        // f32 caches take the projections in place; other types get the chunk's f32 rows, converted per row below.
        let k = cache.keyType == .f32 ? cache.floatKeys + start * kvWidth : workspace.keyRows.pointer
        let v = cache.valueType == .f32 ? cache.floatValues + start * kvWidth : workspace.valueRows.pointer

        // q, k, v = a · Wᵀ (the biases follow with the norms)
        projections.append(w.query, tokens: rows, input: a, output: q)
        projections.append(w.key, tokens: rows, input: a, output: k)
        projections.append(w.value, tokens: rows, input: a, output: v)
        projections.run()

        // + bias, per-head RMSNorm of q and k, RoPE at each row's position
        workers.run(tasks: rows, elementsPerTask: (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim,
                    job: PrepareHeads(weights: w, query: q, key: k, value: v, heads: c.numAttentionHeads,
                                      kvHeads: c.numKeyValueHeads, headDim: c.headDim, eps: Float(c.rmsNormEps),
                                      rope: rope, start: start, cache: cache))

        // o = causal softmax(q · kᵀ / sqrt(D)) · v over the cache
        attendCausally(query: q, rows: rows, start: start, cache: cache, output: o)

        // output = o · Woᵀ
        projections.run(w.output, tokens: rows, input: o, output: output)
    }

    /// Causal GQA attention of the chunk's queries `query` ([rows, nH·D]) over the cache positions
    /// `0 ..< start + t + 1`, into `output` ([rows, nH·D]). One task per (query head, block of query rows):
    /// scores = Q·Kᵀ/sqrt(D) and output = P·V are matrix products reading the cache in place (query head h uses KV
    /// head h / G).
    func attendCausally(query: UnsafeMutablePointer<Float>, rows: Int, start: Int, cache: KVCache,
                        output: UnsafeMutablePointer<Float>) {
        let c = model.config
        let D = c.headDim, heads = c.numAttentionHeads
        let block = Workspace.queryBlock
        let blocks = (rows + block - 1) / block

        workers.run(tasks: heads * blocks,
                    job: AttendCausally(query: query, cache: cache, output: output, rows: rows, start: start, heads: heads,
                                        kvHeads: c.numKeyValueHeads, headDim: D, scale: 1 / Float(D).squareRoot(),
                                        scores: workspace.scores, gemmScratch: workspace.gemmScratch,
                                        path: model.kernelPath))
    }
}

/// Per chunk row t (task t): adds the q/k/v biases, then normalises (QK-norm) and rotates (RoPE at position
/// `start + t`) every query and key head; a key or value cache that is not f32 then stores the row converted.
private struct PrepareHeads: WorkerJob {
    let weights: AttentionWeights
    let query, key, value: UnsafeMutablePointer<Float>
    let heads, kvHeads, headDim: Int
    let eps: Float
    let rope: RotaryTable
    let start: Int
    let cache: KVCache

    func run(slot: Int, task t: Int) {
        let w = weights, D = headDim
        let qWidth = heads * D, kvWidth = kvHeads * D
        let qRow = query + t * qWidth, kRow = key + t * kvWidth, vRow = value + t * kvWidth
        if let b = w.queryBias { VectorKernels.add(b.pointer, to: qRow, count: qWidth) }
        if let b = w.keyBias { VectorKernels.add(b.pointer, to: kRow, count: kvWidth) }
        if let b = w.valueBias { VectorKernels.add(b.pointer, to: vRow, count: kvWidth) }
        let angles = rope.pairs(at: start + t)
        for head in 0..<heads {
            let x = qRow + head * D
            if let n = w.queryNorm { VectorKernels.rmsNorm(x, weight: n.pointer, into: x, count: D, eps: eps) }
            VectorKernels.rotateNeoX(x, cosSin: angles, half: rope.half)
        }
        for head in 0..<kvHeads {
            let x = kRow + head * D
            if let n = w.keyNorm { VectorKernels.rmsNorm(x, weight: n.pointer, into: x, count: D, eps: eps) }
            VectorKernels.rotateNeoX(x, cosSin: angles, half: rope.half)
        }
        let position = start + t
        if cache.keyType != .f32 {
            KVKernels.store(cache.keyType, kRow, into: cache.keys.pointer + position * cache.keyRowBytes,
                            heads: kvHeads, headDim: D)
        }
        if cache.valueType != .f32 {
            KVKernels.store(cache.valueType, vRow, into: cache.values.pointer + position * cache.valueRowBytes,
                            heads: kvHeads, headDim: D)
        }
    }
}

/// One task per (query head, block of `Workspace.queryBlock` query rows), task = block · heads + head: causal
/// attention of those rows of `query` over the cached keys and values, into `output`.
private struct AttendCausally: WorkerJob {
    let query: UnsafeMutablePointer<Float>
    let cache: KVCache
    let output: UnsafeMutablePointer<Float>
    let rows, start: Int
    let heads, kvHeads, headDim: Int
    let scale: Float
    /// Per slot: the scores of one block of rows, and the matrix products' packing space.
    let scores, gemmScratch: [FloatBuffer]
    let path: KernelPath

    func run(slot: Int, task: Int) {
        let D = headDim, qWidth = heads * D, kvWidth = kvHeads * D
        let block = Workspace.queryBlock
        let head = task % heads, first = (task / heads) * block
        let count = min(block, rows - first)
        let visible = start + first + count          // keys the last row of the block may see
        let kv = head / (heads / kvHeads)           // G = heads / kvHeads query heads share a KV head
        let scores = self.scores[slot].pointer
        let gemm = gemmScratch[slot].pointer
        let q = query + first * qWidth + head * D
        // scores[i, s] = (q[first + i, head] · k[s, kv]) / sqrt(D). f32 keys: a matrix product over the cache in
        // place; other types: glm_kv_scores converts each key once for all rows of the block.
        if cache.keyType == .f32 {
            MatrixProducts.multiplyTransposed(q, lda: qWidth, rows: count, cache.floatKeys + kv * D, ldb: kvWidth,
                                              rows: visible, depth: D, into: scores, ldc: visible, scratch: gemm,
                                              path: path)
        } else {
            KVKernels.scores(cache.keyType, query: q, ldq: qWidth, rows: count,
                             keys: cache.keys.pointer + kv * cache.keyType.headBytes(headDim: D),
                             stride: cache.keyRowBytes, seen0: start + first + 1, headDim: D, into: scores,
                             ldc: visible)
        }
        for i in 0..<count {
            let row = scores + i * visible
            let seen = start + first + i + 1         // causal: positions 0 ... start + first + i
            for s in 0..<seen { row[s] *= scale }
            VectorKernels.softmax(row, count: seen)
            (row + seen).update(repeating: 0, count: visible - seen)
        }
        // out[first + i, head] = Σ_s P[i, s] · v[s, kv]
        let out = output + first * qWidth + head * D
        if cache.valueType == .f32 {
            MatrixProducts.multiply(scores, lda: visible, rows: count, cache.floatValues + kv * D, ldb: kvWidth,
                                    depth: visible, columns: D, into: out, ldc: qWidth, scratch: gemm, path: path)
        } else {
            KVKernels.weightedSum(cache.valueType, weights: scores, ldp: visible, rows: count,
                                  values: cache.values.pointer + kv * cache.valueType.headBytes(headDim: D),
                                  stride: cache.valueRowBytes, seen0: start + first + 1, headDim: D, into: out,
                                  ldo: qWidth)
        }
    }
}
