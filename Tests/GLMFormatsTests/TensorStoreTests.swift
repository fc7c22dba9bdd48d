import GLMFormats
import GLMJSON
import GLMSupport
import Testing

@Suite struct TensorStoreTests {
    static let tinyModels = ["glm47", "air", "grouped", "rope_default", "tied_shared2"]

    /// The sharded tiny model as transformers saved it: the store must see exactly the index's tensors, each in
    /// the shard the index names, with the index's total byte size.
    @Test func shardedTinyModelMatchesItsIndex() throws {
        let dir = modelFixture("glm47")
        let store = try TensorStore(directory: dir)
        let index = try JSONValue.parse(FileSystem.readText(dir + "/model.safetensors.index.json"))
        let weightMap = try #require(index["weight_map"]?.objectValue)
        #expect(store.files.count == 2)
        #expect(Set(store.names) == Set(weightMap.keys) && store.names.count == weightMap.count)
        for (name, shard) in weightMap {
            #expect(store.tensor(name)?.file == dir + "/" + (shard.stringValue ?? ""), "\(name)")
        }
        let totalBytes = store.names.compactMap { store.tensor($0)?.bytes.count }.reduce(0, +)
        #expect(totalBytes == index["metadata"]?["total_size"]?.intValue)
        #expect(store.bytesMapped > totalBytes)
        #expect(store.directory == dir)
    }

    /// Every tiny model opens, and its main tensors have the shapes and dtype its reference says.
    @Test(arguments: tinyModels)
    func tinyModelTensorsHaveTheReferenceShapes(_ model: String) throws {
        let dir = modelFixture(model)
        let reference = try JSONValue.parse(FileSystem.readText(dir + "/reference.json"))
        let parsed = try #require(reference["parsed_config"])
        let v = try #require(parsed["V"]?.intValue), h = try #require(parsed["H"]?.intValue)
        let layers = try #require(parsed["L"]?.intValue), heads = try #require(parsed["nH"]?.intValue)
        let d = try #require(parsed["D"]?.intValue)
        let dtype: TensorDType = switch reference["weight_dtype"]?.stringValue {
        case "bfloat16": .bf16
        case "float16": .f16
        default: .f32
        }
        let store = try TensorStore(directory: dir)
        let embed = try store.require("model.embed_tokens.weight", shape: [v, h], dtypes: [dtype])
        #expect(embed.elementCount == v * h && embed.bytes.count == v * h * dtype.byteSize)
        _ = try store.require("model.layers.0.self_attn.q_proj.weight", shape: [heads * d, h], dtypes: [dtype])
        _ = try store.require("model.norm.weight", shape: [h], dtypes: [dtype])
        // The router is stored in the model's dtype or F32; the MTP layer (when saved) sits after the last main layer.
        let experts = try #require(parsed["E"]?.intValue)
        _ = try store.require("model.layers.\(layers - 1).mlp.gate.weight", shape: [experts, h], dtypes: [dtype, .f32])
        if store.tensor("model.layers.\(layers).eh_proj.weight") != nil || model == "glm47" {
            _ = try store.require("model.layers.\(layers).eh_proj.weight", shape: [h, 2 * h], dtypes: [dtype])
        }
    }

    @Test func requireNamesWhatIsWrong() throws {
        let dir = modelFixture("air")
        let store = try TensorStore(directory: dir)
        expectGLMError(.format, ["no tensor 'model.layers.9.mlp.gate.weight'", "BF16[8, 48]", dir]) {
            _ = try store.require("model.layers.9.mlp.gate.weight", shape: [8, 48], dtypes: [.bf16])
        }
        expectGLMError(.format, ["'model.norm.weight'", "model.safetensors", "shape [48], expected [64]"]) {
            _ = try store.require("model.norm.weight", shape: [64], dtypes: [.bf16])
        }
        expectGLMError(.unsupported, ["'model.norm.weight'", "dtype BF16", "expected one of {F16, F8_E4M3}"]) {
            _ = try store.require("model.norm.weight", shape: [48], dtypes: [.f8e4m3, .f16])
        }
        #expect(store.tensor("nope") == nil)
    }

