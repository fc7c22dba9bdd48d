import Testing
import GLMFormats
import GLMSupport
@testable import GLMModel

/// The forward pass against HF transformers (fp32, eager) on every fixture model: logits, per-layer hidden states,
/// expert sets; cached decode against one prefill; prefix reuse; sessions sharing a model.
@Suite struct ForwardPassTests {
    /// Logits tolerance relative to the largest |logit| of the reference (issue 10: 1e-4).
    static let logitTolerance = 1e-4

    @Test func everyFixtureModelIsFound() {
        #expect(ReferenceModel.names.count >= 5, "fixtures at \(ReferenceModel.root)")
    }

    /// Every kernel path this CPU can run: the parity tests run on each (AVX2 everywhere, AVX-512 where present).
    static let paths = KernelPath.available()

    @Test(arguments: ReferenceModel.names, ForwardPassTests.paths)
    func logitsHiddenStatesAndExpertsMatchTransformers(name: String, path: KernelPath) throws {
        let reference = try ReferenceModel(name)
        let model = try Model.load(directory: reference.directory, threads: 2, kernels: path)
        #expect(model.kernelPath == path)
        let tokens = try reference.tokens
        let session = try Session(model: model, contextLength: tokens.count, threads: 2)
        session.trace = ForwardTrace()
        let logits = try session.evaluate(tokens: tokens, logits: .all)

        let expected = try reference.floats("logits")
        let error = relativeError(logits, expected)
        print("\(name): logits max |Δ| \(maxAbsoluteError(logits, expected)) (relative \(error))")
        #expect(logits.count == expected.count)
        #expect(error < ForwardPassTests.logitTolerance, "\(name)")

        let layers = model.config.numHiddenLayers
        for l in 0...layers {
            let states = session.trace?.hiddenStates[l] ?? []
            let expectedStates = try reference.floats("hidden_states.\(l)")
            #expect(states.count == expectedStates.count)
            #expect(relativeError(states, expectedStates) < ForwardPassTests.logitTolerance, "\(name) hidden_states.\(l)")
        }
        for l in model.config.firstKDenseReplace..<layers {
            #expect(session.trace?.experts[l] == (try reference.expertSets("experts.layer\(l)")), "\(name) layer \(l)")
        }
    }

    @Test(arguments: ReferenceModel.names, ForwardPassTests.paths)
    func cachedDecodeEqualsOnePrefill(name: String, path: KernelPath) throws {
        let reference = try ReferenceModel(name)
        let model = try Model.load(directory: reference.directory, threads: 2, kernels: path)
        let tokens = try reference.tokens
        let vocab = model.config.vocabSize
        let full = try Session(model: model, contextLength: tokens.count).evaluate(tokens: tokens, logits: .all)

        // One token at a time.
        let decode = try Session(model: model, contextLength: tokens.count, threads: 2)
        for (t, token) in tokens.enumerated() {
            let row = try decode.evaluate(tokens: [token])
            #expect(relativeError(row, Array(full[(t * vocab)..<((t + 1) * vocab)])) < 1e-5, "\(name) position \(t)")
        }
        #expect(decode.position == tokens.count)

        // Uneven chunks through a batch smaller than the prompt (several forward chunks per call).
        let chunked = try Session(model: model, contextLength: tokens.count, threads: 3, batchSize: 3)
        var logits: [Float] = []
        for range in [0..<5, 5..<6, 6..<tokens.count] {
            logits += try chunked.evaluate(tokens: Array(tokens[range]), logits: .all)
        }
        #expect(relativeError(logits, full) < 1e-5, "\(name) chunked")
    }

