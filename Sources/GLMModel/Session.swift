import GLMFormats
import GLMNumerics
import GLMSupport

/// One conversation on a shared `Model`: the KV cache of every layer, the activation buffers, the logits. Used
/// by one thread at a time; any number of sessions may share a model.
///
/// Everything is allocated when the session is created (sized by `contextLength` and `batchSize`), so
/// `evaluate` of one token allocates nothing. Longer inputs are processed in chunks of `batchSize` tokens.
public final class Session {
    /// Which logits `evaluate` returns.
    public enum LogitRows: Sendable {
        /// No logits: the chunk's keys and values only (a prompt prefix whose predictions nobody reads skips the
        /// [vocab × hidden] lm_head product).
        case none
        /// Only the last evaluated token's row (`[vocab]`), the decode case.
        case last
        /// One row per evaluated token (`[tokens, vocab]`).
        case all

        /// Rows of logits a call over `tokens` tokens returns.
        static func count(_ rows: LogitRows, tokens: Int) -> Int {
            switch rows {
            case .none: return 0
            case .last: return 1
            case .all: return tokens
            }
        }
    }

    public let model: Model
    public let contextLength: Int
    /// Tokens per forward chunk (activation buffers hold this many rows).
    public let batchSize: Int
    public let threads: Int
    /// Tokens in the cache: the position the next evaluated token gets.
    public private(set) var position = 0
    /// Positions the MTP layer's own KV cache holds (always <= `position`).
    public private(set) var mtpPosition = 0
    /// True if the session keeps what MTP drafting needs (the model has an MTP layer and it was asked for).
    public let drafts: Bool

    let workers: Workers
    let projections: ProjectionBatch
    let workspace: Workspace
    let caches: [KVCache]
    let mtpCache: KVCache?
    let rope: RotaryTable
    /// [contextLength, H] the main model's final-normed hidden state per position: MTP's input (docs/MODEL.md §3.9).
    let finalHiddenHistory: FloatBuffer?
    /// [H] the MTP layer's output (the residual stream after its decoder layer, before shared_head.norm) for the
    /// last row it computed: the hidden input of the next chained draft step (`mtpDraftNext`), as vLLM chains it.
    let mtpChainHidden: FloatBuffer?
    /// Chained draft rows written past `mtpPosition` since the last `mtpDraftFirst` (never committed: they were
    /// computed from the MTP layer's own output, not the main model's, so the next `mtpDraftFirst` overwrites them).
    public private(set) var mtpChainLength = 0
    /// Logits of the last call; grows (once) when a caller asks for more rows than it holds.
    var logits: FloatBuffer
    /// When set, the forward pass records per-layer hidden states and expert choices (tests and diagnostics).
    var trace: ForwardTrace?
    /// When set, attention of chunks of up to `Workspace.splitRows` rows uses ranges of this many positions
    /// (rounded as `attentionSplitLength` rounds), or none (<= 0), instead of the session's choice: tests compare
    /// split and unsplit attention.
    var forcedAttentionSplitLength: Int?

    /// Element types of the KV caches (keys, values).
    public let keyType: KVType
    public let valueType: KVType
    /// Bytes this session's buffers hold (`Session.memoryRequired` for its arguments).
    public var allocatedBytes: Int {
        var total = workspace.allocatedBytes + projections.scratchBytes + rope.table.count * 4 + logits.count * 4
        for cache in caches + (mtpCache.map { [$0] } ?? []) { total += cache.keys.count + cache.values.count }
        total += (finalHiddenHistory?.count ?? 0) * 4 + (mtpChainHidden?.count ?? 0) * 4
        return total
    }

    /// The sizes a session's arguments resolve to (threads, batch size, whether it drafts).
    struct Shape {
        let contextLength, threads, batchSize: Int
        let drafts: Bool

