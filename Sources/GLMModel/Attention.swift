import GLMNumerics
import GLMSupport

extension Session {
    /// The attention block of a decoder layer (MODEL.md §3.3, §3.4), on the chunk rows at positions
    /// `start ..< start + rows`, leaving `attn` in `workspace.blockOutput` and adding it to h:
    ///   a = RMSNorm(h; input_layernorm)
    ///   q, k, v = Lin(a; Wq, bq), Lin(a; Wk, bk), Lin(a; Wv, bv)
    ///   q, k = RMSNorm per head (q_norm, k_norm), then partial NeoX RoPE at their positions
    ///   o[t, h] = Σ_{s ≤ t} softmax_s(q[t, h] · k[s, h / G] / sqrt(D)) · v[s, h / G]
    ///   h = h + Lin(concat_h o[t, h]; Wo)
    func attentionBlock(_ w: AttentionWeights, cache: KVCache, rows: Int, start: Int) {
        let c = model.config
        let H = c.hiddenSize, D = c.headDim
        let qWidth = c.numAttentionHeads * D, kvWidth = c.numKeyValueHeads * D
        let h = workspace.hidden.pointer, a = workspace.normed.pointer, q = workspace.query.pointer
        // New keys and values are written straight into the cache rows of their positions.
        let k = cache.keys.pointer + start * kvWidth, v = cache.values.pointer + start * kvWidth

        normalizeRows(h, weight: w.inputNorm, into: a, rows: 0..<rows, width: H)
        projections.append(Projection(w.query, input: a, inputStride: H, tokens: rows, output: q, outputStride: qWidth))
        projections.append(Projection(w.key, input: a, inputStride: H, tokens: rows, output: k, outputStride: kvWidth))
        projections.append(Projection(w.value, input: a, inputStride: H, tokens: rows, output: v, outputStride: kvWidth))
        projections.run()

        workers.run(tasks: rows, elementsPerTask: qWidth + 2 * kvWidth,
                    job: PrepareHeads(weights: w, query: q, key: k, value: v, heads: c.numAttentionHeads,
                                      kvHeads: c.numKeyValueHeads, headDim: D, eps: Float(c.rmsNormEps),
                                      rope: rope, start: start))

        attendCausally(cache: cache, rows: rows, start: start)

        let o = workspace.blockOutput.pointer
        projections.append(Projection(w.output, input: workspace.attention.pointer, inputStride: qWidth, tokens: rows,
                                      output: o, outputStride: H))
        projections.run()
        addRows(o, to: h, rows: rows, width: H)
    }

    /// Causal GQA attention of the chunk's queries (`workspace.query`) over the cache positions `0 ..< start + t + 1`,
    /// into `workspace.attention`. One task per (query head, block of query rows): scores = Q·Kᵀ/sqrt(D) and
    /// output = P·V are matrix products reading the cache in place (query head h uses KV head h / G).
    func attendCausally(cache: KVCache, rows: Int, start: Int) {
        let c = model.config
        let D = c.headDim, heads = c.numAttentionHeads
        let q = workspace.query.pointer, out = workspace.attention.pointer
        let keys = cache.keys.pointer, values = cache.values.pointer
        let block = Workspace.queryBlock
        let blocks = (rows + block - 1) / block

        workers.run(tasks: heads * blocks,
                    job: AttendCausally(query: q, keys: keys, values: values, output: out, rows: rows, start: start,
                                        heads: heads, kvHeads: c.numKeyValueHeads, headDim: D, scale: 1 / Float(D).squareRoot(),
                                        scores: workspace.scores, gemmScratch: workspace.gemmScratch,
                                        path: model.kernelPath))
    }
}

/// Per chunk row t (task t): adds the q/k/v biases, then normalises (QK-norm) and rotates (RoPE at position
/// `start + t`) every query and key head.
private struct PrepareHeads: WorkerJob {
    let weights: AttentionWeights
    let query, key, value: UnsafeMutablePointer<Float>
    let heads, kvHeads, headDim: Int
    let eps: Float
    let rope: RotaryTable
    let start: Int

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
    }
}

/// One task per (query head, block of `Workspace.queryBlock` query rows), task = block · heads + head: causal
/// attention of those rows of `query` over the cached keys and values, into `output`.
private struct AttendCausally: WorkerJob {
    let query: UnsafeMutablePointer<Float>
    let keys, values: UnsafeMutablePointer<Float>
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
        // scores[i, s] = (q[first + i, head] · k[s, kv]) / sqrt(D)
        MatrixProducts.multiplyTransposed(query + first * qWidth + head * D, lda: qWidth, rows: count,
                                          keys + kv * D, ldb: kvWidth, rows: visible, depth: D,
                                          into: scores, ldc: visible, scratch: gemm, path: path)
        for i in 0..<count {
            let row = scores + i * visible
            let seen = start + first + i + 1         // causal: positions 0 ... start + first + i
            for s in 0..<seen { row[s] *= scale }
            VectorKernels.softmax(row, count: seen)
            (row + seen).update(repeating: 0, count: visible - seen)
        }
        // out[first + i, head] = Σ_s P[i, s] · v[s, kv]
        MatrixProducts.multiply(scores, lda: visible, rows: count, values + kv * D, ldb: kvWidth, depth: visible,
                                columns: D, into: output + first * qWidth + head * D, ldc: qWidth, scratch: gemm,
                                path: path)
    }
}
