#!/usr/bin/env python3
"""Synthetic GLM-4.7-shaped checkpoint with random BF16 weights, for load/speed benchmarks (never for accuracy).

    python3 tools/make_synthetic_glm47.py OUTDIR [--layers 2] [--dense 1] [--mtp] [--shard-gb 4] [--seed 0]

Real GLM-4.7 layer shapes (hidden 5120, 96 query / 8 KV heads of 128, dense FF 12288, 160 routed experts of width 1536
top-8, 1 shared expert, vocab 151552, qk-norm, q/k/v bias, partial_rotary_factor 0.5, rope_theta 1e6, routed_scaling
2.5), but only --layers decoder layers (default 2: layer 0 dense, layer 1 MoE) and no MTP layer
(num_nextn_predict_layers 0) unless --mtp: then layer `layers` is GLM-4.7's MTP layer (a MoE decoder layer plus
enorm, hnorm, eh_proj and shared_head.norm; its embed_tokens and shared_head.head are left out, so libglm uses the
main model's, which cost the same per token; +7.6 GB). Experts are stored per expert as in the real checkpoints, files are
model-0000i-of-0000n.safetensors of at most --shard-gb GB plus model.safetensors.index.json; config.json uses the real
checkpoints' legacy spelling (top-level rope_theta / partial_rotary_factor, `dtype`). Default size: 11.5 GB.

Fast and streaming: one random block of about 4M normal values is drawn once, scaled per fan-in (values
O(fan_in^-0.5); norm gains 1±0.2, biases ±0.2, router ×2, e_score_correction_bias 0.3·N(0,1) in F32), rounded to
BF16, and every tensor is written as consecutive windows of that block starting at its own random offset (the block
length is a prime, so no two rows of one tensor repeat). Peak memory about 300 MB. Deterministic for a given seed.
Do not commit the output.
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np

H, N_HEADS, N_KV, HEAD_DIM = 5120, 96, 8, 128
DENSE_FF, MOE_FF, N_EXPERTS, TOP_K, N_SHARED = 12288, 1536, 160, 8, 1
VOCAB = 151552
BLOCK = 4_194_301  # prime, about 4M values


def config_json(layers, dense, mtp=False):
    return {
        "architectures": ["Glm4MoeForCausalLM"],
        "attention_bias": True,
        "attention_dropout": 0.0,
        "dtype": "bfloat16",
        "eos_token_id": [151329, 151336, 151338],
        "first_k_dense_replace": dense,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": H,
        "initializer_range": 0.02,
        "intermediate_size": DENSE_FF,
        "max_position_embeddings": 202752,
        "model_type": "glm4_moe",
        "moe_intermediate_size": MOE_FF,
        "n_group": 1,
        "n_routed_experts": N_EXPERTS,
        "n_shared_experts": N_SHARED,
        "norm_topk_prob": True,
        "num_attention_heads": N_HEADS,
        "num_experts_per_tok": TOP_K,
        "num_hidden_layers": layers,
        "num_key_value_heads": N_KV,
        "num_nextn_predict_layers": 1 if mtp else 0,
        "pad_token_id": 151329,
        "partial_rotary_factor": 0.5,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "routed_scaling_factor": 2.5,
        "tie_word_embeddings": False,
        "topk_group": 1,
        "transformers_version": "4.57.1",
        "use_cache": True,
        "use_qk_norm": True,
        "vocab_size": VOCAB,
    }


def tensor_plan(layers, dense, mtp=False):
    """(name, shape, dtype, kind) in checkpoint order; kind selects the value distribution."""
    plan = [("model.embed_tokens.weight", (VOCAB, H), "BF16", "embed")]
    q, kv = N_HEADS * HEAD_DIM, N_KV * HEAD_DIM
    for l in range(layers + (1 if mtp else 0)):
        p = f"model.layers.{l}."
        if l == layers:  # the MTP layer (docs/MODEL.md §3.9)
            plan += [(p + "enorm.weight", (H,), "BF16", "norm"), (p + "hnorm.weight", (H,), "BF16", "norm"),
                     (p + "eh_proj.weight", (H, 2 * H), "BF16", "weight"),
                     (p + "shared_head.norm.weight", (H,), "BF16", "norm")]
        plan += [
            (p + "input_layernorm.weight", (H,), "BF16", "norm"),
            (p + "self_attn.q_proj.weight", (q, H), "BF16", "weight"),
            (p + "self_attn.q_proj.bias", (q,), "BF16", "bias"),
            (p + "self_attn.k_proj.weight", (kv, H), "BF16", "weight"),
            (p + "self_attn.k_proj.bias", (kv,), "BF16", "bias"),
            (p + "self_attn.v_proj.weight", (kv, H), "BF16", "weight"),
            (p + "self_attn.v_proj.bias", (kv,), "BF16", "bias"),
            (p + "self_attn.o_proj.weight", (H, q), "BF16", "weight"),
            (p + "self_attn.q_norm.weight", (HEAD_DIM,), "BF16", "norm"),
            (p + "self_attn.k_norm.weight", (HEAD_DIM,), "BF16", "norm"),
            (p + "post_attention_layernorm.weight", (H,), "BF16", "norm"),
        ]
        if l < dense:
            plan += [(p + "mlp.gate_proj.weight", (DENSE_FF, H), "BF16", "weight"),
                     (p + "mlp.up_proj.weight", (DENSE_FF, H), "BF16", "weight"),
                     (p + "mlp.down_proj.weight", (H, DENSE_FF), "BF16", "weight")]
            continue
        plan += [(p + "mlp.gate.weight", (N_EXPERTS, H), "BF16", "router"),
                 (p + "mlp.gate.e_score_correction_bias", (N_EXPERTS,), "F32", "correction")]
        for e in range(N_EXPERTS):
            plan += [(f"{p}mlp.experts.{e}.gate_proj.weight", (MOE_FF, H), "BF16", "weight"),
                     (f"{p}mlp.experts.{e}.up_proj.weight", (MOE_FF, H), "BF16", "weight"),
                     (f"{p}mlp.experts.{e}.down_proj.weight", (H, MOE_FF), "BF16", "weight")]
        w = MOE_FF * N_SHARED
        plan += [(p + "mlp.shared_experts.gate_proj.weight", (w, H), "BF16", "weight"),
                 (p + "mlp.shared_experts.up_proj.weight", (w, H), "BF16", "weight"),
                 (p + "mlp.shared_experts.down_proj.weight", (H, w), "BF16", "weight")]
    plan += [("model.norm.weight", (H,), "BF16", "norm"), ("lm_head.weight", (VOCAB, H), "BF16", "weight")]
    return plan


def nbytes(shape, dtype):
    return int(np.prod(shape)) * (4 if dtype == "F32" else 2)


def to_bf16_bits(x):
    """Round-to-nearest-even float32 → bfloat16 bit patterns (uint16)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


