import GLMNumerics

// The forward pass of Glm4MoeForCausalLM, in the order of docs/MODEL.md §3: embedding, decoder layers (attention
// block, then dense MLP or MoE block, each pre-norm with a residual add), final norm, lm_head; and the MTP draft of
// §3.9. The blocks are in Attention.swift (attention) and FeedForward.swift (dense MLP, MoE); each reads the rows
// it is given and writes the rows it is told to, so the layer below is the whole data flow.

extension Session {
    /// Runs `tokens` (one chunk, at most `batchSize`) at positions `start ..< start + tokens.count` and writes the
    /// logits of `logitRows` (rows of the chunk) to `logits`.
    func forward(tokens: UnsafeBufferPointer<Int32>, start: Int, logitRows: Range<Int>,
                 logits: UnsafeMutablePointer<Float>) {
        let H = model.config.hiddenSize, rows = tokens.count
        let h = workspace.hidden.pointer

        // §3.2  h⁰_t = embed_tokens[x_t]
        for t in 0..<rows { model.embedTokens.copyRow(Int(tokens[t]), to: h + t * H) }
        trace?.recordHidden(layer: 0, h, rows: rows, width: H)

        // §3.3  decoder layers. The last layer's output is read only through the final norm: for the logit rows,
        // and for every row when the MTP layer (its hidden-state history) or a trace reads them. Its other rows
        // only need their keys and values in the cache: in a prompt of n tokens whose last alone gives logits,
        // n − 1 rows skip the last layer's queries, attention, output projection and feed-forward block
        // (llama.cpp skips the feed-forward block of those rows).
        let lastLayerRows = finalHiddenHistory == nil && trace == nil ? logitRows : 0..<rows
        for (l, layer) in model.layers.enumerated() {
            let last = l + 1 == model.layers.count
            decoderLayer(layer, index: l, hidden: h, rows: rows, start: start, cache: caches[l],
                         outputRows: last ? lastLayerRows : 0..<rows)
            if !last { trace?.recordHidden(layer: l + 1, h, rows: rows, width: H) }
        }

        // §3.7  h_final = RMSNorm(h; model.norm); the MTP layer later reads it for every position.
        let final = workspace.finalHidden.pointer
        let normRows = finalHiddenHistory == nil ? logitRows : 0..<rows
        normalizeRows(h, weight: model.finalNorm, into: final, rows: normRows)
        trace?.recordHidden(layer: model.layers.count, final, rows: rows, width: H)
        if let history = finalHiddenHistory {
            (history.pointer + start * H).update(from: final, count: rows * H)
        }

        // §3.7  logits = h_final · lm_headᵀ, for the rows asked for
        projections.run(model.lmHead, tokens: logitRows.count, input: final + logitRows.lowerBound * H,
                        output: logits)
    }

    /// §3.3  One pre-norm decoder layer on the residual stream `hidden` ([rows, H], updated in place) at positions
    /// `start ..< start + rows`; attention appends the rows' keys and values to `cache`. Only the rows `outputRows`
    /// of `hidden` are updated (the others keep their input: a caller passes fewer rows only where nothing reads
    /// the rest); the keys and values of every row reach the cache.
    func decoderLayer(_ layer: DecoderLayerWeights, index: Int, hidden h: UnsafeMutablePointer<Float>, rows: Int,
                      start: Int, cache: KVCache, outputRows: Range<Int>) {
        let H = model.config.hiddenSize
        let m = workspace.normed.pointer         // a block's input: the normed residual stream
        let y = workspace.blockOutput.pointer    // a block's output, added to the residual stream
        let kept = outputRows.count, hk = h + outputRows.lowerBound * H

        // h = h + Attention(RMSNorm(h; input_layernorm))
        normalizeRows(h, weight: layer.inputNorm, into: m, rows: 0..<rows)
        selfAttention(layer.attention, input: m, rows: rows, start: start, cache: cache, queryRows: outputRows,
                      output: y)
        if kept == 0 { return }
        addRows(y, to: hk, rows: kept)

        // h = h + (dense ? MLP : MoE)(RMSNorm(h; post_attention_layernorm))
        normalizeRows(hk, weight: layer.postAttentionNorm, into: m, rows: 0..<kept)
        switch layer.feedForward {
        case .dense(let mlp):
            swiGLU(mlp, input: m, rows: kept, output: y)
        case .mixtureOfExperts(let moe):
            mixtureOfExperts(moe, layer: index, input: m, rows: kept, output: y)
        }
        addRows(y, to: hk, rows: kept)
    }

