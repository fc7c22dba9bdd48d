import Glibc
import GLMFormats
import GLMNumerics
import GLMSupport

/// Every buffer one forward chunk of up to `rows` tokens needs, allocated once per session so that decoding
/// allocates nothing. Row-major; "rows" are token rows of the chunk.
struct Workspace {
    let rows: Int
    let hidden: FloatBuffer          // [rows, H] the residual stream h
    let normed: FloatBuffer          // [rows, H] a block's input: RMSNorm(h) (decoderLayer passes it on)
    let query: FloatBuffer           // [rows, nH·D]
    let keyRows: FloatBuffer         // [rows, nKV·D] the chunk's keys in f32 before a non-f32 cache stores them
    let valueRows: FloatBuffer       // [rows, nKV·D] the same for values
    let attention: FloatBuffer       // [rows, nH·D] per-head attention outputs, concatenated
    let blockOutput: FloatBuffer     // [rows, H] a block's output, which decoderLayer adds to h
    let gate: FloatBuffer            // [rows, max(FF, I·n_shared)] dense / shared-expert gate, then silu(gate)⊙up
    let up: FloatBuffer              // [rows, max(FF, I·n_shared)]
    let routerLogits: FloatBuffer    // [rows, E] router logits, then sigmoid scores
    let expertInput: FloatBuffer     // [rows·K, H] each (token, expert) pair's input, grouped by expert
    let expertGate: FloatBuffer      // [rows·K, I]
    let expertUp: FloatBuffer        // [rows·K, I]
    let expertOutput: FloatBuffer    // [rows·K, H]
    let finalHidden: FloatBuffer     // [rows, H] RMSNorm(h; model.norm) (or shared_head.norm for MTP)
    let mtpInput: FloatBuffer?       // [rows, 2H] concat(enorm(e), hnorm(h)) when the session drafts with MTP
    /// Per worker slot: the attention task's stacked queries, one tile of scores, accumulators and converted key
    /// and value tiles (`attentionScratchCount`; independent of the context length).
    let attentionScratch: [FloatBuffer]
    /// Split-K partials of decode attention: [maxSplits][min(rows, splitRows)][nH][D + 2].
    let attentionPartials: FloatBuffer
    /// Per worker slot: packing space of the attention's matrix products.
    let gemmScratch: [FloatBuffer]
    let routing: RoutingTable

    /// Query rows per attention task (with G query heads per KV head, the task's matrices have G · 32 rows).
    static let queryBlock = 32
    /// Keys per tile of the online softmax: a tile's f32 keys and values (2 · 128 · D floats) and scores stay in
    /// L2 while the tile is used.
    static let keyTile = 128
    /// Chunks of at most this many rows (decode, MTP verification) are computed batch-invariantly and may split
    /// attention by position.
    static let splitRows = 4
    /// A position range of split-K attention holds at least this many keys (fewer: merging costs more than
    /// the threads gain).
    static let minSplitPositions = 512
    /// Most position ranges of a session's context: two per thread balance the dynamic scheduling.
    static func maxSplits(threads: Int) -> Int { max(4, 2 * threads) }

    /// Floats of one slot's attention scratch: stacked queries, tile output and accumulator ([G·B, D] each),
    /// scores [G·B, keyTile], running max, sum and correction [G·B] each, key and value tiles [keyTile, D] each;
    /// B = min(rows, queryBlock).
    static func attentionScratchCount(config c: ModelConfig, rows: Int) throws(GLMError) -> Int {
        let D = c.headDim
        let stacked = try checkedProduct(min(rows, queryBlock), max(1, c.numAttentionHeads / max(1, c.numKeyValueHeads)))
        let tiled = try checkedSum([checkedProduct(stacked, D, 3), checkedProduct(stacked, keyTile),
                                    checkedProduct(stacked, 3), checkedProduct(keyTile, D, 2)])
        // Few-row chunks (decode, verification) take glm_attend_rows instead.
        let fewRows = try checkedProduct(min(rows, splitRows), max(1, c.numAttentionHeads / max(1, c.numKeyValueHeads)))
        return max(tiled, KVKernels.attendRowsScratchCount(headDim: D, rows: fewRows))
    }

    static func attentionPartialsCount(config c: ModelConfig, rows: Int, threads: Int) throws(GLMError) -> Int {
        try checkedProduct(maxSplits(threads: threads), min(rows, splitRows), c.numAttentionHeads, c.headDim + 2)
    }

