import Glibc
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
    /// Queries, attention and `output` only for the rows `queryRows` (their output rows first in `output`); keys
    /// and values for every row.
    func selfAttention(_ w: AttentionWeights, input a: UnsafeMutablePointer<Float>, rows: Int, start: Int,
                       cache: KVCache, queryRows: Range<Int>, output: UnsafeMutablePointer<Float>) {
        let c = model.config
        let kvWidth = c.numKeyValueHeads * c.headDim
        let queries = queryRows.count
        let q = workspace.query.pointer, o = workspace.attention.pointer
        // f32 caches take the projections in place; other types get the chunk's f32 rows, converted per row below.
        let k = cache.keyType == .f32 ? cache.floatKeys + start * kvWidth : workspace.keyRows.pointer
        let v = cache.valueType == .f32 ? cache.floatValues + start * kvWidth : workspace.valueRows.pointer

        // q, k, v = a · Wᵀ (the biases follow with the norms)
        projections.append(w.query, tokens: queries, input: a + queryRows.lowerBound * c.hiddenSize, output: q)
        projections.append(w.key, tokens: rows, input: a, output: k)
        projections.append(w.value, tokens: rows, input: a, output: v)
        projections.run()

        // + bias, per-head RMSNorm of q and k, RoPE at each row's position
        workers.run(tasks: rows, elementsPerTask: (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim,
                    job: PrepareHeads(weights: w, query: q, key: k, value: v, heads: c.numAttentionHeads,
                                      kvHeads: c.numKeyValueHeads, headDim: c.headDim, eps: Float(c.rmsNormEps),
                                      rope: rope, start: start, queryRows: queryRows, cache: cache))
        if queries == 0 { return }

        // o = causal softmax(q · kᵀ / sqrt(D)) · v over the cache
        attendCausally(query: q, rows: queries, start: start + queryRows.lowerBound, cache: cache, output: o)

        // output = o · Woᵀ
        projections.run(w.output, tokens: queries, input: o, output: output)
    }

    /// Causal GQA attention of the chunk's queries `query` ([rows, nH·D]) over the cache positions
    /// `0 ..< start + t + 1`, into `output` ([rows, nH·D]), in key tiles with an online softmax (docs/MODEL.md
    /// §3.3, "Attention in tiles"). One task per (KV head, block of query rows[, range of positions]): the G query
    /// heads sharing a KV head are stacked into one left-hand matrix, so each key and value tile is read (and, for
    /// a non-f32 cache, converted) once for all of them. Memory per task is O(tile), whatever the context.
    ///
    /// Chunks of at most `Workspace.splitRows` rows (decode, MTP verification) take `glm_attend_rows`, whose
    /// result for a row does not depend on the chunk (verification must equal one-token decoding bit for bit) nor
    /// on the kernel path, and, when KV heads leave threads idle, position ranges at fixed multiples of
    /// `attentionSplitLength` (split-K), each leaving a partial (max, sum, accumulator) per row and head that
    /// `MergeSplits` combines.
    func attendCausally(query: UnsafeMutablePointer<Float>, rows: Int, start: Int, cache: KVCache,
                        output: UnsafeMutablePointer<Float>) {
        let c = model.config
        let D = c.headDim, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        let blocks = (rows + Workspace.queryBlock - 1) / Workspace.queryBlock
        let few = rows <= Workspace.splitRows
        let rangeLength = few ? attentionSplitLength(kvHeads: kvHeads) : nil
        let visible = start + rows
        let ranges = rangeLength.map { (visible + $0 - 1) / $0 } ?? 1
        let partials = workspace.attentionPartials.pointer
        workers.run(tasks: kvHeads * blocks * ranges,
                    job: AttendTiled(query: query, cache: cache, output: output, partials: partials, rows: rows,
                                     start: start, heads: heads, kvHeads: kvHeads, headDim: D,
                                     scale: 1 / Float(D).squareRoot(), blocks: blocks, ranges: ranges,
                                     rangeLength: rangeLength ?? visible, fewRows: few,
                                     merged: rangeLength != nil,
                                     scratch: workspace.attentionScratch, gemmScratch: workspace.gemmScratch,
                                     path: model.kernelPath))
        if rangeLength != nil {
            workers.run(tasks: rows * heads, elementsPerTask: ranges * (D + 2),
                        job: MergeSplits(partials: partials, output: output, rows: rows, heads: heads, headDim: D,
                                         splits: ranges))
        }
    }

    /// Positions per range of split-K attention, or nil not to split. Splitting pays when the (KV head) tasks of
    /// a small chunk are fewer than the threads (GLM-4.7 decodes with 8 tasks). The length is fixed per session,
    /// not per call, so that a row meets the same ranges in any chunk: a multiple of the key tile, at least
    /// `Workspace.minSplitPositions`, and long enough that the context holds at most `Workspace.maxSplits` ranges.
    func attentionSplitLength(kvHeads: Int) -> Int? {
        let most = Workspace.maxSplits(threads: threads)
        let shortest = (contextLength + most - 1) / most
        let forced = forcedAttentionSplitLength
        if let forced, forced <= 0 { return nil }
        guard forced != nil || kvHeads < threads else { return nil }
        let length = max(forced ?? Workspace.minSplitPositions, shortest)
        let tile = Workspace.keyTile
        return (length + tile - 1) / tile * tile
    }
}

