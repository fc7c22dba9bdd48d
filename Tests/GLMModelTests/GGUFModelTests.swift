import Testing
import Foundation
@testable import GLMModel
import GLMFormats
import GLMSupport

/// GGUF models made by llama.cpp's own converter (tools/make_gguf_models.py, convert_hf_to_gguf.py's Glm4MoeModel)
/// from Tests/Fixtures/models/glm-tiny-chat:
///   * BF16, split in two files: the same bf16 bits as the safetensors checkpoint, so libglm's logits must be
///     *identical* to its logits on glm-tiny-chat (same kernels, same order of operations).
///   * Q8_0 (plain, and with q/k/v fused by --fuse-qkv) and a Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 mix: against transformers fp32 on the weights the file holds,
///     dequantised by gguf-py (reference-*.f32). libglm dequantises the same bits exactly (GGUFDequantTests); Q8_0 and
///     Q4_0 products use 8-bit activations as ggml does (`activationQuantisationTolerance`).
@Suite struct GGUFModelTests {
    static let directory = ReferenceModel.root + "/glm-tiny-gguf"
    static let safetensors = ReferenceModel.root + "/glm-tiny-chat"
    static let bf16 = directory + "/glm-tiny-bf16-00001-of-00002.gguf"
    static let q8 = directory + "/glm-tiny-q8_0.gguf"
    static let q8qkv = directory + "/glm-tiny-q8_0-qkv.gguf"
    /// Weight matrices in Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (requantised by gguf-py, ggml's reference quantisers).
    static let mixed = directory + "/glm-tiny-mixed.gguf"
    static let tokens: [Int32] = [4257, 4259, 10, 200, 3000, 77]

    /// The logits of every position of `tokens`, evaluated in chunks of `chunk` tokens (nil: all at once; 1: decode).
    func logits(_ model: Model, chunk: Int? = nil) throws -> [Float] {
        let session = try Session(model: model, contextLength: 16)
        let tokens = GGUFModelTests.tokens
        let size = chunk ?? tokens.count
        var out: [Float] = []
        for start in stride(from: 0, to: tokens.count, by: size) {
            out += try session.evaluate(tokens: Array(tokens[start..<min(tokens.count, start + size)]), logits: .all)
        }
        return out
    }

    func logits(_ model: Model, oneByOne: Bool) throws -> [Float] { try logits(model, chunk: oneByOne ? 1 : nil) }

    @Test func configFromMetadataEqualsConfigJSON() throws {
        let gguf = try Model.load(directory: GGUFModelTests.bf16)
        let st = try Model.load(directory: GGUFModelTests.safetensors)
        let a = gguf.config, b = st.config
        #expect(a.vocabSize == b.vocabSize && a.hiddenSize == b.hiddenSize && a.intermediateSize == b.intermediateSize)
        #expect(a.moeIntermediateSize == b.moeIntermediateSize && a.numHiddenLayers == b.numHiddenLayers)
        #expect(a.numAttentionHeads == b.numAttentionHeads && a.numKeyValueHeads == b.numKeyValueHeads)
        #expect(a.headDim == b.headDim && a.rotaryDim == b.rotaryDim && a.ropeTheta == b.ropeTheta)
        #expect(a.rmsNormEps == b.rmsNormEps && a.attentionBias == b.attentionBias && a.useQKNorm == b.useQKNorm)
        #expect(a.firstKDenseReplace == b.firstKDenseReplace && a.nRoutedExperts == b.nRoutedExperts)
        #expect(a.nSharedExperts == b.nSharedExperts && a.numExpertsPerTok == b.numExpertsPerTok)
        #expect(a.normTopkProb == b.normTopkProb && a.routedScalingFactor == b.routedScalingFactor)
        #expect(a.tieWordEmbeddings == b.tieWordEmbeddings && a.numNextnPredictLayers == b.numNextnPredictLayers)
        #expect(gguf.parameterCount == st.parameterCount)
        #expect(gguf.hasMTP == st.hasMTP)
        // generation_config.json's end ids, which the converter writes as eos, eot and eom
        let directory = try ModelDirectory(path: GGUFModelTests.safetensors)
        #expect(Set(a.eosTokenIDs) == Set(directory.eosTokenIDs) && a.eosTokenIDs.count == 3)
    }

