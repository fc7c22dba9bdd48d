import GLMGrammar
import GLMModel
import GLMNumerics
import GLMSupport

/// What the per-token callback of `GenerationSession.generate` decides.
public enum TokenDecision: Sendable {
    case proceed
    /// End with finish reason "stop" (a stop string completed).
    case stop
    /// End with finish reason "cancelled" (the caller's stream callback said so).
    case cancel
}

/// The outcome of one `generate` call.
public struct GenerationResult: Sendable, Equatable {
    /// Every sampled token, the eos token included when one ended the completion.
    public var tokens: [Int32]
    public var finishReason: FinishReason
    public var promptTokens: Int
    /// Prompt tokens whose KV entries were reused from the previous request (not evaluated again).
    public var reusedPromptTokens: Int
    /// The token that ended the completion if it was one of the eos ids (it is not part of the text).
    public var eosToken: Int32?
    /// Speculative decoding: tokens the MTP layer drafted and were verified, and those of them accepted.
    public var draftedTokens = 0
    public var acceptedTokens = 0

    public init(tokens: [Int32], finishReason: FinishReason, promptTokens: Int, reusedPromptTokens: Int,
                eosToken: Int32?) {
        self.tokens = tokens
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.reusedPromptTokens = reusedPromptTokens
        self.eosToken = eosToken
    }
}

/// Token-level generation over one model `Session`: prefix reuse, the sampler, eos ids, max_tokens and the
/// context limit. No text: `ChatSession` adds the template, tokenizer, stop strings and parsers on top, and the
/// benchmark drives it with raw token ids.
///
/// Invariant: `cachedTokens` lists exactly the tokens whose keys and values the session's KV cache holds, in
/// order. A token is appended only once it has been evaluated, so after a cancel, a stop or an error the cache
/// is still a valid prefix for the next request, which re-renders its prompt and reuses what matches.
public final class GenerationSession {
    public private(set) var session: Session
    public let eosTokenIDs: Set<Int32>
    /// Only ids below this are sampled (a tokenizer smaller than the model's padded vocabulary cannot decode the rest).
    public let sampleableVocabulary: Int
    public private(set) var cachedTokens: [Int32] = []

    public var contextLength: Int { session.contextLength }
    /// The caller's memory cap of the session (0: none), kept for `enableDrafting`'s rebuild.
    let memoryLimit: Int

    /// `drafting`: keep what MTP speculative decoding needs from the start (`enableDrafting`).
    /// `keyType`, `valueType`, `memoryLimit`: the KV cache's element types and the caller's memory cap (`Session`).
    public init(model: Model, contextLength: Int, threads: Int = 0, eosTokenIDs: [Int32],
                sampleableVocabulary: Int? = nil, drafting: Bool = false, keyType: KVType = .f32,
                valueType: KVType = .f32, memoryLimit: Int = 0) throws(GLMError) {
        let vocab = model.config.vocabSize
        let sampleable = sampleableVocabulary ?? vocab
        guard sampleable >= 1 && sampleable <= vocab else {
            throw .invalidArgument("the tokenizer has \(sampleable) ids but the model's vocabulary has \(vocab) rows")
        }
        session = try Session(model: model, contextLength: contextLength, threads: threads,
                              mtp: drafting && model.hasMTP, keyType: keyType, valueType: valueType,
                              memoryLimit: memoryLimit)
        self.memoryLimit = memoryLimit
        self.eosTokenIDs = Set(eosTokenIDs)
        self.sampleableVocabulary = sampleable
    }

    /// Makes the session keep what MTP drafting needs (a no-op if it does). A session created without it is
    /// rebuilt, which forgets its cache once.
    public func enableDrafting() throws(GLMError) {
        if session.drafts { return }
        guard session.model.hasMTP else {
            throw .invalidArgument("model '\(session.model.directory)' has no MTP layer to draft with")
        }
        session = try Session(model: session.model, contextLength: contextLength, threads: session.threads, mtp: true,
                              keyType: session.keyType, valueType: session.valueType, memoryLimit: memoryLimit)
        cachedTokens = []
    }

    /// Forgets the cache.
    public func reset() throws(GLMError) {
        try session.truncate(to: 0)
        cachedTokens = []
    }

    /// The number of leading tokens `prompt` shares with the cache.
    public func commonPrefixLength(with prompt: [Int32]) -> Int {
        var n = 0
        let limit = min(prompt.count, cachedTokens.count)
        while n < limit && prompt[n] == cachedTokens[n] { n += 1 }
        return n
    }