    /// §3.9  MTP draft for positions `start ..< start + nextTokens.count`:
    ///   u = eh_proj(concat(RMSNorm(embed_mtp[x_{t+1}]; enorm), RMSNorm(h_final_t; hnorm)))
    ///   y = DecoderLayer_L(u) at position t (own KV cache)
    ///   draft_logits = shared_head.head(RMSNorm(y; shared_head.norm))
    ///
    /// `chained` (one row): h_final_t is replaced by the MTP layer's own output y of the previous row
    /// (`mtpChainHidden`), the reapplied layer of speculative decoding with k > 1 drafts.
    func draft(_ mtp: MTPWeights, cache: KVCache, nextTokens: UnsafeBufferPointer<Int32>, start: Int, chained: Bool,
               logitRows: Range<Int>, logits: UnsafeMutablePointer<Float>) {
        guard let history = finalHiddenHistory, let chain = mtpChainHidden,
              let concat = workspace.mtpInput?.pointer else { return }
        let H = model.config.hiddenSize, rows = nextTokens.count
        let eps = Float(model.config.rmsNormEps)
        for t in 0..<rows {
            let row = concat + t * 2 * H
            mtp.embedTokens.copyRow(Int(nextTokens[t]), to: row)
            VectorKernels.rmsNorm(row, weight: mtp.embeddingNorm.pointer, into: row, count: H, eps: eps)
            let previous = chained ? UnsafePointer(chain.pointer) : UnsafePointer(history.pointer + (start + t) * H)
            VectorKernels.rmsNorm(previous, weight: mtp.hiddenNorm.pointer, into: row + H, count: H, eps: eps)
        }
        let h = workspace.hidden.pointer
        projections.run(mtp.combine, tokens: rows, input: concat, output: h)
        // The layer's output is read at the logit rows and at the last row (the chain): the rows before them
        // only put their keys and values in the MTP cache.
        let firstOutput = logitRows.isEmpty ? max(rows - 1, 0) : logitRows.lowerBound
        decoderLayer(mtp.layer, index: model.layers.count, hidden: h, rows: rows, start: start, cache: cache,
                     outputRows: firstOutput..<rows)
        chain.pointer.update(from: h + (rows - 1) * H, count: H)
        let final = workspace.finalHidden.pointer
        normalizeRows(h, weight: mtp.headNorm, into: final, rows: logitRows)
        projections.run(mtp.head, tokens: logitRows.count, input: final + logitRows.lowerBound * H, output: logits)
    }

    // MARK: row helpers

    /// `y[r] = RMSNorm(x[r]; weight)` for the rows `rows` of width H.
    func normalizeRows(_ x: UnsafeMutablePointer<Float>, weight: FloatBuffer, into y: UnsafeMutablePointer<Float>,
                       rows: Range<Int>) {
        let H = model.config.hiddenSize
        workers.run(tasks: rows.count, elementsPerTask: H,
                    job: NormalizeRows(input: x, weight: weight.pointer, output: y, first: rows.lowerBound, width: H,
                                       eps: Float(model.config.rmsNormEps)))
    }

    /// `y[r] += x[r]` for the first `rows` rows of width H.
    func addRows(_ x: UnsafeMutablePointer<Float>, to y: UnsafeMutablePointer<Float>, rows: Int) {
        VectorKernels.add(x, to: y, count: rows * model.config.hiddenSize)
    }
}

/// Task i: `output[r] = RMSNorm(input[r]; weight)` for row r = first + i.
private struct NormalizeRows: WorkerJob {
    let input: UnsafePointer<Float>
    let weight: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let first, width: Int
    let eps: Float

    func run(slot _: Int, task i: Int) {
        let r = first + i
        VectorKernels.rmsNorm(input + r * width, weight: weight, into: output + r * width, count: width, eps: eps)
    }
}

/// Per-layer hidden states and expert choices of every row a session evaluates, in HF's `output_hidden_states`
/// layout: [0] embeddings, [l] output of layer l-1, [L] the final-normed state. For tests and diagnostics.
final class ForwardTrace {
    var hiddenStates: [Int: [Float]] = [:]
    /// MoE layer index → per row, the chosen experts in ascending order.
    var experts: [Int: [[Int]]] = [:]

    func recordHidden(layer: Int, _ x: UnsafePointer<Float>, rows: Int, width: Int) {
        hiddenStates[layer, default: []].append(contentsOf: UnsafeBufferPointer(start: x, count: rows * width))
    }

    func recordExperts(layer: Int, _ table: RoutingTable, rows: Int) {
        for t in 0..<rows {
            experts[layer, default: []].append((0..<table.topK).map { table.pairExpert[t * table.topK + $0] })
        }
    }
}
