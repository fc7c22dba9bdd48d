import GLMJSON
import GLMSupport

/// The architecture hyper-parameters of a GLM-4.x MoE checkpoint (`config.json`, `Glm4MoeConfig`), keyed by the
/// Hugging Face names, with transformers 5's defaults for absent fields (docs/MODEL.md §1.1).
///
/// Both spellings of the RoPE parameters are read: the real checkpoints' top-level `rope_theta` /
/// `partial_rotary_factor` (transformers 4.x), and transformers 5's `rope_parameters` dict (or legacy `rope_scaling`);
/// as in transformers, a value inside the dict wins over the top-level one. Values are checked for consistency
/// (divisibility, ranges), so the model code can index with them without further checks.
public struct ModelConfig: Sendable {
    public var modelType: String
    public var architectures: [String]
    public var vocabSize: Int
    public var hiddenSize: Int
    /// SwiGLU width of the dense layers (`l < firstKDenseReplace`).
    public var intermediateSize: Int
    /// SwiGLU width of each routed expert; the shared expert is `moeIntermediateSize × nSharedExperts` wide.
    public var moeIntermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var partialRotaryFactor: Double
    public var ropeTheta: Double
    /// `rope_parameters.rope_type`; only `"default"` is accepted.
    public var ropeType: String
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double
    public var hiddenAct: String
    public var attentionBias: Bool
    public var useQKNorm: Bool
    public var firstKDenseReplace: Int
    public var nRoutedExperts: Int
    public var nSharedExperts: Int
    public var numExpertsPerTok: Int
    public var nGroup: Int
    public var topkGroup: Int
    public var normTopkProb: Bool
    public var routedScalingFactor: Double
    public var tieWordEmbeddings: Bool
    public var numNextnPredictLayers: Int
    /// `dtype` (transformers 5, GLM-4.7) or `torch_dtype` (older): the dtype the weights were saved in, e.g. "bfloat16".
    public var torchDtype: String?
    public var eosTokenIDs: [Int]
    public var bosTokenID: Int?
    public var padTokenID: Int?
    /// `quantization_config` as written (e.g. compressed-tensors for the FP8 releases), for the weight loader.
    public var quantizationConfig: JSONValue?
    /// `quantizationConfig` parsed: how FP8 weights are scaled (nil when the checkpoint has no quantization_config).
    public var fp8: FP8Quantization?

    /// Rotated dimensions per head: int(headDim × partialRotaryFactor), as transformers computes it.
    public var rotaryDim: Int { Int(Double(headDim) * partialRotaryFactor) }

    /// The largest value accepted for a size field; keeps every product of two sizes far from `Int` overflow.
    public static let maxDimension = 1 << 24

    public static let supportedModelType = "glm4_moe"
    public static let supportedArchitecture = "Glm4MoeForCausalLM"

    /// Reads and checks `path` (a `config.json`).
    public init(contentsOf path: String) throws(GLMError) {
        try self.init(json: ConfigFields.load(path), source: path)
    }

