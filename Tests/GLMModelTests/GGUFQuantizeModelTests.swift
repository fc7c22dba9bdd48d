import Testing
import Foundation
@testable import GLMModel
import GLMFormats
import GLMSupport

/// GGUF → GGUF quantisation against llama.cpp's `llama-quantize SRC DST TYPE` (no importance matrix): the outputs'
/// sizes, SHA-256 digests and per-tensor types are in glm-tiny-gguf/llama-quantize.json, made by
/// tools/make_gguf_quantize_models.py. The sources cover 256-wide rows (real K-quants: k256-bf16.gguf), the
/// fallbacks of narrow rows, the 8-expert rules (air), a tied f32 model and a split source.
@Suite struct GGUFQuantizeModelTests {
    static let directory = ReferenceModel.root + "/glm-tiny-gguf"

    static let expected: [String: [String: [String: Any]]] = {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: directory + "/llama-quantize.json")),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: [String: Any]]] else { return [:] }
        return json
    }()

    static let cases: [String] = expected.keys.sorted().flatMap { source in
        (expected[source] ?? [:]).keys.sorted().map { "\(source) \($0)" }
    }

    static func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "glm-quantize-\(getpid())-\(name)"
    }

    @Test func fixturesArePresent() {
        #expect(GGUFQuantizeModelTests.cases.count >= 40)
    }

    @Test(arguments: cases)
    func bytesEqualLlamaQuantize(_ testCase: String) throws {
        let parts = testCase.split(separator: " ").map(String.init)
        let (source, typeName) = (parts[0], parts[1])
        let reference = try #require(GGUFQuantizeModelTests.expected[source]?[typeName])
        let fileType = try #require(GGUFFileType.named(typeName))
        let out = GGUFQuantizeModelTests.temporaryPath("\(source)-\(typeName).gguf")
        defer { unlink(out) }
        // 1, 2 or 3 threads across the cases: the bytes must not depend on how rows are shared out.
        try GGUFQuantizer.quantize(source: GGUFQuantizeModelTests.directory + "/" + source, destination: out,
                                   options: .init(fileType: fileType, threads: 1 + testCase.utf8.count % 3))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        let digest = SHA256.hex(bytes)
        #expect(bytes.count == reference["size"] as? Int)
        #expect(digest == reference["sha256"] as? String, "\(testCase): bytes differ from llama-quantize's")
        if digest != reference["sha256"] as? String {
            // Say where: the tensor types first (the recipe), else the data.
            let written = try GGUFFile(path: out)
            let types = reference["tensors"] as? [String: String] ?? [:]
            for t in written.tensors where types[t.name] != t.type?.name {
                Issue.record("\(testCase): \(t.name) is \(t.type?.name ?? "?"), llama-quantize wrote \(types[t.name] ?? "none")")
            }
        }
    }

    /// What libglm writes, libglm loads and runs (and llama.cpp's own quantisation of the same source is the same
    /// bytes, above).
    @Test func quantisedModelLoadsAndRuns() throws {
        let out = GGUFQuantizeModelTests.temporaryPath("k256-q4_k_m.gguf")
        defer { unlink(out) }
        try GGUFQuantizer.quantize(source: GGUFQuantizeModelTests.directory + "/k256-bf16.gguf", destination: out,
                                   options: .init(fileType: try #require(GGUFFileType.named("q4_k_m"))))
        let file = try GGUFFile(path: out)
        #expect(try file.integer(for: "general.file_type") == 15)
        #expect(try file.integer(for: "general.quantization_version") == 2)
        #expect(file.tensor(named: "blk.0.attn_q.weight")?.type?.name == "Q4_K")
        let model = try Model.load(directory: out)
        let session = try Session(model: model, contextLength: 8)
        let logits = try session.evaluate(tokens: [1, 2, 3], logits: .last)
        #expect(logits.count == model.config.vocabSize && logits.allSatisfy { $0.isFinite })
    }

    @Test func progressCountsEveryByteAndCanCancel() throws {
        let source = GGUFQuantizeModelTests.directory + "/air-bf16.gguf"
        let out = GGUFQuantizeModelTests.temporaryPath("progress.gguf")
        defer { unlink(out) }
        var calls: [(Int, Int)] = []
        try GGUFQuantizer.quantize(source: source, destination: out, options: .init(
            fileType: try #require(GGUFFileType.named("Q8_0")), threads: 1,
            progress: { done, total, _ in calls.append((done, total)); return true }))
        #expect(calls.count >= 72)   // every tensor at least once
        #expect(zip(calls, calls.dropFirst()).allSatisfy { $0.0 <= $1.0 })
        let last = try #require(calls.last)
        #expect(last.0 == last.1)
        let file = try GGUFFile(path: out)
        #expect(last.1 == file.tensors.reduce(0) { $0 + ($1.byteCount ?? 0) })

        var seen = 0
        #expect(throws: GLMError.self) {
            try GGUFQuantizer.quantize(source: source, destination: out, options: .init(
                fileType: GGUFFileType.named("Q8_0")!, progress: { _, _, _ in seen += 1; return seen < 3 }))
        }
        #expect(seen == 3)
        #expect(!FileSystem.exists(out))   // the partial file is removed
    }

    @Test func refusesBadRequests() throws {
        let dir = GGUFQuantizeModelTests.directory
        let out = GGUFQuantizeModelTests.temporaryPath("refused.gguf")
        defer { unlink(out) }
        let q4 = try #require(GGUFFileType.named("Q4_0"))
        #expect(GGUFFileType.named("Q7_K") == nil && GGUFFileType.named("") == nil)
        #expect(GGUFFileType.named("q4_k")?.name == "Q4_K_M")

        func code(_ body: () throws -> Void) -> GLMError.Code? {
            do { try body() } catch let e as GLMError { return e.code } catch { return nil }
            return nil
        }
        // Already quantised: refused unless asked for (as llama-quantize without --allow-requantize).
        #expect(code { try GGUFQuantizer.quantize(source: dir + "/glm-tiny-q8_0.gguf", destination: out, options: .init(fileType: q4)) } == .invalidArgument)
        #expect(!FileSystem.exists(out))
        try GGUFQuantizer.quantize(source: dir + "/glm-tiny-q8_0.gguf", destination: out,
                                   options: .init(fileType: q4, allowRequantize: true))
        #expect(try GGUFFile(path: out).tensor(named: "blk.0.attn_q.weight")?.type?.name == "Q4_0")
        // The source itself as the destination (it is mapped while written).
        let copy = GGUFQuantizeModelTests.temporaryPath("self.gguf")
        defer { unlink(copy) }
        try Data(contentsOf: URL(fileURLWithPath: dir + "/air-bf16.gguf")).write(to: URL(fileURLWithPath: copy))
        #expect(code { try GGUFQuantizer.quantize(source: copy, destination: copy, options: .init(fileType: q4)) } == .invalidArgument)
        #expect(try GGUFFile(path: copy).tensors.count == 72)
        // Unwritable destination; missing and malformed sources.
        #expect(code { try GGUFQuantizer.quantize(source: copy, destination: "/nonexistent-dir/x.gguf", options: .init(fileType: q4)) } == .io)
        #expect(code { try GGUFQuantizer.quantize(source: dir + "/missing.gguf", destination: out, options: .init(fileType: q4)) } == .io)
        // A checkpoint directory is a source (HFCheckpointQuantizeTests); one without weights is an I/O error.
        let bare = GGUFQuantizeModelTests.temporaryPath("bare-checkpoint")
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bare) }
        try FileManager.default.copyItem(atPath: ReferenceModel.root + "/glm-tiny-chat/config.json", toPath: bare + "/config.json")
        #expect(code { try GGUFQuantizer.quantize(source: bare, destination: out, options: .init(fileType: q4)) } == .io)
        let truncated = GGUFQuantizeModelTests.temporaryPath("truncated.gguf")
        defer { unlink(truncated) }
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir + "/air-bf16.gguf"))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: truncated))
        #expect(code { try GGUFQuantizer.quantize(source: truncated, destination: out, options: .init(fileType: q4)) } == .format)
    }

    /// GGUFWriter on its own (a copy of air-bf16.gguf declaring general.alignment 64 reads back tensor for tensor),
    /// and quantisation keeping a source's alignment: the same tensor bytes as from the 32-aligned source, at
    /// offsets that are multiples of 64.
    @Test func keepsTheSourceAlignment() throws {
        let source = try GGUFFile(path: GGUFQuantizeModelTests.directory + "/air-bf16.gguf")
        var metadata: [GGUFWriter.Entry] = []
        for (key, range) in zip(source.keys, source.keyRanges) {
            metadata.append(GGUFWriter.Entry(key: key, bytes: [UInt8](try source.file.slice(offset: range.lowerBound, count: range.count))))
        }
        metadata.append(.uint32("general.alignment", 64))
        var tensors: [GGUFWriter.Tensor] = []
        for t in source.tensors { tensors.append(GGUFWriter.Tensor(name: t.name, dimensions: t.dimensions, type: try #require(t.type))) }
        let aligned = GGUFQuantizeModelTests.temporaryPath("aligned64.gguf")
        let out32 = GGUFQuantizeModelTests.temporaryPath("out32.gguf"), out64 = GGUFQuantizeModelTests.temporaryPath("out64.gguf")
        defer { unlink(aligned); unlink(out32); unlink(out64) }
        let writer = try GGUFWriter(path: aligned, metadata: metadata, tensors: tensors, alignment: 64)
        for t in source.tensors {
            try writer.write(try source.data(of: t))
            try writer.finishTensor()
        }
        try writer.close()
        let copy = try GGUFFile(path: aligned)
        #expect(copy.alignment == 64 && copy.tensors.count == source.tensors.count)
        for t in source.tensors {
            let c = try #require(copy.tensor(named: t.name))
            #expect(c.offset % 64 == 0 && c.dimensions == t.dimensions)
            #expect([UInt8](try copy.data(of: c)) == [UInt8](try source.data(of: t)))
        }

        let q8 = try #require(GGUFFileType.named("Q8_0"))
        try GGUFQuantizer.quantize(source: source.path, destination: out32, options: .init(fileType: q8))
        try GGUFQuantizer.quantize(source: aligned, destination: out64, options: .init(fileType: q8))
        let a = try GGUFFile(path: out32), b = try GGUFFile(path: out64)
        #expect(a.alignment == 32 && b.alignment == 64)
        for t in a.tensors {
            let u = try #require(b.tensor(named: t.name))
            #expect(u.offset % 64 == 0 && u.type == t.type)
            #expect([UInt8](try a.data(of: t)) == [UInt8](try b.data(of: u)))
        }
    }

    /// The recipe's rules where the fixtures' models do not reach them: use_more_bits over many layers and the
    /// Q2_K attn_v rule for n_gqa >= 4.
    @Test func recipeFollowsLayerRules() throws {
        var tensors: [(String, [Int], GGMLType)] = []
        for layer in 0..<16 {
            tensors.append(("blk.\(layer).attn_v.weight", [256, 256], .bf16))
            tensors.append(("blk.\(layer).ffn_down_exps.weight", [256, 256, 4], .bf16))
        }
        let hp = GGUFQuantizer.Hyperparameters(layerCount: 16, expertCount: 4, headCount: 8, headCountKV: 2)
        let m = try GGUFQuantizer.plan(tensors, fileType: GGUFFileType.named("Q4_K_M")!, hparams: hp)
        let down = m.filter { $0.name.contains("ffn_down") }.map(\.target.name)
        // use_more_bits(i, 16): i < 2, i >= 14, or (i - 2) % 3 == 2.
        #expect(down == (0..<16).map { i in (i < 2 || i >= 14 || (i - 2) % 3 == 2) ? "Q6_K" : "Q4_K" })
        let q2 = try GGUFQuantizer.plan(tensors, fileType: GGUFFileType.named("Q2_K")!, hparams: hp)
        #expect(q2.filter { $0.name.contains("attn_v") }.allSatisfy { $0.target.name == "Q4_K" })
        #expect(q2.filter { $0.name.contains("ffn_down") }.allSatisfy { $0.target.name == "Q3_K" })
        let q3 = try GGUFQuantizer.plan(tensors, fileType: GGUFFileType.named("Q3_K_M")!, hparams: hp)
        #expect(q3.filter { $0.name.contains("attn_v") }.map(\.target.name) == ["Q5_K", "Q5_K"] + Array(repeating: "Q4_K", count: 14))
        // Layer order, not name order: blk.10 after blk.9.
        #expect(m.map(\.name).firstIndex(of: "blk.10.attn_v.weight")! > m.map(\.name).firstIndex(of: "blk.9.attn_v.weight")!)
        // An expert tensor outside any layer cannot be placed in the recipe.
        #expect(throws: GLMError.self) {
            _ = try GGUFQuantizer.plan([("ffn_down_exps.weight", [256, 256, 4], .bf16)], fileType: GGUFFileType.named("Q4_K_M")!, hparams: hp)
        }
    }
}
