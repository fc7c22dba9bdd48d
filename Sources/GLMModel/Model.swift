import GLMFormats
import GLMJSON
import GLMNumerics
import GLMSupport
import Synchronization

/// A loaded GLM-4 MoE checkpoint (`Glm4MoeForCausalLM`: GLM-4.5, 4.5-Air, 4.6, 4.7), immutable after `load`, so any
/// number of `Session`s on any threads may share it.
///
/// Weights stay in the memory-mapped safetensors files and are computed on in place (f32, bf16 or f16), experts
/// one tensor per expert as on disk; loading reads only the headers and the small vectors (norms, biases), so a
/// checkpoint larger than RAM opens and pages in as it is used.
public final class Model: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; the maps are read-only.
    public let directory: String
    public let config: ModelConfig
    /// Threads a `Session` uses when it is not told otherwise.
    public let threads: Int
    /// What computes the projections of many tokens (prefill) in this model's sessions.
    public let gemmBackend: GEMMBackend
    /// The instruction set of the kernels (`KernelPath.resolve`: the caller's choice, else GLM_KERNELS, else the
    /// fastest the CPU has).
    public let kernelPath: KernelPath
    /// How bf16 weights multiply their inputs (`BF16Inputs`; by default `.bf16` for GGUF files, `.f32` otherwise).
    public let bf16Inputs: BF16Inputs
    /// Parameters of the tensors in use (main model and MTP layer; a tied lm_head counts once).
    public let parameterCount: Int
    /// Bytes of all mapped checkpoint files (address space, not resident memory).
    public let bytesMapped: Int
    /// Parameters per on-disk encoding: "BF16", "F32", ... for safetensors, also "Q8_0", "Q4_K", ... for GGUF.
    public let parametersByType: [String: Int]
    /// "safetensors" or "gguf".
    public let format: String
    /// For a GGUF model, its file (the first part of a split set): where its tokenizer and chat template are.
    public let ggufFile: String?

    let embedTokens: WeightMatrix
    let layers: [DecoderLayerWeights]
    let finalNorm: FloatBuffer
    let lmHead: WeightMatrix
    let mtp: MTPWeights?
    private let store: any ModelTensorSource  // owns the maps the weights point into
    private let fp8Scales: [FloatBuffer]        // owns the f32 scales the FP8 weights point into

    /// True if the checkpoint has the multi-token-prediction layer (`Session.mtpLogits`).
    public var hasMTP: Bool { mtp != nil }

    /// Opens `directory` (config.json + safetensors, sharded or not) and checks every tensor against the config:
    /// a missing tensor, a wrong shape or dtype, or a tensor that is not part of the architecture is a `GLMError`
    /// naming the file, the tensor and what was expected. `threads` <= 0 means `Threads.defaultCount`.
    /// `gemm`: the prefill GEMM backend, nil = GLM_GEMM (`packed` or `openblas`) or `.packed`.
    /// `kernels`: the kernel path, nil = GLM_KERNELS or the CPU's best. A CPU without AVX2/FMA/F16C is
    /// `.unsupported` before anything is read. `bf16Inputs`: how bf16 weights multiply, nil = `BF16Inputs.automatic`
    /// for the format. `populate`: map every page of the files into the process before returning (`populate()`).
    public static func load(directory: String, threads: Int = 0, gemm: GEMMBackend? = nil,
                            kernels: KernelPath? = nil, bf16Inputs: BF16Inputs? = nil,
                            populate: Bool = false) throws(GLMError) -> Model {
        let model = try loadMapped(directory: directory, threads: threads, gemm: gemm, kernels: kernels,
                                   bf16Inputs: bf16Inputs)
        if populate { try model.populate() }
        return model
    }

    /// Maps every page of the model's files into the process now, on the model's threads, reading from disk what
    /// the page cache lacks (as llama.cpp's default load does with MAP_POPULATE). Without it the weights map in on
    /// first use: a load returns at once, and the first tokens after it wait for the pages (and, for files not in
    /// the page cache, the disk reads) of every expert they meet for the first time. Measured on the synthetic
    /// GLM-4.7-shaped Q4_0 file (3.5 GB), one thread, decode of 64 tokens after an 8-token prompt: file in the page
    /// cache, 15.3 tokens/s either way (load 0.01 → 0.29 s); page cache dropped, 16.5 → 17.1 tokens/s (load 0.06 →
    /// 1.2 s). The resident set then holds the whole files (still within file size + session).
    public func populate() throws(GLMError) {
        let piece = 64 << 20
        var ranges: [(file: MappedFile, offset: Int)] = []
        for file in store.mappedFiles {
            var offset = 0
            while offset < file.count {
                ranges.append((file, offset))
                offset += piece
            }
        }
        let failure = Mutex<GLMError?>(nil)
        Workers(threads: threads).run(tasks: ranges.count) { _, task in
            do throws(GLMError) {
                try ranges[task].file.populate(offset: ranges[task].offset, count: piece)
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    private static func loadMapped(directory: String, threads: Int, gemm: GEMMBackend?, kernels: KernelPath?,
                                   bf16Inputs: BF16Inputs?) throws(GLMError) -> Model {
        let path = try KernelPath.resolve(kernels)
        let backend = try GEMMBackend.resolve(gemm)
        // Checked before any file in it is named: "" would otherwise become "/config.json".
        guard !directory.isEmpty else { throw .invalidArgument("the model path is empty (expected a model directory)") }
        // A GGUF model: a .gguf file (any part of a split set), or a directory with no config.json holding one.
        let isGGUFFile = !FileSystem.isDirectory(directory) && directory.hasSuffix(".gguf")
        var isGGUFDirectory = false
        if FileSystem.isDirectory(directory) && !FileSystem.exists(FileSystem.join(directory, "config.json")) {
            isGGUFDirectory = try GGUFModel.modelFile(in: directory) != nil
        }
        if isGGUFFile || isGGUFDirectory {
            let gguf = try GGUFModel(path: directory)
            return try Model(directory: directory, config: gguf.config, store: gguf, threads: Threads.resolve(threads),
                             gemmBackend: backend, kernelPath: path,
                             bf16Inputs: bf16Inputs ?? BF16Inputs.automatic(format: "gguf"), format: "gguf",
                             ggufFile: gguf.path)
        }
        guard FileSystem.isDirectory(directory) else {
            throw .io(FileSystem.exists(directory) ? "model path '\(directory)' is not a directory"
                                                   : "model directory '\(directory)' does not exist")
        }
        let config = try ModelConfig(contentsOf: FileSystem.join(directory, "config.json"))
        let store = try TensorStore(directory: directory)
        return try Model(directory: directory, config: config, store: store, threads: Threads.resolve(threads),
                         gemmBackend: backend, kernelPath: path,
                         bf16Inputs: bf16Inputs ?? BF16Inputs.automatic(format: "safetensors"), format: "safetensors")
    }

    private init(directory: String, config c: ModelConfig, store: any ModelTensorSource, threads: Int,
                 gemmBackend: GEMMBackend, kernelPath: KernelPath, bf16Inputs: BF16Inputs, format: String,
                 ggufFile: String? = nil) throws(GLMError) {
        let loader = WeightLoader(store: store, config: c)
        embedTokens = try loader.matrix("model.embed_tokens.weight", rows: c.vocabSize, columns: c.hiddenSize)
        var layers: [DecoderLayerWeights] = []
        for l in 0..<c.numHiddenLayers { layers.append(try loader.decoderLayer(l)) }
        self.layers = layers
        finalNorm = try loader.vector("model.norm.weight", count: c.hiddenSize)
        if c.tieWordEmbeddings {
            lmHead = embedTokens
        } else {
            lmHead = try loader.matrix("lm_head.weight", rows: c.vocabSize, columns: c.hiddenSize)
        }
        mtp = try loader.multiTokenPrediction(embedTokens: embedTokens, lmHead: lmHead)
        try loader.checkNoUnexpectedTensors()

        self.directory = directory
        self.config = c
        self.threads = threads
        self.gemmBackend = gemmBackend
        self.kernelPath = kernelPath
        self.bf16Inputs = bf16Inputs
        self.store = store
        self.fp8Scales = loader.fp8ScaleBuffers
        self.format = format
        self.ggufFile = ggufFile
        self.parametersByType = loader.parameters
        self.parameterCount = loader.parameters.values.reduce(0, +)
        self.bytesMapped = store.bytesMapped
    }

    /// The encoding holding most parameters ("bfloat16", "float32", "float16", or a ggml type such as "Q8_0").
    public var weightType: String {
        let names: [String: String] = ["F32": "float32", "BF16": "bfloat16", "F16": "float16",
                                       "F8_E4M3": "float8_e4m3fn"]
        let top = parametersByType.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }
        return top.flatMap { names[$0.key] ?? $0.key } ?? "none"
    }

    /// Weight bytes one decoded token reads in the main model: every attention and dense matrix, the router, the
    /// shared expert and `num_experts_per_tok` routed experts per MoE layer, and lm_head (the embedding row is
    /// negligible). The memory traffic that bounds decode speed.
    public var weightBytesPerDecodedToken: Int {
        var bytes = lmHead.byteCount
        for layer in layers {
            let a = layer.attention
            bytes += a.query.byteCount + a.key.byteCount + a.value.byteCount + a.output.byteCount
            switch layer.feedForward {
            case .dense(let mlp):
                bytes += mlp.byteCount
            case .mixtureOfExperts(let moe):
                bytes += moe.router.byteCount + (moe.shared?.byteCount ?? 0)
                if let expert = moe.experts.first { bytes += config.numExpertsPerTok * expert.byteCount }
            }
        }
        return bytes
    }

    /// What `glm_model_info` reports: the normalised config, parameter count, bytes mapped, weight dtype, MTP.
    public var info: JSONValue {
        var o = JSONObject()
        o["config"] = config.json
        o["parameter_count"] = JSONValue(parameterCount)
        o["bytes_mapped"] = JSONValue(bytesMapped)
        o["dtype"] = .string(weightType)
        o["format"] = .string(format)
        if let ggufFile { o["gguf_file"] = .string(ggufFile) }   // where the tokenizer and chat template are
        // Parameters per on-disk type: how a GGUF file mixes quantisations (e.g. {"Q4_K": ..., "Q6_K": ..., "F32": ...}).
        var types = JSONObject()
        for key in parametersByType.keys.sorted() { types[key] = JSONValue(parametersByType[key] ?? 0) }
        o["quantization"] = .object(types)
        // FP8 checkpoints: how the F8_E4M3 weights are scaled (config.json's quantization_config, parsed).
        if let fp8 = config.fp8, parametersByType["F8_E4M3"] != nil {
            var q = JSONObject()
            q["method"] = .string(fp8.method.rawValue)
            q["strategy"] = .string(fp8.strategy.description)
            o["fp8"] = .object(q)
        }
        o["has_mtp"] = .bool(hasMTP)
        o["weight_bytes_per_decoded_token"] = JSONValue(weightBytesPerDecodedToken)
        o["threads"] = JSONValue(threads)
        o["gemm"] = .string(gemmBackend.rawValue)
        o["kernels"] = .string(kernelPath.rawValue)
        o["bf16_inputs"] = .string(bf16Inputs.rawValue)
        o["cpu"] = .string(CPUFeatures.host.brand)
        // KV cache bytes per position of context, per element type (K and V both of it): all layers, and the MTP
        // layer's own cache, which a session keeps only when it drafts.
        var layers = JSONObject(), mtpLayer = JSONObject()
        for type in KVType.allCases {
            let perToken = Session.kvBytesPerToken(config: config, hasMTP: hasMTP, keyType: type, valueType: type)
            layers[type.name] = JSONValue(perToken.layers)
            mtpLayer[type.name] = JSONValue(perToken.mtp)
        }
        o["kv_bytes_per_token"] = .object(layers)
        o["mtp_kv_bytes_per_token"] = .object(mtpLayer)
        return .object(o)
    }
}

extension MLPWeights {
    var byteCount: Int { gate.byteCount + up.byteCount + down.byteCount }
}