        init(model: Model, contextLength: Int, threads: Int, batchSize: Int, mtp: Bool) throws(GLMError) {
            let limit = 1 << 24
            guard contextLength >= 1, contextLength <= limit else {
                throw .invalidArgument("context length \(contextLength) is outside 1...\(limit)")
            }
            guard batchSize <= limit else { throw .invalidArgument("batch size \(batchSize) is larger than \(limit)") }
            self.contextLength = contextLength
            self.threads = threads > 0 ? threads : model.threads
            // 512 by default, llama.cpp's n_ubatch: a MoE layer's experts see twice the tokens per product of a
            // 256-token chunk (8 of 160 routed: ~26 instead of ~13 each), which the prefill panels need to amortise
            // their packing (BENCHMARKS.md, issue 11 item 7). The activation buffers double with it (~360 MB for
            // GLM-4.7's shape at 512 rows).
            self.batchSize = batchSize > 0 ? min(batchSize, contextLength) : min(512, contextLength)
            self.drafts = mtp && model.hasMTP
        }
    }

    /// Bytes of KV cache one position takes in the main model's layers and in the MTP layer (0 without one).
    public static func kvBytesPerToken(config c: ModelConfig, hasMTP: Bool, keyType: KVType, valueType: KVType)
        -> (layers: Int, mtp: Int) {
        let one = KVCache.bytesPerToken(kvHeads: c.numKeyValueHeads, headDim: c.headDim, keyType: keyType,
                                        valueType: valueType)
        return (c.numHiddenLayers * one, hasMTP ? one : 0)
    }

    /// Bytes `init` with these arguments allocates (KV caches, activations, attention scratch, RoPE table, MTP
    /// state, logits; not thread stacks, nor OpenBLAS's own buffers when that backend runs prefill), computed
    /// without allocating. A test checks it against `allocatedBytes` of real sessions.
    public static func memoryRequired(model: Model, contextLength: Int, threads: Int = 0, batchSize: Int = 0,
                                      mtp: Bool = true, keyType: KVType = .f32,
                                      valueType: KVType = .f32) throws(GLMError) -> Int {
        let shape = try Shape(model: model, contextLength: contextLength, threads: threads, batchSize: batchSize,
                              mtp: mtp)
        return try memoryRequired(model: model, shape: shape, keyType: keyType, valueType: valueType).total
    }

    private static func memoryRequired(model: Model, shape: Shape, keyType: KVType,
                                       valueType: KVType) throws(GLMError) -> (total: Int, kv: Int) {
        let c = model.config
        let perToken = kvBytesPerToken(config: c, hasMTP: shape.drafts, keyType: keyType, valueType: valueType)
        let kv = try checkedProduct(shape.contextLength, perToken.layers + perToken.mtp)
        var parts = [kv,
                     try Workspace.bytes(config: c, rows: shape.batchSize, threads: shape.threads, mtp: shape.drafts),
                     try checkedProduct(shape.threads, MatrixProducts.scratchCount, 4),   // projection panels
                     try checkedProduct(shape.contextLength, c.rotaryDim, 4),
                     try checkedProduct(c.vocabSize, 4)]
        if shape.drafts {
            parts.append(try checkedProduct(shape.contextLength, c.hiddenSize, 4))
            parts.append(try checkedProduct(c.hiddenSize, 4))
        }
        return (try checkedSum(parts), kv)
    }