class Values:
    """Scaled copies of one random block, cached per (kind, scale); each doubled so any window is contiguous."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.normal = rng.standard_normal(BLOCK, dtype=np.float32)
        self.uniform = rng.random(BLOCK, dtype=np.float32) * 2.0 - 1.0
        self.rng = rng
        self.cache = {}

    def block(self, kind, shape, dtype):
        fan_in = shape[-1]
        key = (kind, fan_in if kind in ("weight", "router") else 0, dtype)
        if key not in self.cache:
            if kind == "embed":
                f = self.normal
            elif kind == "weight":
                f = self.normal * np.float32(fan_in ** -0.5)
            elif kind == "router":
                f = self.normal * np.float32(2.0 * fan_in ** -0.5)
            elif kind == "norm":
                f = 1.0 + 0.2 * self.uniform
            elif kind == "bias":
                f = 0.2 * self.uniform
            else:  # correction bias
                f = 0.3 * self.normal
            b = f.astype(np.float32) if dtype == "F32" else to_bf16_bits(f)
            self.cache[key] = np.concatenate([b, b])
        return self.cache[key]

    def write(self, out, kind, shape, dtype):
        b = self.block(kind, shape, dtype)
        remaining = int(np.prod(shape))
        offset = int(self.rng.integers(0, BLOCK))
        while remaining:
            n = min(remaining, BLOCK)
            out.write(memoryview(b[offset : offset + n]))
            remaining -= n
            offset = (offset + n) % BLOCK


def shard(plan, limit):
    shards, current, size = [], [], 0
    for entry in plan:
        b = nbytes(entry[1], entry[2])
        if current and size + b > limit:
            shards.append(current)
            current, size = [], 0
        current.append(entry)
        size += b
    shards.append(current)
    return shards


def write_shard(path, entries, values):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, dtype, _ in entries:
        b = nbytes(shape, dtype)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + b]}
        offset += b
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb", buffering=16 << 20) as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for _, shape, dtype, kind in entries:
            values.write(out, kind, shape, dtype)
    return offset


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dense", type=int, default=1, help="leading dense layers (first_k_dense_replace)")
    ap.add_argument("--mtp", action="store_true", help="add GLM-4.7's MTP layer (num_nextn_predict_layers 1)")
    ap.add_argument("--shard-gb", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.time()
    os.makedirs(args.outdir, exist_ok=True)
    plan = tensor_plan(args.layers, args.dense, args.mtp)
    shards = shard(plan, int(args.shard_gb * 1e9))
    values = Values(args.seed)
    weight_map, total = {}, 0
    for i, entries in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        total += write_shard(os.path.join(args.outdir, fname), entries, values)
        weight_map.update({e[0]: fname for e in entries})
        print(f"{fname}: {len(entries)} tensors, {time.time() - start:.0f} s", file=sys.stderr)
    with open(os.path.join(args.outdir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(args.outdir, "config.json"), "w") as f:
        json.dump(config_json(args.layers, args.dense, args.mtp), f, indent=2)
    with open(os.path.join(args.outdir, "generation_config.json"), "w") as f:
        json.dump({"_from_model_config": True, "do_sample": True, "eos_token_id": [151329, 151336, 151338],
                   "pad_token_id": 151329, "temperature": 1.0, "top_p": 0.95}, f, indent=2)
    print(f"{args.outdir}: {len(plan)} tensors, {total / 1e9:.2f} GB in {len(shards)} shards, "
          f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
