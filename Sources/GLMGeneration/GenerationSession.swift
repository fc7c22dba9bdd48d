import GLMGrammar
import GLMModel
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
}

/// Token-level generation over one model `Session`: prefix reuse, the sampler, eos ids, max_tokens and the
/// context limit. No text: `ChatSession` adds the template, tokenizer, stop strings and parsers on top, and the
/// benchmark drives it with raw token ids.
///
/// Invariant: `cachedTokens` lists exactly the tokens whose keys and values the session's KV cache holds, in
/// order. A token is appended only once it has been evaluated, so after a cancel, a stop or an error the cache
/// is still a valid prefix for the next request, which re-renders its prompt and reuses what matches.
public final class GenerationSession {
    public let session: Session
    public let eosTokenIDs: Set<Int32>
    /// Only ids below this are sampled (a tokenizer smaller than the model's padded vocabulary cannot decode the rest).
    public let sampleableVocabulary: Int
    public private(set) var cachedTokens: [Int32] = []

    public var contextLength: Int { session.contextLength }

    public init(model: Model, contextLength: Int, threads: Int = 0, eosTokenIDs: [Int32],
                sampleableVocabulary: Int? = nil) throws(GLMError) {
        let vocab = model.config.vocabSize
        let sampleable = sampleableVocabulary ?? vocab
        guard sampleable >= 1 && sampleable <= vocab else {
            throw .invalidArgument("the tokenizer has \(sampleable) ids but the model's vocabulary has \(vocab) rows")
        }
        session = try Session(model: model, contextLength: contextLength, threads: threads, mtp: false)
        self.eosTokenIDs = Set(eosTokenIDs)
        self.sampleableVocabulary = sampleable
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
    public func generate(prompt: [Int32], sampler: inout Sampler, maxTokens: Int?, constraint: GrammarMatcher? = nil,
                         onToken: (Int32) throws(GLMError) -> TokenDecision) throws(GLMError) -> GenerationResult {
        guard !prompt.isEmpty else { throw .invalidArgument("the prompt has no tokens") }
        guard prompt.count < contextLength else {
            throw GLMError(.contextFull, "the prompt has \(prompt.count) tokens but the context holds \(contextLength)"
                + " (at least one position must be left for the reply)")
        }
        if let maxTokens, maxTokens < 1 { throw .invalidArgument("max_tokens is \(maxTokens), expected at least 1") }
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
        var logits = try evaluate(Array(prompt[reused...]))

        sampler.begin(prompt: prompt.map(Int.init))
        var result = GenerationResult(tokens: [], finishReason: .length, promptTokens: prompt.count,
                                      reusedPromptTokens: reused, eosToken: nil)
        while true {
            let choice: Int?
            if let constraint {
                let allowed = try constraint.computeMask()
                choice = sampler.sample(logits, allowed: allowed)
                if choice == nil {
                    // Nothing may follow: a complete output ends here (no end id is in the vocabulary), an
                    // incomplete one is a constraint the vocabulary cannot finish.
                    if try constraint.canEnd() {
                        result.finishReason = .stop
                        return result
                    }
                    throw GLMError(.internal, "the output constraint allows no token at position \(result.tokens.count)"
                        + " of the reply; please report it with the request")
                }
            } else {
                choice = sampler.sample(logits)
            }
            guard let sampled = choice else {
                throw GLMError(.internal, "the model produced no finite logit at position \(cachedTokens.count)")
            }
            let token = Int32(sampled)
            sampler.accept(sampled)
            if let constraint { try constraint.accept(token) }
            result.tokens.append(token)
            if eosTokenIDs.contains(token) {
                result.finishReason = .stop
                result.eosToken = token
                return result
            }
            switch try onToken(token) {
            case .proceed: break
            case .stop:
                result.finishReason = .stop
                return result
            case .cancel:
                result.finishReason = .cancelled
                return result
            }
            if let maxTokens, result.tokens.count >= maxTokens { return result }   // .length
            if prompt.count + result.tokens.count >= contextLength { return result }   // .length: no room left
            logits = try evaluate([token])
        }
    }

    /// Runs `tokens` through the model, records them as cached, and returns the sampleable part of the last row.
    private func evaluate(_ tokens: [Int32]) throws(GLMError) -> [Float] {
        let row = try tokens.withUnsafeBufferPointer { (p) throws(GLMError) in try session.evaluate(tokens: p) }
        cachedTokens.append(contentsOf: tokens)
        return Array(UnsafeBufferPointer(rebasing: row[0..<sampleableVocabulary]))
    }
}
