import CGLMKernels
import GLMFormats
import GLMNumerics
import GLMSupport

/// Reads the tensors of a checkpoint into `LayerWeights` values, checking each against the shape the config
/// implies, and records which tensors it used so that anything left over can be reported as unexpected.
final class WeightLoader {
    static let matrixTypes: Set<TensorDType> = [.f32, .bf16, .f16]
    static let vectorTypes: Set<TensorDType> = [.f32, .bf16, .f16]

    let store: any ModelTensorSource
    let config: ModelConfig
    private(set) var used: Set<String> = []
    /// Parameters per encoding ("BF16", "Q8_0", ...) of the tensors used (a tied lm_head counts once).
    private(set) var parameters: [String: Int] = [:]
    /// The f32 scales of the FP8 matrices (converted at load; the matrices point into them): the model keeps them.
    private(set) var fp8ScaleBuffers: [FloatBuffer] = []

    init(store: any ModelTensorSource, config: ModelConfig) {
        self.store = store
        self.config = config
    }

    // MARK: whole model

    func decoderLayer(_ index: Int) throws(GLMError) -> DecoderLayerWeights {
        let c = config
        let p = "model.layers.\(index)."
        let qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        let inputNorm = try vector(p + "input_layernorm.weight", count: c.hiddenSize)
        let attention = AttentionWeights(
            query: try matrix(p + "self_attn.q_proj.weight", rows: qWidth, columns: c.hiddenSize),
            key: try matrix(p + "self_attn.k_proj.weight", rows: kvWidth, columns: c.hiddenSize),
            value: try matrix(p + "self_attn.v_proj.weight", rows: kvWidth, columns: c.hiddenSize),
            output: try matrix(p + "self_attn.o_proj.weight", rows: c.hiddenSize, columns: qWidth),
            queryBias: try vector(p + "self_attn.q_proj.bias", count: qWidth, if: c.attentionBias),
            keyBias: try vector(p + "self_attn.k_proj.bias", count: kvWidth, if: c.attentionBias),
            valueBias: try vector(p + "self_attn.v_proj.bias", count: kvWidth, if: c.attentionBias),
            queryNorm: try vector(p + "self_attn.q_norm.weight", count: c.headDim, if: c.useQKNorm),
            keyNorm: try vector(p + "self_attn.k_norm.weight", count: c.headDim, if: c.useQKNorm))
        let feedForward: FeedForwardWeights
        // The MTP layer (index == num_hidden_layers) is always a MoE layer.
        if index < c.firstKDenseReplace {
            feedForward = .dense(try mlp(p + "mlp.", width: c.intermediateSize))
        } else {
            var experts: [MLPWeights] = []
            // The count comes from the file (up to ModelConfig.maxDimension): reserve no more than a real model
            // has, so that a damaged count fails at its first missing expert instead of allocating gigabytes.
            experts.reserveCapacity(min(c.nRoutedExperts, 1024))
            for e in 0..<c.nRoutedExperts {
                experts.append(try mlp(p + "mlp.experts.\(e).", width: c.moeIntermediateSize))
            }
            feedForward = .mixtureOfExperts(MoEWeights(
                router: try matrix(p + "mlp.gate.weight", rows: c.nRoutedExperts, columns: c.hiddenSize),
                correctionBias: try vector(p + "mlp.gate.e_score_correction_bias", count: c.nRoutedExperts),
                experts: experts,
                shared: try sharedExpert(p + "mlp.shared_experts.")))
        }
        return DecoderLayerWeights(inputNorm: inputNorm, attention: attention,
                                   postAttentionNorm: try vector(p + "post_attention_layernorm.weight",
                                                                 count: c.hiddenSize),
                                   feedForward: feedForward)
    }

    /// The MTP layer, if the checkpoint has any `model.layers.{num_hidden_layers}.*` tensor (then it must be
    /// complete). Its `embed_tokens` and `shared_head.head` fall back to the main model's when absent.
    func multiTokenPrediction(embedTokens: WeightMatrix, lmHead: WeightMatrix) throws(GLMError) -> MTPWeights? {
        let c = config
        let p = "model.layers.\(c.numHiddenLayers)."
        guard store.tensorNames.contains(where: { $0.hasPrefix(p) }) else { return nil }
        let embed = try matrixIfPresent(p + "embed_tokens.weight", rows: c.vocabSize, columns: c.hiddenSize)
        let head = try matrixIfPresent(p + "shared_head.head.weight", rows: c.vocabSize, columns: c.hiddenSize)
        return MTPWeights(
            embedTokens: embed ?? embedTokens,
            embeddingNorm: try vector(p + "enorm.weight", count: c.hiddenSize),
            hiddenNorm: try vector(p + "hnorm.weight", count: c.hiddenSize),
            combine: try matrix(p + "eh_proj.weight", rows: c.hiddenSize, columns: 2 * c.hiddenSize),
            layer: try decoderLayer(c.numHiddenLayers),
            headNorm: try vector(p + "shared_head.norm.weight", count: c.hiddenSize),
            head: head ?? lmHead)
    }

