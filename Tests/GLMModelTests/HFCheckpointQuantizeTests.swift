import Testing
import Foundation
@testable import GLMModel
import GLMFormats
import GLMSupport

/// Hugging Face checkpoint → GGUF (glm_quantize with a directory source) against llama.cpp's
/// `convert_hf_to_gguf.py` + `llama-quantize`: glm-tiny-gguf/hf-convert.json (tools/make_hf_gguf_fixtures.py) holds,
/// per source directory and output type, every metadata entry (key and SHA-256 of its stored bytes, in file order)
/// and every tensor (name, type, ggml dimensions, SHA-256 of its data, in file order) of llama.cpp's output.
///
/// What libglm does not write, by design (docs/MODEL.md §2.6): general.basename, general.finetune, general.version
/// and general.size_label (the converter's heuristics over the directory name, a model card and the parameter
/// count); for the sources without a tokenizer (air, the FP8 models), the tokenizer.* keys of the placeholder
/// vocabulary the fixture script gives the converter. Everything else must be identical, in the same order.
@Suite struct HFCheckpointQuantizeTests {
    static let models = ReferenceModel.root
    static let fixture = ReferenceModel.root + "/glm-tiny-gguf/hf-convert.json"

    /// Keys the converter derives by heuristics that libglm leaves out.
    static let heuristicKeys: Set<String> = ["general.basename", "general.finetune", "general.version",
                                             "general.size_label"]

