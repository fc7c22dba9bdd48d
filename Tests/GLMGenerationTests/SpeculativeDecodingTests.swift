import Testing
import GLMFormats
import GLMModel
import GLMNumerics
import GLMSupport
import Glibc
@testable import GLMGeneration

/// MTP speculative decoding is lossless: greedy output equals plain decoding token for token, sampled output has
/// plain decoding's distribution, and both caches roll back exactly. The references are plain decoding itself
/// (`speculativeTokens: 0`, tested against transformers elsewhere) and, for sampling, the exact distribution the
/// sampler chain gives over the target model's logits.
@Suite struct SpeculativeDecodingTests {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(2)
        return (parts + ["Fixtures", "models"]).joined(separator: "/")
    }()

    /// Every fixture model with an MTP layer, found by loading each (`everyMTPFixtureIsHere` checks that the known
    /// ones are among them, so the tests cannot pass on none).
    static let mtpModels: [String] = {
        let names = (try? FileSystem.listDirectory(root)) ?? []
        return names.sorted().filter { name in
            let directory = FileSystem.join(root, name)
            guard FileSystem.exists(FileSystem.join(directory, "config.json")) else { return false }
            return (try? Model.load(directory: directory, threads: 1).hasMTP) == true
        }
    }()

    static func load(_ name: String) throws -> Model {
        try Model.load(directory: FileSystem.join(root, name), threads: 1)
    }

    static func engine(_ model: Model, context: Int = 256, kv: KVType = .f32) throws -> GenerationSession {
        try GenerationSession(model: model, contextLength: context, threads: 1,
                              eosTokenIDs: [Int32(model.config.vocabSize + 7)], drafting: true, keyType: kv,
                              valueType: kv)
    }

    /// Every KV cache element type: speculative decoding must stay exact with each (a cache row is converted once,
    /// when written, and attention reads it the same way whatever the batch).
    static let kvTypes = KVType.allCases

    /// A fixed pseudo-random prompt.
    static func prompt(_ count: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in Int32(random.next() % UInt64(vocab)) }
    }

    static func greedy() -> Sampler {
        var p = SamplingParameters()
        p.temperature = 0
        return Sampler(parameters: p, seed: 0)
    }

    @Test func everyMTPFixtureIsHere() throws {
        #expect(Set(["air", "glm47", "rope_default", "tied_shared2"]).isSubset(of: SpeculativeDecodingTests.mtpModels))
        #expect(!SpeculativeDecodingTests.mtpModels.contains("grouped"))   // its checkpoint has no MTP tensors
    }

    /// The verification pass evaluates k + 1 tokens at once; its rows must be the very logits one-token decoding
    /// gives (fewer than 8 rows take the same row kernels), or greedy could flip on a near tie.
    @Test(arguments: mtpModels, kvTypes)
    func batchedRowsAreBitIdenticalToOneTokenSteps(name: String, kv: KVType) throws {
        let model = try SpeculativeDecodingTests.load(name)
        let vocab = model.config.vocabSize
        let tokens = SpeculativeDecodingTests.prompt(12, vocab: vocab, seed: 5)
        for batch in 2...4 {
            let a = try Session(model: model, contextLength: 64, threads: 1, keyType: kv, valueType: kv)
            let b = try Session(model: model, contextLength: 64, threads: 1, keyType: kv, valueType: kv)
            try a.evaluate(tokens: Array(tokens[0..<8]), logits: .none)
            try b.evaluate(tokens: Array(tokens[0..<8]), logits: .none)
            let together = try a.evaluate(tokens: Array(tokens[8..<(8 + batch)]), logits: .all)
            var alone: [Float] = []
            for t in 8..<(8 + batch) { alone += try b.evaluate(tokens: [tokens[t]]) }
            #expect(together.map(\.bitPattern) == alone.map(\.bitPattern), "\(name) \(kv) batch \(batch)")
        }
    }

    /// Greedy: the same tokens as plain decoding on every MTP fixture, k = 1, 2, 3, over a long reply (to the end
    /// of the context), and again on a second request that reuses the first one's cache.
    @Test(arguments: mtpModels, [KVType.f32, .q8_0])
    func greedyEqualsPlainDecodingTokenForToken(name: String, kv: KVType) throws {
        let model = try SpeculativeDecodingTests.load(name)
        let vocab = model.config.vocabSize
        let prompt = SpeculativeDecodingTests.prompt(9, vocab: vocab, seed: 11)
        let plain = try SpeculativeDecodingTests.engine(model, kv: kv)
        var sampler = SpeculativeDecodingTests.greedy()
        let reference = try plain.generate(prompt: prompt, sampler: &sampler, maxTokens: nil) { _ in .proceed }
        #expect(reference.tokens.count == 256 - 9)
        let second = prompt + Array(reference.tokens[0..<40]) + [3, 1, 4]
        let reference2 = try plain.generate(prompt: second, sampler: &sampler, maxTokens: 150) { _ in .proceed }
        for k in 1...3 {
            let engine = try SpeculativeDecodingTests.engine(model, kv: kv)
            var s = SpeculativeDecodingTests.greedy()
            var streamed: [Int32] = []
            let result = try engine.generate(prompt: prompt, sampler: &s, maxTokens: nil, speculativeTokens: k) {
                streamed.append($0)
                return .proceed
            }
            #expect(result.tokens == reference.tokens, "\(name) k=\(k)")
            #expect(streamed == reference.tokens, "\(name) k=\(k)")
            #expect(result.finishReason == reference.finishReason)
            #expect(result.draftedTokens > 0 && result.acceptedTokens <= result.draftedTokens)
            #expect(engine.cachedTokens == Array((prompt + result.tokens).prefix(engine.cachedTokens.count)))
            #expect(engine.session.position == engine.cachedTokens.count)
            let result2 = try engine.generate(prompt: second, sampler: &s, maxTokens: 150, speculativeTokens: k) { _ in .proceed }
            #expect(result2.tokens == reference2.tokens, "\(name) k=\(k) second request")
            #expect(result2.reusedPromptTokens == reference2.reusedPromptTokens)
            print("\(name) k=\(k): accepted \(result.acceptedTokens) of \(result.draftedTokens) drafts")
        }
    }

    /// After speculative steps (rejections included), the MTP cache equals one built from scratch over the kept
    /// tokens: the next draft matches a fresh session's draft for the same position.
    @Test(arguments: ["glm47", "air"], kvTypes)
    func bothCachesRollBackExactly(name: String, kv: KVType) throws {
        let model = try SpeculativeDecodingTests.load(name)
        let vocab = model.config.vocabSize
        let engine = try SpeculativeDecodingTests.engine(model, context: 128, kv: kv)
        var sampler = SpeculativeDecodingTests.greedy()
        let prompt = SpeculativeDecodingTests.prompt(7, vocab: vocab, seed: 2)
        let result = try engine.generate(prompt: prompt, sampler: &sampler, maxTokens: 37, speculativeTokens: 3) { _ in .proceed }
        #expect(result.draftedTokens > result.acceptedTokens)   // rejections happened
        let kept = engine.cachedTokens
        let next: Int32 = 5
        let session = engine.session
        let tail = Array(kept[(session.mtpPosition + 1)...]) + [next]
        let draft = Array(try tail.withUnsafeBufferPointer { try session.mtpDraftFirst(nextTokens: $0) })

        let fresh = try Session(model: model, contextLength: 128, threads: 1, keyType: kv, valueType: kv)
        let main = try fresh.evaluate(tokens: kept + [next])
        let freshDraft = try fresh.mtpLogits(nextTokens: Array(kept[1...]) + [next])
        let last = Array(freshDraft[((kept.count - 1) * vocab)...])
        // The fresh session computed the kept tokens in other chunks: their f32 keys may differ in the last bit, and
        // a lossy cache type may round such neighbours apart (bf16 by 2^-8 relative: measured 6e-4 here on air; f16
        // by 2^-11: 1.8e-4 on glm47 since prefill attention runs the packed GEMM over f16 tiles and decode the row
        // kernels, whose sums are grouped differently). The bounds are bf16's and f16's rounding steps apart.
        let bound: Float = kv == .bf16 ? 2e-3 : kv == .f16 ? 3e-4 : 1e-4
        #expect(maxAbsoluteDifference(draft, last) < bound, "\(name) \(kv)")
        // The main cache: the next token's logits equal the fresh session's.
        let continued = try session.evaluate(tokens: [next])
        #expect(maxAbsoluteDifference(continued, main) < bound, "\(name) \(kv)")
    }

    /// An oracle drafter that proposes plain decoding's next token, except at every third position, exercises
    /// acceptance runs, rejections and max_tokens cutting a step's accepted drafts.
    @Test func oracleDraftsAcceptAndRejectAndRespectMaxTokens() throws {
        let model = try SpeculativeDecodingTests.load("glm47")
        let vocab = model.config.vocabSize
        let prompt = SpeculativeDecodingTests.prompt(6, vocab: vocab, seed: 9)
        let plain = try SpeculativeDecodingTests.engine(model)
        var sampler = SpeculativeDecodingTests.greedy()
        let reference = try plain.generate(prompt: prompt, sampler: &sampler, maxTokens: 120) { _ in .proceed }
        let full = prompt + reference.tokens
        for k in 1...3 {
            for limit in [1, 2, 5, 31, 120] {
                let engine = try SpeculativeDecodingTests.engine(model)
                engine.draftOverride = oracle(full, vocab: vocab, wrongEvery: 3)
                var s = SpeculativeDecodingTests.greedy()
                let result = try engine.generate(prompt: prompt, sampler: &s, maxTokens: limit, speculativeTokens: k) { _ in .proceed }
                #expect(result.tokens == Array(reference.tokens.prefix(limit)), "k=\(k) max_tokens=\(limit)")
                #expect(result.finishReason == .length)
                if limit >= 31 {
                    #expect(result.acceptedTokens > 0 && result.acceptedTokens < result.draftedTokens)
                }
            }
        }
    }

    /// Sampling with the whole chain on (temperature, top-k, top-p, min-p, repetition/presence/frequency
    /// penalties, logit bias): the distribution of the first three reply tokens over many seeds matches the exact
    /// distribution plain decoding samples from (chi-square, p > 0.001), with the MTP layer drafting (random
    /// weights: nearly every draft is rejected) and with a drafter that is the target model plus noise (most
    /// drafts accepted, some rejected), k = 1, 2, 3. The same test rejects the MTP drafts' own distribution, so it
    /// has the power to tell.
    @Test func samplingKeepsPlainDecodingsDistribution() throws {
        let model = try SpeculativeDecodingTests.load("glm47")
        let vocab = model.config.vocabSize
        var parameters = SamplingParameters()
        parameters.temperature = 0.8
        parameters.topK = 5
        parameters.topP = 0.9
        parameters.minP = 0.05
        parameters.repetitionPenalty = 1.2
        parameters.presencePenalty = 0.3
        parameters.frequencyPenalty = 0.2
        let prompt = SpeculativeDecodingTests.prompt(6, vocab: vocab, seed: 21)
        parameters.logitBias = [Int(prompt[0]): 1.5]
        let depth = 3

        // Exact joint distribution of the first `depth` tokens under plain decoding.
        let exactSession = try Session(model: model, contextLength: 64, threads: 1)
        var expected: [[Int32]: Double] = [:]
        func expand(_ prefix: [Int32], _ probability: Double) throws {
            if prefix.count == depth { expected[prefix] = probability; return }
            try exactSession.truncate(to: 0)
            let row = try exactSession.evaluate(tokens: prompt + prefix)
            var sampler = Sampler(parameters: parameters, seed: 0)
            sampler.begin(prompt: prompt.map(Int.init))
            for t in prefix { sampler.accept(Int(t)) }
            for (token, p) in sampler.distribution(row) { try expand(prefix + [Int32(token)], probability * p) }
        }
        try expand([], 1)

        // The target plus deterministic noise, as a drafter that is often right.
        let noisy = try Session(model: model, contextLength: 64, threads: 1)
        let noisyDrafter: ([Int32]) -> [Float] = { context in
            guard (try? noisy.truncate(to: 0)) != nil, var row = try? noisy.evaluate(tokens: context) else {
                return [Float](repeating: 0, count: vocab)
            }
            for i in row.indices { row[i] += 0.8 * Float(sin(Double(i) * 12.9898 + Double(context.count) * 78.233)) }
            return row
        }

        let runs = 1000
        for (k, useNoisy) in [(2, false), (1, true), (3, true)] {
            let engine = try SpeculativeDecodingTests.engine(model, context: 64)
            if useNoisy { engine.draftOverride = noisyDrafter }
            var counts: [[Int32]: Int] = [:]
            var drafted = 0, accepted = 0
            for seed in 0..<runs {
                var sampler = Sampler(parameters: parameters, seed: UInt64(seed) &* 7919 &+ 13)
                // Two tokens past `depth`, so that every step drafts k tokens.
                let r = try engine.generate(prompt: prompt, sampler: &sampler, maxTokens: depth + 2,
                                            speculativeTokens: k) { _ in .proceed }
                counts[Array(r.tokens.prefix(depth)), default: 0] += 1
                drafted += r.draftedTokens
                accepted += r.acceptedTokens
            }
            let (statistic, critical) = chiSquare(counts, expected, runs: runs)
            print("k=\(k) \(useNoisy ? "noisy target" : "MTP"): chi-square \(statistic) (critical \(critical)),"
                + " accepted \(accepted) of \(drafted)")
            #expect(statistic < critical, "k=\(k) noisy=\(useNoisy)")
            #expect(drafted > runs && accepted < drafted)
            if useNoisy { #expect(accepted > drafted / 4) }
        }

        // Power: the drafter's own samples (the MTP distribution, here its first token after the prompt's first
        // token) are not the target's.
        let drafter = try Session(model: model, contextLength: 64, threads: 1)
        try drafter.evaluate(tokens: prompt, logits: .none)
        var counts: [[Int32]: Int] = [:]
        var draftExpected: [[Int32]: Double] = [:]
        for (prefix, p) in expected { draftExpected[[prefix[0]], default: 0] += p }
        var sampler = Sampler(parameters: parameters, seed: 1)
        sampler.begin(prompt: prompt.map(Int.init))
        try drafter.truncate(to: prompt.count)
        let draftRow = try drafter.mtpLogits(nextTokens: Array(prompt[1...]) + [prompt[0]], logits: .last)
        for _ in 0..<runs {
            if let t = sampler.sample(draftRow) { counts[[Int32(t)], default: 0] += 1 }
        }
        let (statistic, critical) = chiSquare(counts, draftExpected, runs: runs)
        #expect(statistic > critical, "the test cannot tell the drafter from the target")
    }
}

