#!/usr/bin/env python3
"""Reference fixtures for the GLMFormats tests (Tests/Fixtures/formats/).

  configs.json       config.json variants (both RoPE spellings, aliases, defaults) and the values transformers'
                     Glm4MoeConfig reads from them (head_dim falls back to hidden/heads as the modeling code does).
  mixed.safetensors  a file written by the reference writer (safetensors.torch.save_file) with every dtype the
                     library reads, zero-sized and scalar tensors, and __metadata__;
  mixed.json         its tensors (name, dtype, shape, bytes as hex) and metadata, read back by safetensors itself.

Rerun from the repository root:  python3 tools/make_formats_fixtures.py
Needs torch, transformers 5.2x, safetensors.
"""
import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import Glm4MoeConfig

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "formats")

GLM47_LEGACY = {  # the spelling of the published checkpoints (transformers 4.5x), GLM-4.7 values
    "architectures": ["Glm4MoeForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
    "pad_token_id": 151329, "eos_token_id": [151329, 151336, 151338], "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 5120, "partial_rotary_factor": 0.5, "initializer_range": 0.02, "intermediate_size": 12288,
    "max_position_embeddings": 202752, "model_type": "glm4_moe", "moe_intermediate_size": 1536,
    "norm_topk_prob": True, "num_attention_heads": 96, "n_group": 1, "topk_group": 1, "n_routed_experts": 160,
    "n_shared_experts": 1, "routed_scaling_factor": 2.5, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
    "num_hidden_layers": 92, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_scaling": None,
    "rope_theta": 1000000, "num_nextn_predict_layers": 1, "tie_word_embeddings": False, "dtype": "bfloat16",
    "transformers_version": "4.57.1", "use_cache": True, "use_qk_norm": True, "vocab_size": 151552,
}

CASES = [
    ("glm47_legacy_spelling", GLM47_LEGACY),
    # HF's own defaults give head_dim 4096 // 96 = 42 and 21 rotary dims: rejected by the loader (odd rotary dim).
    ("defaults_only", {"model_type": "glm4_moe"}),
    ("defaults_with_head_dim", {"model_type": "glm4_moe", "head_dim": 128}),
    ("v5_rope_parameters", {
        "model_type": "glm4_moe", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0, "partial_rotary_factor": 0.25},
        "torch_dtype": "float32", "eos_token_id": 7, "bos_token_id": 3}),
    ("dict_wins_over_top_level", {
        "model_type": "glm4_moe", "head_dim": 64, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
        "rope_theta": 1000000.0, "partial_rotary_factor": 0.75}),
    ("aliases", {
        "architectures": ["Glm4MoeForCausalLM"], "num_local_experts": 16, "num_mtp_layers": 0,
        "torch_dtype": "float16", "hidden_size": 96, "num_attention_heads": 6, "num_key_value_heads": 3}),
    ("legacy_rope_scaling_dict", {
        "model_type": "glm4_moe", "rope_scaling": {"rope_type": "default", "rope_theta": 20000.0},
        "partial_rotary_factor": 1.0}),
    ("air_like", {
        "model_type": "glm4_moe", "hidden_size": 4096, "head_dim": 128, "use_qk_norm": False,
        "n_routed_experts": 128, "first_k_dense_replace": 1, "routed_scaling_factor": 1.0, "rope_theta": 1000000.0,
        "partial_rotary_factor": 0.5, "n_group": 4, "topk_group": 2, "norm_topk_prob": False,
        "tie_word_embeddings": True}),
]


def expected(config):
    c = Glm4MoeConfig.from_dict(dict(config))
    rope = c.rope_parameters
    eos = c.eos_token_id
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    prf = rope.get("partial_rotary_factor", 0.5)
    return {
        "vocab_size": c.vocab_size, "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
        "moe_intermediate_size": c.moe_intermediate_size, "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads, "num_key_value_heads": c.num_key_value_heads,
        "head_dim": head_dim, "partial_rotary_factor": float(prf), "rotary_dim": int(head_dim * prf),
        "rope_theta": float(rope["rope_theta"]), "rope_type": rope["rope_type"],
        "max_position_embeddings": c.max_position_embeddings, "rms_norm_eps": float(c.rms_norm_eps),
        "hidden_act": c.hidden_act, "attention_bias": c.attention_bias, "use_qk_norm": c.use_qk_norm,
        "first_k_dense_replace": c.first_k_dense_replace, "n_routed_experts": c.n_routed_experts,
        "n_shared_experts": c.n_shared_experts, "num_experts_per_tok": c.num_experts_per_tok,
        "n_group": c.n_group, "topk_group": c.topk_group, "norm_topk_prob": c.norm_topk_prob,
        "routed_scaling_factor": float(c.routed_scaling_factor), "tie_word_embeddings": c.tie_word_embeddings,
        "num_nextn_predict_layers": c.num_nextn_predict_layers,
        "dtype": None if c.dtype is None else str(c.dtype).removeprefix("torch."),
        "eos_token_id": [] if eos is None else (eos if isinstance(eos, list) else [eos]),
        "bos_token_id": c.bos_token_id, "pad_token_id": c.pad_token_id,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = [{"name": n, "config": cfg, "expected": expected(cfg)} for n, cfg in CASES]
    with open(os.path.join(OUT, "configs.json"), "w") as f:
        json.dump(cases, f, indent=1)

    g = torch.Generator().manual_seed(0)
    tensors = {
        "w.f32": torch.randn(3, 5, generator=g),
        "w.bf16": torch.randn(4, 3, generator=g).to(torch.bfloat16),
        "w.f16": torch.randn(7, generator=g).to(torch.float16),
        "w.f64": torch.randn(2, 2, generator=g).to(torch.float64),
        "w.fp8": (torch.randn(3, 4, generator=g) * 8).to(torch.float8_e4m3fn),
        "scale.f32": torch.rand(3, 1, generator=g),
        "ids.i64": torch.tensor([1, -2, 3], dtype=torch.int64),
        "ids.i32": torch.tensor([[5, 6], [-7, 8]], dtype=torch.int32),
        "ids.i16": torch.tensor([300, -300, 1], dtype=torch.int16),
        "ids.i8": torch.tensor([-1, 2, 3, 4, 5], dtype=torch.int8),
        "bytes.u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "mask.bool": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
        "scalar": torch.tensor(2.5),
    }
    path = os.path.join(OUT, "mixed.safetensors")
    save_file(tensors, path, metadata={"format": "pt", "note": "libglm fixture"})
    described = []
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        for name in sorted(f.keys()):
            t = f.get_tensor(name)
            raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
            dtype = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64",
                     torch.float8_e4m3fn: "F8_E4M3", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
                     torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}[t.dtype]
            described.append({"name": name, "dtype": dtype, "shape": list(t.shape), "hex": raw.hex()})
    with open(os.path.join(OUT, "mixed.json"), "w") as f:
        json.dump({"metadata": metadata, "tensors": described}, f, indent=1)


if __name__ == "__main__":
    main()