    static let expected: [String: [String: Any]] = {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: fixture)),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else { return [:] }
        return json
    }()

    static let cases: [String] = expected.keys.sorted().flatMap { source in
        ((expected[source]?["outputs"] as? [String: Any]) ?? [:]).keys.sorted().map { "\(source) \($0)" }
    }

    static func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "glm-hfquant-\(getpid())-\(name.replacingOccurrences(of: "/", with: "_"))"
    }

    @Test func fixturesArePresent() {
        #expect(HFCheckpointQuantizeTests.cases.count >= 12)
    }

    @Test(arguments: cases)
    func equalsConverterPlusLlamaQuantize(_ testCase: String) throws {
        let parts = testCase.split(separator: " ").map(String.init)
        let (source, typeName) = (parts[0], parts[1])
        let entry = try #require(HFCheckpointQuantizeTests.expected[source])
        let reference = try #require((entry["outputs"] as? [String: Any])?[typeName] as? [String: Any])
        let placeholder = entry["placeholder_vocabulary"] as? Bool ?? false
        let out = HFCheckpointQuantizeTests.temporaryPath("\(source)-\(typeName).gguf")
        defer { unlink(out) }
        try GGUFQuantizer.quantize(source: HFCheckpointQuantizeTests.models + "/" + source, destination: out,
                                   options: .init(fileType: try #require(GGUFFileType.named(typeName)),
                                                  threads: 1 + testCase.utf8.count % 3))
        let file = try GGUFFile(path: out)

        // Metadata: the same keys in the same order with the same stored bytes, less the documented exceptions.
        let referenceKeys = (reference["keys"] as? [[String]] ?? []).filter { k in
            !HFCheckpointQuantizeTests.heuristicKeys.contains(k[0]) && !(placeholder && k[0].hasPrefix("tokenizer."))
        }
        var written: [[String]] = []
        for (key, range) in zip(file.keys, file.keyRanges) {
            written.append([key, SHA256.hex([UInt8](try file.file.slice(offset: range.lowerBound, count: range.count)))])
        }
        #expect(written.map { $0[0] } == referenceKeys.map { $0[0] }, "\(testCase): metadata keys differ")
        for (w, r) in zip(written, referenceKeys) where w != r {
            Issue.record("\(testCase): metadata '\(w[0])' differs from the converter's")
        }

        // Tensors: names, types, dimensions and data, in order.
        let referenceTensors = reference["tensors"] as? [[Any]] ?? []
        #expect(file.tensors.count == referenceTensors.count)
        for (t, r) in zip(file.tensors, referenceTensors) {
            let name = r[0] as? String ?? "", type = r[1] as? String ?? "", dims = r[2] as? [Int] ?? []
            #expect(t.name == name, "\(testCase): tensor order")
            #expect(t.type?.name == type, "\(testCase): \(t.name) is \(t.type?.name ?? "?"), llama.cpp wrote \(type)")
            #expect(t.dimensions == dims, "\(testCase): \(t.name) dimensions")
            #expect(SHA256.hex([UInt8](try file.data(of: t))) == r[3] as? String, "\(testCase): \(t.name) data differs")
        }
        // With the complete metadata (the tokenizer source), the whole file differs from llama.cpp's only by the
        // heuristic keys it lacks; the sizes say so.
        if !placeholder {
            let dropped = (reference["keys"] as? [[String]] ?? []).count - referenceKeys.count
            #expect(dropped <= HFCheckpointQuantizeTests.heuristicKeys.count)
        }
    }

    /// What libglm writes from a checkpoint, libglm loads, and its logits equal those of the same checkpoint's
    /// llama.cpp GGUF (glm-tiny-bf16, converted by llama.cpp) quantised to the same type: those files hold the same
    /// tensor bytes (bytesEqualLlamaQuantize in GGUFQuantizeModelTests proves libglm's GGUF → GGUF path is
    /// llama-quantize's bytes).
    @Test(arguments: ["Q8_0", "Q4_K_M"])
    func logitsEqualLlamaCppFile(_ typeName: String) throws {
        let fileType = try #require(GGUFFileType.named(typeName))
        let fromHF = HFCheckpointQuantizeTests.temporaryPath("chat-\(typeName).gguf")
        let fromGGUF = HFCheckpointQuantizeTests.temporaryPath("gguf-\(typeName).gguf")
        defer { unlink(fromHF); unlink(fromGGUF) }
        try GGUFQuantizer.quantize(source: HFCheckpointQuantizeTests.models + "/glm-tiny-chat", destination: fromHF,
                                   options: .init(fileType: fileType))
        try GGUFQuantizer.quantize(source: HFCheckpointQuantizeTests.models + "/glm-tiny-gguf/glm-tiny-bf16-00001-of-00002.gguf",
                                   destination: fromGGUF, options: .init(fileType: fileType))
        let tokens: [Int32] = [4257, 4259, 10, 200, 3000, 77]
        let a = try Session(model: try Model.load(directory: fromHF), contextLength: 16).evaluate(tokens: tokens, logits: .all)
        let b = try Session(model: try Model.load(directory: fromGGUF), contextLength: 16).evaluate(tokens: tokens, logits: .all)
        #expect(a.count == tokens.count * 4292)
        #expect(a == b)
    }

    /// An FP8 checkpoint converted to F32 holds its dequantised weights exactly (code × scale), so its logits are
    /// the FP8 model's own up to summation order (libglm's FP8 kernels sum per scale stretch, then scale; the F32
    /// model multiplies dequantised weights). Tolerance: 1e-4 of the largest logit. Q8_0 adds 8-bit rounding of
    /// weights: within 5% of the largest logit.
    @Test(arguments: ["channel", "block", "tensor", "deepseek"])
    func fp8ConvertsCloseToTheFP8Model(_ variant: String) throws {
        let source = HFCheckpointQuantizeTests.models + "/fp8/" + variant
        let tokens: [Int32] = [1, 5, 9, 2, 7]
        let own = try Session(model: try Model.load(directory: source), contextLength: 16).evaluate(tokens: tokens, logits: .all)
        let scale = own.map(abs).max() ?? 1
        for (typeName, tolerance) in [("F32", 1e-4), ("Q8_0", 5e-2)] {
            let out = HFCheckpointQuantizeTests.temporaryPath("fp8-\(variant)-\(typeName).gguf")
            defer { unlink(out) }
            try GGUFQuantizer.quantize(source: source, destination: out,
                                       options: .init(fileType: try #require(GGUFFileType.named(typeName))))
            let logits = try Session(model: try Model.load(directory: out), contextLength: 16).evaluate(tokens: tokens, logits: .all)
            #expect(logits.count == own.count)
            let worst = zip(logits, own).map { abs($0 - $1) }.max() ?? .infinity
            #expect(Double(worst) <= tolerance * Double(scale), "\(variant) \(typeName): max |Δ| \(worst) of \(scale)")
            if typeName == "Q8_0" { #expect(worst > 0) }
        }
    }

    // MARK: hostile checkpoints

    static func copyCheckpoint(_ source: String, _ name: String) throws -> String {
        let dir = temporaryPath(name)
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + f, toPath: dir + "/" + f)
        }
        return dir
    }

    static func code(_ body: () throws -> Void) -> (GLMError.Code?, String) {
        do { try body() } catch let e as GLMError { return (e.code, e.message) } catch { return (nil, "\(error)") }
        return (nil, "")
    }

    @Test func refusesBrokenCheckpoints() throws {
        let q8 = try #require(GGUFFileType.named("Q8_0"))
        let out = HFCheckpointQuantizeTests.temporaryPath("hostile.gguf")
        defer { unlink(out) }

        // Truncated safetensors: the header promises more bytes than the file has.
        let truncated = try HFCheckpointQuantizeTests.copyCheckpoint(HFCheckpointQuantizeTests.models + "/air", "truncated")
        defer { try? FileManager.default.removeItem(atPath: truncated) }
        let weights = try Data(contentsOf: URL(fileURLWithPath: truncated + "/model.safetensors"))
        try weights.prefix(weights.count - 1000).write(to: URL(fileURLWithPath: truncated + "/model.safetensors"))
        var (code, message) = HFCheckpointQuantizeTests.code {
            try GGUFQuantizer.quantize(source: truncated, destination: out, options: .init(fileType: q8))
        }
        #expect(code == .format, "\(message)")
        #expect(!FileSystem.exists(out))

        // A missing expert: the index names a tensor that no shard holds → the expert stack cannot be built.
        let missing = try HFCheckpointQuantizeTests.copyCheckpoint(HFCheckpointQuantizeTests.models + "/air", "missing")
        defer { try? FileManager.default.removeItem(atPath: missing) }
        var config = try String(contentsOfFile: missing + "/config.json", encoding: .utf8)
        config = config.replacingOccurrences(of: "\"n_routed_experts\": 8", with: "\"n_routed_experts\": 9")
        try config.write(toFile: missing + "/config.json", atomically: true, encoding: .utf8)
        (code, message) = HFCheckpointQuantizeTests.code {
            try GGUFQuantizer.quantize(source: missing, destination: out, options: .init(fileType: q8))
        }
        #expect(code == .format && message.contains("experts.8"), "\(message)")
        #expect(!FileSystem.exists(out))

        // An unknown quantisation config.
        let unknown = try HFCheckpointQuantizeTests.copyCheckpoint(HFCheckpointQuantizeTests.models + "/fp8/channel", "unknown")
        defer { try? FileManager.default.removeItem(atPath: unknown) }
        config = try String(contentsOfFile: unknown + "/config.json", encoding: .utf8)
        config = config.replacingOccurrences(of: "\"quant_method\": \"compressed-tensors\"", with: "\"quant_method\": \"awq\"")
        try config.write(toFile: unknown + "/config.json", atomically: true, encoding: .utf8)
        (code, message) = HFCheckpointQuantizeTests.code {
            try GGUFQuantizer.quantize(source: unknown, destination: out, options: .init(fileType: q8))
        }
        #expect(code == .unsupported && message.contains("awq"), "\(message)")
        #expect(!FileSystem.exists(out))

        // A source refused before anything is written leaves an existing destination as it was.
        try Data("old".utf8).write(to: URL(fileURLWithPath: out))
        (code, message) = HFCheckpointQuantizeTests.code {
            try GGUFQuantizer.quantize(source: truncated, destination: out, options: .init(fileType: q8))
        }
        #expect(code == .format)
        #expect((try? String(contentsOfFile: out, encoding: .utf8)) == "old")
    }

    /// Progress reaches every byte and cancelling removes the partial file, from a checkpoint source too.
    @Test func progressAndCancel() throws {
        let source = HFCheckpointQuantizeTests.models + "/glm-tiny-chat"
        let out = HFCheckpointQuantizeTests.temporaryPath("progress.gguf")
        defer { unlink(out) }
        var last = (0, 0)
        try GGUFQuantizer.quantize(source: source, destination: out, options: .init(
            fileType: try #require(GGUFFileType.named("Q4_0")), progress: { d, t, _ in last = (d, t); return true }))
        #expect(last.0 == last.1 && last.1 > 0)
        var seen = 0
        let (code, _) = HFCheckpointQuantizeTests.code {
            try GGUFQuantizer.quantize(source: source, destination: out, options: .init(
                fileType: GGUFFileType.named("Q4_0")!, progress: { _, _, _ in seen += 1; return seen < 4 }))
        }
        #expect(code == .cancelled && seen == 4)
        #expect(!FileSystem.exists(out))
    }
}