    /// Evaluates the part of `prompt` the cache does not already hold, then samples until an eos id, the
    /// callback's `.stop`/`.cancel`, `maxTokens`, or the end of the context. `onToken` sees every sampled token
    /// except an eos token, before it is evaluated. With a `constraint`, each step samples only among the ids
    /// its mask allows (applied before the sampler chain) and advances it by the token chosen; a complete
    /// constrained output whose mask allows nothing but ending stops as an eos would.
    ///
    /// `speculativeTokens` k > 0: MTP speculative decoding (the session must draft: `enableDrafting`). Each step
    /// the MTP layer drafts up to k tokens, the model verifies them and the next position in one forward pass,
    /// and the speculative sampling rule keeps the output distribution exactly that of plain decoding (greedy:
    /// the same tokens). Tokens still reach `onToken` one at a time, in order, so stop strings, cancellation,
    /// `maxTokens` and the constraint see exactly the tokens plain decoding would have produced.
    public func generate(prompt: [Int32], sampler: inout Sampler, maxTokens: Int?, constraint: GrammarMatcher? = nil,
                         speculativeTokens: Int = 0,
                         onToken: (Int32) throws(GLMError) -> TokenDecision) throws(GLMError) -> GenerationResult {
        guard !prompt.isEmpty else { throw .invalidArgument("the prompt has no tokens") }
        guard prompt.count < contextLength else {
            throw GLMError(.contextFull, "the prompt has \(prompt.count) tokens but the context holds \(contextLength)"
                + " (at least one position must be left for the reply)")
        }
        if let maxTokens, maxTokens < 1 { throw .invalidArgument("max_tokens is \(maxTokens), expected at least 1") }
        guard speculativeTokens >= 0 && speculativeTokens <= GenerationSession.maxSpeculativeTokens else {
            throw .invalidArgument("num_speculative_tokens is \(speculativeTokens), expected 0 (off) to"
                + " \(GenerationSession.maxSpeculativeTokens)")
        }
        if speculativeTokens > 0 && !session.drafts && draftOverride == nil {
            throw .invalidArgument(session.model.hasMTP
                ? "speculative decoding needs a session created with MTP drafting"
                : "model '\(session.model.directory)' has no MTP layer to draft with")
        }
        let vocab = session.model.config.vocabSize
        for (i, token) in prompt.enumerated() where token < 0 || Int(token) >= vocab {
            throw .invalidArgument("prompt token \(i) is \(token), outside the model's vocabulary 0..<\(vocab)")
        }

        // Keep the longest common prefix; the last prompt token is always evaluated again, for its logits.
        let reused = min(commonPrefixLength(with: prompt), prompt.count - 1)
        if reused < cachedTokens.count {
            try session.truncate(to: reused)
            cachedTokens.removeLast(cachedTokens.count - reused)
        }
        let logits = try evaluate(Array(prompt[reused...]))
        if speculativeTokens > 0 && session.drafts && draftOverride == nil {
            // The MTP cache's prefill (every prompt position but the last, whose next token is not sampled yet),
            // so that the first draft computes one row, as each later one does.
            let from = session.mtpPosition + 1
            if from < prompt.count {
                try Array(prompt[from...]).withUnsafeBufferPointer { (p) throws(GLMError) in
                    _ = try session.mtpLogits(nextTokens: p, logits: .none)
                }
            }
        }

        sampler.begin(prompt: prompt.map(Int.init))
        var result = GenerationResult(tokens: [], finishReason: .length, promptTokens: prompt.count,
                                      reusedPromptTokens: reused, eosToken: nil)

        // Records a chosen token (sampler, constraint, result) and says whether generation goes on; every token
        // of the reply passes through here in order, whichever way it was chosen.
        func emit(_ token: Int32) throws(GLMError) -> Bool {
            sampler.accept(Int(token))
            if let constraint { try constraint.accept(token) }
            result.tokens.append(token)
            if eosTokenIDs.contains(token) {
                result.finishReason = .stop
                result.eosToken = token
                return false
            }
            switch try onToken(token) {
            case .proceed: break
            case .stop:
                result.finishReason = .stop
                return false
            case .cancel:
                result.finishReason = .cancelled
                return false
            }
            if let maxTokens, result.tokens.count >= maxTokens { return false }   // .length
            if prompt.count + result.tokens.count >= contextLength { return false }   // .length: no room left
            return true
        }

        // The next token from one row of target logits, as plain decoding chooses it; nil ends the reply.
        func choose(_ row: [Float]) throws(GLMError) -> Int32? {
            let choice: Int?
            if let constraint {
                let allowed = try constraint.computeMask()
                choice = sampler.sample(row, allowed: allowed)
                if choice == nil {
                    // Nothing may follow: a complete output ends here (no end id is in the vocabulary), an
                    // incomplete one is a constraint the vocabulary cannot finish.
                    if try constraint.canEnd() {
                        result.finishReason = .stop
                        return nil
                    }
                    throw GLMError(.internal, "the output constraint allows no token at position \(result.tokens.count)"
                        + " of the reply; please report it with the request")
                }
            } else {
                choice = sampler.sample(row)
            }
            guard let sampled = choice else {
                throw GLMError(.internal, "the model produced no finite logit at position \(cachedTokens.count)")
            }
            return Int32(sampled)
        }

        /// One speculative step after `token` (already emitted, not yet evaluated): draft, verify in one forward pass,
        /// emit the accepted drafts; returns the next token to emit (the correction or bonus token), or nil when
        /// the reply ended inside the step. The cache afterwards lists exactly the evaluated tokens that were kept.
        func speculativeStep(after token: Int32) throws(GLMError) -> Int32? {
            let k = speculativeTokens
            let start = cachedTokens.count                  // the position `token` takes
            var limit = min(k, contextLength - 1 - start)   // the verify pass must fit the context
            if let maxTokens { limit = min(limit, maxTokens - result.tokens.count - 1) }
            if limit <= 0 { return try choose(try evaluate([token])) }

            // Draft: q_j after the sampler chain (with the penalties' and the constraint's state as if the earlier
            // drafts had been accepted), d_j ~ q_j. The masks are kept: position j's target uses the same one.
            var drafts: [Int32] = []
            var draftDistributions: [[Double]?] = []
            var masks: [[UInt64]?] = []
            var constraintSteps = 0
            // Undo the tentative accepts (also when drafting fails); verification replays the drafts it keeps
            // through `emit`.
            func undoDrafts() throws(GLMError) {
                for d in drafts.reversed() { sampler.unaccept(Int(d)) }
                if let constraint, constraintSteps > 0 { try constraint.rollback(constraintSteps) }
                constraintSteps = 0
            }
            while drafts.count < limit {
                let row: [Float]
                do { row = try draftRow(after: token, drafts: drafts) } catch { try undoDrafts(); throw error }
                var mask: [UInt64]?
                if let constraint {
                    do { mask = try constraint.computeMask() } catch { try undoDrafts(); throw error }
                }
                let q = sampler.speculativeDistribution(row, allowed: mask)
                let d: Int?
                if sampler.parameters.isGreedy {
                    d = mask.map { sampler.sample(row, allowed: $0) } ?? sampler.sample(row)
                } else {
                    d = q.flatMap { sampler.draw(weights: $0) }
                }
                guard let d else { break }
                if let mask, (mask[d >> 6] >> UInt64(d & 63)) & 1 == 0 { break }
                drafts.append(Int32(d))
                draftDistributions.append(q)
                masks.append(mask)
                sampler.accept(d)
                if eosTokenIDs.contains(Int32(d)) { break }   // nothing follows an end
                if let constraint {
                    do {
                        try constraint.accept(Int32(d))
                    } catch {
                        // Not a token the matcher takes (cannot happen for a masked draft): not a draft either.
                        sampler.unaccept(d)
                        drafts.removeLast()
                        draftDistributions.removeLast()
                        masks.removeLast()
                        break
                    }
                    constraintSteps += 1
                }
            }
            try undoDrafts()
            let drafted = drafts
            if drafted.isEmpty { return try choose(try evaluate([token])) }

            // Verify: `token` and the drafts in one pass; row j is the target for the token after position start + j.
            let rows = try evaluateAll([token] + drafted)
            result.draftedTokens += drafted.count
            var kept = 1                                    // evaluated tokens to keep: `token`, then accepted drafts
            for (j, d) in drafted.enumerated() {
                let target = rows[j]
                var accepted: Bool
                var correction: Int32?
                if sampler.parameters.isGreedy {
                    // p is one-hot at the token plain decoding picks: accept exactly that token.
                    let t = masks[j].map { sampler.sample(target, allowed: $0) } ?? sampler.sample(target)
                    guard let t else { throw GLMError(.internal, "the model produced no finite logit") }
                    accepted = t == Int(d)
                    correction = Int32(t)
                } else if let q = draftDistributions[j], let p = sampler.speculativeDistribution(target, allowed: masks[j]) {
                    // Accept with probability min(1, p(d)/q(d)); else draw from norm(max(0, p - q)).
                    let di = Int(d)
                    accepted = sampler.unitInterval() * q[di] < p[di]
                    if !accepted {
                        var residual = p
                        for i in residual.indices { residual[i] = max(0, p[i] - q[i]) }
                        if let r = sampler.draw(weights: residual) {
                            correction = Int32(r)
                        } else {
                            correction = try choose(target)   // rounding left no residual mass
                        }
                    }
                } else {
                    // A degenerate row (nothing survives the chain): plain decoding's choice, draft discarded.
                    accepted = false
                    correction = try choose(target)
                }
                if accepted {
                    result.acceptedTokens += 1
                    kept += 1
                    if !(try emit(d)) { try keep(start + kept); return nil }
                    continue
                }
                try keep(start + kept)
                return correction
            }
            // Every draft accepted: the bonus token from the last row.
            try keep(start + kept)
            return try choose(rows[drafted.count])
        }

        guard var token = try choose(logits) else { return result }
        while try emit(token) {
            let next: Int32?
            if speculativeTokens > 0 {
                next = try speculativeStep(after: token)
            } else {
                next = try choose(try evaluate([token]))
            }
            guard let next else { return result }
            token = next
        }
        return result
    }