    /// With f32 inputs (BF16Inputs.f32, the checkpoints' default) the GGUF file computes exactly what the safetensors
    /// checkpoint does. By default a GGUF model rounds bf16 weights' inputs to bf16 as llama.cpp does, which moves
    /// the logits by a fraction of a percent (not bit for bit what the checkpoint gives under `.bf16`: there the
    /// router is stored bf16, in the GGUF file f32 as llama.cpp's converter writes it).
    @Test func splitBF16GivesIdenticalLogitsToSafetensors() throws {
        let st = try Model.load(directory: GGUFModelTests.safetensors)
        #expect(st.bf16Inputs == .f32)
        let expected = try logits(st)
        #expect(try Model.load(directory: GGUFModelTests.bf16).bf16Inputs == .bf16)
        let roundedInputs = try logits(Model.load(directory: GGUFModelTests.bf16))
        let scale = expected.reduce(0.0) { max($0, abs(Double($1))) }
        let moved = maxAbsoluteError(roundedInputs, expected) / scale
        print("split BF16 GGUF, bf16 inputs vs f32 inputs: max |Δlogit| \(moved) of the scale")
        #expect(moved > 0 && moved < 0.01)
        // Any part of the split set, or the directory, opens the whole model.
        for path in [GGUFModelTests.bf16, GGUFModelTests.directory + "/glm-tiny-bf16-00002-of-00002.gguf"] {
            let model = try Model.load(directory: path, bf16Inputs: .f32)
            #expect(model.format == "gguf" && model.weightType == "bfloat16")
            let got = try logits(model)
            #expect(got.count == expected.count)
            #expect(got.map(\.bitPattern) == expected.map(\.bitPattern), "\(path)")
            let decode = try logits(model, oneByOne: true)
            let stDecode = try logits(st, oneByOne: true)
            #expect(decode.map(\.bitPattern) == stDecode.map(\.bitPattern))
        }
    }