    /// Throws if the checkpoint holds a tensor that is not part of the architecture the config describes.
    func checkNoUnexpectedTensors() throws(GLMError) {
        for name in store.tensorNames where !used.contains(name) {
            guard let info = store.modelTensor(name) else { continue }
            // A tied checkpoint may still carry a copy of lm_head; it is ignored, as transformers ties over it.
            if name == "lm_head.weight" && config.tieWordEmbeddings { continue }
            throw .format("tensor '\(name)' (\(info.typeDescription)) in \(info.origin) is not part of a"
                + " \(ModelConfig.supportedArchitecture) with \(config.numHiddenLayers) layers,"
                + " first_k_dense_replace \(config.firstKDenseReplace), \(config.nRoutedExperts) routed experts,"
                + " n_shared_experts \(config.nSharedExperts), attention_bias \(config.attentionBias),"
                + " use_qk_norm \(config.useQKNorm) (MTP layer index \(config.numHiddenLayers))")
        }
    }

    // MARK: single tensors

    func mlp(_ prefix: String, width: Int) throws(GLMError) -> MLPWeights {
        MLPWeights(gate: try matrix(prefix + "gate_proj.weight", rows: width, columns: config.hiddenSize),
                   up: try matrix(prefix + "up_proj.weight", rows: width, columns: config.hiddenSize),
                   down: try matrix(prefix + "down_proj.weight", rows: config.hiddenSize, columns: width))
    }

    /// The shared expert (width moe_intermediate_size × n_shared_experts), nil when n_shared_experts is 0.
    func sharedExpert(_ prefix: String) throws(GLMError) -> MLPWeights? {
        if config.nSharedExperts == 0 { return nil }
        return try mlp(prefix, width: config.moeIntermediateSize * config.nSharedExperts)
    }

    func matrixIfPresent(_ name: String, rows: Int, columns: Int) throws(GLMError) -> WeightMatrix? {
        if store.modelTensor(name) == nil { return nil }
        return try matrix(name, rows: rows, columns: columns)
    }

    /// The tensor `name`, checked against the shape the config implies and the encodings allowed; the error names
    /// the tensor, where it is, and what was expected.
    func require(_ name: String, shape: [Int], matrix: Bool) throws(GLMError) -> ModelTensor {
        guard let info = store.modelTensor(name) else {
            let expected = matrix ? "one of {BF16, F16, F32} or a GGUF block type" : "one of {BF16, F16, F32}"
            throw .format("checkpoint '\(store.location)' has no tensor '\(name)' (expected \(expected)\(shape);"
                + " the checkpoint has \(store.tensorNames.count) tensors)")
        }
        guard info.shape == shape else {
            throw .format("tensor '\(name)' in \(info.origin) has shape \(info.shape), expected \(shape)")
        }
        switch info.encoding {
        case .dtype(.f8e4m3) where matrix:
            // Checked in fp8Storage: the config, the ignore list and the scale.
            break
        case .dtype(let d):
            let allowed = matrix ? WeightLoader.matrixTypes : WeightLoader.vectorTypes
            guard allowed.contains(d) else {
                throw .unsupported("tensor '\(name)' in \(info.origin) has dtype \(d.rawValue), expected one of"
                    + (matrix ? " {BF16, F16, F32, F8_E4M3 with scales}" : " {BF16, F16, F32}"))
            }
        case .ggml(let t):
            guard glm_ggml_dequantizable(Int32(t.rawValue)) == 1 else {
                throw .unsupported("tensor '\(name)' (\(info.origin)) has ggml type \(t.name), which libglm does not"
                    + " support (supported: \(WeightLoader.ggmlTypeNames))")
            }
        }
        return info
    }

    static let ggmlTypeNames = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS"

    /// A `[rows, columns]` matrix, read in place.
    func matrix(_ name: String, rows: Int, columns: Int) throws(GLMError) -> WeightMatrix {
        let info = try require(name, shape: [rows, columns], matrix: true)
        guard let base = info.bytes.baseAddress else {
            throw .format("tensor '\(name)' in \(info.origin) has no data")
        }
        record(info)
        let storage: WeightMatrix.Storage
        switch info.encoding {
        case .dtype(.f32), .ggml(GGMLType.f32): storage = .f32(base.assumingMemoryBound(to: Float.self))
        case .dtype(.bf16), .ggml(GGMLType.bf16): storage = .bf16(base.assumingMemoryBound(to: UInt16.self))
        case .dtype(.f8e4m3): storage = try fp8Storage(info, base: base, rows: rows, columns: columns)
        case .dtype, .ggml(GGMLType.f16): storage = .f16(base.assumingMemoryBound(to: UInt16.self))
        case .ggml(let t):
            guard let rowBytes = info.encoding.rowBytes(columns: columns) else {
                throw .format("tensor '\(name)' in \(info.origin): \(columns) columns are not whole \(t.name) blocks")
            }
            storage = .ggml(type: Int32(t.rawValue), base: base, rowBytes: rowBytes)
        }
        return WeightMatrix(rows: rows, columns: columns, storage: storage)
    }