    /// The most drafts per step (vLLM's MTP reapplies GLM's one layer up to 3 times in practice).
    public static let maxSpeculativeTokens = 3

    /// Test hook: replaces the MTP layer as drafter. Given every token so far (prompt, reply, earlier drafts of
    /// this step), returns the draft logits row for the next position.
    var draftOverride: (([Int32]) -> [Float])?

    /// The draft logits for the position after `drafts` (which follow `token`).
    private func draftRow(after token: Int32, drafts: [Int32]) throws(GLMError) -> [Float] {
        if let draftOverride { return Array(draftOverride(cachedTokens + [token] + drafts).prefix(sampleableVocabulary)) }
        let row: UnsafeBufferPointer<Float>
        if let last = drafts.last {
            row = try session.mtpDraftNext(token: last)
        } else {
            // The MTP cache catches up to the main cache: the tokens after its end, then `token`.
            var next = session.mtpPosition + 1 < cachedTokens.count
                ? Array(cachedTokens[(session.mtpPosition + 1)...]) : []
            next.append(token)
            row = try next.withUnsafeBufferPointer { (p) throws(GLMError) in try session.mtpDraftFirst(nextTokens: p) }
        }
        return Array(UnsafeBufferPointer(rebasing: row[0..<sampleableVocabulary]))
    }

