import Testing
import GLMNumerics
@testable import GLMModel

/// The `.openBLAS` GEMM backend on every fixture model (f32, bf16 `air`, f16 `grouped`): the same logits as the
/// `.packed` backend, and prefill = chunked prefill = token-by-token decode with it.
///
/// The prompt is the reference prompt followed by pseudo-random tokens, 75 in all, so that routed experts also
/// receive enough rows to go through sgemm (16 tokens leave most experts on the row kernel).
@Suite struct GEMMBackendTests {
    static let tolerance = 1e-5

    func prompt(_ reference: ReferenceModel, vocab: Int) throws -> [Int32] {
        var tokens = try reference.tokens
        var state: UInt64 = 4242
        while tokens.count < 75 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            tokens.append(Int32((state >> 33) % UInt64(vocab)))
        }
        return tokens
    }

    @Test(arguments: ReferenceModel.names)
    func bothBackendsGiveTheSameLogits(name: String) throws {
        let reference = try ReferenceModel(name)
        let packed = try Model.load(directory: reference.directory, threads: 2, gemm: .packed)
        let openBLAS = try Model.load(directory: reference.directory, threads: 2, gemm: .openBLAS)
        if GEMMBackend.environmentValue == nil {
            #expect(packed.gemmBackend == .packed && openBLAS.gemmBackend == .openBLAS)
        }
        let vocab = packed.config.vocabSize
        let tokens = try prompt(reference, vocab: vocab)
        let expected = try Session(model: packed, contextLength: tokens.count).evaluate(tokens: tokens, logits: .all)
        let logits = try Session(model: openBLAS, contextLength: tokens.count).evaluate(tokens: tokens, logits: .all)
        let error = relativeError(logits, expected)
        print("\(name): openblas vs packed logits relative error \(error)")
        #expect(logits.count == expected.count)
        #expect(error < GEMMBackendTests.tolerance, "\(name)")

        // And the reference prompt's positions against transformers.
        let transformers = try reference.floats("logits")
        #expect(relativeError(logits[..<transformers.count], transformers) < ForwardPassTests.logitTolerance, "\(name)")
    }

    @Test(arguments: ReferenceModel.names)
    func prefillEqualsDecodeWithOpenBLAS(name: String) throws {
        let reference = try ReferenceModel(name)
        let model = try Model.load(directory: reference.directory, threads: 2, gemm: .openBLAS)
        let vocab = model.config.vocabSize
        let tokens = try prompt(reference, vocab: vocab)
        let full = try Session(model: model, contextLength: tokens.count).evaluate(tokens: tokens, logits: .all)

        let chunked = try Session(model: model, contextLength: tokens.count, threads: 3, batchSize: 30)
            .evaluate(tokens: tokens, logits: .all)
        #expect(relativeError(chunked, full) < GEMMBackendTests.tolerance, "\(name) chunked")

        let decode = try Session(model: model, contextLength: tokens.count, threads: 1)
        var worst = 0.0
        for (t, token) in tokens.enumerated() {
            let row = try decode.evaluate(tokens: [token])
            worst = max(worst, relativeError(row, Array(full[(t * vocab)..<((t + 1) * vocab)])))
        }
        #expect(worst < GEMMBackendTests.tolerance, "\(name) decode")
    }
}