    /// A sequence longer than one attention query block (32 rows) and than the batch: one prefill, chunked
    /// prefills and token-by-token decode agree (the reference covers 16 tokens; this covers the long paths).
    @Test(arguments: ["glm47", "grouped"], ForwardPassTests.paths)
    func longSequencesAgreeAcrossPaths(name: String, path: KernelPath) throws {
        let model = try Model.load(directory: try ReferenceModel(name).directory, threads: 2, kernels: path)
        let vocab = model.config.vocabSize
        var state: UInt64 = 12345
        let tokens: [Int32] = (0..<75).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int32((state >> 33) % UInt64(vocab))
        }
        let full = try Session(model: model, contextLength: 80).evaluate(tokens: tokens, logits: .all)
        let chunked = try Session(model: model, contextLength: 80, threads: 3, batchSize: 40)
            .evaluate(tokens: tokens, logits: .all)
        #expect(relativeError(chunked, full) < 1e-5)
        let decode = try Session(model: model, contextLength: 75, threads: 1)
        var worst = 0.0
        for (t, token) in tokens.enumerated() {
            let row = try decode.evaluate(tokens: [token])
            worst = max(worst, relativeError(row, Array(full[(t * vocab)..<((t + 1) * vocab)])))
        }
        #expect(worst < 1e-5, "\(name)")
    }

    /// Asking for the last row's logits only lets the last layer skip every other row past its keys and values
    /// (`Session.forward`): the last row equals that row of a run that computes every row, and the cache the skipping
    /// run leaves behind (keys and values of every row, chunks without logits included) gives the same decode.
    @Test(arguments: ["glm47", "grouped"], ForwardPassTests.paths)
    func lastRowLogitsEqualEveryRowLogits(name: String, path: KernelPath) throws {
        let model = try Model.load(directory: try ReferenceModel(name).directory, threads: 2, kernels: path)
        let vocab = model.config.vocabSize
        let tokens: [Int32] = (0..<75).map { Int32(($0 * 4099 + 7) % vocab) }
        let full = try Session(model: model, contextLength: 80).evaluate(tokens: tokens, logits: .all)
        func row(_ t: Int) -> [Float] { Array(full[(t * vocab)..<((t + 1) * vocab)]) }
        for batch in [75, 25] {
            // batch 25: two chunks of the prompt give no logits at all, the third its last row.
            let session = try Session(model: model, contextLength: 80, threads: 2, batchSize: batch)
            let last = try session.evaluate(tokens: Array(tokens[0..<60]), logits: .last)
            #expect(relativeError(last, row(59)) < 1e-5, "\(name) batch \(batch) prompt")
            var worst = 0.0
            for t in 60..<75 { worst = max(worst, relativeError(try session.evaluate(tokens: [tokens[t]]), row(t))) }
            #expect(worst < 1e-5, "\(name) batch \(batch) decode after the prompt")
            // No logits at all: the last layer computes keys and values only.
            let silent = try Session(model: model, contextLength: 80, threads: 2, batchSize: batch)
            try silent.evaluate(tokens: Array(tokens[0..<74]), logits: .none)
            #expect(relativeError(try silent.evaluate(tokens: [tokens[74]]), row(74)) < 1e-5, "\(name) batch \(batch) none")
        }
    }

    /// The AVX2 and AVX-512 GEMM micro-kernels sum in the same order: a 75-token prefill (GEMM for every
    /// projection and the attention products) gives bit-identical logits on both. Needs an AVX-512 host.
    @Test(.enabled(if: ForwardPassTests.paths.count == 2, "this CPU has no AVX-512: only the AVX2 path exists"),
          arguments: ReferenceModel.names)
    func bothKernelPathsGiveIdenticalLogits(name: String) throws {
        let directory = try ReferenceModel(name).directory
        var results: [[Float]] = []
        for path in KernelPath.allCases {
            let model = try Model.load(directory: directory, threads: 2, kernels: path)
            let vocab = model.config.vocabSize
            let tokens: [Int32] = (0..<75).map { Int32(($0 * 7919 + 13) % vocab) }
            results.append(try Session(model: model, contextLength: 80).evaluate(tokens: tokens, logits: .all))
        }
        #expect(results[0] == results[1], "\(name)")
    }

    /// A prefix evaluated without logits (`.none` skips lm_head) leaves the same cache: the next token's logits
    /// equal the reference's. MTP drafts likewise.
    @Test(arguments: ReferenceModel.names)
    func evaluatingWithoutLogitsKeepsTheCache(name: String) throws {
        let reference = try ReferenceModel(name)
        let model = try Model.load(directory: reference.directory, threads: 2)
        let tokens = try reference.tokens
        let vocab = model.config.vocabSize
        let expected = try reference.floats("logits")
        let session = try Session(model: model, contextLength: tokens.count)
        let nothing = try session.evaluate(tokens: Array(tokens.dropLast()), logits: .none)
        #expect(nothing.isEmpty)
        let last = try session.evaluate(tokens: [tokens[tokens.count - 1]])
        #expect(relativeError(last, Array(expected[((tokens.count - 1) * vocab)...])) < ForwardPassTests.logitTolerance)
        if model.hasMTP, reference.has("mtp_logits") {
            #expect(try session.mtpLogits(nextTokens: Array(tokens[1..<(tokens.count - 1)]), logits: .none).isEmpty)
            let draft = try session.mtpLogits(nextTokens: [tokens[tokens.count - 1]])
            let drafts = try reference.floats("mtp_logits")
            #expect(relativeError(draft, Array(drafts[((tokens.count - 2) * vocab)...])) < ForwardPassTests.logitTolerance)
        }
    }

    @Test(arguments: ReferenceModel.names)
    func truncateReusesThePrefix(name: String) throws {
        let reference = try ReferenceModel(name)
        let model = try Model.load(directory: reference.directory)
        let tokens = try reference.tokens
        let expected = try reference.floats("logits")
        let vocab = model.config.vocabSize
        let session = try Session(model: model, contextLength: tokens.count)
        // A different continuation first, then back to the shared prefix of 7 tokens.
        try session.evaluate(tokens: Array(tokens[0..<7]) + [1, 2, 3])
        try session.truncate(to: 7)
        #expect(session.position == 7)
        let rest = try session.evaluate(tokens: Array(tokens[7...]), logits: .all)
        #expect(relativeError(rest, Array(expected[(7 * vocab)...])) < ForwardPassTests.logitTolerance)
    }

    @Test func sessionsOnSeveralThreadsShareOneModel() throws {
        let reference = try ReferenceModel("glm47")
        let model = try Model.load(directory: reference.directory, threads: 2)
        let tokens = try reference.tokens
        let expected = try reference.floats("logits")
        let vocab = model.config.vocabSize
        let lastRow = Array(expected[((tokens.count - 1) * vocab)...])
        let results = UnsafeMutablePointer<Double>.allocate(capacity: 4)
        defer { results.deallocate() }
        // Four sessions on four threads at once (the shared pool runs a busy job serially: also exercised).
        ThreadPool().parallelFor(4, threads: 4) { i in
            results[i] = 1
            guard let session = try? Session(model: model, contextLength: tokens.count, threads: 2),
                  let logits = try? session.evaluate(tokens: tokens) else { return }
            results[i] = relativeError(logits, lastRow)
        }
        for i in 0..<4 { #expect(results[i] < ForwardPassTests.logitTolerance) }
    }
}