/// Per chunk row t (task t): adds the q/k/v biases, then normalises (QK-norm) and rotates (RoPE at position
/// `start + t`) every query and key head; a key or value cache that is not f32 then stores the row converted. Only
/// the rows `queryRows` have queries, stored from row 0 of `query`.
private struct PrepareHeads: WorkerJob {
    let weights: AttentionWeights
    let query, key, value: UnsafeMutablePointer<Float>
    let heads, kvHeads, headDim: Int
    let eps: Float
    let rope: RotaryTable
    let start: Int
    let queryRows: Range<Int>
    let cache: KVCache

    func run(slot: Int, task t: Int) {
        let w = weights, D = headDim
        let qWidth = heads * D, kvWidth = kvHeads * D
        let kRow = key + t * kvWidth, vRow = value + t * kvWidth
        if let b = w.keyBias { VectorKernels.add(b.pointer, to: kRow, count: kvWidth) }
        if let b = w.valueBias { VectorKernels.add(b.pointer, to: vRow, count: kvWidth) }
        let angles = rope.pairs(at: start + t)
        if queryRows.contains(t) {
            let qRow = query + (t - queryRows.lowerBound) * qWidth
            if let b = w.queryBias { VectorKernels.add(b.pointer, to: qRow, count: qWidth) }
            for head in 0..<heads {
                let x = qRow + head * D
                if let n = w.queryNorm { VectorKernels.rmsNorm(x, weight: n.pointer, into: x, count: D, eps: eps) }
                VectorKernels.rotateNeoX(x, cosSin: angles, half: rope.half)
            }
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

/// One task per (KV head kv, block of `Workspace.queryBlock` query rows, range of positions), ordered so that the
/// blocks that see the most keys (the last) start first: the causal attention of those rows for the G query heads
/// of kv over the range's keys, tile by tile with an online softmax.
///
/// Per tile of up to `Workspace.keyTile` keys s0 ..< s0 + n (converted to f32 scratch unless the cache is f32):
///   S = Q · Kᵀ                                    [G·rows, n], one matrix product for the G heads
///   P = exp(S/sqrt(D) − m'), m' and l updated     glm_softmax_online, per row, masked past each row's position
///   acc = acc · exp(m − m') + P · V               [G·rows, D]
/// and at the end output = acc / l (one range), or (acc, m, l) into `partials` for `MergeSplits`.
private struct AttendTiled: WorkerJob {
    let query: UnsafeMutablePointer<Float>
    let cache: KVCache
    let output: UnsafeMutablePointer<Float>
    /// [ranges][rows][heads][D + 2]: accumulator, running max, running sum (only when `merged`).
    let partials: UnsafeMutablePointer<Float>
    let rows, start: Int
    let heads, kvHeads, headDim: Int
    let scale: Float
    let blocks, ranges: Int
    /// Positions per range (ranges cover [r · rangeLength, (r + 1) · rangeLength)); one range: the whole context.
    let rangeLength: Int
    /// Chunks of few rows: `attendFewRows` (glm_attend_rows) instead of the tiles below.
    let fewRows: Bool
    /// Whether `MergeSplits` follows: results go to `partials` (even for one range) instead of `output`.
    let merged: Bool
    /// Per slot: `Workspace.attentionScratchCount` floats, and the matrix products' packing space.
    let scratch, gemmScratch: [FloatBuffer]
    let path: KernelPath

    func run(slot: Int, task: Int) {
        let D = headDim, qWidth = heads * D, kvWidth = kvHeads * D
        let G = heads / kvHeads                       // query heads per KV head
        let T = Workspace.keyTile
        let kv = task % kvHeads
        let split = (task / kvHeads) % ranges
        let block = blocks - 1 - task / (kvHeads * ranges)
        let first = block * Workspace.queryBlock
        let count = min(Workspace.queryBlock, rows - first)
        let m = count * G                             // stacked rows: row t·G + g is query row first + t, head kv·G + g
        let visible = start + first + count           // positions the block's last row sees
        let p0 = min(visible, split * rangeLength), p1 = min(visible, p0 + rangeLength)

        if fewRows {
            attendFewRows(kv: kv, split: split, first: first, count: count, from: p0, to: p1, slot: slot)
            return
        }
        let q = scratch[slot].pointer
        let scores = q + m * D, tileOutput = scores + m * T, acc = tileOutput + m * D
        let rowMax = acc + m * D, rowSum = rowMax + m, correction = rowSum + m
        let keyTile = correction + m, valueTile = keyTile + T * D
        let gemm = gemmScratch[slot].pointer
        for t in 0..<count {
            (q + t * G * D).update(from: query + (first + t) * qWidth + kv * G * D, count: G * D)
        }
        acc.update(repeating: 0, count: m * D)
        rowMax.update(repeating: -.infinity, count: m)
        rowSum.update(repeating: 0, count: m)

        let keyHead = cache.keyType.headBytes(headDim: D), valueHead = cache.valueType.headBytes(headDim: D)
        var s0 = p0
        while s0 < p1 {
            let n = min(T, p1 - s0)
            // S = Q · Kᵀ over the tile
            let keys: UnsafePointer<Float>, ldk: Int
            if cache.keyType == .f32 {
                keys = UnsafePointer(cache.floatKeys + s0 * kvWidth + kv * D)
                ldk = kvWidth
            } else {
                KVKernels.loadRows(cache.keyType, cache.keys.pointer + s0 * cache.keyRowBytes + kv * keyHead,
                                   stride: cache.keyRowBytes, count: n, into: keyTile, ldd: D, headDim: D)
                keys = UnsafePointer(keyTile)
                ldk = D
            }
            MatrixProducts.multiplyTransposed(q, lda: D, rows: m, keys, ldb: ldk, rows: n, depth: D,
                                              into: scores, ldc: T, scratch: gemm, path: path)
            // P, running max and sum; row t·G + g sees positions 0 ... start + first + t
            var depth = 0
            for i in 0..<m {
                let valid = max(0, min(n, start + first + i / G + 1 - s0))
                depth = max(depth, valid)
                correction[i] = VectorKernels.softmaxOnline(scores + i * T, valid: valid, count: n, scale: scale,
                                                            runningMax: rowMax + i, runningSum: rowSum + i)
            }
            if depth > 0 {
                // acc = acc · correction + P · V (only the keys some row sees)
                let values: UnsafePointer<Float>, ldv: Int
                if cache.valueType == .f32 {
                    values = UnsafePointer(cache.floatValues + s0 * kvWidth + kv * D)
                    ldv = kvWidth
                } else {
                    KVKernels.loadRows(cache.valueType,
                                       cache.values.pointer + s0 * cache.valueRowBytes + kv * valueHead,
                                       stride: cache.valueRowBytes, count: depth, into: valueTile, ldd: D,
                                       headDim: D)
                    values = UnsafePointer(valueTile)
                    ldv = D
                }
                MatrixProducts.multiply(scores, lda: T, rows: m, values, ldb: ldv, depth: depth, columns: D,
                                        into: tileOutput, ldc: D, scratch: gemm, path: path)
                for i in 0..<m {
                    VectorKernels.scaleAdd(correction[i], acc + i * D, plus: tileOutput + i * D, count: D)
                }
            }
            s0 += n
        }

        for i in 0..<m {
            let t = first + i / G, head = kv * G + i % G
            if !merged {
                let out = output + t * qWidth + head * D
                let sum = rowSum[i]
                out.update(from: acc + i * D, count: D)
                VectorKernels.scale(out, by: sum > 0 ? 1 / sum : 0, count: D)
            } else {
                let partial = partials + ((split * rows + t) * heads + head) * (D + 2)
                partial.update(from: acc + i * D, count: D)
                partial[D] = rowMax[i]
                partial[D + 1] = rowSum[i]
            }
        }
    }
}

extension AttendTiled {
    /// A chunk of few rows (decode, verification): `glm_attend_rows` over positions p0 ..< p1 for the `count` rows
    /// from `first` and the G query heads of KV head kv, reading each key and value once for all of them, in an order
    /// that makes every row's result independent of the chunk and of the kernel path.
    func attendFewRows(kv: Int, split: Int, first: Int, count: Int, from p0: Int, to p1: Int, slot: Int) {
        let D = headDim, qWidth = heads * D
        let G = heads / kvHeads
        // (An f32 side is the same bytes: a head is D floats, a row kvHeads heads.)
        let keys = KVKernels.Head(type: cache.keyType,
                                  base: UnsafeRawPointer(cache.keys.pointer + kv * cache.keyType.headBytes(headDim: D)),
                                  stride: cache.keyRowBytes)
        let values = KVKernels.Head(type: cache.valueType,
                                    base: UnsafeRawPointer(cache.values.pointer
                                        + kv * cache.valueType.headBytes(headDim: D)),
                                    stride: cache.valueRowBytes)
        let out = merged
            ? KVKernels.Rows(partials + ((split * rows + first) * heads + kv * G) * (D + 2),
                             tokenStride: heads * (D + 2), headStride: D + 2)
            : KVKernels.Rows(output + first * qWidth + kv * G * D, tokenStride: qWidth, headStride: D)
        KVKernels.attendRows(keys: keys, values: values, headDim: D, rows: count * G, group: G,
                             query: KVKernels.Rows(UnsafePointer(query + first * qWidth + kv * G * D),
                                                   tokenStride: qWidth, headStride: D),
                             firstLimit: start + first + 1, positions: p0..<p1, scale: scale, output: out,
                             partial: merged, scratch: scratch[slot].pointer, path: path)
    }
}

/// Task r·heads + h: combines the split-K partials of query row r, head h into `output`:
///   M = max_s m_s;  output = Σ_s acc_s · exp(m_s − M) / Σ_s l_s · exp(m_s − M)
/// (a range whose keys that row does not see has m_s = −∞ and weight 0).
private struct MergeSplits: WorkerJob {
    let partials: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let rows, heads, headDim, splits: Int

    func run(slot _: Int, task: Int) {
        let D = headDim, r = task / heads, head = task % heads
        func partial(_ split: Int) -> UnsafeMutablePointer<Float> {
            partials + ((split * rows + r) * heads + head) * (D + 2)
        }
        var largest = -Float.infinity
        for split in 0..<splits { largest = max(largest, partial(split)[D]) }
        let out = output + r * heads * D + head * D
        out.update(repeating: 0, count: D)
        guard largest > -.infinity else { return }
        var sum: Float = 0
        for split in 0..<splits {
            let p = partial(split)
            guard p[D] > -.infinity else { continue }
            let weight = expf(p[D] - largest)
            sum += p[D + 1] * weight
            VectorKernels.addScaled(p, times: weight, to: out, count: D)
        }
        VectorKernels.scale(out, by: sum > 0 ? 1 / sum : 0, count: D)
    }
}
