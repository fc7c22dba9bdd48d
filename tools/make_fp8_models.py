#!/usr/bin/env python3
"""FP8 (E4M3FN) GLM-4 MoE checkpoints: tiny test fixtures with transformers references, and a streaming converter.

Fixtures (Tests/Fixtures/models/fp8/, about 5 s, deterministic):

    python3 tools/make_fp8_models.py

writes one tiny GLM-4 MoE model (2 layers: 1 dense + 1 MoE with 4 experts, hidden 160, 4 heads × 32, 2 KV heads,
dense FF 200, expert width 76, vocab 256; dimensions chosen so that 128×128 blocks are partial at the right and bottom
edges, and rows are not multiples of 16) quantised in each layout the loader reads (docs/MODEL.md §4):

    channel/   compressed-tensors, strategy "channel": weight_scale [out, 1] BF16 (GLM-4.x FP8's scheme, FP8_DYNAMIC)
    block/     compressed-tensors, strategy "block", block_structure [128, 128]: weight_scale [ceil(out/128),
               ceil(in/128)] F32 (llm-compressor's FP8_BLOCK)
    tensor/    compressed-tensors, strategy "tensor": weight_scale [1] F32, and an ignore regex that keeps layer 1's
               shared expert in BF16
    deepseek/  quant_method "fp8", weight_block_size [128, 128]: weight_scale_inv F32 (DeepSeek-V3 style)

Quantised: every q/k/v/o_proj and gate/up/down_proj (dense, routed and shared experts) not ignored. Kept in BF16, as
in the GLM releases: embed_tokens, lm_head, norms, attention biases, the router weight mlp.gate (listed in `ignore` as
"lm_head" and "re:.*mlp.gate$"); e_score_correction_bias stays F32. Quantisation: scale = amax / 448 per channel,
block or tensor (rounded to the scale's dtype first), q = float8_e4m3fn(w / scale) (PyTorch's round-to-nearest-even).

Each directory holds config.json (with quantization_config), model.safetensors and reference.safetensors:
    tokens   I32 [T]     input token ids
    logits   F32 [T, V]  transformers Glm4MoeForCausalLM in fp32 (eager) on the *dequantised* weights:
                         float8_e4m3fn → float32 (exact) times the scale in f32, as transformers/compressed-tensors
                         dequantise; every other tensor as stored (BF16 values)
plus fp8/e4m3_codes.safetensors: codes U8 [256] = 0..255 and values F32 [256] = torch's float8_e4m3fn → float32 of
each code (NaN for 0x7F and 0xFF), for the bit-exact conversion test.

Streaming conversion of a big BF16 checkpoint (per-channel scales, compressed-tensors, as GLM-4.7-FP8):

    python3 tools/make_fp8_models.py --convert IN_DIR OUT_DIR [--quantize-lm-head]

reads IN_DIR's safetensors one tensor at a time through safetensors' memory map and writes OUT_DIR shard by shard
(same shard split as IN_DIR; peak memory about one tensor in f32). Used for the synthetic GLM-4.7-shaped benchmark
model (BENCHMARKS.md). Needs: torch 2.x, transformers 5, safetensors, numpy. CI never runs this.
"""

import argparse
import json
import os
import re
import shutil
import struct
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glm_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "models", "fp8")
T = 8
FP8_MAX = 448.0
SEED = 8801

SPEC = dict(vocab_size=256, hidden_size=160, intermediate_size=200, moe_intermediate_size=76, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32, first_k_dense_replace=1, n_routed_experts=4,
            num_experts_per_tok=2, n_shared_experts=1, n_group=1, topk_group=1, norm_topk_prob=True,
            routed_scaling_factor=2.5, use_qk_norm=True, attention_bias=True, rope_theta=1e6,
            partial_rotary_factor=0.5, tie_word_embeddings=False, num_nextn_predict_layers=0,
            rms_norm_eps=1e-5, hidden_act="silu", max_position_embeddings=2048, initializer_range=0.02)

