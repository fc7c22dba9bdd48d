import GLMNumerics
import Glibc

/// Picks the next token from one step's logits. The chain and its order are vLLM's (v1 sampler):
/// logit bias and penalties on the raw logits, then temperature (0 = greedy argmax), then min-p, top-k and
/// top-p filtering, then one draw from the renormalised distribution.
///
/// Deterministic: the only randomness is `SeededRandom`, one draw per sampled (non-greedy) token, and every
/// ordering tie is broken by token id, so the same seed and logits give the same token on every run.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    public private(set) var random: SeededRandom

    /// Tokens of the prompt (for the repetition penalty) and how often each output token was generated
    /// (for all three penalties).
    private var promptTokens: Set<Int> = []
    private var outputCounts: [Int: Int] = [:]

    public init(parameters: SamplingParameters, seed: UInt64) {
        self.parameters = parameters
        self.random = SeededRandom(seed: seed)
    }

    /// Starts a new completion: the penalties see `prompt` and no output yet.
    public mutating func begin(prompt: [Int]) {
        outputCounts = [:]
        promptTokens = parameters.repetitionPenalty != 1 ? Set(prompt) : []
    }

    /// Records a generated token, for the penalties of the following steps.
    public mutating func accept(_ token: Int) {
        outputCounts[token, default: 0] += 1
    }

    /// Forgets one `accept(token)` (a speculative draft that is verified again token by token).
    public mutating func unaccept(_ token: Int) {
        guard let count = outputCounts[token] else { return }
        if count <= 1 { outputCounts[token] = nil } else { outputCounts[token] = count - 1 }
    }

    /// Samples a token id from `logits` (one row, indexed by token id). Returns nil for an empty row.
    public mutating func sample(_ logits: [Float]) -> Int? {
        switch prepare(logits) {
        case .greedy(let token): return token
        case .random(let pool): return draw(from: pool)
        }
    }

    /// Samples among the ids `allowed` permits (bit `id % 64` of word `id / 64`, a constrained decoder's mask):
    /// the others become -inf before the chain, so bias, penalties, temperature, the filters and the seed act
    /// on the allowed ids exactly as they act on a whole row. If no allowed id has a finite logit after the
    /// chain, the lowest allowed id is returned; nil when none is allowed.
    public mutating func sample(_ logits: [Float], allowed: [UInt64]) -> Int? {
        var row = logits
        var first: Int?
        allowed.withUnsafeBufferPointer { words in
            row.withUnsafeMutableBufferPointer { r in
                for i in 0..<r.count {
                    let w = i >> 6
                    let bit = w < words.count ? (words[w] >> UInt64(i & 63)) & 1 : 0
                    if bit == 0 { r[i] = -.infinity } else if first == nil { first = i }
                }
            }
        }
        guard let first else { return nil }
        let picked: Int?
        switch prepare(row) {
        case .greedy(let token): picked = token
        case .random(let pool): picked = draw(from: pool)
        }
        // Every allowed logit non-finite (or -inf after bias): nothing in the chain can rank them.
        if let p = picked, p < row.count, (allowed[p >> 6] >> UInt64(p & 63)) & 1 == 1 { return p }
        return first
    }

    /// The distribution the next `sample` draws from (greedy: the argmax with probability 1), in ascending id
    /// order, without zero-probability tokens. For inspection and tests; it consumes no randomness.
    public func distribution(_ logits: [Float]) -> [(token: Int, probability: Double)] {
        switch prepare(logits) {
        case .greedy(let token): return token.map { [($0, 1.0)] } ?? []
        case .random(let pool):
            let ids = pool.tokens ?? Array(pool.probabilities.indices)
            let mass = pool.mass
            return ids.compactMap { id in
                let p = Double(pool.probabilities[id])
                return p > 0 ? (id, p / mass) : nil
            }
        }
    }

    // MARK: speculative decoding

    /// The whole chain's distribution over a row as dense probabilities (summing to 1), for the speculative
    /// sampling rule, which needs both the target's p and the draft's q after the same chain (as vLLM applies
    /// it to both). `allowed` masks ids as in `sample(_:allowed:)`. nil when greedy, or when nothing survives
    /// (the caller then samples with `sample`, which has the fallbacks).
    func speculativeDistribution(_ logits: [Float], allowed: [UInt64]?) -> [Double]? {
        if parameters.isGreedy { return nil }
        var row = logits
        if let allowed {
            for i in row.indices {
                let w = i >> 6
                if w >= allowed.count || (allowed[w] >> UInt64(i & 63)) & 1 == 0 { row[i] = -.infinity }
            }
        }
        guard case .random(let pool) = prepare(row), pool.mass > 0, pool.mass.isFinite else { return nil }
        var dense = [Double](repeating: 0, count: row.count)
        let scale = 1 / pool.mass
        if let tokens = pool.tokens {
            for id in tokens { dense[id] = Double(pool.probabilities[id]) * scale }
        } else {
            for (id, p) in pool.probabilities.enumerated() { dense[id] = Double(p) * scale }
        }
        if let allowed {   // a token the mask forbids never has mass, even when the chain left only -inf
            for i in dense.indices where dense[i] > 0 {
                let w = i >> 6
                if w >= allowed.count || (allowed[w] >> UInt64(i & 63)) & 1 == 0 { return nil }
            }
        }
        return dense
    }

    /// One inverse-CDF draw from dense (unnormalised, non-negative) weights, walking ids upwards; nil when they
    /// have no mass.
    mutating func draw(weights: [Double]) -> Int? {
        var total = 0.0
        for w in weights { total += w }
        guard total > 0, total.isFinite else { return nil }
        let target = random.nextUnitInterval() * total
        var cumulative = 0.0
        var last: Int?
        for (id, w) in weights.enumerated() where w > 0 {
            cumulative += w
            last = id
            if target < cumulative { return id }
        }
        return last
    }

    /// A uniform draw in [0, 1) (the accept test of a draft).
    mutating func unitInterval() -> Double { random.nextUnitInterval() }

    /// The tokens a draw may pick and their probabilities before renormalisation.
    struct Pool {
        /// Softmax of the tempered logits over the whole row.
        var probabilities: [Float]
        /// Surviving token ids in ascending order; nil when no filter removed anything.
        var tokens: [Int]?
        /// Sum of the survivors' probabilities.
        var mass: Double
    }

    private enum Prepared {
        case greedy(Int?)
        case random(Pool)
    }

    /// Everything before the draw: bias and penalties, then greedy, or temperature and the filters.
    private func prepare(_ logits: [Float]) -> Prepared {
        var row = logits
        for i in row.indices where row[i].isNaN { row[i] = -.infinity }   // a NaN logit can never be picked
        applyBiasAndPenalties(&row)
        if parameters.isGreedy { return .greedy(Sampler.argmax(row)) }
        if parameters.temperature != 1 {
            let temperature = Float(parameters.temperature)
            for i in row.indices { row[i] /= temperature }
        }
        return .random(filter(row))
    }

    /// Index of the largest logit; the first one on ties (as torch.argmax). NaN never wins.
    public static func argmax(_ row: [Float]) -> Int? {
        var best: Int?
        var bestValue = -Float.infinity
        for (i, v) in row.enumerated() where v > bestValue || (best == nil && v == bestValue) {
            best = i
            bestValue = v
        }
        return best
    }

    // MARK: the chain

    /// Logit bias (added), then repetition (prompt + output), frequency and presence (output) penalties.
    func applyBiasAndPenalties(_ row: inout [Float]) {
        for (id, bias) in parameters.logitBias where id >= 0 && id < row.count {
            row[id] += Float(bias)
        }
        let repetition = Float(parameters.repetitionPenalty)
        if repetition != 1 {
            func penalize(_ id: Int) {
                guard id >= 0 && id < row.count else { return }
                row[id] = row[id] > 0 ? row[id] / repetition : row[id] * repetition
            }
            for id in promptTokens { penalize(id) }
            for id in outputCounts.keys where !promptTokens.contains(id) { penalize(id) }
        }
        let frequency = Float(parameters.frequencyPenalty)
        let presence = Float(parameters.presencePenalty)
        if frequency != 0 || presence != 0 {
            for (id, count) in outputCounts where id >= 0 && id < row.count {
                row[id] -= frequency * Float(count) + presence
            }
        }
    }

    /// Softmax of the tempered logits, then min-p, top-k and top-p.
    func filter(_ row: [Float]) -> Pool {
        guard let top = Sampler.argmax(row) else { return Pool(probabilities: [], tokens: [], mass: 0) }
        let maxLogit = row[top]
        guard maxLogit.isFinite else {
            // +inf dominates everything; all -inf: nothing else can be picked either.
            var onlyTop = [Float](repeating: 0, count: row.count)
            onlyTop[top] = 1
            return Pool(probabilities: onlyTop, tokens: [top], mass: 1)
        }
        var probabilities = row
        probabilities.withUnsafeMutableBufferPointer { buffer in
            if let base = buffer.baseAddress { VectorKernels.softmax(base, count: buffer.count) }
        }
        var tokens: [Int]?
        // min-p: drop tokens whose probability is below min_p times the top one's.
        if parameters.minP > 0 {
            let threshold = Float(parameters.minP) * probabilities[top]
            tokens = probabilities.indices.filter { probabilities[$0] >= threshold }
        }
        let k = parameters.topK
        if k > 0 && k < (tokens?.count ?? row.count) {
            // vLLM keeps every logit >= the k-th largest, so ties at the boundary all survive.
            let ids = tokens ?? Array(row.indices)
            let kth = Sampler.kthLargest(ids.map { row[$0] }, k)
            tokens = ids.filter { row[$0] >= kth }
        }
        if parameters.topP < 1 {
            tokens = topP(tokens ?? Array(row.indices), row: row, probabilities: probabilities, maxLogit: maxLogit)
        }
        var mass = 0.0
        if let tokens {
            for id in tokens { mass += Double(probabilities[id]) }
        } else {
            for p in probabilities { mass += Double(p) }
        }
        return Pool(probabilities: probabilities, tokens: tokens, mass: mass)
    }

    /// Keeps the most probable tokens while the probability mass before each one (in descending order, ties by
    /// id) is below `top_p` of the candidates' mass; the top token always stays. This is vLLM's rule: drop a
    /// token when the ascending cumulative sum including it is <= 1 - p.
    ///
    /// Sorting 150k ids per token costs milliseconds, so the candidates are first binned by their distance
    /// from the top logit: whole bins above the one where the mass reaches p are kept and all bins below it
    /// dropped, and only the tokens of that one bin are sorted.
    private func topP(_ candidates: [Int], row: [Float], probabilities: [Float], maxLogit: Float) -> [Int] {
        let binCount = 4096
        let span: Float = 64                                // exp(-64) ~ 1.6e-28: the rest share the last bin
        let scale = Float(binCount - 1) / span
        var bins = [Int32](repeating: 0, count: candidates.count)
        var binMass = [Double](repeating: 0, count: binCount)
        var total = 0.0
        // Bounds-check-free loop: every id in `candidates` indexes `row` and `probabilities` (both full rows).
        row.withUnsafeBufferPointer { logit in
            probabilities.withUnsafeBufferPointer { probability in
                bins.withUnsafeMutableBufferPointer { bin in
                    binMass.withUnsafeMutableBufferPointer { mass in
                        for (i, id) in candidates.enumerated() {
                            let distance = maxLogit - logit[id]     // >= 0; +inf for masked tokens
                            let b = distance < span ? Int(distance * scale) : binCount - 1
                            bin[i] = Int32(b)
                            let p = Double(probability[id])
                            mass[b] += p
                            total += p
                        }
                    }
                }
            }
        }
        let target = parameters.topP * total
        var massBefore = 0.0
        var boundary = binCount - 1
        for bin in 0..<binCount {
            if massBefore + binMass[bin] >= target { boundary = bin; break }
            massBefore += binMass[bin]
        }
        var edge: [Int] = []                                // positions in `candidates` of the boundary bin
        for i in candidates.indices where bins[i] == boundary { edge.append(i) }
        edge.sort { a, b in
            let la = row[candidates[a]], lb = row[candidates[b]]
            return la != lb ? la > lb : candidates[a] < candidates[b]
        }
        var keptEdge: Set<Int> = []
        var keptAny = boundary > 0                          // bin 0 holds the top token
        for i in edge {
            if keptAny && massBefore >= target { break }
            keptEdge.insert(i)
            keptAny = true
            massBefore += Double(probabilities[candidates[i]])
        }
        var kept: [Int] = []
        kept.reserveCapacity(candidates.count)
        for i in candidates.indices where bins[i] < boundary || (bins[i] == boundary && keptEdge.contains(i)) {
            kept.append(candidates[i])
        }
        return kept
    }

    /// One inverse-CDF draw over the pool's renormalised probabilities, walking token ids upwards.
    private mutating func draw(from pool: Pool) -> Int? {
        let u = random.nextUnitInterval()
        let target = u * pool.mass
        var cumulative = 0.0
        var last: Int?
        if let tokens = pool.tokens {
            for id in tokens {
                let p = Double(pool.probabilities[id])
                if p <= 0 { continue }
                cumulative += p
                last = id
                if target < cumulative { return id }
            }
        } else {
            for (id, probability) in pool.probabilities.enumerated() where probability > 0 {
                cumulative += Double(probability)
                last = id
                if target < cumulative { return id }
            }
        }
        // Rounding left the target past the end: the last token with mass; an empty pool falls back to the first
        // survivor (only possible when every probability underflowed).
        return last ?? pool.tokens?.first
    }

    /// The k-th largest value (1-based) by quickselect on a copy.
    static func kthLargest(_ values: [Float], _ k: Int) -> Float {
        var a = values
        var lo = 0, hi = a.count - 1
        let target = k - 1
        while lo < hi {
            let pivot = a[(lo + hi) / 2]
            var i = lo, j = hi
            while i <= j {
                while a[i] > pivot { i += 1 }
                while a[j] < pivot { j -= 1 }
                if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { return a[target] }
        }
        return a[target]
    }
}