    @Test(arguments: [(q8, "q8_0"), (q8qkv, "q8_0"), (mixed, "mixed")])
    func quantisedLogitsMatchTransformersOnDequantisedWeights(path: String, reference: String) throws {
        let model = try Model.load(directory: path)
        if reference == "q8_0" {
            #expect(model.weightType == "Q8_0")
            #expect(Set(model.parametersByType.keys) == ["Q8_0", "F32"])
        } else {
            #expect(Set(model.parametersByType.keys) == ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F32"])
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: GGUFModelTests.directory + "/reference-\(reference).f32"))
        let expected: [Float] = data.withUnsafeBytes { p in (0..<(data.count / 4)).map { p.load(fromByteOffset: 4 * $0, as: Float.self) } }
        #expect(expected.count == GGUFModelTests.tokens.count * model.config.vocabSize)
        let scale = expected.reduce(0.0) { max($0, abs(Double($1))) }
        let vocab = model.config.vocabSize
        func argmax(_ v: ArraySlice<Float>) -> Int { v.indices.max { v[$0] < v[$1] }! - v.startIndex }
        // Whole prompt (6 tokens: the prefill panels, from glm_q8act_panel_min_tokens = 5 tokens on for these
        // types), chunks of 4 (speculative verification's largest batch: the row × token tiles) and decode.
        var results: [Int: [Float]] = [:]
        for chunk in [GGUFModelTests.tokens.count, 4, 1] {
            let got = try logits(model, chunk: chunk)
            let worst = maxAbsoluteError(got, expected)
            print("\(path) (chunks of \(chunk)): max |Δlogit| \(worst), scale \(scale)")
            #expect(worst / scale < GGUFModelTests.activationQuantisationTolerance)
            for t in GGUFModelTests.tokens.indices {
                let row = (t * vocab)..<((t + 1) * vocab)
                #expect(argmax(got[row]) == argmax(expected[row]), "row \(t)")
            }
            results[chunk] = got
        }
        let whole = results[GGUFModelTests.tokens.count]!, four = results[4]!, decode = results[1]!
        // Every kernel path gives the same bits: on a CPU with AVX-512 VNNI the avx512 path runs the panels' VNNI
        // build (quantdot_vnni.c), the avx2 path the AVX2 one.
        for kernels in KernelPath.available() {
            let other = try logits(Model.load(directory: path, kernels: kernels))
            #expect(other.map(\.bitPattern) == whole.map(\.bitPattern), "\(path) on the \(kernels) path")
        }
        // Up to 4 tokens run the row kernel's tiles, which give decode's bits: what keeps speculative verification
        // lossless at temperature 0.
        #expect(four.map(\.bitPattern) == decode.map(\.bitPattern))
        // The panels sum the same exact int32 block products in another f32 order (docs/MODEL.md §2.6): the last
        // bits differ, nothing more (measured 0.9–1.1e-7 of the scale on these models; the bound leaves ~100×).
        let gap = maxAbsoluteError(whole, decode)
        print("\(path): prefill panels vs decode max |Δlogit| \(gap)")
        #expect(gap / scale < 1e-5)
    }

    /// Block-quantised weights multiply Q8_0-quantised activations (8-bit, as ggml computes on CPU), so libglm
    /// differs from transformers' f32 activations by that rounding: measured 0.64% (Q8_0 file) and 0.53% (mixed) of
    /// the logits' largest magnitude on these fixtures; the bound leaves a factor 3. (With f32 activations on the
    /// exactly dequantised weights, the first implementation, the difference was 2e-6: f32 summation order only.)
    static let activationQuantisationTolerance = 0.02

    /// Reference models converted by llama.cpp's converter (placeholder vocabulary): air (bf16, MTP with its own
    /// embed_tokens) and tied_shared2 (f32, tied lm_head: no `output.weight`, 2 shared experts, MTP). Same bits as the
    /// safetensors checkpoints, so with the same arithmetic (f32 inputs) the main logits and the MTP drafts must be
    /// identical.
    @Test(arguments: [("air", "air-bf16.gguf"), ("tied_shared2", "tied_shared2-f32.gguf")])
    func referenceModelsGiveIdenticalLogitsAndDrafts(name: String, file: String) throws {
        let st = try Model.load(directory: ReferenceModel.root + "/" + name)
        let gguf = try Model.load(directory: GGUFModelTests.directory + "/" + file, bf16Inputs: .f32)
        #expect(gguf.hasMTP && st.hasMTP)
        #expect(gguf.config.tieWordEmbeddings == st.config.tieWordEmbeddings)
        #expect(gguf.parameterCount == st.parameterCount)
        let tokens: [Int32] = [1, 7, 42, 3, 19, 100, 5]
        func run(_ m: Model) throws -> ([Float], [Float]) {
            let session = try Session(model: m, contextLength: 16)
            let logits = try session.evaluate(tokens: tokens, logits: .all)
            let drafts = try session.mtpLogits(nextTokens: Array(tokens[1...]))
            return (logits, Array(drafts))
        }
        let (a, ad) = try run(st), (b, bd) = try run(gguf)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(ad.map(\.bitPattern) == bd.map(\.bitPattern))
        #expect(!ad.isEmpty)
    }

    /// Fused tensors hold the same bytes in another arrangement: q/k/v rows in `attn_qkv` (converter --fuse-qkv),
    /// gate and up rows per expert in `ffn_gate_up_exps` (tools/make_gguf_models.py fuse_gate_up).
    @Test(arguments: [q8qkv, directory + "/glm-tiny-q8_0-gate_up.gguf"])
    func fusedTensorsEqualSeparate(path: String) throws {
        let a = try logits(try Model.load(directory: GGUFModelTests.q8))
        let fused = try Model.load(directory: path)
        let b = try logits(fused)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(try Model.load(directory: GGUFModelTests.q8).parameterCount == fused.parameterCount)
    }

    /// Random damage to the header (counts, lengths, types, dimensions, offsets, metadata values): every load either
    /// fails with an error or yields a model; none may crash or read outside the map.
    @Test func damagedHeadersNeverCrash() throws {
        let dir = try scratchDirectory("fuzz")
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: GGUFModelTests.mixed)))
        let header = try GGUFFile(path: GGUFModelTests.mixed).dataOffset
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        var failures = 0, loads = 0
        let path = dir + "/f.gguf"
        for _ in 0..<150 {
            var bytes = original
            for _ in 0..<(1 + next(4)) {
                let at = next(header)
                bytes[at] = [0x00, 0xFF, 0x7F, 0x80, UInt8(next(256))][next(5)]
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let model = try Model.load(directory: path)
                _ = try Session(model: model, contextLength: 4).evaluate(tokens: [1, 2], logits: .last)
                loads += 1
            } catch {
                failures += 1
            }
        }
        print("damaged GGUF headers: \(failures) refused, \(loads) loaded")
        #expect(failures > 0)
    }

    @Test func infoReportsFormatAndQuantisation() throws {
        let info = try Model.load(directory: GGUFModelTests.q8).info.compactJSON
        #expect(info.contains("\"format\":\"gguf\""))
        #expect(info.contains("\"dtype\":\"Q8_0\""))
        #expect(info.contains("\"quantization\":{\"F32\":"))
    }

    // MARK: hostile files

    func scratchDirectory(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "glm-gguf-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func expectError(_ path: String, contains parts: [String]) {
        do {
            _ = try Model.load(directory: path)
            Issue.record("\(path) loaded")
        } catch {
            for p in parts { #expect(error.message.contains(p), "\(error.message)") }
        }
    }

    @Test func missingSplitPartIsAClearError() throws {
        let dir = try scratchDirectory("split")
        try FileManager.default.copyItem(atPath: GGUFModelTests.bf16, toPath: dir + "/m-00001-of-00002.gguf")
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["part 2 of 2", "m-00002-of-00002.gguf", "does not exist"])
        expectError(dir, contains: ["does not exist"])
        // A part from another split set under the expected name: its split metadata gives it away.
        try FileManager.default.copyItem(atPath: GGUFModelTests.bf16, toPath: dir + "/m-00002-of-00002.gguf")
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["split.no"])
    }

    @Test func truncatedFileIsAnError() throws {
        let dir = try scratchDirectory("trunc")
        let data = try Data(contentsOf: URL(fileURLWithPath: GGUFModelTests.q8))
        for cut in [10, 1000, data.count / 2, data.count - 1] {
            try data.prefix(cut).write(to: URL(fileURLWithPath: dir + "/t.gguf"))
            expectError(dir + "/t.gguf", contains: ["t.gguf"])
        }
    }

    /// Rewrites the ggml type id of `tensor` in a copy of `source`'s header.
    func withType(_ type: UInt32, of tensor: String, in source: String, to path: String) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: source))
        let name = Data(tensor.utf8)
        let range = try #require(data.range(of: name))
        var at = range.upperBound
        let dims = Int(data[at]) | Int(data[at + 1]) << 8
        at += 4 + 8 * dims
        for i in 0..<4 { data[at + i] = UInt8((type >> (8 * UInt32(i))) & 0xFF) }
        try data.write(to: URL(fileURLWithPath: path))
    }

    @Test func unsupportedTypeIsRefusedNamingTensorAndType() throws {
        let dir = try scratchDirectory("type")
        // MXFP4 (id 39): a block format of 32 elements this library does not compute with.
        try withType(39, of: "blk.1.ffn_down_exps.weight", in: GGUFModelTests.q8, to: dir + "/x.gguf")
        expectError(dir + "/x.gguf", contains: ["blk.1.ffn_down_exps.weight", "MXFP4"])
        // An id ggml does not define.
        try withType(250, of: "blk.0.attn_k.weight", in: GGUFModelTests.q8, to: dir + "/y.gguf")
        expectError(dir + "/y.gguf", contains: ["blk.0.attn_k.weight", "250"])
    }

    @Test func otherArchitectureIsRefused() throws {
        let dir = try scratchDirectory("arch")
        var data = try Data(contentsOf: URL(fileURLWithPath: GGUFModelTests.q8))
        let range = try #require(data.range(of: Data("glm4moe".utf8)))
        data.replaceSubrange(range, with: Data("llama07".utf8))
        try data.write(to: URL(fileURLWithPath: dir + "/a.gguf"))
        expectError(dir + "/a.gguf", contains: ["general.architecture", "llama07"])
    }
}