/// A drafter that proposes `sequence`'s next token while the context follows it (a wrong one every
/// `wrongEvery` positions), as a one-hot-ish logits row.
func oracle(_ sequence: [Int32], vocab: Int, wrongEvery: Int) -> ([Int32]) -> [Float] {
    { context in
        var row = [Float](repeating: 0, count: vocab)
        var proposal: Int32 = 0
        if context.count < sequence.count && Array(sequence.prefix(context.count)) == context {
            proposal = sequence[context.count]
            if context.count % wrongEvery == wrongEvery - 1 { proposal = (proposal + 1) % Int32(vocab) }
        }
        row[Int(proposal)] = 8
        return row
    }
}

func maxAbsoluteDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    var m: Float = 0
    for i in a.indices { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// Pearson's chi-square of `counts` against `expected` probabilities (cells with expected count < 5 pooled, a
/// sample outside the support counted into the pooled cell), and the critical value at p = 0.001 for its degrees
/// of freedom (Wilson-Hilferty).
func chiSquare<K: Hashable>(_ counts: [K: Int], _ expected: [K: Double], runs: Int) -> (Double, Double) {
    var statistic = 0.0
    var cells = 0
    var pooledExpected = 0.0, pooledObserved = 0
    for (key, p) in expected {
        let e = p * Double(runs)
        let o = counts[key] ?? 0
        if e < 5 { pooledExpected += e; pooledObserved += o; continue }
        statistic += (Double(o) - e) * (Double(o) - e) / e
        cells += 1
    }
    for (key, o) in counts where expected[key] == nil { pooledObserved += o }
    if pooledExpected > 0 || pooledObserved > 0 {
        let e = max(pooledExpected, 1e-9)
        statistic += (Double(pooledObserved) - e) * (Double(pooledObserved) - e) / e
        cells += 1
    }
    let df = Double(max(cells - 1, 1))
    let z = 3.0902   // the standard normal's 0.999 quantile
    let h = 2 / (9 * df)
    let critical = df * pow3(1 - h + z * h.squareRoot())
    return (statistic, critical)
}

private func pow3(_ x: Double) -> Double { x * x * x }
