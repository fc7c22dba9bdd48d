import GLMNumerics

// The weights of one GLM-4 MoE model, by block, as docs/MODEL.md §2 names them. Matrices are read in place from the
// memory-mapped checkpoint (`WeightMatrix`); vectors (norm gains, biases, the router's correction bias) are a few
// KB per layer and are copied to f32 at load.

/// `self_attn.*`.
struct AttentionWeights {
    let query: WeightMatrix
    let key: WeightMatrix
    let value: WeightMatrix
    let output: WeightMatrix
    /// q/k/v biases: present iff `attention_bias`.
    let queryBias: FloatBuffer?
    let keyBias: FloatBuffer?
    let valueBias: FloatBuffer?
    /// Per-head RMSNorm gains over head_dim: present iff `use_qk_norm`.
    let queryNorm: FloatBuffer?
    let keyNorm: FloatBuffer?
}

/// A SwiGLU MLP `down(silu(gate(x)) ⊙ up(x))`: the dense layers, every routed expert and the shared expert.
struct MLPWeights {
    let gate: WeightMatrix
    let up: WeightMatrix
    let down: WeightMatrix

    var width: Int { gate.rows }
}

/// `mlp.*` of a MoE layer.
struct MoEWeights {
    /// `mlp.gate.weight` [E, H]: router logits.
    let router: WeightMatrix
    /// `mlp.gate.e_score_correction_bias` [E]: added to the scores only to choose experts.
    let correctionBias: FloatBuffer
    /// `mlp.experts.{e}`, one per routed expert, as stored on disk.
    let experts: [MLPWeights]
    /// `mlp.shared_experts` (width moe_intermediate_size × n_shared_experts); nil when n_shared_experts is 0.
    let shared: MLPWeights?
}

enum FeedForwardWeights {
    case dense(MLPWeights)
    case mixtureOfExperts(MoEWeights)
}

/// `model.layers.{l}.*`: each block with the RMSNorm gain of its input.
struct DecoderLayerWeights {
    let inputNorm: FloatBuffer             // input_layernorm
    let attention: AttentionWeights
    let postAttentionNorm: FloatBuffer     // post_attention_layernorm
    let feedForward: FeedForwardWeights
}

/// The multi-token-prediction layer `model.layers.{num_hidden_layers}.*` (docs/MODEL.md §3.9).
struct MTPWeights {
    /// Its own `embed_tokens` (the main one when the checkpoint shares it).
    let embedTokens: WeightMatrix
    let embeddingNorm: FloatBuffer     // enorm
    let hiddenNorm: FloatBuffer        // hnorm
    let combine: WeightMatrix          // eh_proj [H, 2H]
    let layer: DecoderLayerWeights
    let headNorm: FloatBuffer          // shared_head.norm
    /// `shared_head.head` (the main lm_head when the checkpoint shares it).
    let head: WeightMatrix
}
