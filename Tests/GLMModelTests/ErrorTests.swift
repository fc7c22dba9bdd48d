import Testing
import GLMFormats
import GLMSupport
import Glibc
@testable import GLMModel

/// Bad input is a GLMError naming what was wrong, never a crash; a damaged checkpoint is rejected at load.
@Suite struct ErrorTests {
    /// The error `body` throws (a non-GLMError becomes `.internal`, which no expectation accepts).
    func code(_ body: () throws -> Void) -> GLMError? {
        do { try body() } catch let error as GLMError { return error } catch { return GLMError(.internal, "\(error)") }
        return nil
    }

    @Test func tokenOutsideTheVocabularyAndContextOverflow() throws {
        let reference = try ReferenceModel("glm47")
        let model = try Model.load(directory: reference.directory)
        let session = try Session(model: model, contextLength: 4)
        let vocab = Int32(model.config.vocabSize)
        #expect(code { try session.evaluate(tokens: [1, vocab]) }?.code == .invalidArgument)
        #expect(code { try session.evaluate(tokens: [-1]) }?.code == .invalidArgument)
        #expect(code { try session.evaluate(tokens: []) }?.code == .invalidArgument)
        #expect(session.position == 0)
        try session.evaluate(tokens: [1, 2, 3])
        let full = code { try session.evaluate(tokens: [4, 5]) }
        #expect(full?.code == .contextFull)
        #expect(full?.message.contains("context length is 4") == true)
        try session.evaluate(tokens: [4])
        #expect(code { try session.evaluate(tokens: [5]) }?.code == .contextFull)
        #expect(code { try session.truncate(to: 5) }?.code == .invalidArgument)
        // MTP beyond the evaluated positions, or with a bad token.
        #expect(code { try session.mtpLogits(nextTokens: [1, 2, 3, 4, 5]) }?.code == .invalidArgument)
        #expect(code { try session.mtpLogits(nextTokens: [vocab]) }?.code == .invalidArgument)
        #expect(code { _ = try Session(model: model, contextLength: 0) }?.code == .invalidArgument)
    }

    @Test func modelWithoutMTPRefusesDrafts() throws {
        let names = ReferenceModel.names.filter { (try? ReferenceModel($0).has("mtp_logits")) == false }
        #expect(!names.isEmpty, "the fixtures include a model without MTP layer")
        for name in names {
            let model = try Model.load(directory: try ReferenceModel(name).directory)
            #expect(!model.hasMTP)
            let session = try Session(model: model, contextLength: 4)
            try session.evaluate(tokens: [1, 2])
            #expect(code { try session.mtpLogits(nextTokens: [2]) }?.code == .invalidArgument)
        }
    }

    /// Copies the glm47 checkpoint to a temporary directory with one tensor changed by `edit` and returns the
    /// load error.
    func loadError(_ edit: (inout [SafetensorsWriter.Tensor]) -> Void) throws -> GLMError? {
        let source = try ReferenceModel("tied_shared2").directory
        var template = Array("/tmp/glm-model-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw GLMError.io("mkdtemp failed") }
        let directory = String(cString: made)
        defer {
            unlink(directory + "/config.json"); unlink(directory + "/model.safetensors"); rmdir(directory)
        }
        let config = try FileSystem.readText(source + "/config.json")
        try SafetensorsWriter.writeFile(path: directory + "/config.json", bytes: Array(config.utf8))
        let file = try SafetensorsFile(path: source + "/model.safetensors")
        var tensors = file.tensorNames.compactMap { name in
            file.tensors[name].map {
                SafetensorsWriter.Tensor(name: name, dtype: $0.dtype, shape: $0.shape, bytes: Array($0.bytes))
            }
        }
        edit(&tensors)
        try SafetensorsWriter.write(path: directory + "/model.safetensors", tensors: tensors)
        return code { _ = try Model.load(directory: directory) }
    }

    @Test func damagedCheckpointsAreRejectedWithTheTensorNamed() throws {
        let target = "model.layers.1.mlp.experts.3.up_proj.weight"
        let missing = try loadError { $0.removeAll { $0.name == target } }
        #expect(missing?.message.contains(target) == true)

        let reshaped = try loadError { tensors in
            for i in tensors.indices where tensors[i].name == target { tensors[i].shape.reverse() }
        }
        #expect(reshaped?.message.contains(target) == true)
        #expect(reshaped?.message.contains("model.safetensors") == true)

        let retyped = try loadError { tensors in
            for i in tensors.indices where tensors[i].name == target {
                tensors[i].dtype = .i32
            }
        }
        #expect(retyped?.message.contains("I32") == true)

        let extra = "model.layers.1.mlp.experts.6.up_proj.weight"   // the model has experts 0...5
        let unexpected = try loadError { tensors in
            if let copy = tensors.first(where: { $0.name == target }) {
                tensors.append(SafetensorsWriter.Tensor(name: extra, dtype: copy.dtype, shape: copy.shape, bytes: copy.bytes))
            }
        }
        #expect(unexpected?.code == .format)
        #expect(unexpected?.message.contains(extra) == true)
        #expect(unexpected?.message.contains("not part of") == true)

        let incompleteMTP = try loadError { $0.removeAll { $0.name == "model.layers.3.eh_proj.weight" } }
        #expect(incompleteMTP?.message.contains("model.layers.3.eh_proj.weight") == true)
    }

    @Test func infoDescribesTheModel() throws {
        let model = try Model.load(directory: try ReferenceModel("glm47").directory)
        guard case .object(let info) = model.info else { Issue.record("info is not an object"); return }
        #expect(info["dtype"] == .string("float32"))
        #expect(info["has_mtp"] == .bool(true))
        #expect((info["parameter_count"]?.intValue ?? 0) == model.parameterCount)
        #expect(model.parameterCount > 0 && model.bytesMapped > 4 * model.parameterCount)
        #expect(info["config"]?["num_hidden_layers"]?.intValue == 5)
    }
}
