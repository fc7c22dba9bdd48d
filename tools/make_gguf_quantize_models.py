#!/usr/bin/env python3
"""Makes the GGUF → GGUF quantisation fixtures: what llama.cpp's `llama-quantize SRC DST TYPE` writes for the small
GGUF models of Tests/Fixtures/models/glm-tiny-gguf, recorded in llama-quantize.json as each output's size, SHA-256
and per-tensor types. The Swift test GGUFQuantizeModelTests quantises the same sources with libglm and compares the
SHA-256 of its bytes (and, to say where a difference is, the tensor types).

Sources:
  k256-bf16.gguf                  made here: a glm4moe model whose rows are 256 wide (hidden 256, dense FFN 256,
                                  2 experts of 256, vocab 384), so the K-quants apply instead of their fallbacks;
                                  metadata and placeholder vocabulary copied from air-bf16.gguf, random bf16 weights
  air-bf16.gguf                   48-wide rows: every K-quant falls back, 8 experts (the n_expert == 8 rules), MTP
  tied_shared2-f32.gguf           f32 source, tied output (token_embd takes the output's rule), 32-wide rows
  glm-tiny-bf16-00001-of-00002    a split source (one output file), 64-wide rows

    python tools/make_gguf_quantize_models.py --llama-cpp .../vendor/llama.cpp

--llama-cpp is llama.cpp's source tree with its build in build/ (llama-quantize, from the llama-cpp-python sdist
in a scratch folder); gguf-py is taken from it. Development tools only, not part of the build or of CI.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DIR = os.path.join(ROOT, "Tests", "Fixtures", "models", "glm-tiny-gguf")
SOURCES = ["k256-bf16.gguf", "air-bf16.gguf", "tied_shared2-f32.gguf", "glm-tiny-bf16-00001-of-00002.gguf"]
TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
         "Q5_K_S", "Q5_K_M", "Q6_K", "F16"]

def make_model(gguf, path, h=256, vocab=384, ff=256, heads=4, kv=2, hd=64, experts=2, layers=2, seed=256,
               name="K256"):
    """A random glm4moe GGUF (bf16 matrices, f32 norms/biases/router): layer 0 dense, the others MoE with one shared
    expert; metadata and placeholder vocabulary copied from air-bf16.gguf with these sizes. tools/bench_quantize.py
    makes its larger benchmark source with it."""
    src = gguf.GGUFReader(os.path.join(DIR, "air-bf16.gguf"))
    w = gguf.GGUFWriter(path, "glm4moe")
    sizes = {
        "glm4moe.block_count": layers, "glm4moe.embedding_length": h, "glm4moe.feed_forward_length": ff,
        "glm4moe.attention.head_count": heads, "glm4moe.attention.head_count_kv": kv,
        "glm4moe.attention.key_length": hd, "glm4moe.attention.value_length": hd,
        "glm4moe.rope.dimension_count": hd // 2, "glm4moe.expert_count": experts, "glm4moe.expert_used_count": 1,
        "glm4moe.expert_feed_forward_length": ff, "glm4moe.expert_shared_count": 1,
        "glm4moe.leading_dense_block_count": 1, "glm4moe.nextn_predict_layers": 0, "general.name": name,
    }
    for field in src.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = sizes.get(field.name, field.contents())
        if field.name == "tokenizer.ggml.tokens":
            value = [f"<t{i}>" for i in range(vocab)]
        elif field.name == "tokenizer.ggml.token_type":
            value = [1] * vocab
        w.add_key_value(field.name, value, vtype, sub_type=sub)
    rng = np.random.default_rng(seed)

    def bf16(shape, scale=0.02):
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        # a few large values per tensor, as trained weights have (they set block scales)
        flat = x.reshape(-1)
        flat[rng.integers(0, flat.size, max(1, flat.size // 997))] *= 40
        bits = x.view(np.uint32)
        return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)

    def add(name, shape, dtype="bf16", scale=0.02):
        if dtype == "bf16":
            w.add_tensor(name, bf16(shape, scale), raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            w.add_tensor(name, (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32))

    add("token_embd.weight", (vocab, h))
    add("output.weight", (vocab, h))
    add("output_norm.weight", (h,), "f32")
    for layer in range(layers):
        b = f"blk.{layer}."
        add(b + "attn_norm.weight", (h,), "f32")
        add(b + "post_attention_norm.weight", (h,), "f32")
        add(b + "attn_q.weight", (heads * hd, h))
        add(b + "attn_k.weight", (kv * hd, h))
        add(b + "attn_v.weight", (kv * hd, h))
        add(b + "attn_q.bias", (heads * hd,), "f32")
        add(b + "attn_k.bias", (kv * hd,), "f32")
        add(b + "attn_v.bias", (kv * hd,), "f32")
        add(b + "attn_output.weight", (h, heads * hd))
        if layer == 0:
            add(b + "ffn_gate.weight", (ff, h))
            add(b + "ffn_up.weight", (ff, h))
            add(b + "ffn_down.weight", (h, ff))
        else:
            add(b + "ffn_gate_inp.weight", (experts, h), "f32")
            add(b + "exp_probs_b.bias", (experts,), "f32")
            add(b + "ffn_gate_exps.weight", (experts, ff, h))
            add(b + "ffn_up_exps.weight", (experts, ff, h))
            add(b + "ffn_down_exps.weight", (experts, h, ff))
            add(b + "ffn_gate_shexp.weight", (ff, h))
            add(b + "ffn_up_shexp.weight", (ff, h))
            add(b + "ffn_down_shexp.weight", (h, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()



def make_k256(gguf, path):
    make_model(gguf, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
    import gguf

    make_k256(gguf, os.path.join(DIR, "k256-bf16.gguf"))
    quantize = os.path.join(args.llama_cpp, "build", "bin", "llama-quantize")
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in SOURCES:
            result[source] = {}
            for t in TYPES:
                out = os.path.join(tmp, "out.gguf")
                subprocess.run([quantize, os.path.join(DIR, source), out, t, "1"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                data = open(out, "rb").read()
                r = gguf.GGUFReader(out)
                result[source][t] = {
                    "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                    "tensors": {x.name: x.tensor_type.name for x in r.tensors},
                }
                print(source, t, len(data))
    with open(os.path.join(DIR, "llama-quantize.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
