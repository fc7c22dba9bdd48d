import Testing
@testable import GLMModel

/// MTP draft logits against the reference (a float64 NumPy implementation of docs/MODEL.md §3.9; transformers has no
/// MTP path for these tiny models), on every fixture model that has an MTP layer.
@Suite struct MultiTokenPredictionTests {
    /// The fixture models with an MTP layer and its reference drafts; `everyMTPModelIsCompared` fails if the list
    /// and the fixtures disagree, so the comparison cannot pass on none.
    static let names = ["air", "glm47", "rope_default", "tied_shared2"]

    @Test func everyMTPModelIsCompared() throws {
        let withDrafts = try ReferenceModel.names.filter { try ReferenceModel($0).has("mtp_logits") }
        #expect(Set(withDrafts) == Set(MultiTokenPredictionTests.names))
        for name in MultiTokenPredictionTests.names {
            #expect(try Model.load(directory: try ReferenceModel(name).directory).hasMTP, "\(name)")
        }
    }

    @Test(arguments: names)
    func draftLogitsMatchReference(name: String) throws {
        let reference = try ReferenceModel(name)
        let model = try Model.load(directory: reference.directory, threads: 2)
        #expect(model.hasMTP)
        let tokens = try reference.tokens
        let session = try Session(model: model, contextLength: tokens.count, threads: 2)
        session.trace = ForwardTrace()
        try session.evaluate(tokens: tokens)
        let drafts = try session.mtpLogits(nextTokens: Array(tokens[1...]))
        let expected = try reference.floats("mtp_logits")
        print("\(name): MTP logits max |Δ| \(maxAbsoluteError(drafts, expected))")
        #expect(drafts.count == expected.count)
        #expect(relativeError(drafts, expected) < ForwardPassTests.logitTolerance, "\(name)")
        #expect(session.mtpPosition == tokens.count - 1)
        let mtpLayer = model.config.numHiddenLayers
        #expect(session.trace?.experts[mtpLayer] == (try reference.expertSets("mtp_experts")), "\(name)")
    }

    /// Drafting step by step while decoding (MTP cache grown one position per call, interleaved with the main
    /// model) gives the same drafts as one call over the whole prompt.
    @Test(arguments: names)
    func incrementalDraftsEqualOneCall(name: String) throws {
        let reference = try ReferenceModel(name)
        let model = try Model.load(directory: reference.directory)
        let tokens = try reference.tokens
        let expected = try reference.floats("mtp_logits")
        let vocab = model.config.vocabSize
        let session = try Session(model: model, contextLength: tokens.count)
        try session.evaluate(tokens: Array(tokens[0..<4]))
        var drafts = try session.mtpLogits(nextTokens: Array(tokens[1..<4]))   // positions 0, 1, 2
        for t in 4..<tokens.count {
            // The main model's position t-1 is known; the draft for it uses token t (the "sampled" one).
            drafts += try session.mtpLogits(nextTokens: [tokens[t]], logits: .last)
            try session.evaluate(tokens: [tokens[t]])
        }
        #expect(drafts.count == (tokens.count - 1) * vocab)
        #expect(relativeError(drafts, expected) < ForwardPassTests.logitTolerance, "\(name)")

        // Truncation rewinds the MTP cache with the main one.
        try session.truncate(to: 5)
        #expect(session.mtpPosition == 5)
        try session.truncate(to: 2)
        try session.evaluate(tokens: [tokens[2]])
        let again = try session.mtpLogits(nextTokens: [tokens[3]])
        #expect(relativeError(again, Array(expected[(2 * vocab)..<(3 * vocab)])) < ForwardPassTests.logitTolerance)
    }
}