    /// Keeps the first `n` cached tokens (drops rejected drafts from both caches).
    private func keep(_ n: Int) throws(GLMError) {
        guard n < cachedTokens.count else { return }
        try session.truncate(to: n)
        cachedTokens.removeLast(cachedTokens.count - n)
    }

    /// Runs `tokens` and returns every row's sampleable logits.
    private func evaluateAll(_ tokens: [Int32]) throws(GLMError) -> [[Float]] {
        let all = try tokens.withUnsafeBufferPointer { (p) throws(GLMError) in
            try session.evaluate(tokens: p, logits: .all)
        }
        cachedTokens.append(contentsOf: tokens)
        let vocab = session.model.config.vocabSize
        return (0..<tokens.count).map { r in
            Array(UnsafeBufferPointer(rebasing: all[(r * vocab)..<(r * vocab + sampleableVocabulary)]))
        }
    }

    /// Runs `tokens` through the model, records them as cached, and returns the sampleable part of the last row.
    private func evaluate(_ tokens: [Int32]) throws(GLMError) -> [Float] {
        let row = try tokens.withUnsafeBufferPointer { (p) throws(GLMError) in try session.evaluate(tokens: p) }
        cachedTokens.append(contentsOf: tokens)
        return Array(UnsafeBufferPointer(rebasing: row[0..<sampleableVocabulary]))
    }
}