    /// `contextLength`: positions the KV cache holds (the caller's maximum conversation length).
    /// `threads` <= 0: the model's thread count. `batchSize` <= 0: min(256, contextLength).
    /// `mtp`: keep the state for `mtpLogits` (ignored if the model has no MTP layer).
    /// `keyType`, `valueType`: the KV caches' element types (f32 here, the engine's exact computation; the C API,
    /// Python and the server default to f16).
    /// `memoryLimit` > 0: the most bytes the session may take. Whatever it says, a session needing more than
    /// `MemoryLimit.current` (free memory and swap, the cgroup's room) is `.outOfMemory` before anything is
    /// allocated, and the KV caches are written when allocated, so a session that exists holds its memory.
    public init(model: Model, contextLength: Int, threads: Int = 0, batchSize: Int = 0, mtp: Bool = true,
                keyType: KVType = .f32, valueType: KVType = .f32, memoryLimit: Int = 0) throws(GLMError) {
        let c = model.config
        let shape = try Shape(model: model, contextLength: contextLength, threads: threads, batchSize: batchSize,
                              mtp: mtp)
        let (needed, kvBytes) = try Session.memoryRequired(model: model, shape: shape, keyType: keyType,
                                                           valueType: valueType)
        if let limit = MemoryLimit.current(cap: max(0, memoryLimit)), needed > limit.bytes {
            throw GLMError(.outOfMemory, "a session of \(contextLength) positions with a \(keyType.name)/"
                + "\(valueType.name) KV cache needs \(MemoryLimit.format(needed)) (KV cache"
                + " \(MemoryLimit.format(kvBytes))), more than the \(MemoryLimit.format(limit.bytes)) available"
                + " (\(limit.source)); use a shorter context length or a smaller KV type (q8_0 takes 53% of f16)")
        }
        self.model = model
        self.contextLength = shape.contextLength
        self.threads = shape.threads
        self.batchSize = shape.batchSize
        self.drafts = shape.drafts
        self.keyType = keyType
        self.valueType = valueType

        workers = Workers(threads: self.threads)
        projections = try ProjectionBatch(workers: workers, backend: model.gemmBackend, path: model.kernelPath,
                                          bf16Inputs: model.bf16Inputs)
        workspace = try Workspace(config: c, rows: self.batchSize, threads: self.threads, mtp: drafts)
        var caches: [KVCache] = []
        for l in 0..<c.numHiddenLayers {
            caches.append(try KVCache(contextLength: contextLength, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                                      keyType: keyType, valueType: valueType, layer: "layer \(l)"))
        }
        self.caches = caches
        if drafts {
            mtpCache = try KVCache(contextLength: contextLength, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                                   keyType: keyType, valueType: valueType, layer: "the MTP layer")
            let history = try FloatBuffer(count: checkedProduct(contextLength, c.hiddenSize),
                                          purpose: "MTP hidden states")
            // Written now, like the KV caches, so that it is resident (see MemoryLimit).
            let historyPointer = history.pointer, historyCount = history.count
            let piece = 1 << 22
            workers.run(tasks: (historyCount + piece - 1) / piece) { _, task in
                (historyPointer + task * piece).update(repeating: 0, count: min(piece, historyCount - task * piece))
            }
            finalHiddenHistory = history
            mtpChainHidden = try FloatBuffer(count: c.hiddenSize, purpose: "MTP chained hidden state")
        } else {
            mtpCache = nil
            finalHiddenHistory = nil
            mtpChainHidden = nil
        }
        rope = try RotaryTable(config: c, contextLength: contextLength)
        logits = try FloatBuffer(count: c.vocabSize, purpose: "logits")
        // The caches are resident from here on (see MemoryLimit and ByteBuffer).
        var buffers = caches.flatMap { [$0.keys, $0.values] }
        if let mtpCache { buffers += [mtpCache.keys, mtpCache.values] }
        ByteBuffer.zero(buffers, workers: workers)
    }

    // MARK: evaluation

    /// Runs `tokens` at positions `position ..< position + tokens.count`, appends their keys and values to the
    /// cache and returns the logits (`rows`: the last token's, or one row per token). The buffer stays valid until
    /// the next call on this session. On error nothing changes: logits that are not finite (weights holding NaN
    /// or infinity) are a `.format` error and the positions just computed are forgotten.
    @discardableResult
    public func evaluate(tokens: UnsafeBufferPointer<Int32>, logits rows: LogitRows = .last) throws(GLMError)
        -> UnsafeBufferPointer<Float> {
        // The count first: a caller's count may exceed its array, and only a count that fits the context is
        // worth reading ids for.
        guard tokens.count <= contextLength - position else {
            throw GLMError(.contextFull, "evaluating \(tokens.count) tokens at position \(position) needs more"
                + " positions than are left (\(contextLength - position)); the session's context length is"
                + " \(contextLength)")
        }
        try checkTokens(tokens, what: "token")
        let rowCount = LogitRows.count(rows, tokens: tokens.count)
        try reserveLogits(rows: rowCount)
        let start = position
        forEachChunk(of: tokens, rows: rows) { chunk, logitRows, output in
            forward(tokens: chunk, start: position, logitRows: logitRows, logits: output)
            position += chunk.count
        }
        let result = UnsafeBufferPointer(start: logits.pointer, count: rowCount * model.config.vocabSize)
        if let bad = Session.firstNonFinite(result) {
            position = start
            throw nonFiniteError(bad, rows: rows, tokens: tokens.count, start: start, what: "logits")
        }
        return result
    }

    @discardableResult
    public func evaluate(tokens: [Int32], logits rows: LogitRows = .last) throws(GLMError) -> [Float] {
        let result = try tokens.withUnsafeBufferPointer { (p) throws(GLMError) in try evaluate(tokens: p, logits: rows) }
        return Array(result)
    }