    /// Parses a `config.json` object; `source` names it in error messages.
    public init(json: JSONValue, source: String) throws(GLMError) {
        let f = try ConfigFields(json, source: source)

        modelType = try f.optionalString("model_type") ?? ""
        architectures = []
        if let (key, value) = f.value(["architectures"]) {
            guard case .array(let items) = value else { throw f.error(key, "is not a list of strings") }
            for item in items {
                guard case .string(let s) = item else { throw f.error(key, "is not a list of strings") }
                architectures.append(s)
            }
        }
        // Either field may be missing, but neither may name something else: the forward pass is GLM-4 MoE's, and
        // another architecture's weights that happen to fit its tensor names would compute nonsense. Every
        // published GLM-4.5/4.6/4.7 config.json says model_type "glm4_moe", architectures ["Glm4MoeForCausalLM"]
        // (the MTP layer is part of that checkpoint; no separate MTP architecture appears in config.json).
        let runs = "this library runs \"\(ModelConfig.supportedModelType)\" (\(ModelConfig.supportedArchitecture))"
            + " models only"
        guard modelType.isEmpty || modelType == ModelConfig.supportedModelType else {
            throw .unsupported("'\(source)' has model_type \"\(modelType)\" (architectures \(architectures)); \(runs)")
        }
        if let other = architectures.first(where: { $0 != ModelConfig.supportedArchitecture }) {
            throw .unsupported("'\(source)' names architecture \"\(other)\" (model_type"
                + " \"\(modelType)\"); \(runs)")
        }
        guard !modelType.isEmpty || !architectures.isEmpty else {
            throw .unsupported("'\(source)' has no \"model_type\" and no \"architectures\"; \(runs)")
        }
        if modelType.isEmpty { modelType = ModelConfig.supportedModelType }

        vocabSize = try f.int("vocab_size", default: 151552)
        hiddenSize = try f.int("hidden_size", default: 4096)
        intermediateSize = try f.int("intermediate_size", default: 10944)
        moeIntermediateSize = try f.int("moe_intermediate_size", default: 1408)
        numHiddenLayers = try f.int("num_hidden_layers", default: 46)
        numAttentionHeads = try f.int("num_attention_heads", default: 96)
        numKeyValueHeads = try f.int("num_key_value_heads", default: 8)
        maxPositionEmbeddings = try f.int("max_position_embeddings", default: 131072)
        rmsNormEps = try f.double("rms_norm_eps", default: 1e-5)
        hiddenAct = try f.optionalString("hidden_act") ?? "silu"
        attentionBias = try f.bool("attention_bias", default: false)
        useQKNorm = try f.bool("use_qk_norm", default: false)
        firstKDenseReplace = try f.int("first_k_dense_replace", default: 1)
        nRoutedExperts = try f.int("n_routed_experts", "num_local_experts", default: 128)
        nSharedExperts = try f.int("n_shared_experts", default: 1)
        numExpertsPerTok = try f.int("num_experts_per_tok", default: 8)
        nGroup = try f.int("n_group", default: 1)
        topkGroup = try f.int("topk_group", default: 1)
        normTopkProb = try f.bool("norm_topk_prob", default: true)
        routedScalingFactor = try f.double("routed_scaling_factor", default: 1.0)
        tieWordEmbeddings = try f.bool("tie_word_embeddings", default: false)
        numNextnPredictLayers = try f.int("num_nextn_predict_layers", "num_mtp_layers", default: 1)
        torchDtype = try f.optionalString("dtype", "torch_dtype")
        eosTokenIDs = try f.tokenIDs("eos_token_id")
        bosTokenID = try f.tokenID("bos_token_id")
        padTokenID = try f.tokenID("pad_token_id")
        quantizationConfig = f.value(["quantization_config"])?.value
        fp8 = try quantizationConfig.map { q throws(GLMError) in try FP8Quantization(json: q, source: source) }

        // head_dim is explicit in the real checkpoints (5120 / 96 is not an integer); absent means
        // hidden_size // num_attention_heads, as transformers' modeling code computes it.
        if let explicit = try f.optionalInt("head_dim") {
            headDim = explicit
        } else {
            guard numAttentionHeads > 0 else {
                throw f.error("num_attention_heads", "is \(numAttentionHeads), expected a positive integer")
            }
            headDim = hiddenSize / numAttentionHeads
        }

        // RoPE: rope_scaling (legacy) or rope_parameters, then the top-level keys, then the defaults.
        var rope = JSONObject()
        var ropeKey = "rope_parameters"
        if let (key, value) = f.value(["rope_scaling", "rope_parameters"]) {
            guard case .object(let dict) = value else { throw f.error(key, "is \(value.compactJSON), expected an object") }
            rope = dict
            ropeKey = key
        }
        let ropeFields = try ConfigFields(.object(rope), source: source, keyPrefix: ropeKey + ".")
        ropeType = try ropeFields.optionalString("rope_type", "type") ?? "default"
        let topLevelTheta = try f.double("rope_theta", default: 10000.0)
        ropeTheta = try ropeFields.optionalDouble("rope_theta") ?? topLevelTheta
        let topLevelFactor = try f.double("partial_rotary_factor", default: 0.5)
        partialRotaryFactor = try ropeFields.optionalDouble("partial_rotary_factor") ?? topLevelFactor

        try validate(f)
    }

