import GLMNumerics

// The forward pass of Glm4MoeForCausalLM, in the order of MODEL.md §3: embedding, decoder layers (attention
// block, then dense MLP or MoE block, each pre-norm with a residual add), final norm, lm_head; and the MTP
// draft of §3.9. Attention is in Attention.swift, the MLP and MoE blocks in FeedForward.swift.

extension Session {
    /// Runs `tokens` (one chunk, at most `batchSize`) at positions `start ..< start + tokens.count` and writes the
    /// logits of `logitRows` (rows of the chunk) to `logits`.
    func forward(tokens: UnsafeBufferPointer<Int32>, start: Int, logitRows: Range<Int>,
                 logits: UnsafeMutablePointer<Float>) {
        let c = model.config, H = c.hiddenSize, rows = tokens.count
        let h = workspace.hidden.pointer

        // §3.2  h⁰_t = embed_tokens[x_t]
        for t in 0..<rows { model.embedTokens.copyRow(Int(tokens[t]), to: h + t * H) }
        trace?.recordHidden(layer: 0, h, rows: rows, width: H)

        // §3.3  decoder layers
        for (l, layer) in model.layers.enumerated() {
            decoderLayer(layer, index: l, cache: caches[l], rows: rows, start: start)
            if l + 1 < model.layers.count { trace?.recordHidden(layer: l + 1, h, rows: rows, width: H) }
        }

        // §3.7  h_final = RMSNorm(h; model.norm); the MTP layer later reads it for every position.
        let final = workspace.finalHidden.pointer
        let normRows = finalHiddenHistory == nil ? logitRows : 0..<rows
        normalizeRows(h, weight: model.finalNorm, into: final, rows: normRows, width: H)
        trace?.recordHidden(layer: model.layers.count, final, rows: rows, width: H)
        if let history = finalHiddenHistory {
            (history.pointer + start * H).update(from: final, count: rows * H)
        }

        // logits = h_final · lm_headᵀ
        project(model.lmHead, rows: logitRows, input: final, output: logits)
    }

    /// One pre-norm decoder layer on the chunk in `workspace.hidden` (§3.3):
    ///   h = h + Attention(RMSNorm(h; input_layernorm))
    ///   h = h + (dense ? MLP : MoE)(RMSNorm(h; post_attention_layernorm))
    func decoderLayer(_ layer: DecoderLayerWeights, index: Int, cache: KVCache, rows: Int, start: Int) {
        let H = model.config.hiddenSize
        let h = workspace.hidden.pointer, m = workspace.normed.pointer
        attentionBlock(layer.attention, cache: cache, rows: rows, start: start)
        normalizeRows(h, weight: layer.postAttentionNorm, into: m, rows: 0..<rows, width: H)
        switch layer.feedForward {
        case .dense(let mlp):
            denseMLP(mlp, rows: rows)
        case .mixtureOfExperts(let moe):
            mixtureOfExperts(moe, layer: index, rows: rows)
        }
        addRows(workspace.blockOutput.pointer, to: h, rows: rows, width: H)
    }

    /// §3.9  MTP draft for positions `start ..< start + nextTokens.count`:
    ///   u = eh_proj(concat(RMSNorm(embed_mtp[x_{t+1}]; enorm), RMSNorm(h_final_t; hnorm)))
    ///   y = DecoderLayer_L(u) at position t (own KV cache)
    ///   draft_logits = shared_head.head(RMSNorm(y; shared_head.norm))
    func draft(_ mtp: MTPWeights, cache: KVCache, nextTokens: UnsafeBufferPointer<Int32>, start: Int,
               logitRows: Range<Int>, logits: UnsafeMutablePointer<Float>) {
        guard let history = finalHiddenHistory, let concat = workspace.mtpInput?.pointer else { return }
        let H = model.config.hiddenSize, rows = nextTokens.count
        let eps = Float(model.config.rmsNormEps)
        for t in 0..<rows {
            let row = concat + t * 2 * H
            mtp.embedTokens.copyRow(Int(nextTokens[t]), to: row)
            VectorKernels.rmsNorm(row, weight: mtp.embeddingNorm.pointer, into: row, count: H, eps: eps)
            VectorKernels.rmsNorm(history.pointer + (start + t) * H, weight: mtp.hiddenNorm.pointer,
                                  into: row + H, count: H, eps: eps)
        }
        let h = workspace.hidden.pointer
        projections.append(Projection(mtp.combine, input: concat, inputStride: 2 * H, tokens: rows,
                                      output: h, outputStride: H))
        projections.run()
        decoderLayer(mtp.layer, index: model.layers.count, cache: cache, rows: rows, start: start)
        let final = workspace.finalHidden.pointer
        normalizeRows(h, weight: mtp.headNorm, into: final, rows: logitRows, width: H)
        project(mtp.head, rows: logitRows, input: final, output: logits)
    }

    // MARK: row helpers

    /// `output[r - rows.lowerBound] = input[r] · Wᵀ` for the chunk rows `rows` (rows of width `weight.columns`).
    func project(_ weight: WeightMatrix, rows: Range<Int>, input: UnsafeMutablePointer<Float>,
                 output: UnsafeMutablePointer<Float>) {
        projections.append(Projection(weight, input: input + rows.lowerBound * weight.columns,
                                      inputStride: weight.columns, tokens: rows.count,
                                      output: output, outputStride: weight.rows))
        projections.run()
    }

    /// `y[r] = RMSNorm(x[r]; weight)` for `rows`, `width` wide.
    func normalizeRows(_ x: UnsafeMutablePointer<Float>, weight: FloatBuffer, into y: UnsafeMutablePointer<Float>,
                       rows: Range<Int>, width: Int) {
        workers.run(tasks: rows.count, elementsPerTask: width,
                    job: NormalizeRows(input: x, weight: weight.pointer, output: y, first: rows.lowerBound, width: width,
                                       eps: Float(model.config.rmsNormEps)))
    }

    /// `y[r] += x[r]` for the first `rows` rows.
    func addRows(_ x: UnsafeMutablePointer<Float>, to y: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        VectorKernels.add(x, to: y, count: rows * width)
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