    /// Forgets every position from `n` on (prefix reuse: keep the first `n` tokens' cache).
    public func truncate(to n: Int) throws(GLMError) {
        guard n >= 0, n <= position else {
            throw .invalidArgument("cannot truncate to \(n) tokens: the session holds \(position)")
        }
        position = n
        mtpPosition = min(mtpPosition, n)
        mtpChainLength = 0
    }

    // MARK: multi-token prediction

    /// MTP draft logits (docs/MODEL.md §3.9) for positions `mtpPosition ..< mtpPosition + nextTokens.count`: row i
    /// combines the token at position `mtpPosition + i + 1` (`nextTokens[i]`) with the main model's final-normed
    /// hidden state at position `mtpPosition + i`, runs the MTP decoder layer there (appending to its own KV
    /// cache) and predicts the token after `nextTokens[i]`.
    ///
    /// After `evaluate(tokens: x)` on a fresh session, `mtpLogits(nextTokens: x[1...])` gives the drafts of every
    /// position but the last; when decoding, pass the tokens evaluated since the last call plus the token just
    /// sampled. The main model must have evaluated every position used: `mtpPosition + nextTokens.count <= position`.
    @discardableResult
    public func mtpLogits(nextTokens: UnsafeBufferPointer<Int32>, logits rows: LogitRows = .all) throws(GLMError)
        -> UnsafeBufferPointer<Float> {
        guard let mtp = model.mtp, let mtpCache, drafts else {
            throw .invalidArgument(model.hasMTP ? "this session was created without MTP drafting"
                                                : "model '\(model.directory)' has no MTP layer")
        }
        // The count before the ids, as in `evaluate`.
        guard nextTokens.count <= position - mtpPosition else {
            throw .invalidArgument("MTP drafts for \(nextTokens.count) positions from \(mtpPosition) need the main"
                + " model's hidden states there, but only \(position) positions have been evaluated")
        }
        try checkTokens(nextTokens, what: "next token")
        let rowCount = LogitRows.count(rows, tokens: nextTokens.count)
        try reserveLogits(rows: rowCount)
        let start = mtpPosition
        forEachChunk(of: nextTokens, rows: rows) { chunk, logitRows, output in
            draft(mtp, cache: mtpCache, nextTokens: chunk, start: mtpPosition, chained: false, logitRows: logitRows,
                  logits: output)
            mtpPosition += chunk.count
        }
        mtpChainLength = 0
        let result = UnsafeBufferPointer(start: logits.pointer, count: rowCount * model.config.vocabSize)
        if let bad = Session.firstNonFinite(result) {
            mtpPosition = start
            throw nonFiniteError(bad, rows: rows, tokens: nextTokens.count, start: start, what: "MTP draft logits")
        }
        return result
    }

    /// Speculative decoding, first draft: `mtpLogits(nextTokens:, logits: .last)` over the tokens at positions
    /// `mtpPosition + 1 ... position` (the last one is the token just sampled, not yet evaluated), which brings
    /// the MTP cache up to `position` and predicts the token after it. Keeps the last row's MTP output for
    /// `mtpDraftNext`. Allocates nothing.
    public func mtpDraftFirst(nextTokens: UnsafeBufferPointer<Int32>) throws(GLMError) -> UnsafeBufferPointer<Float> {
        guard nextTokens.count == position - mtpPosition else {
            throw .invalidArgument("the first MTP draft needs the \(position - mtpPosition) tokens after the MTP"
                + " cache's end (position \(mtpPosition)), got \(nextTokens.count)")
        }
        return try mtpLogits(nextTokens: nextTokens, logits: .last)
    }