    init(config c: ModelConfig, rows: Int, threads: Int, mtp: Bool) throws(GLMError) {
        self.rows = rows
        let H = c.hiddenSize, qWidth = c.numAttentionHeads * c.headDim
        let mlpWidth = max(c.intermediateSize, c.moeIntermediateSize * c.nSharedExperts)
        let pairs = try checkedProduct(rows, c.numExpertsPerTok)
        func buffer(_ count: Int, _ purpose: String) throws(GLMError) -> FloatBuffer {
            try FloatBuffer(count: count, purpose: purpose)
        }
        hidden = try buffer(checkedProduct(rows, H), "hidden states")
        normed = try buffer(checkedProduct(rows, H), "normed hidden states")
        query = try buffer(checkedProduct(rows, qWidth), "queries")
        let kvWidth = c.numKeyValueHeads * c.headDim
        keyRows = try buffer(checkedProduct(rows, kvWidth), "chunk keys")
        valueRows = try buffer(checkedProduct(rows, kvWidth), "chunk values")
        attention = try buffer(checkedProduct(rows, qWidth), "attention outputs")
        blockOutput = try buffer(checkedProduct(rows, H), "block outputs")
        gate = try buffer(checkedProduct(rows, mlpWidth), "MLP gate activations")
        up = try buffer(checkedProduct(rows, mlpWidth), "MLP up activations")
        routerLogits = try buffer(checkedProduct(rows, c.nRoutedExperts), "router logits")
        expertInput = try buffer(checkedProduct(pairs, H), "expert inputs")
        expertGate = try buffer(checkedProduct(pairs, c.moeIntermediateSize), "expert gate activations")
        expertUp = try buffer(checkedProduct(pairs, c.moeIntermediateSize), "expert up activations")
        expertOutput = try buffer(checkedProduct(pairs, H), "expert outputs")
        finalHidden = try buffer(checkedProduct(rows, H), "final hidden states")
        if mtp {
            mtpInput = try buffer(checkedProduct(rows, 2, H), "MTP inputs")
        } else {
            mtpInput = nil
        }
        var attentionScratch: [FloatBuffer] = []
        let scratchCount = try Workspace.attentionScratchCount(config: c, rows: rows)
        for _ in 0..<threads { attentionScratch.append(try buffer(scratchCount, "attention tiles")) }
        self.attentionScratch = attentionScratch
        attentionPartials = try buffer(Workspace.attentionPartialsCount(config: c, rows: rows, threads: threads),
                                       "split attention partials")
        var gemmScratch: [FloatBuffer] = []
        for _ in 0..<threads { gemmScratch.append(try buffer(MatrixProducts.scratchCount, "attention GEMM panels")) }
        self.gemmScratch = gemmScratch
        routing = try RoutingTable(rows: rows, config: c)
    }

    /// Bytes `init` allocates for these arguments (`Session.memoryRequired`), computed without allocating. A test
    /// checks it against `allocatedBytes` of real workspaces.
    static func bytes(config c: ModelConfig, rows: Int, threads: Int, mtp: Bool) throws(GLMError) -> Int {
        let H = c.hiddenSize, qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        let mlpWidth = max(c.intermediateSize, c.moeIntermediateSize * c.nSharedExperts)
        let pairs = try checkedProduct(rows, c.numExpertsPerTok)
        var floats = [
            try checkedProduct(rows, H, 4),                   // hidden, normed, blockOutput, finalHidden
            try checkedProduct(rows, qWidth, 2),              // query, attention
            try checkedProduct(rows, kvWidth, 2),             // keyRows, valueRows
            try checkedProduct(rows, mlpWidth, 2),            // gate, up
            try checkedProduct(rows, c.nRoutedExperts),
            try checkedProduct(pairs, H, 2),                  // expertInput, expertOutput
            try checkedProduct(pairs, c.moeIntermediateSize, 2),
            try checkedProduct(threads, attentionScratchCount(config: c, rows: rows)),
            try attentionPartialsCount(config: c, rows: rows, threads: threads),
            try checkedProduct(threads, MatrixProducts.scratchCount),
        ]
        if mtp { floats.append(try checkedProduct(rows, 2, H)) }
        return try checkedProduct(checkedSum(floats), MemoryLayout<Float>.stride)
            + RoutingTable.bytes(rows: rows, config: c)
    }

