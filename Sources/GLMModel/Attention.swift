import GLMNumerics

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

        let eps = Float(c.rmsNormEps), half = rope.half
        let heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        workers.run(tasks: rows, elementsPerTask: qWidth + 2 * kvWidth) { _, t in
            let qRow = q + t * qWidth, kRow = k + t * kvWidth, vRow = v + t * kvWidth
            if let b = w.queryBias { VectorKernels.add(b.pointer, to: qRow, count: qWidth) }
            if let b = w.keyBias { VectorKernels.add(b.pointer, to: kRow, count: kvWidth) }
            if let b = w.valueBias { VectorKernels.add(b.pointer, to: vRow, count: kvWidth) }
            let angles = rope.pairs(at: start + t)
            for head in 0..<heads {
                let x = qRow + head * D
                if let n = w.queryNorm { VectorKernels.rmsNorm(x, weight: n.pointer, into: x, count: D, eps: eps) }
                VectorKernels.rotateNeoX(x, cosSin: angles, half: half)
            }
            for head in 0..<kvHeads {
                let x = kRow + head * D
                if let n = w.keyNorm { VectorKernels.rmsNorm(x, weight: n.pointer, into: x, count: D, eps: eps) }
                VectorKernels.rotateNeoX(x, cosSin: angles, half: half)
            }
        }

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
        let group = heads / c.numKeyValueHeads
        let qWidth = heads * D, kvWidth = c.numKeyValueHeads * D
        let q = workspace.query.pointer, out = workspace.attention.pointer
        let keys = cache.keys.pointer, values = cache.values.pointer
        let block = Workspace.queryBlock
        let blocks = (rows + block - 1) / block
        let scale = 1 / Float(D).squareRoot()
        let scratch = workspace.scores, gemmScratch = workspace.gemmScratch

        workers.run(tasks: heads * blocks) { slot, task in
            let head = task % heads, first = (task / heads) * block
            let count = min(block, rows - first)
            let visible = start + first + count          // keys the last row of the block may see
            let kv = head / group
            let scores = scratch[slot].pointer
            let gemm = gemmScratch[slot].pointer
            // scores[i, s] = (q[first + i, head] · k[s, kv]) / sqrt(D)
            MatrixProducts.multiplyTransposed(q + first * qWidth + head * D, lda: qWidth, rows: count,
                                              keys + kv * D, ldb: kvWidth, rows: visible, depth: D,
                                              into: scores, ldc: visible, scratch: gemm)
            for i in 0..<count {
                let row = scores + i * visible
                let seen = start + first + i + 1         // causal: positions 0 ... start + first + i
                for s in 0..<seen { row[s] *= scale }
                VectorKernels.softmax(row, count: seen)
                (row + seen).update(repeating: 0, count: visible - seen)
            }
            // out[first + i, head] = Σ_s P[i, s] · v[s, kv]
            MatrixProducts.multiply(scores, lda: visible, rows: count, values + kv * D, ldb: kvWidth, depth: visible,
                                    columns: D, into: out + first * qWidth + head * D, ldc: qWidth, scratch: gemm)
        }
    }
}
