#!/usr/bin/env python3
"""Tiny random GLM-4 MoE checkpoints + reference outputs for the Swift forward pass (Tests/Fixtures/models/).

Regenerate (about 10 s on 2 CPU cores; fully deterministic: every model has a fixed seed, tokens included):

    python3 tools/make_reference_models.py            # writes Tests/Fixtures/models/<name>/

Needs: torch 2.x CPU, transformers 5.24, safetensors, numpy. CI never runs this.

Each model directory holds
    config.json               as transformers 5 writes it (rope_parameters dict), or rewritten in the legacy spelling
                              (top-level rope_theta / partial_rotary_factor, `rope_scaling: null`) where noted
    generation_config.json    eos list + pad, shaped like GLM-4.x's
    model.safetensors         or model-0000i-of-0000n.safetensors + model.safetensors.index.json
    reference.safetensors     reference outputs (layout below)
    reference.json            what the model covers, the token ids, the tensor list, the self-check numbers

reference.safetensors
    tokens                I32 [T]       input token ids (positions 0..T-1, one sequence, no cache)
    logits                F32 [T,V]     transformers fp32 eager logits (weights upcast exactly from their file dtype)
    hidden_states.{i}     F32 [T,H]     i = 0..L: [0] embeddings, [i] output of layer i-1, [L] = post-final-norm state
    experts.layer{l}      I32 [T,K]     expert ids chosen by the router of MoE layer l, sorted ascending per token
    mtp_logits            F32 [T-1,V]   MTP draft logits (float64 NumPy spec, docs/MODEL.md §3.9): row t uses token
                                        t+1 and the final-normed main hidden state at t, predicts token t+2 (models
                                        with an MTP layer)
    mtp_experts           I32 [T-1,K]   expert sets of the MTP layer's router (same rows)
    bf16.logits, bf16.hidden_states.{i}, bf16.experts.layer{l}
                          F32 / I32     transformers run with dtype=torch.bfloat16 (bf16 model only), values upcast to F32

The MTP tensors model.layers.{L}.* are appended to the weight files after the transformers reference run; transformers
itself only ignores them at index 46/92, so the loader used here declares index L ignorable.
"""

import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glm_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "models")
T = 16

COMMON = dict(rms_norm_eps=1e-5, hidden_act="silu", max_position_embeddings=2048, initializer_range=0.02)