    /// A TensorInfo keeps its file mapped after the store is gone.
    @Test func tensorOutlivesItsStore() throws {
        var store: TensorStore? = try TensorStore(directory: modelFixture("air"))
        let info = try #require(store?.tensor("model.norm.weight"))
        let expected = Array(info.bytes)
        store = nil
        #expect(Array(info.bytes) == expected)
    }

    private func writeShard(_ dir: TemporaryDirectory, _ name: String, _ tensors: [String]) throws {
        try SafetensorsWriter.write(path: dir.file(name), tensors: tensors.map {
            .init(name: $0, dtype: .f32, shape: [2], bytes: [0, 0, 128, 63, 0, 0, 0, 64])
        })
    }

    private func writeIndex(_ dir: TemporaryDirectory, _ map: [(String, String)]) throws {
        let text = JSONValue.object(JSONObject([
            ("metadata", .object(JSONObject([("total_size", JSONValue(8 * map.count))]))),
            ("weight_map", .object(JSONObject(map.map { ($0.0, .string($0.1)) }))),
        ])).pythonJSON
        _ = try dir.write("model.safetensors.index.json", text: text)
    }

    @Test func shardedDirectoryWrittenHere() throws {
        let dir = TemporaryDirectory()
        try writeShard(dir, "model-00001-of-00002.safetensors", ["a", "b"])
        try writeShard(dir, "model-00002-of-00002.safetensors", ["c"])
        try writeShard(dir, "unrelated.safetensors", ["z"])  // not in the index: ignored
        try writeIndex(dir, [("a", "model-00001-of-00002.safetensors"), ("b", "model-00001-of-00002.safetensors"),
                             ("c", "model-00002-of-00002.safetensors")])
        let store = try TensorStore(directory: dir.path)
        #expect(store.names == ["a", "b", "c"])
        #expect(store.tensor("c")?.file == dir.file("model-00002-of-00002.safetensors"))
        #expect(store.tensor("z") == nil)
    }