    /// An F8_E4M3 weight `X.weight` with its scale tensor (docs/MODEL.md §4): the checkpoint's quantization_config
    /// must say how it is scaled and must not list module `X` as unquantised; the scale's dtype and shape must fit the
    /// strategy. The scales are converted to f32 here (they are small: one per row or per 128×128 block).
    func fp8Storage(_ info: ModelTensor, base: UnsafeRawPointer, rows: Int, columns: Int)
        throws(GLMError) -> WeightMatrix.Storage {
        let name = info.name
        guard let q = config.fp8 else {
            throw .unsupported("tensor '\(name)' in \(info.origin) is F8_E4M3 but config.json has no"
                + " quantization_config saying how it is scaled (expected compressed-tensors or quant_method \"fp8\")")
        }
        let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
        guard !q.ignores(module: module) else {
            throw .format("tensor '\(name)' in \(info.origin) is F8_E4M3 but quantization_config lists module"
                + " '\(module)' as not quantised (ignore / modules_to_not_convert)")
        }
        let scaleName = module + "." + q.scaleSuffix
        let layout = q.scaleLayout(rows: rows, columns: columns)
        let expectedShape = layout.shapes
        let strategy = "\(q.method.rawValue) \(q.strategy.description)"
        guard let scale = store.modelTensor(scaleName) else {
            throw .format("FP8 tensor '\(name)' in \(info.origin) has no scale tensor '\(scaleName)' (\(strategy):"
                + " expected shape \(expectedShape[0]))")
        }
        guard case .dtype(let scaleType) = scale.encoding, [.f32, .bf16, .f16].contains(scaleType) else {
            throw .unsupported("scale tensor '\(scaleName)' (\(scale.origin)) is \(scale.typeDescription), expected"
                + " F32, BF16 or F16")
        }
        guard expectedShape.contains(scale.shape) else {
            throw .format("scale tensor '\(scaleName)' (\(scale.origin)) has shape \(scale.shape); \(strategy) scales"
                + " of a [\(rows), \(columns)] weight have shape \(expectedShape[0])")
        }
        let count = scale.elementCount
        let buffer = try FloatBuffer(count: max(count, 1), purpose: "scales of '\(name)'")
        for i in 0..<count {
            switch scaleType {
            case .f32: buffer.pointer[i] = scale.bytes.load(fromByteOffset: 4 * i, as: Float.self)
            case .bf16: buffer.pointer[i] = HalfPrecision.bf16ToFloat(scale.bytes.load(fromByteOffset: 2 * i, as: UInt16.self))
            default: buffer.pointer[i] = HalfPrecision.f16ToFloat(scale.bytes.load(fromByteOffset: 2 * i, as: UInt16.self))
            }
        }
        let scales = glm_fp8_scales(scales: buffer.pointer, block_rows: layout.blockRows,
                                    block_columns: layout.blockColumns, scale_stride: layout.stride)
        guard glm_fp8_scales_valid(scales, rows, columns, count) == 1 else {
            throw .format("scale tensor '\(scaleName)' (\(scale.origin)) does not cover a [\(rows), \(columns)] weight")
        }
        fp8ScaleBuffers.append(buffer)
        used.insert(scaleName)
        // Static activation scales (GPU FP8 matmuls): not used, as activations stay f32 here.
        if store.modelTensor(module + ".input_scale") != nil { used.insert(module + ".input_scale") }
        return .fp8(base: base.assumingMemoryBound(to: UInt8.self), scales: scales)
    }

    /// The vector `name` if `present` (a config flag says the architecture has it), else nil.
    func vector(_ name: String, count: Int, if present: Bool) throws(GLMError) -> FloatBuffer? {
        if !present { return nil }
        return try vector(name, count: count)
    }

    /// A `[count]` vector, copied to f32.
    func vector(_ name: String, count: Int) throws(GLMError) -> FloatBuffer {
        let info = try require(name, shape: [count], matrix: false)
        record(info)
        let out = try FloatBuffer(count: count, purpose: "tensor '\(name)'")
        let raw = info.bytes
        switch info.encoding {
        case .ggml(let t):
            guard let base = raw.baseAddress, glm_dequantize(Int32(t.rawValue), base, out.pointer, count) == 0 else {
                throw .unsupported("tensor '\(name)' (\(info.origin)): \(count) elements of \(t.name) cannot be read")
            }
        case .dtype(let dtype):
            for i in 0..<count {
                switch dtype {
                case .f32: out.pointer[i] = raw.load(fromByteOffset: 4 * i, as: Float.self)
                case .bf16: out.pointer[i] = HalfPrecision.bf16ToFloat(raw.load(fromByteOffset: 2 * i, as: UInt16.self))
                default: out.pointer[i] = HalfPrecision.f16ToFloat(raw.load(fromByteOffset: 2 * i, as: UInt16.self))
                }
            }
        }
        return out
    }

    private func record(_ info: ModelTensor) {
        if used.insert(info.name).inserted { parameters[info.encoding.description, default: 0] += info.elementCount }
    }
}
