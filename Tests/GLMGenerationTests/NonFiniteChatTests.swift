import GLMFormats
import GLMJSON
import GLMModel
import GLMSupport
import Glibc
import Testing
@testable import GLMGeneration

/// A chat on weights holding NaN fails with `.format` instead of answering garbage, and keeps its cache valid.
@Suite struct NonFiniteChatTests {
    /// glm-tiny-chat's weights in a temporary directory with model.norm.weight all NaN (0xFF bytes are NaN in
    /// F32, BF16 and F16); returns the loaded model. The directory is removed before returning: the weights stay
    /// mapped.
    func modelWithNaNWeights() throws -> Model {
        let source = ChatFixture.directory
        var template = Array("/tmp/glm-nan-chat-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw GLMError.io("mkdtemp failed") }
        let directory = String(cString: made)
        defer { unlink(directory + "/config.json"); unlink(directory + "/model.safetensors"); rmdir(directory) }
        let config = try FileSystem.readText(source + "/config.json")
        try SafetensorsWriter.writeFile(path: directory + "/config.json", bytes: Array(config.utf8))
        let file = try SafetensorsFile(path: source + "/model.safetensors")
        #expect(file.tensors["model.norm.weight"] != nil)
        let tensors = file.tensorNames.compactMap { name -> SafetensorsWriter.Tensor? in
            guard let info = file.tensors[name] else { return nil }
            let bytes = name == "model.norm.weight" ? [UInt8](repeating: 0xFF, count: info.bytes.count) : Array(info.bytes)
            return SafetensorsWriter.Tensor(name: name, dtype: info.dtype, shape: info.shape, bytes: bytes)
        }
        try SafetensorsWriter.write(path: directory + "/model.safetensors", tensors: tensors)
        return try Model.load(directory: directory, threads: 1)
    }

    @Test func aChatOnNaNWeightsFailsAndKeepsItsCacheValid() throws {
        let fixture = try ChatFixture.load()
        let chat = try ChatSession(model: try modelWithNaNWeights(), tokenizer: fixture.tokenizer,
                                   template: fixture.template, generationConfig: fixture.generationConfig,
                                   contextLength: 256, threads: 1)
        let request = try JSONValue.parse(#"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}"#)
        var events = 0
        do {
            _ = try chat.complete(request: request) { _ in events += 1; return true }
            Issue.record("a chat on NaN weights returned a response")
        } catch {
            #expect(error.code == .format, "\(error.message)")
            #expect(error.message.contains("non-finite logits"), "\(error.message)")
        }
        #expect(chat.cachedTokens.isEmpty && chat.engine.session.position == 0)
        #expect(events <= 1)   // at most the role chunk: no text was generated from NaN
    }
}