    /// Bytes this workspace holds (its buffers as allocated).
    var allocatedBytes: Int {
        var buffers = [hidden, normed, query, keyRows, valueRows, attention, blockOutput, gate, up, routerLogits,
                       expertInput, expertGate, expertUp, expertOutput, finalHidden, attentionPartials] + attentionScratch
            + gemmScratch
        if let mtpInput { buffers.append(mtpInput) }
        return buffers.reduce(0) { $0 + $1.count * MemoryLayout<Float>.stride } + routing.allocatedBytes
    }
}

/// The routing decisions of one MoE layer for one chunk: which experts each token uses with which weights, and
/// the (token, expert) pairs grouped by expert so that each expert runs once over all of its rows.
final class RoutingTable {
    let topK: Int
    /// [rows·K] expert of pair (t, k), the K of a token in ascending expert id (the reference's summation order).
    let pairExpert: UnsafeMutablePointer<Int>
    /// [rows·K] weight of pair (t, k).
    let pairWeight: UnsafeMutablePointer<Float>
    /// [rows·K] row of pair (t, k) in the grouped order.
    let pairSlot: UnsafeMutablePointer<Int>
    /// [rows·K] token of each grouped row.
    let slotToken: UnsafeMutablePointer<Int>
    /// [E + 1] first grouped row of each expert (`expertStart[e] ..< expertStart[e + 1]`).
    let expertStart: UnsafeMutablePointer<Int>
    /// [E] scratch: choice scores s + bias of one token, and a fill counter per expert.
    let choice: UnsafeMutablePointer<Float>
    let fill: UnsafeMutablePointer<Int>
    /// [n_group] scratch: group scores and whether a group is kept.
    let groupScore: UnsafeMutablePointer<Float>
    let groupKept: UnsafeMutablePointer<Bool>

    init(rows: Int, config c: ModelConfig) throws(GLMError) {
        topK = c.numExpertsPerTok
        let experts = c.nRoutedExperts
        let pairs = rows * topK
        self.pairs = pairs
        self.experts = experts
        groups = c.nGroup
        pairExpert = .allocate(capacity: pairs)
        pairWeight = .allocate(capacity: pairs)
        pairSlot = .allocate(capacity: pairs)
        slotToken = .allocate(capacity: pairs)
        expertStart = .allocate(capacity: experts + 1)
        choice = .allocate(capacity: experts)
        fill = .allocate(capacity: experts)
        groupScore = .allocate(capacity: c.nGroup)
        groupKept = .allocate(capacity: c.nGroup)
    }

    let pairs: Int, experts: Int, groups: Int

    static func bytes(rows: Int, config c: ModelConfig) -> Int {
        let pairs = rows * c.numExpertsPerTok
        return 3 * pairs * MemoryLayout<Int>.stride + pairs * MemoryLayout<Float>.stride
            + (2 * c.nRoutedExperts + 1) * MemoryLayout<Int>.stride + c.nRoutedExperts * MemoryLayout<Float>.stride
            + c.nGroup * (MemoryLayout<Float>.stride + MemoryLayout<Bool>.stride)
    }

    var allocatedBytes: Int {
        3 * pairs * MemoryLayout<Int>.stride + pairs * MemoryLayout<Float>.stride
            + (2 * experts + 1) * MemoryLayout<Int>.stride + experts * MemoryLayout<Float>.stride
            + groups * (MemoryLayout<Float>.stride + MemoryLayout<Bool>.stride)
    }

    deinit {
        pairExpert.deallocate(); pairWeight.deallocate(); pairSlot.deallocate(); slotToken.deallocate()
        expertStart.deallocate(); choice.deallocate(); fill.deallocate()
        groupScore.deallocate(); groupKept.deallocate()
    }
}

/// Keys and values of one attention layer for every position of the session: `contextLength` rows of `nKV` heads
/// each, in the session's element types (`KVType`, chosen for keys and values separately). Keys are stored after
/// the bias, QK-norm and RoPE (docs/MODEL.md §3.3), values as projected. f32 rows are written by the projections
/// in place; other types are converted from the chunk's f32 rows when their heads are ready (PrepareHeads).
struct KVCache {
    let keys: ByteBuffer
    let values: ByteBuffer
    let keyType: KVType
    let valueType: KVType
    /// Bytes per position of the keys and of the values.
    let keyRowBytes: Int
    let valueRowBytes: Int
    let headDim: Int

