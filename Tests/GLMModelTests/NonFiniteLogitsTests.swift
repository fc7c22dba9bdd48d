import Testing
import GLMFormats
import GLMSupport
import Glibc
@testable import GLMModel

/// Weights holding NaN or infinity load (values are not scanned), but the logits they produce are a `.format`
/// error and the session stays as it was.
@Suite struct NonFiniteLogitsTests {
    /// A copy of the tied_shared2 checkpoint (F32, with an MTP layer) in a temporary directory, with the bytes of
    /// `tensor` replaced by `pattern` repeated; removed when released.
    final class EditedModel {
        let directory: String

        init(tensor: String?, pattern: [UInt8]) throws {
            let source = try ReferenceModel("tied_shared2").directory
            var template = Array("/tmp/glm-nonfinite-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw GLMError.io("mkdtemp failed") }
            directory = String(cString: made)
            let config = try FileSystem.readText(source + "/config.json")
            try SafetensorsWriter.writeFile(path: directory + "/config.json", bytes: Array(config.utf8))
            let file = try SafetensorsFile(path: source + "/model.safetensors")
            var edited = 0
            let tensors = file.tensorNames.compactMap { name -> SafetensorsWriter.Tensor? in
                guard let info = file.tensors[name] else { return nil }
                var bytes = Array(info.bytes)
                if name == tensor {
                    for i in bytes.indices { bytes[i] = pattern[i % pattern.count] }
                    edited += 1
                }
                return SafetensorsWriter.Tensor(name: name, dtype: info.dtype, shape: info.shape, bytes: bytes)
            }
            try SafetensorsWriter.write(path: directory + "/model.safetensors", tensors: tensors)
            if let tensor, edited != 1 { throw GLMError.format("the fixture has no tensor '\(tensor)'") }
        }

        deinit {
            unlink(directory + "/config.json"); unlink(directory + "/model.safetensors"); rmdir(directory)
        }
    }

    static let nan: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]          // a quiet NaN in F32 (and BF16, F16)
    static let infinity: [UInt8] = [0x00, 0x00, 0x80, 0x7F]     // +inf in F32, little-endian

    func error(_ body: () throws -> Void) -> GLMError? {
        do { try body() } catch let error as GLMError { return error } catch { return GLMError(.internal, "\(error)") }
        return nil
    }

    @Test func theUneditedCopyEvaluates() throws {
        let copy = try EditedModel(tensor: nil, pattern: [0])
        let session = try Session(model: try Model.load(directory: copy.directory), contextLength: 8)
        let logits = try session.evaluate(tokens: [1, 2, 3], logits: .all)
        #expect(logits.allSatisfy(\.isFinite) && logits.count == 3 * session.model.config.vocabSize)
        #expect(try session.mtpLogits(nextTokens: [2, 3]).allSatisfy(\.isFinite))
    }

    @Test(arguments: [("NaN", NonFiniteLogitsTests.nan), ("infinity", NonFiniteLogitsTests.infinity)])
    func nonFiniteFinalNormIsAnErrorThatChangesNothing(kind: String, pattern: [UInt8]) throws {
        let copy = try EditedModel(tensor: "model.norm.weight", pattern: pattern)
        let model = try Model.load(directory: copy.directory)
        let session = try Session(model: model, contextLength: 8)
        for rows in [Session.LogitRows.last, .all] {
            let failure = error { try session.evaluate(tokens: [1, 2, 3], logits: rows) }
            #expect(failure?.code == .format, "\(kind) \(rows): \(failure?.message ?? "no error")")
            #expect(failure?.message.contains("non-finite logits") == true)
            #expect(failure?.message.contains(copy.directory) == true)
            #expect(session.position == 0)
        }
    }

    @Test func nonFiniteDraftsAreAnErrorThatKeepsTheMTPCache() throws {
        let copy = try EditedModel(tensor: "model.layers.3.shared_head.norm.weight", pattern: NonFiniteLogitsTests.nan)
        let session = try Session(model: try Model.load(directory: copy.directory), contextLength: 8)
        try session.evaluate(tokens: [1, 2, 3])   // the main model is intact
        let failure = error { try session.mtpLogits(nextTokens: [2, 3]) }
        #expect(failure?.code == .format, "\(failure?.message ?? "no error")")
        #expect(failure?.message.contains("non-finite MTP draft logits") == true)
        #expect(session.mtpPosition == 0 && session.position == 3)
        try session.evaluate(tokens: [4])
        #expect(session.position == 4)
    }
}

/// The model path is checked before any file in it is named.
@Suite struct ModelPathTests {
    @Test func emptyPathAndNonDirectoriesSaySo() throws {
        let empty = try #require(ErrorTests().code { _ = try Model.load(directory: "") })
        #expect(empty.code == .invalidArgument && empty.message.contains("model path is empty"), "\(empty.message)")
        #expect(!empty.message.contains("/config.json"))
        let file = try ReferenceModel("glm47").directory + "/config.json"
        let notDirectory = try #require(ErrorTests().code { _ = try Model.load(directory: file) })
        #expect(notDirectory.code == .io && notDirectory.message.contains("'\(file)' is not a directory"),
                "\(notDirectory.message)")
        let missing = try #require(ErrorTests().code { _ = try Model.load(directory: "/nonexistent/model") })
        #expect(missing.code == .io && missing.message.contains("does not exist"), "\(missing.message)")
    }
}