GLM_IGNORE = ["lm_head", "re:.*mlp.gate$"]

# name: (quantization_config, strategy, scale dtype)
LAYOUTS = {
    "channel": ("compressed-tensors", ("channel",), torch.bfloat16, GLM_IGNORE),
    "block": ("compressed-tensors", ("block", 128, 128), torch.float32, GLM_IGNORE),
    "tensor": ("compressed-tensors", ("tensor",), torch.float32,
               GLM_IGNORE + [r"re:model\.layers\.1\.mlp\.shared_experts\..*"]),
    "deepseek": ("fp8", ("block", 128, 128), torch.float32, []),
}


def is_linear_weight(name):
    return name.endswith("_proj.weight")


def module_of(name):
    return name[: -len(".weight")]


def ignored(module, ignore):
    """compressed-tensors' rule: a `re:` entry is re.match'ed against the module name, any other entry compared."""
    for entry in ignore:
        if entry.startswith("re:"):
            if re.match(entry[3:], module):
                return True
        elif entry == module:
            return True
    return False


def compressed_tensors_config(strategy, ignore):
    weights = {"actorder": None, "block_structure": None, "dynamic": False, "group_size": None, "num_bits": 8,
               "observer": "minmax", "observer_kwargs": {}, "strategy": strategy[0], "symmetric": True,
               "type": "float"}
    activations = {"actorder": None, "block_structure": None, "dynamic": True, "group_size": None, "num_bits": 8,
                   "observer": None, "observer_kwargs": {}, "strategy": "token", "symmetric": True, "type": "float"}
    if strategy[0] == "block":
        weights["block_structure"] = [strategy[1], strategy[2]]
        activations["strategy"] = "group"
        activations["group_size"] = strategy[2]
    return {
        "config_groups": {"group_0": {"input_activations": activations, "output_activations": None,
                                      "targets": ["Linear"], "weights": weights}},
        "format": "float-quantized",
        "global_compression_ratio": None,
        "ignore": ignore,
        "kv_cache_scheme": None,
        "quant_method": "compressed-tensors",
        "quantization_status": "compressed",
        "sparsity_config": {},
    }


def deepseek_config(strategy):
    return {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
            "weight_block_size": [strategy[1], strategy[2]]}