    @Test func badIndexesAreErrors() throws {
        let a = "model-00001-of-00002.safetensors", b = "model-00002-of-00002.safetensors"
        do {  // a shard the index names does not exist
            let dir = TemporaryDirectory()
            try writeShard(dir, a, ["x"])
            try writeIndex(dir, [("x", a), ("y", b)])
            expectGLMError(.io, ["model.safetensors.index.json", "'\(b)'", "'y'", "does not exist"]) {
                _ = try TensorStore(directory: dir.path)
            }
        }
        do {  // a tensor the index maps to one shard is in the other
            let dir = TemporaryDirectory()
            try writeShard(dir, a, ["x"])
            try writeShard(dir, b, ["y"])
            try writeIndex(dir, [("x", a), ("y", a)])
            expectGLMError(.format, ["maps tensor 'y' to '\(a)'", "no such tensor"]) {
                _ = try TensorStore(directory: dir.path)
            }
        }
        do {  // two tensors swapped between shards
            let dir = TemporaryDirectory()
            try writeShard(dir, a, ["x"])
            try writeShard(dir, b, ["y"])
            try writeIndex(dir, [("x", b), ("y", a)])
            expectGLMError(.format, ["maps tensor 'x' to '\(b)'", "(it is in '\(dir.file(a))')"]) {
                _ = try TensorStore(directory: dir.path)
            }
        }
        do {  // a tensor the index names is nowhere
            let dir = TemporaryDirectory()
            try writeShard(dir, a, ["x"])
            try writeIndex(dir, [("x", a), ("ghost", a)])
            expectGLMError(.format, ["maps tensor 'ghost' to '\(a)'", "no such tensor"]) {
                _ = try TensorStore(directory: dir.path)
            }
        }
        do {  // the same tensor in two shards
            let dir = TemporaryDirectory()
            try writeShard(dir, a, ["x", "dup"])
            try writeShard(dir, b, ["dup"])
            try writeIndex(dir, [("x", a), ("dup", b)])
            expectGLMError(.format, ["'dup' appears in two files", dir.file(a), dir.file(b)]) {
                _ = try TensorStore(directory: dir.path)
            }
        }
        do {  // a truncated shard
            let dir = TemporaryDirectory()
            try writeShard(dir, a, ["x"])
            let bytes = try fileBytes(dir.file(a))
            _ = try dir.write(b, Array(bytes.dropLast(3)))
            try writeIndex(dir, [("x", a), ("x2", b)])
            expectGLMError(.format, [dir.file(b), "past the end", "truncated"]) {
                _ = try TensorStore(directory: dir.path)
            }
        }
        let malformed: [(String, [String])] = [
            ("{", ["model.safetensors.index.json", "invalid JSON"]),
            ("[]", ["is not a JSON object"]),
            ("{}", ["has no \"weight_map\""]),
            (#"{"weight_map": []}"#, ["\"weight_map\" is not an object"]),
            (#"{"weight_map": {}}"#, ["\"weight_map\" is empty"]),
            (#"{"weight_map": {"x": 3}}"#, ["weight_map[\"x\"] is 3"]),
            (#"{"weight_map": {"x": "../secret.safetensors"}}"#, ["weight_map[\"x\"]", "inside the model directory"]),
            (#"{"weight_map": {"x": "/etc/passwd"}}"#, ["inside the model directory"]),
        ]
        for (text, parts) in malformed {
            let dir = TemporaryDirectory()
            _ = try dir.write("model.safetensors.index.json", text: text)
            expectGLMError(.format, parts) { _ = try TensorStore(directory: dir.path) }
        }
    }

    @Test func directoryWithoutIndexOrSingleFile() throws {
        let dir = TemporaryDirectory()
        expectGLMError(.io, ["has no model.safetensors.index.json", dir.path]) {
            _ = try TensorStore(directory: dir.path)
        }
        try writeShard(dir, "b.safetensors", ["y"])
        try writeShard(dir, "a.safetensors", ["x"])
        let store = try TensorStore(directory: dir.path)
        #expect(store.names == ["x", "y"] && store.files.map(\.path) == [dir.file("a.safetensors"), dir.file("b.safetensors")])

        try writeShard(dir, "model.safetensors", ["only"])  // model.safetensors wins over the others
        #expect(try TensorStore(directory: dir.path).names == ["only"])

        try writeShard(dir, "c.safetensors", ["x"])
        _ = try dir.write("model.safetensors", [])
        unlinkFile(dir.file("model.safetensors"))
        expectGLMError(.format, ["'x' appears in two files"]) { _ = try TensorStore(directory: dir.path) }

        expectGLMError(.io, ["does not exist"]) { _ = try TensorStore(directory: dir.file("missing")) }
        expectGLMError(.io, ["is not a directory"]) { _ = try TensorStore(directory: dir.file("a.safetensors")) }
    }
}

@Suite struct ModelDirectoryTests {
    @Test func opensATinyModelDirectory() throws {
        let model = try ModelDirectory(path: modelFixture("glm47"))
        #expect(model.config.numHiddenLayers == 5 && model.tensors.files.count == 2)
        #expect(model.eosTokenIDs == [489, 496, 498] && model.generationConfig?.topP == 0.95)
    }

    @Test func missingPiecesAreErrors() throws {
        let dir = TemporaryDirectory()
        expectGLMError(.io, ["has no config.json"]) { _ = try ModelDirectory(path: dir.path) }
        _ = try dir.write("config.json", text: #"{"model_type": "glm4_moe", "head_dim": 128, "eos_token_id": 5}"#)
        expectGLMError(.io, ["no model.safetensors.index.json"]) { _ = try ModelDirectory(path: dir.path) }
        try SafetensorsWriter.write(path: dir.file("model.safetensors"),
                                    tensors: [.init(name: "x", dtype: .u8, shape: [1], bytes: [7])])
        let model = try ModelDirectory(path: dir.path)
        #expect(model.generationConfig == nil && model.eosTokenIDs == [5] && model.tensors.names == ["x"])
        expectGLMError(.io, ["does not exist"]) { _ = try ModelDirectory(path: dir.file("nope")) }
    }
}