    init(contextLength: Int, kvHeads: Int, headDim: Int, keyType: KVType, valueType: KVType,
         layer: String) throws(GLMError) {
        self.keyType = keyType
        self.valueType = valueType
        self.headDim = headDim
        keyRowBytes = try checkedProduct(kvHeads, keyType.headBytes(headDim: headDim))
        valueRowBytes = try checkedProduct(kvHeads, valueType.headBytes(headDim: headDim))
        keys = try ByteBuffer(count: checkedProduct(contextLength, keyRowBytes), purpose: "key cache of \(layer)")
        values = try ByteBuffer(count: checkedProduct(contextLength, valueRowBytes), purpose: "value cache of \(layer)")
    }

    /// Bytes of one layer's keys and values per position.
    static func bytesPerToken(kvHeads: Int, headDim: Int, keyType: KVType, valueType: KVType) -> Int {
        kvHeads * (keyType.headBytes(headDim: headDim) + valueType.headBytes(headDim: headDim))
    }

    /// The f32 keys / values (only when that side's type is f32).
    var floatKeys: UnsafeMutablePointer<Float> { keys.pointer.assumingMemoryBound(to: Float.self) }
    var floatValues: UnsafeMutablePointer<Float> { values.pointer.assumingMemoryBound(to: Float.self) }
}

/// cos and sin of every (position, frequency) pair, as transformers computes them (docs/MODEL.md §3.4):
/// `inv_freq[j] = 1 / θ^(2j/R)` in f32, angle = f32(f32(position) · inv_freq[j]), then cos and sin of that f32
/// angle, rounded to f32. Row p holds R/2 interleaved (cos, sin) pairs.
struct RotaryTable {
    let half: Int
    let table: FloatBuffer

    init(config c: ModelConfig, contextLength: Int) throws(GLMError) {
        let rotary = c.rotaryDim
        half = rotary / 2
        table = try FloatBuffer(count: checkedProduct(contextLength, rotary), purpose: "RoPE table")
        let inverseFrequency = RotaryTable.inverseFrequencies(config: c)
        for p in 0..<contextLength {
            RotaryTable.cosSin(position: p, inverseFrequencies: inverseFrequency, into: table.pointer + p * rotary)
        }
    }

    /// inv_freq[j] for j < R/2: θ^(2j/R) with the exponent an f32 quotient and the power rounded to f32 (torch's
    /// f32 `base ** exponent`), then its f32 reciprocal.
    static func inverseFrequencies(config c: ModelConfig) -> [Float] {
        let rotary = c.rotaryDim
        return (0..<(rotary / 2)).map { j in
            let exponent = Float(2 * j) / Float(rotary)
            return 1 / Float(pow(Double(Float(c.ropeTheta)), Double(exponent)))
        }
    }

    /// The f32 angle of (position, frequency j): an f32 product, as transformers' `position.float() * inv_freq`.
    static func angle(position: Int, inverseFrequency: Float) -> Float { Float(position) * inverseFrequency }

    /// The row of `position`: (cos, sin) of each angle, computed in double from the f32 angle and rounded once
    /// (correctly rounded but for double's own last bit; torch's f32 cos/sin are within one f32 ulp of this).
    static func cosSin(position: Int, inverseFrequencies: [Float], into row: UnsafeMutablePointer<Float>) {
        for (j, frequency) in inverseFrequencies.enumerated() {
            let angle = Double(RotaryTable.angle(position: position, inverseFrequency: frequency))
            row[2 * j] = Float(cos(angle))
            row[2 * j + 1] = Float(sin(angle))
        }
    }

    /// The (cos, sin) pairs of `position`.
    func pairs(at position: Int) -> UnsafePointer<Float> { UnsafePointer(table.pointer + position * 2 * half) }
}

/// The sum of buffer sizes, or `.outOfMemory` if it does not fit in an `Int`.
func checkedSum(_ terms: [Int]) throws(GLMError) -> Int {
    var sum = 0
    for term in terms {
        let (next, overflow) = sum.addingReportingOverflow(term)
        guard !overflow else { throw GLMError(.outOfMemory, "buffers of \(terms) bytes do not fit in memory") }
        sum = next
    }
    return sum
}

/// The product of buffer dimensions, or `.outOfMemory` if it does not fit in an `Int`.
func checkedProduct(_ factors: Int...) throws(GLMError) -> Int {
    var product = 1
    for factor in factors {
        let (next, overflow) = product.multipliedReportingOverflow(by: factor)
        guard !overflow, factor >= 0 else { throw GLMError(.outOfMemory, "a buffer of \(factors) floats is too large") }
        product = next
    }
    return product
}