    /// Speculative decoding, draft step j > 1 (vLLM's reapplication of the one MTP layer): the row at position
    /// `mtpPosition + mtpChainLength` combines `token` (the previous draft) with the MTP layer's own output of
    /// the previous step instead of the main model's hidden state, which does not exist yet. The row's keys and
    /// values go to the MTP cache past `mtpPosition` and are not committed: `truncate` and the next
    /// `mtpDraftFirst` forget them. Allocates nothing.
    public func mtpDraftNext(token: Int32) throws(GLMError) -> UnsafeBufferPointer<Float> {
        guard let mtp = model.mtp, let mtpCache, drafts else {
            throw .invalidArgument("this session keeps no MTP state")
        }
        guard mtpPosition == position else {
            throw .invalidArgument("chained MTP drafts follow mtpDraftFirst (the MTP cache ends at \(mtpPosition),"
                + " the main cache at \(position))")
        }
        let at = mtpPosition + mtpChainLength
        guard at < contextLength else { throw GLMError(.contextFull, "no position left for another MTP draft") }
        var id = token
        try withUnsafePointer(to: &id) { (p) throws(GLMError) in
            let one = UnsafeBufferPointer(start: p, count: 1)
            try checkTokens(one, what: "draft token")
            draft(mtp, cache: mtpCache, nextTokens: one, start: at, chained: true, logitRows: 0..<1,
                  logits: logits.pointer)
        }
        mtpChainLength += 1
        let result = UnsafeBufferPointer(start: logits.pointer, count: model.config.vocabSize)
        if let bad = Session.firstNonFinite(result) {
            throw nonFiniteError(bad, rows: .last, tokens: 1, start: at, what: "MTP draft logits")
        }
        return result
    }

    /// Splits `tokens` into chunks of at most `batchSize` and calls `body(chunk, logitRows, output)`: with `.all`
    /// every row of every chunk is wanted and goes to its place in `logits`; with `.last` only the final token's
    /// row is wanted, at the start of `logits`.
    private func forEachChunk(of tokens: UnsafeBufferPointer<Int32>, rows: LogitRows,
                              _ body: (UnsafeBufferPointer<Int32>, Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        let vocab = model.config.vocabSize
        var done = 0
        while done < tokens.count {
            let count = min(batchSize, tokens.count - done)
            let chunk = UnsafeBufferPointer(rebasing: tokens[done..<(done + count)])
            switch rows {
            case .all:
                body(chunk, 0..<count, logits.pointer + done * vocab)
            case .last:
                body(chunk, done + count == tokens.count ? (count - 1)..<count : 0..<0, logits.pointer)
            case .none:
                body(chunk, 0..<0, logits.pointer)
            }
            done += count
        }
    }

    @discardableResult
    public func mtpLogits(nextTokens: [Int32], logits rows: LogitRows = .all) throws(GLMError) -> [Float] {
        let result = try nextTokens.withUnsafeBufferPointer { (p) throws(GLMError) in
            try mtpLogits(nextTokens: p, logits: rows)
        }
        return Array(result)
    }

    // MARK: checks and buffers

    private func checkTokens(_ tokens: UnsafeBufferPointer<Int32>, what: String) throws(GLMError) {
        guard !tokens.isEmpty else { throw .invalidArgument("no \(what)s given") }
        let vocab = model.config.vocabSize
        for (i, token) in tokens.enumerated() where token < 0 || Int(token) >= vocab {
            throw .invalidArgument("\(what) \(i) is \(token), outside the vocabulary 0..<\(vocab)")
        }
    }

    /// The index of the first NaN or infinity in `values`, nil if all are finite. One pass over the rows the
    /// caller gets (a vocabulary row per decoded token: small next to the forward pass, and no allocation).
    static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        // Exponent all ones is NaN or infinity; counting them in a branch-free pass lets the loop vectorise,
        // and the index is searched for only when there is one.
        var count = 0
        for v in values { count &+= (v.bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
        guard count > 0 else { return nil }
        return values.firstIndex { !$0.isFinite }
    }

    private func nonFiniteError(_ index: Int, rows: LogitRows, tokens: Int, start: Int, what: String) -> GLMError {
        let vocab = model.config.vocabSize
        let row = rows == .all ? index / vocab : tokens - 1
        return .format("model '\(model.directory)' produced non-finite \(what) at position \(start + row)"
            + " (vocabulary entry \(index % vocab)): its weights may hold NaN or infinite values; the session is"
            + " unchanged")
    }

    private func reserveLogits(rows: Int) throws(GLMError) {
        let (needed, overflow) = rows.multipliedReportingOverflow(by: model.config.vocabSize)
        guard !overflow else { throw GLMError(.outOfMemory, "logits for \(rows) rows do not fit in memory") }
        if needed > logits.count { logits = try FloatBuffer(count: needed, purpose: "logits of \(rows) rows") }
    }
}