# name: (HF config fields, options). Options: seed, dtype (weight file dtype), keep_f32 (suffixes stored F32 in a
# bf16/f16 file), shards, legacy_config (rewrite config.json in the real checkpoints' spelling), drop_rope_theta,
# mtp, bf16_reference, covers (what the model is for, copied into reference.json).
MODELS = {
    "glm47": (
        dict(vocab_size=512, hidden_size=64, intermediate_size=96, moe_intermediate_size=32, num_hidden_layers=5,
             num_attention_heads=6, num_key_value_heads=2, head_dim=16, first_k_dense_replace=3,
             n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1, n_group=1, topk_group=1,
             norm_topk_prob=True, routed_scaling_factor=2.5, use_qk_norm=True, attention_bias=True,
             rope_theta=1e6, partial_rotary_factor=0.5, tie_word_embeddings=False, num_nextn_predict_layers=1),
        dict(seed=4701, dtype="float32", shards=2, legacy_config=True, mtp=True,
             covers="GLM-4.7-like: qk-norm, attention bias, 3 dense + 2 MoE layers, routed_scaling 2.5, "
                    "head_dim 16 with 6 heads != hidden 64, GQA 6/2, theta 1e6; legacy config spelling (top-level "
                    "rope_theta/partial_rotary_factor); sharded into 2 files + index; MTP layer model.layers.5 in "
                    "the last shard"),
    ),
    "air": (
        dict(vocab_size=384, hidden_size=48, intermediate_size=80, moe_intermediate_size=24, num_hidden_layers=3,
             num_attention_heads=4, num_key_value_heads=2, head_dim=16, first_k_dense_replace=1,
             n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1, n_group=1, topk_group=1,
             norm_topk_prob=True, routed_scaling_factor=1.0, use_qk_norm=False, attention_bias=True,
             rope_theta=1e6, partial_rotary_factor=0.5, tie_word_embeddings=False, num_nextn_predict_layers=1),
        dict(seed=4502, dtype="bfloat16", keep_f32=("e_score_correction_bias",), shards=1, mtp=True,
             bf16_reference=True,
             covers="GLM-4.5-Air-like: no qk-norm (no q_norm/k_norm tensors), attention bias, 1 dense + 2 MoE, "
                    "routed_scaling 1.0; BF16 weight file (router weight BF16, e_score_correction_bias F32); "
                    "fp32 AND bf16 transformers references; MTP layer model.layers.3"),
    ),
    "grouped": (
        dict(vocab_size=320, hidden_size=48, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=4,
             num_attention_heads=4, num_key_value_heads=1, head_dim=16, first_k_dense_replace=1,
             n_routed_experts=8, num_experts_per_tok=3, n_shared_experts=1, n_group=4, topk_group=2,
             norm_topk_prob=True, routed_scaling_factor=2.5, use_qk_norm=True, attention_bias=True,
             rope_theta=5e5, partial_rotary_factor=0.5, tie_word_embeddings=False, num_nextn_predict_layers=1),
        dict(seed=4403, dtype="float16", keep_f32=("mlp.gate.weight", "e_score_correction_bias"), shards=1,
             mtp=False,
             covers="group-limited routing n_group 4 / topk_group 2 with 8 experts top-3; GQA 4/1; F16 weight file "
                    "(router weight and correction bias F32); no MTP layer"),
    ),
    "tied_shared2": (
        dict(vocab_size=256, hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=3,
             num_attention_heads=4, num_key_value_heads=4, head_dim=8, first_k_dense_replace=1,
             n_routed_experts=6, num_experts_per_tok=2, n_shared_experts=2, n_group=1, topk_group=1,
             norm_topk_prob=False, routed_scaling_factor=1.5, use_qk_norm=True, attention_bias=False,
             rope_theta=1e4, partial_rotary_factor=0.5, tie_word_embeddings=True, num_nextn_predict_layers=1),
        dict(seed=4204, dtype="float32", shards=1, mtp=True,
             covers="tie_word_embeddings (no lm_head.weight on disk), n_shared_experts 2 (shared width 2*I), "
                    "norm_topk_prob false, routed_scaling 1.5, no attention bias, head_dim == hidden/heads, MHA "
                    "(4/4 heads), 6 experts; MTP layer model.layers.3 (own embed_tokens and shared_head.head)"),
    ),
    "rope_default": (
        dict(vocab_size=288, hidden_size=40, intermediate_size=72, moe_intermediate_size=20, num_hidden_layers=2,
             num_attention_heads=2, num_key_value_heads=1, head_dim=32, first_k_dense_replace=1,
             n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, n_group=1, topk_group=1,
             norm_topk_prob=True, routed_scaling_factor=2.5, use_qk_norm=True, attention_bias=True,
             partial_rotary_factor=0.25, tie_word_embeddings=False, num_nextn_predict_layers=1),
        dict(seed=4105, dtype="float32", shards=1, legacy_config=True, drop_rope_theta=True, mtp=True,
             covers="rope_theta ABSENT from config.json (=> 10000) with top-level partial_rotary_factor 0.25 "
                    "(rotary dim 8 of head_dim 32), hidden 40 with 2 heads of 32, 4 experts; MTP layer model.layers.2"),
    ),
}


def fixed_tokens(V, seed):
    """T token ids including 0 and V-1 and one repeat."""
    rng = np.random.default_rng(seed)
    toks = rng.integers(1, V - 1, size=T)
    toks[0], toks[5], toks[11] = 0, V - 1, toks[3]
    return [int(t) for t in toks]