    private func validate(_ f: ConfigFields) throws(GLMError) {
        let sizes: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("moe_intermediate_size", moeIntermediateSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", numKeyValueHeads),
            ("head_dim", headDim), ("n_routed_experts", nRoutedExperts), ("num_experts_per_tok", numExpertsPerTok),
            ("n_group", nGroup), ("topk_group", topkGroup), ("max_position_embeddings", maxPositionEmbeddings),
        ]
        for (key, value) in sizes where value < 1 || value > ModelConfig.maxDimension {
            throw f.error(key, "is \(value), expected an integer in 1...\(ModelConfig.maxDimension)")
        }
        let counts: [(String, Int)] = [
            ("n_shared_experts", nSharedExperts), ("num_nextn_predict_layers", numNextnPredictLayers),
        ]
        for (key, value) in counts where value < 0 || value > ModelConfig.maxDimension {
            throw f.error(key, "is \(value), expected an integer in 0...\(ModelConfig.maxDimension)")
        }
        guard (0...numHiddenLayers).contains(firstKDenseReplace) else {
            throw f.error("first_k_dense_replace", "is \(firstKDenseReplace), expected 0...num_hidden_layers"
                + " (\(numHiddenLayers))")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw f.error("num_key_value_heads", "is \(numKeyValueHeads), which does not divide num_attention_heads"
                + " \(numAttentionHeads)")
        }
        guard numExpertsPerTok <= nRoutedExperts else {
            throw f.error("num_experts_per_tok", "is \(numExpertsPerTok), more than n_routed_experts \(nRoutedExperts)")
        }
        guard nRoutedExperts % nGroup == 0 else {
            throw f.error("n_group", "is \(nGroup), which does not divide n_routed_experts \(nRoutedExperts)")
        }
        guard topkGroup <= nGroup else {
            throw f.error("topk_group", "is \(topkGroup), more than n_group \(nGroup)")
        }
        let groupSize = nRoutedExperts / nGroup
        // Group scores are the sum of each group's two best experts, so a group needs two experts.
        if nGroup > 1 && groupSize < 2 {
            throw f.error("n_group", "is \(nGroup), leaving \(groupSize) expert per group (group routing needs 2)")
        }
        guard topkGroup * groupSize >= numExpertsPerTok else {
            throw f.error("topk_group", "is \(topkGroup): \(topkGroup) groups of \(groupSize) experts cannot supply"
                + " num_experts_per_tok \(numExpertsPerTok)")
        }
        guard partialRotaryFactor > 0, partialRotaryFactor <= 1 else {
            throw f.error("partial_rotary_factor", "is \(partialRotaryFactor), expected a number in (0, 1]")
        }
        guard rotaryDim >= 2, rotaryDim % 2 == 0 else {
            throw f.error("partial_rotary_factor", "is \(partialRotaryFactor): head_dim \(headDim) × factor ="
                + " \(rotaryDim) rotary dimensions, expected a positive even number")
        }
        guard ropeTheta.isFinite, ropeTheta > 0 else {
            throw f.error("rope_theta", "is \(ropeTheta), expected a finite number > 0")
        }
        guard ropeType == "default" else {
            throw .unsupported("'\(f.source)': rope_type \"\(ropeType)\" is not supported (only \"default\" RoPE,"
                + " which every GLM-4.x release uses)")
        }
        guard rmsNormEps.isFinite, rmsNormEps > 0 else {
            throw f.error("rms_norm_eps", "is \(rmsNormEps), expected a finite number > 0")
        }
        guard routedScalingFactor.isFinite, routedScalingFactor > 0 else {
            throw f.error("routed_scaling_factor", "is \(routedScalingFactor), expected a finite number > 0")
        }
        guard hiddenAct == "silu" else {
            throw .unsupported("'\(f.source)': hidden_act \"\(hiddenAct)\" is not supported (GLM-4.x uses \"silu\")")
        }
    }

    /// The normalised configuration with HF key names (what `glm_model_info` reports).
    public var json: JSONValue {
        func ids(_ list: [Int]) -> JSONValue {
            list.count == 1 ? JSONValue(list[0]) : .array(list.map { JSONValue($0) })
        }
        func optional(_ id: Int?) -> JSONValue { id.map { JSONValue($0) } ?? .null }
        var o = JSONObject()
        o["model_type"] = .string(modelType)
        o["architectures"] = .array(architectures.map { .string($0) })
        o["vocab_size"] = JSONValue(vocabSize)
        o["hidden_size"] = JSONValue(hiddenSize)
        o["intermediate_size"] = JSONValue(intermediateSize)
        o["moe_intermediate_size"] = JSONValue(moeIntermediateSize)
        o["num_hidden_layers"] = JSONValue(numHiddenLayers)
        o["num_attention_heads"] = JSONValue(numAttentionHeads)
        o["num_key_value_heads"] = JSONValue(numKeyValueHeads)
        o["head_dim"] = JSONValue(headDim)
        o["partial_rotary_factor"] = .double(partialRotaryFactor)
        o["rotary_dim"] = JSONValue(rotaryDim)
        o["rope_theta"] = .double(ropeTheta)
        o["rope_type"] = .string(ropeType)
        o["max_position_embeddings"] = JSONValue(maxPositionEmbeddings)
        o["rms_norm_eps"] = .double(rmsNormEps)
        o["hidden_act"] = .string(hiddenAct)
        o["attention_bias"] = .bool(attentionBias)
        o["use_qk_norm"] = .bool(useQKNorm)
        o["first_k_dense_replace"] = JSONValue(firstKDenseReplace)
        o["n_routed_experts"] = JSONValue(nRoutedExperts)
        o["n_shared_experts"] = JSONValue(nSharedExperts)
        o["num_experts_per_tok"] = JSONValue(numExpertsPerTok)
        o["n_group"] = JSONValue(nGroup)
        o["topk_group"] = JSONValue(topkGroup)
        o["norm_topk_prob"] = .bool(normTopkProb)
        o["routed_scaling_factor"] = .double(routedScalingFactor)
        o["tie_word_embeddings"] = .bool(tieWordEmbeddings)
        o["num_nextn_predict_layers"] = JSONValue(numNextnPredictLayers)
        o["dtype"] = torchDtype.map { .string($0) } ?? .null
        o["eos_token_id"] = eosTokenIDs.isEmpty ? .null : ids(eosTokenIDs)
        o["bos_token_id"] = optional(bosTokenID)
        o["pad_token_id"] = optional(padTokenID)
        if let quantizationConfig { o["quantization_config"] = quantizationConfig }
        return .object(o)
    }
}
