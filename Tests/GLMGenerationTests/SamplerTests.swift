import Glibc
import Testing
@testable import GLMGeneration

/// Each stage of the chain against hand-computed expectations, the order of the stages (vLLM v1: bias,
/// penalties, temperature, min-p, top-k, top-p), determinism under a seed, and the sampled frequencies.
@Suite struct SamplerTests {
    func parameters(_ edit: (inout SamplingParameters) -> Void) -> SamplingParameters {
        var p = SamplingParameters()
        edit(&p)
        return p
    }

    func logits(_ probabilities: [Double]) -> [Float] { probabilities.map { Float(log($0)) } }

    func expectDistribution(_ sampler: Sampler, _ row: [Float], _ expected: [Int: Double],
                            sourceLocation: SourceLocation = #_sourceLocation) {
        let got = sampler.distribution(row)
        #expect(Set(got.map(\.token)) == Set(expected.keys), sourceLocation: sourceLocation)
        for (token, p) in got {
            #expect(abs(p - (expected[token] ?? -1)) < 1e-6, "token \(token): \(p)", sourceLocation: sourceLocation)
        }
    }

    @Test func seededRandomMatchesTheReferenceAlgorithm() {
        // xoshiro256** over a SplitMix64-expanded seed (values from a direct transcription of the published C code).
        var r0 = SeededRandom(seed: 0)
        #expect([r0.next(), r0.next(), r0.next(), r0.next()] ==
                [0x99ec_5f36_cb75_f2b4, 0xbf6e_1f78_4956_452a, 0x1a5f_849d_4933_e6e0, 0x6aa5_94f1_262d_2d2c])
        var r42 = SeededRandom(seed: 42)
        #expect([r42.next(), r42.next()] == [0x1578_0b2e_0c2e_c716, 0x6104_d986_6d11_3a7e])
        var u = SeededRandom(seed: 7)
        for _ in 0..<10_000 {
            let x = u.nextUnitInterval()
            #expect(x >= 0 && x < 1)
        }
    }

    @Test func greedyTakesTheFirstMaximum() {
        var s = Sampler(parameters: parameters { $0.temperature = 0 }, seed: 1)
        s.begin(prompt: [])
        #expect(s.sample([1, 3, 3, 2]) == 1)
        #expect(s.sample([-.infinity, .nan, -5]) == 2)
        #expect(s.random == SeededRandom(seed: 1))   // greedy consumes no randomness
    }

    @Test func logitBiasIsAddedToRawLogits() {
        let s = Sampler(parameters: parameters { $0.logitBias = [2: 5] }, seed: 1)
        let e5 = exp(5.0)
        expectDistribution(s, [0, 0, 0], [0: 1 / (e5 + 2), 1: 1 / (e5 + 2), 2: e5 / (e5 + 2)])
        var greedy = Sampler(parameters: parameters { $0.temperature = 0; $0.logitBias = [0: -100] }, seed: 1)
        #expect(greedy.sample([10, 9, 8]) == 1)
    }

    @Test func repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfPromptAndOutput() {
        var s = Sampler(parameters: parameters { $0.repetitionPenalty = 2 }, seed: 1)
        s.begin(prompt: [0])
        s.accept(1)
        // [2, -1, 1.5, 0] -> [1, -2, 1.5, 0]
        let w = [exp(1.0), exp(-2.0), exp(1.5), 1.0]
        let z = w.reduce(0, +)
        expectDistribution(s, [2, -1, 1.5, 0], [0: w[0] / z, 1: w[1] / z, 2: w[2] / z, 3: w[3] / z])
    }

    @Test func frequencyAndPresencePenaltiesCountOnlyGeneratedTokens() {
        var s = Sampler(parameters: parameters { $0.frequencyPenalty = 0.5; $0.presencePenalty = 0.25 }, seed: 1)
        s.begin(prompt: [0, 0, 3])
        for t in [1, 1, 2] { s.accept(t) }
        // token 1: 1 - 2*0.5 - 0.25 = -0.25; token 2: 1 - 0.5 - 0.25 = 0.25; prompt tokens 0 and 3 untouched.
        let w = [exp(1.0), exp(-0.25), exp(0.25), exp(1.0)]
        let z = w.reduce(0, +)
        expectDistribution(s, [1, 1, 1, 1], [0: w[0] / z, 1: w[1] / z, 2: w[2] / z, 3: w[3] / z])
        // A new completion forgets the old output.
        s.begin(prompt: [])
        expectDistribution(s, [1, 1, 1, 1], [0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25])
    }

    @Test func penaltiesApplyBeforeTemperature() {
        // logit 1 with presence penalty 1 -> 0, then /0.5 -> 0; logit 0 -> 0. Penalising after temperature
        // would give 2 - 1 = 1 instead.
        var s = Sampler(parameters: parameters { $0.presencePenalty = 1; $0.temperature = 0.5 }, seed: 1)
        s.begin(prompt: [])
        s.accept(0)
        expectDistribution(s, [1, 0], [0: 0.5, 1: 0.5])
    }

    @Test func temperatureDividesLogits() {
        let s = Sampler(parameters: parameters { $0.temperature = 0.5 }, seed: 1)
        expectDistribution(s, [0, Float(log(2.0))], [0: 0.2, 1: 0.8])
        let hot = Sampler(parameters: parameters { $0.temperature = 2 }, seed: 1)
        expectDistribution(hot, [0, Float(log(4.0))], [0: 1.0 / 3, 1: 2.0 / 3])
    }

    @Test func topKKeepsTheKLargestAndTheirTies() {
        let s = Sampler(parameters: parameters { $0.topK = 2 }, seed: 1)
        let z = exp(4.0) + exp(3.0)
        expectDistribution(s, [1, 4, 3, 2], [1: exp(4.0) / z, 2: exp(3.0) / z])
        expectDistribution(s, [3, 1, 3, 3], [0: 1.0 / 3, 2: 1.0 / 3, 3: 1.0 / 3])
        let off = Sampler(parameters: parameters { $0.topK = -1 }, seed: 1)
        #expect(off.distribution([1, 4, 3, 2]).count == 4)
    }

    @Test func topPKeepsTokensWhileTheMassBeforeThemIsBelowP() {
        let row = logits([0.5, 0.3, 0.15, 0.05])
        expectDistribution(Sampler(parameters: parameters { $0.topP = 0.75 }, seed: 1), row, [0: 0.625, 1: 0.375])
        expectDistribution(Sampler(parameters: parameters { $0.topP = 0.85 }, seed: 1), row,
                           [0: 0.5 / 0.95, 1: 0.3 / 0.95, 2: 0.15 / 0.95])
        expectDistribution(Sampler(parameters: parameters { $0.topP = 0.1 }, seed: 1), row, [0: 1])
    }

    @Test func minPDropsTokensBelowAFractionOfTheTopProbability() {
        let row = logits([0.5, 0.3, 0.15, 0.05])
        expectDistribution(Sampler(parameters: parameters { $0.minP = 0.2 }, seed: 1), row,
                           [0: 0.5 / 0.95, 1: 0.3 / 0.95, 2: 0.15 / 0.95])
    }

    @Test func topKRunsBeforeTopP() {
        // top-k 2 renormalises to [4/7, 3/7]; 4/7 >= 0.5 so top-p keeps only token 0.
        // (top-p first would keep {0, 1}.)
        let s = Sampler(parameters: parameters { $0.topK = 2; $0.topP = 0.5 }, seed: 1)
        expectDistribution(s, logits([0.4, 0.3, 0.2, 0.1]), [0: 1])
    }

    @Test func minPRunsBeforeTopP() {
        // min-p 0.3 drops token 3 -> [4/9, 3/9, 2/9]; mass before token 2 is 7/9 >= 0.75 -> {0, 1}.
        // (top-p first would keep {0, 1, 2}.)
        let s = Sampler(parameters: parameters { $0.minP = 0.3; $0.topP = 0.75 }, seed: 1)
        expectDistribution(s, logits([0.4, 0.3, 0.2, 0.1]), [0: 4.0 / 7, 1: 3.0 / 7])
    }

    /// The binned top-p against a plain full sort, on a flat and on a peaked (model-like) large vocabulary.
    @Test(arguments: [(12.0, 1.0), (3.0, 4.0)])
    func topPOnALargeVocabularyMatchesAFullSort(spread: Double, power: Double) {
        var random = SeededRandom(seed: 99)
        let row: [Float] = (0..<50_000).map { _ in Float(pow(random.nextUnitInterval(), power) * spread * 4 - spread) }
        for p in [0.1, 0.5, 0.9, 0.95, 0.999] {
            let s = Sampler(parameters: parameters { $0.topP = p }, seed: 1)
            let got = s.distribution(row).map(\.token)
            let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            let maxLogit = Double(row[order[0]])
            let weights = order.map { exp(Double(row[$0]) - maxLogit) }
            let total = weights.reduce(0, +)
            var expected: [Int] = []
            var before = 0.0
            for (i, id) in order.enumerated() {
                if !expected.isEmpty && before / total >= p { break }
                expected.append(id)
                before += weights[i]
            }
            #expect(got == expected.sorted(), "top_p \(p): \(got.count) vs \(expected.count) tokens")
        }
    }

    @Test func theSameSeedGivesTheSameTokens() {
        let p = parameters { $0.temperature = 0.8; $0.topP = 0.95; $0.topK = 40 }
        var random = SeededRandom(seed: 5)
        let rows: [[Float]] = (0..<200).map { _ in (0..<500).map { _ in Float(random.nextUnitInterval() * 6) } }
        func run(_ seed: UInt64) -> [Int] {
            var s = Sampler(parameters: p, seed: seed)
            s.begin(prompt: [1, 2, 3])
            return rows.compactMap { row in
                let t = s.sample(row)
                if let t { s.accept(t) }
                return t
            }
        }
        #expect(run(1234) == run(1234))
        #expect(run(1234) != run(1235))
    }

    /// Pearson's chi-square over 20,000 draws (200 seeds x 100 draws) against the hand-computed distribution.
    /// The bound is the 99.99% quantile for the degrees of freedom, so a correct sampler fails with p < 1e-4;
    /// the seeds are fixed, so the outcome is the same on every run.
    func chiSquare(_ p: SamplingParameters, _ row: [Float], expected: [Int: Double]) -> (Double, Set<Int>) {
        var counts: [Int: Int] = [:]
        var n = 0
        for seed in 0..<200 {
            var s = Sampler(parameters: p, seed: UInt64(seed))
            s.begin(prompt: [])
            for _ in 0..<100 {
                if let t = s.sample(row) { counts[t, default: 0] += 1; n += 1 }
            }
        }
        var statistic = 0.0
        for (token, probability) in expected {
            let e = probability * Double(n)
            let o = Double(counts[token] ?? 0)
            statistic += (o - e) * (o - e) / e
        }
        return (statistic, Set(counts.keys))
    }

    @Test func sampledFrequenciesFollowTheDistribution() {
        let row = logits([0.5, 0.25, 0.15, 0.1])
        let (plain, seen) = chiSquare(SamplingParameters(), row, expected: [0: 0.5, 1: 0.25, 2: 0.15, 3: 0.1])
        #expect(plain < 21.11, "chi-square \(plain), df 3")
        #expect(seen == [0, 1, 2, 3])

        // Temperature 2: p ~ sqrt(p).
        let roots = [0.5, 0.25, 0.15, 0.1].map { $0.squareRoot() }
        let z = roots.reduce(0, +)
        let (hot, _) = chiSquare(parameters { $0.temperature = 2 }, row,
                                 expected: [0: roots[0] / z, 1: roots[1] / z, 2: roots[2] / z, 3: roots[3] / z])
        #expect(hot < 21.11, "chi-square \(hot), df 3")

        // top-k 3 + top-p 0.8: {0.5, 0.25, 0.15}/0.9 -> mass before token 2 is 0.833 >= 0.8 -> {0, 1}.
        let (filtered, kept) = chiSquare(parameters { $0.topK = 3; $0.topP = 0.8 }, row,
                                         expected: [0: 2.0 / 3, 1: 1.0 / 3])
        #expect(filtered < 15.14, "chi-square \(filtered), df 1")
        #expect(kept == [0, 1])
    }

    @Test func kthLargestSelects() {
        #expect(Sampler.kthLargest([3, 1, 4, 1, 5, 9, 2, 6], 1) == 9)
        #expect(Sampler.kthLargest([3, 1, 4, 1, 5, 9, 2, 6], 3) == 5)
        #expect(Sampler.kthLargest([2, 2, 2, 1], 3) == 2)
        #expect(Sampler.kthLargest([3, 1, 4, 1, 5, 9, 2, 6], 8) == 1)
    }

    @Test func validationNamesTheField() {
        var p = SamplingParameters()
        p.topP = 0
        #expect(throws: (any Error).self) { try p.validate(vocabularySize: 10) }
        p = SamplingParameters()
        p.logitBias = [10: 1]
        do {
            try p.validate(vocabularySize: 10)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("logit_bias"))
        }
    }
}