def rewrite_config(model_dir, opts, extra):
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        c = json.load(f)
    if opts.get("legacy_config"):
        rope = c.pop("rope_parameters")
        legacy = dict(c)
        if not opts.get("drop_rope_theta"):
            legacy["rope_theta"] = rope["rope_theta"]
        legacy["partial_rotary_factor"] = rope["partial_rotary_factor"]
        legacy["rope_scaling"] = None
        c = dict(sorted(legacy.items()))
    c.update(extra)
    with open(path, "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")


def write_generation_config(model_dir, eos, pad):
    with open(os.path.join(model_dir, "generation_config.json"), "w") as f:
        json.dump({"_from_model_config": True, "do_sample": True, "eos_token_id": eos, "pad_token_id": pad,
                   "temperature": 1.0, "top_p": 0.95, "transformers_version": "5.24.0"}, f, indent=2)
        f.write("\n")


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def compare(hf, npy):
    """Max |Δ| of logits and hidden states, and the number of token-layers whose expert sets differ."""
    return {
        "logits_max_abs_diff": max_abs(hf["logits"], npy["logits"]),
        "logits_max_abs": float(np.max(np.abs(hf["logits"]))),
        "hidden_states_max_abs_diff": max(max_abs(a, b) for a, b in zip(hf["hidden_states"], npy["hidden_states"])),
        "expert_set_mismatches": int(sum(int(np.sum(np.any(hf["experts"][l] != npy["experts"][l], axis=-1)))
                                         for l in npy["experts"])),
        "expert_token_layers": int(sum(v.shape[0] for v in npy["experts"].values())),
    }


def build_model(spec, opts, model_dir):
    """Writes the checkpoint (without MTP) and returns the parsed config."""
    from transformers import Glm4MoeForCausalLM

    V = spec["vocab_size"]
    eos = [V - 23, V - 16, V - 14]
    full = dict(COMMON, **spec, eos_token_id=eos, pad_token_id=eos[0])
    if opts.get("drop_rope_theta"):
        full.pop("rope_theta", None)
    hf_config = ref.make_hf_config(full)
    torch.manual_seed(opts["seed"])
    model = Glm4MoeForCausalLM(hf_config)
    ref.randomize_model(model, opts["seed"])
    if os.path.exists(model_dir):
        shutil.rmtree(model_dir)
    model.save_pretrained(model_dir)
    tensors = ref.read_tensors(model_dir)
    if opts["dtype"] != "float32":
        tensors = ref.convert_dtype(tensors, opts["dtype"], opts.get("keep_f32", ()))
    ref.write_checkpoint(model_dir, tensors, opts["shards"])
    rewrite_config(model_dir, opts, {"dtype": opts["dtype"]})
    write_generation_config(model_dir, eos, eos[0])
    with open(os.path.join(model_dir, "config.json")) as f:
        return ref.parse_config(json.load(f))


def add_mtp(model_dir, cfg, opts):
    """Appends a random MTP layer model.layers.{L}.* (file dtype as the rest of the model) to the last weight file."""
    mtp = ref.random_mtp_tensors(cfg, opts["seed"] + 1)
    if opts["dtype"] != "float32":
        mtp = ref.convert_dtype(mtp, opts["dtype"], opts.get("keep_f32", ()))
    ref.add_tensors_to_last_shard(model_dir, mtp)


