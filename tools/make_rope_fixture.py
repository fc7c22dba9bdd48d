#!/usr/bin/env python3
"""RoPE angles, cos and sin at long-context positions as transformers computes them (Tests/Fixtures/rope/).

    /work/venvs/ref/bin/python tools/make_rope_fixture.py     # writes Tests/Fixtures/rope/<name>/

Needs: torch 2.x CPU, transformers 5.x, safetensors. Deterministic (no random numbers). CI never runs this.

For each configuration (GLM-4.7's attention shape: head_dim 128, partial_rotary_factor 0.5, rope_theta 1e6,
202,752 positions; and the `rope_default` fixture's theta 10000, factor 0.25, head_dim 32) it runs transformers'
own `Glm4MoeRotaryEmbedding` (fp32: inv_freq = 1 / θ^(arange(0, R, 2) / R), freqs = position · inv_freq, both
f32, then cos and sin of f32 angles) at positions from 0 to the last one and writes

    config.json         the model configuration (what libglm's ModelConfig reads)
    rope.safetensors
        positions       I32 [P]
        inv_freq        F32 [R/2]
        angles          F32 [P, R/2]   freqs: the f32 angle of each (position, frequency)
        cos, sin        F32 [P, R/2]   transformers' cos/sin (the first R/2 columns of its cat(freqs, freqs))
"""

import json
import os

import torch
from safetensors.torch import save_file
from transformers import Glm4MoeConfig
from transformers.models.glm4_moe.modeling_glm4_moe import Glm4MoeRotaryEmbedding

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "rope")

# GLM-4.7's attention and context shape (zai-org/GLM-4.7 config.json), on a model small enough to describe here:
# RoPE depends only on head_dim, partial_rotary_factor, rope_theta.
CONFIGS = {
    "glm47": dict(head_dim=128, partial_rotary_factor=0.5, rope_theta=1000000.0, max_position_embeddings=202752,
                  num_attention_heads=96, num_key_value_heads=8),
    "rope_default": dict(head_dim=32, partial_rotary_factor=0.25, rope_theta=10000.0, max_position_embeddings=202752,
                         num_attention_heads=2, num_key_value_heads=1),
}
POSITIONS = [0, 1, 2, 3, 100, 4095, 4096, 8191, 32767, 65535, 100000, 131071, 131072, 199999, 202751]


def config_json(shape):
    return {
        "architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe",
        "hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 2,
        "first_k_dense_replace": 1, "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
        "n_group": 1, "topk_group": 1, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
        "vocab_size": 256, "rms_norm_eps": 1e-5, "attention_bias": True, "use_qk_norm": True,
        "tie_word_embeddings": False, "rope_scaling": None, "num_nextn_predict_layers": 0, **shape,
    }


def main():
    for name, shape in CONFIGS.items():
        cfg = config_json(shape)
        hf = Glm4MoeConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
        rope = Glm4MoeRotaryEmbedding(hf)
        positions = torch.tensor(POSITIONS, dtype=torch.int64)
        x = torch.zeros(1, dtype=torch.float32)
        cos, sin = rope(x, positions[None, :])
        half = rope.inv_freq.shape[0]
        angles = positions[:, None].float() * rope.inv_freq.float()[None, :]   # transformers' freqs
        # transformers' emb = cat(freqs, freqs): check that before keeping the first half.
        assert torch.equal(cos[0, :, :half], cos[0, :, half:]) and torch.equal(sin[0, :, :half], sin[0, :, half:])
        assert torch.equal(torch.cos(angles), cos[0, :, :half]), "angles differ from transformers' forward"
        out = os.path.join(ROOT, name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        save_file({
            "positions": positions.to(torch.int32),
            "inv_freq": rope.inv_freq.float().contiguous(),
            "angles": angles.contiguous(),
            "cos": cos[0, :, :half].contiguous(),
            "sin": sin[0, :, :half].contiguous(),
        }, os.path.join(out, "rope.safetensors"))
        print(name, "R/2 =", half, "positions", len(POSITIONS), "max angle", float(angles.max()))


if __name__ == "__main__":
    main()