def quantize(w, strategy, scale_dtype):
    """w: f32 [out, in] → (fp8 [out, in], scale in scale_dtype, dequantised f32 [out, in])."""
    out_dim, in_dim = w.shape
    if strategy[0] == "channel":
        amax = w.abs().amax(dim=1, keepdim=True)
        scale = (amax / FP8_MAX).clamp(min=1e-12).to(scale_dtype)
        expanded = scale.to(torch.float32)
    elif strategy[0] == "tensor":
        scale = (w.abs().amax() / FP8_MAX).clamp(min=1e-12).reshape(1).to(scale_dtype)
        expanded = scale.to(torch.float32).reshape(1, 1).expand(out_dim, in_dim)
    else:
        br, bc = strategy[1], strategy[2]
        rb, cb = -(-out_dim // br), -(-in_dim // bc)
        padded = torch.zeros(rb * br, cb * bc)
        padded[:out_dim, :in_dim] = w.abs()
        amax = padded.reshape(rb, br, cb, bc).amax(dim=(1, 3))
        scale = (amax / FP8_MAX).clamp(min=1e-12).to(scale_dtype)
        expanded = scale.to(torch.float32).repeat_interleave(br, 0).repeat_interleave(bc, 1)[:out_dim, :in_dim]
    q = (w / expanded).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    deq = q.to(torch.float32) * expanded
    return q.contiguous(), scale.contiguous(), deq.contiguous()


def base_tensors():
    """The tiny model's tensors in f32 (values already BF16-exact for the tensors that stay BF16)."""
    from transformers import Glm4MoeForCausalLM

    V = SPEC["vocab_size"]
    eos = [V - 23, V - 16, V - 14]
    torch.manual_seed(SEED)
    model = Glm4MoeForCausalLM(ref.make_hf_config(dict(SPEC, eos_token_id=eos, pad_token_id=eos[0])))
    ref.randomize_model(model, SEED)
    tmp = tempfile.mkdtemp()
    try:
        model.save_pretrained(tmp)
        tensors = ref.read_tensors(tmp)
        with open(os.path.join(tmp, "config.json")) as f:
            config = json.load(f)
    finally:
        shutil.rmtree(tmp)
    out = {}
    for k, v in tensors.items():
        v = v.to(torch.float32)
        if not k.endswith("e_score_correction_bias") and not is_linear_weight(k):
            v = v.to(torch.bfloat16).to(torch.float32)
        out[k] = v
    return out, config, eos


def write_config(model_dir, config, quantization_config):
    c = dict(config)
    c["dtype"] = "bfloat16"
    c["quantization_config"] = quantization_config
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(dict(sorted(c.items())), f, indent=2)
        f.write("\n")


def make_layout(name, base, config, tokens):
    method, strategy, scale_dtype, ignore = LAYOUTS[name]
    model_dir = os.path.join(OUT, name)
    if os.path.exists(model_dir):
        shutil.rmtree(model_dir)
    os.makedirs(model_dir)
    stored, dequantised = {}, {}
    scale_suffix = "weight_scale" if method == "compressed-tensors" else "weight_scale_inv"
    quantised = 0
    for k, v in sorted(base.items()):
        if is_linear_weight(k) and not ignored(module_of(k), ignore):
            q, s, deq = quantize(v, strategy, scale_dtype)
            stored[k] = q
            stored[module_of(k) + "." + scale_suffix] = s
            dequantised[k] = deq
            quantised += 1
        else:
            stored[k] = v if k.endswith("e_score_correction_bias") else v.to(torch.bfloat16)
            dequantised[k] = stored[k].to(torch.float32)
    qc = compressed_tensors_config(strategy, ignore) if method == "compressed-tensors" else deepseek_config(strategy)
    # Reference: transformers fp32 on the dequantised weights, from a plain f32 checkpoint.
    tmp = tempfile.mkdtemp()
    try:
        plain = dict(config)
        plain["dtype"] = "float32"
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(plain, f, indent=2)
        save_file(dequantised, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        hf = ref.transformers_reference(tmp, tokens, "float32")
    finally:
        shutil.rmtree(tmp)
    save_file(stored, os.path.join(model_dir, "model.safetensors"), metadata={"format": "pt"})
    write_config(model_dir, config, qc)
    save_file({"tokens": torch.tensor(tokens, dtype=torch.int32), "logits": torch.from_numpy(hf["logits"])},
              os.path.join(model_dir, "reference.safetensors"), metadata={"format": "pt"})
    size = sum(os.path.getsize(os.path.join(model_dir, f)) for f in os.listdir(model_dir))
    print(f"{name}: {quantised} FP8 matrices, {size} bytes, logits max |.| {float(np.abs(hf['logits']).max()):.3f}")


def make_codes():
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    values = codes.view(torch.float8_e4m3fn).to(torch.float32)
    save_file({"codes": codes, "values": values}, os.path.join(OUT, "e4m3_codes.safetensors"),
              metadata={"format": "pt"})


def make_fixtures():
    os.makedirs(OUT, exist_ok=True)
    base, config, eos = base_tensors()
    rng = np.random.default_rng(SEED)
    tokens = [int(t) for t in rng.integers(0, SPEC["vocab_size"], size=T)]
    for name in LAYOUTS:
        make_layout(name, base, config, tokens)
    make_codes()


# ----------------------------------------------------------------------------------------------------------------------
# Streaming conversion (big models)

DTYPE_NAMES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.float8_e4m3fn: "F8_E4M3"}


def shard_files(model_dir):
    return ref.weight_files(model_dir)


def convert(in_dir, out_dir, ignore=GLM_IGNORE, quantize_lm_head=False, rows_per_chunk=2048):
    """Per-channel FP8 of every q/k/v/o and gate/up/down projection not ignored (and of lm_head if asked); BF16
    scales [out, 1]."""
    if quantize_lm_head:
        ignore = [e for e in ignore if e != "lm_head"]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(in_dir, "config.json")) as f:
        config = json.load(f)
    weight_map = {}
    total = 0
    for fname in shard_files(in_dir):
        src = os.path.join(in_dir, fname)
        with safe_open(src, "pt") as f:
            names = list(f.keys())
            # First pass: the output header (names, dtypes, shapes, sizes) without reading data.
            plan = []
            for k in names:
                sl = f.get_slice(k)
                shape = list(sl.get_shape())
                dtype = sl.get_dtype()
                linear = is_linear_weight(k) or (quantize_lm_head and k == "lm_head.weight")
                if linear and len(shape) == 2 and not ignored(module_of(k), ignore):
                    plan.append((k, "F8_E4M3", shape, shape[0] * shape[1], "quantize"))
                    plan.append((module_of(k) + ".weight_scale", "BF16", [shape[0], 1], shape[0] * 2, "scale"))
                else:
                    size = int(np.prod(shape, dtype=np.int64)) * {"BF16": 2, "F16": 2, "F32": 4}[dtype]
                    plan.append((k, dtype, shape, size, "copy"))
            header, offset = {}, 0
            for k, dtype, shape, size, _ in plan:
                header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
                offset += size
            header["__metadata__"] = {"format": "pt"}
            blob = json.dumps(header, separators=(",", ":")).encode()
            blob += b" " * (-len(blob) % 8)
            dst = os.path.join(out_dir, fname)
            with open(dst + ".tmp", "wb") as out:
                out.write(struct.pack("<Q", len(blob)))
                out.write(blob)
                pending_scale = None
                for k, dtype, shape, size, action in plan:
                    if action == "scale":
                        out.write(pending_scale.numpy().tobytes())
                        continue
                    sl = f.get_slice(k)
                    if action == "copy":
                        for r0 in range(0, max(shape[0], 1), rows_per_chunk):
                            chunk = sl[r0:r0 + rows_per_chunk] if shape else f.get_tensor(k)
                            out.write(chunk.contiguous().view(torch.uint8).numpy().tobytes())
                            if not shape:
                                break
                        continue
                    scales = []
                    for r0 in range(0, shape[0], rows_per_chunk):
                        w = sl[r0:r0 + rows_per_chunk].to(torch.float32)
                        q, s, _ = quantize(w, ("channel",), torch.bfloat16)
                        out.write(q.view(torch.uint8).numpy().tobytes())
                        scales.append(s)
                    pending_scale = torch.cat(scales).view(torch.int16)
            os.replace(dst + ".tmp", dst)
        for k, *_ in plan:
            weight_map[k] = fname
        total += offset
        print(f"{fname}: {len(plan)} tensors, {offset / 1e9:.2f} GB", flush=True)
    config["quantization_config"] = compressed_tensors_config(("channel",), ignore)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    if len(weight_map) and os.path.exists(os.path.join(in_dir, "model.safetensors.index.json")):
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f,
                      indent=2)
            f.write("\n")
    for extra in ("generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if os.path.exists(os.path.join(in_dir, extra)):
            shutil.copy(os.path.join(in_dir, extra), os.path.join(out_dir, extra))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--convert", nargs=2, metavar=("IN_DIR", "OUT_DIR"),
                        help="stream a BF16 checkpoint to per-channel FP8 (compressed-tensors)")
    parser.add_argument("--quantize-lm-head", action="store_true",
                        help="with --convert: lm_head in FP8 too (1 byte per weight everywhere but the embeddings;"
                             " the GLM releases keep it in BF16)")
    args = parser.parse_args()
    if args.convert:
        convert(*args.convert, quantize_lm_head=args.quantize_lm_head)
    else:
        make_fixtures()


if __name__ == "__main__":
    main()