def make(name, spec, opts):
    model_dir = os.path.join(OUT, name)
    cfg = build_model(spec, opts, model_dir)
    tokens = fixed_tokens(cfg["V"], opts["seed"])
    out = {"tokens": torch.tensor(tokens, dtype=torch.int32)}
    report = {"model": name, "covers": opts["covers"], "weight_dtype": opts["dtype"], "shards": opts["shards"],
              "tokens": tokens, "T": T, "num_hidden_layers": cfg["L"], "moe_layers": list(range(cfg["dense"], cfg["L"])),
              "parsed_config": cfg}

    hf = ref.transformers_reference(model_dir, tokens, "float32")
    out["logits"] = torch.from_numpy(hf["logits"])
    for i, h in enumerate(hf["hidden_states"]):
        out[f"hidden_states.{i}"] = torch.from_numpy(h)
    for l, e in hf["experts"].items():
        out[f"experts.layer{l}"] = torch.from_numpy(e)

    if opts.get("bf16_reference"):
        hb = ref.transformers_reference(model_dir, tokens, "bfloat16")
        out["bf16.logits"] = torch.from_numpy(hb["logits"])
        for i, h in enumerate(hb["hidden_states"]):
            out[f"bf16.hidden_states.{i}"] = torch.from_numpy(h)
        for l, e in hb["experts"].items():
            out[f"bf16.experts.layer{l}"] = torch.from_numpy(e)
        report["bf16_vs_fp32"] = {
            "logits_max_abs_diff": max_abs(hb["logits"], hf["logits"]),
            "expert_set_mismatches": int(sum(int(np.sum(np.any(hb["experts"][l] != hf["experts"][l], axis=-1)))
                                             for l in hf["experts"])),
        }

    if opts.get("mtp"):
        add_mtp(model_dir, cfg, opts)

    cfg64, W = ref.load_float64(model_dir)
    npy = ref.numpy_forward(cfg64, W, tokens)
    report["numpy_float64_vs_transformers_fp32"] = compare(hf, npy)
    if opts.get("mtp"):
        m = ref.numpy_mtp(cfg64, W, tokens, npy["final"])
        out["mtp_logits"] = torch.from_numpy(m["mtp_logits"].astype(np.float32))
        out["mtp_experts"] = torch.from_numpy(m["mtp_experts"].astype(np.int32))
        # The reference for the MTP input is the float64 hidden state; the fp32 one differs by the number below.
        report["mtp_input_hidden_max_abs_diff_fp32_vs_float64"] = max_abs(hf["hidden_states"][-1], npy["final"])

    # The final directory (with MTP tensors) must still load in transformers and give the same logits.
    again = ref.transformers_reference(model_dir, tokens, "float32")
    report["reload_with_mtp_logits_max_abs_diff"] = max_abs(again["logits"], hf["logits"])

    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(model_dir, "reference.safetensors"),
              metadata={"format": "pt"})
    report["tensors"] = {k: [str(v.dtype).replace("torch.", ""), list(v.shape)] for k, v in sorted(out.items())}
    report["conventions"] = ("hidden_states.{L} is post-final-norm (HF output_hidden_states); experts sorted ascending; "
                             "mtp_logits row t: input token t+1 and final-normed hidden at t, position t, predicts t+2")
    with open(os.path.join(model_dir, "reference.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    return report


def main():
    names = sys.argv[1:] or list(MODELS)
    os.makedirs(OUT, exist_ok=True)
    for name in names:
        spec, opts = MODELS[name]
        r = make(name, spec, opts)
        c = r["numpy_float64_vs_transformers_fp32"]
        size = sum(os.path.getsize(os.path.join(OUT, name, f)) for f in os.listdir(os.path.join(OUT, name)))
        print(f"{name:14s} {size / 1e6:6.2f} MB  numpy-vs-HF logits {c['logits_max_abs_diff']:.2e} "
              f"(|logit| max {c['logits_max_abs']:.1f}) hidden {c['hidden_states_max_abs_diff']:.2e} "
              f"expert mismatches {c['expert_set_mismatches']}/{c['expert_token_layers']}"
              + (f"  bf16-vs-fp32 logits {r['bf16_vs_fp32']['logits_max_abs_diff']:.3f}, expert mismatches "
                 f"{r['bf16_vs_fp32']['expert_set_mismatches']}" if "bf16_vs_fp32" in r else "")
              + f"  reload-with-MTP Δ {r['reload_with_mtp_logits_max_abs_diff']:.1e}")


if __name__ == "__main__":
    main()
