#!/usr/bin/env python3
"""Makes the GGUF model fixtures of Tests/Fixtures/models/glm-tiny-gguf from Tests/Fixtures/models/glm-tiny-chat with
llama.cpp's own converter (convert_hf_to_gguf.py, class Glm4MoeModel), plus transformers' logits on the weights those
files hold, which the Swift tests (GGUFModelTests) compare libglm with.

    python tools/make_gguf_models.py --llama-cpp /tmp/llama-sdist/llama_cpp_python-0.3.36/vendor/llama.cpp

--llama-cpp is llama.cpp's source tree (e.g. the `vendor/llama.cpp` folder of the llama-cpp-python sdist on PyPI:
`pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36`, then unpack). Development tools only, like torch:
needs torch, transformers 5.x, safetensors, numpy, pyyaml; nothing here is part of the build or of CI.

Files written:
  glm-tiny-bf16-0000N-of-00002.gguf   --outtype bf16, split by --split-max-tensors 20 (the split-file path)
  glm-tiny-q8_0.gguf                  --outtype q8_0 (2-D weights Q8_0, norms/biases F32)
  glm-tiny-q8_0-qkv.gguf              --outtype q8_0 --fuse-qkv (q/k/v fused in blk.N.attn_qkv; this converter
                                      version refuses --fuse-gate-up-exps for GLM4_MOE, so ffn_gate_up_exps has no
                                      converter-made fixture yet)
  air-bf16.gguf                       Tests/Fixtures/models/air (bf16, MTP layer with its own embed_tokens)
  tied_shared2-f32.gguf               Tests/Fixtures/models/tied_shared2 (f32, tied lm_head, 2 shared experts, MTP)
                                      (these two with a placeholder vocabulary: the fixtures have no tokenizer)
  glm-tiny-q8_0-gate_up.gguf          glm-tiny-q8_0.gguf with ffn_gate_exps + ffn_up_exps fused into ffn_gate_up_exps
                                      by gguf-py (see fuse_gate_up)
  glm-tiny-mixed.gguf                 the f32 conversion requantised by gguf-py (ggml's reference quantisers), each
                                      weight matrix in one of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (round robin)
  reference-{q8_0,mixed}.json / .f32          tokens and transformers fp32 logits (eager) [tokens, vocab] on
                                      glm-tiny-q8_0.gguf's weights dequantised by gguf-py (what libglm computes with)

The tiny tokenizer is not one the converter knows by its hash (it hashes the pre-tokenizer's output on a probe
text to name `tokenizer.ggml.pre`); this script tells it "glm4", what it writes for the real GLM-4.5..4.7.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SRC = os.path.join(ROOT, "Tests", "Fixtures", "models", "glm-tiny-chat")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "models", "glm-tiny-gguf")
TOKENS = [4257, 4259, 10, 200, 3000, 77]   # any in-vocabulary ids: the test feeds the same ones

# The reference models of Tests/Fixtures/models have no tokenizer; their GGUF files get a placeholder vocabulary
# (token strings "<tN>"), which the weight tests do not read.
FAKE_VOCAB = (
    "import conversion.glm as glm\n"
    "def fake_vocab(self):\n"
    "    n = self.hparams['vocab_size']\n"
    "    self.gguf_writer.add_tokenizer_model('gpt2')\n"
    "    self.gguf_writer.add_tokenizer_pre('glm4')\n"
    "    self.gguf_writer.add_token_list([f'<t{i}>' for i in range(n)])\n"
    "    self.gguf_writer.add_token_types([1] * n)\n"
    "glm.Glm4MoeModel.set_vocab = fake_vocab\n"
)


def convert(llama, args, fake_vocab=False):
    code = (
        "import sys, runpy\n"
        f"sys.path.insert(0, {llama!r}); sys.path.insert(0, {os.path.join(llama, 'gguf-py')!r})\n"
        "import conversion.base as base\n"
        "base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'glm4'\n"
        + (FAKE_VOCAB if fake_vocab else "") +
        f"sys.argv = ['convert_hf_to_gguf.py'] + {args!r}\n"
        f"runpy.run_path({os.path.join(llama, 'convert_hf_to_gguf.py')!r}, run_name='__main__')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# The mixed file: each weight matrix in one of the 32-element block types gguf-py can quantise (ggml's reference
# quantisers), round robin, as llama-quantize's recipes mix types per tensor; vectors stay F32. (The K-quants and
# IQ4_XS need rows of 256: this model's rows are 32..128 wide, as llama-quantize would also fall back.)
MIX = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]


def copy_metadata(reader, writer, skip=()):
    """Every key-value pair of `reader` (a gguf.GGUFReader) into `writer` with its own value types, except the
    architecture (the writer's constructor writes it), the reader's GGUF.* pseudo-fields and the keys in `skip`."""
    import gguf

    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF.") or field.name in skip:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)


def requantize(src, dst):
    import gguf
    from gguf import quants

    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, arch="glm4moe")
    copy_metadata(r, w, skip=(gguf.Keys.General.FILE_TYPE,))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    k = 0
    for t in r.tensors:
        shape = [int(d) for d in reversed(t.shape)]
        data = np.asarray(t.data, dtype=np.float32).reshape(shape)
        if len(shape) >= 2 and shape[-1] % 32 == 0:
            qtype = gguf.GGMLQuantizationType[MIX[k % len(MIX)]]
            k += 1
            w.add_tensor(t.name, quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def fuse_gate_up(src, dst):
    """Copies `src` with each layer's ffn_gate_exps and ffn_up_exps replaced by one ffn_gate_up_exps (per expert:
    the gate rows, then the up rows; ggml [in, 2F, E]), the tensor newer converters write (--fuse-gate-up-exps; the
    converter version used here refuses it for GLM4_MOE). Bytes are moved, not requantised."""
    import gguf

    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, arch="glm4moe")
    copy_metadata(r, w)
    by_name = {t.name: t for t in r.tensors}
    for t in r.tensors:
        if t.name.endswith(".ffn_up_exps.weight"):
            continue
        if t.name.endswith(".ffn_gate_exps.weight"):
            up = by_name[t.name.replace("ffn_gate_exps", "ffn_up_exps")]
            assert up.tensor_type == t.tensor_type
            fused = np.concatenate([np.asarray(t.data), np.asarray(up.data)], axis=1)
            w.add_tensor(t.name.replace("ffn_gate_exps", "ffn_gate_up_exps"), fused, raw_dtype=t.tensor_type)
            continue
        w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def hf_tensors_from_gguf(path, cfg):
    """The Hugging Face checkpoint a GGUF file holds, dequantised to f32 by gguf-py (names mapped back)."""
    import gguf
    from gguf import quants
    import torch

    r = gguf.GGUFReader(path)
    simple = {
        "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj", "ffn_gate_inp": "mlp.gate",
        "ffn_gate_shexp": "mlp.shared_experts.gate_proj", "ffn_up_shexp": "mlp.shared_experts.up_proj",
        "ffn_down_shexp": "mlp.shared_experts.down_proj",
    }
    out = {}
    for t in r.tensors:
        shape = [int(d) for d in reversed(t.shape)]
        data = quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        name = t.name
        if name == "token_embd.weight":
            out["model.embed_tokens.weight"] = data
            continue
        if name == "output_norm.weight":
            out["model.norm.weight"] = data
            continue
        if name == "output.weight":
            out["lm_head.weight"] = data
            continue
        _, layer, *role, suffix = name.split(".")
        role = ".".join(role)
        p = f"model.layers.{layer}."
        if role == "exp_probs_b":
            out[p + "mlp.gate.e_score_correction_bias"] = data
        elif role in simple:
            out[p + simple[role] + "." + suffix] = data
        elif role in ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"):
            proj = {"ffn_gate_exps": "gate_proj", "ffn_up_exps": "up_proj", "ffn_down_exps": "down_proj"}[role]
            for e in range(shape[0]):
                out[p + f"mlp.experts.{e}.{proj}.weight"] = data[e]
        elif role == "ffn_gate_up_exps":
            half = shape[1] // 2
            for e in range(shape[0]):
                out[p + f"mlp.experts.{e}.gate_proj.weight"] = data[e, :half]
                out[p + f"mlp.experts.{e}.up_proj.weight"] = data[e, half:]
        elif role == "attn_qkv":
            q = cfg["num_attention_heads"] * cfg["head_dim"]
            kv = cfg["num_key_value_heads"] * cfg["head_dim"]
            for proj, a, b in (("q_proj", 0, q), ("k_proj", q, q + kv), ("v_proj", q + kv, q + 2 * kv)):
                out[p + f"self_attn.{proj}.{suffix}"] = data[a:b]
        else:
            raise SystemExit(f"{path}: unexpected tensor {name}")
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True)
    args = ap.parse_args()
    llama = os.path.abspath(args.llama_cpp)
    sys.path.insert(0, os.path.join(llama, "gguf-py"))
    sys.path.insert(0, os.path.dirname(__file__))
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".gguf"):
            os.remove(os.path.join(OUT, f))

    convert(llama, ["--outtype", "bf16", "--split-max-tensors", "20", "--outfile",
                    os.path.join(OUT, "glm-tiny-bf16.gguf"), SRC])
    convert(llama, ["--outtype", "q8_0", "--outfile", os.path.join(OUT, "glm-tiny-q8_0.gguf"), SRC])
    convert(llama, ["--outtype", "q8_0", "--fuse-qkv", "--outfile", os.path.join(OUT, "glm-tiny-q8_0-qkv.gguf"), SRC])
    models = os.path.dirname(SRC)
    convert(llama, ["--outtype", "bf16", "--outfile", os.path.join(OUT, "air-bf16.gguf"),
                    os.path.join(models, "air")], fake_vocab=True)
    convert(llama, ["--outtype", "f32", "--outfile", os.path.join(OUT, "tied_shared2-f32.gguf"),
                    os.path.join(models, "tied_shared2")], fake_vocab=True)

    fuse_gate_up(os.path.join(OUT, "glm-tiny-q8_0.gguf"), os.path.join(OUT, "glm-tiny-q8_0-gate_up.gguf"))
    with tempfile.TemporaryDirectory() as tmp:
        convert(llama, ["--outtype", "f32", "--outfile", os.path.join(tmp, "f32.gguf"), SRC])
        requantize(os.path.join(tmp, "f32.gguf"), os.path.join(OUT, "glm-tiny-mixed.gguf"))

    import glm_reference as ref
    with open(os.path.join(SRC, "config.json")) as f:
        cfg = json.load(f)
    for variant in ("q8_0", "mixed"):
        with tempfile.TemporaryDirectory() as tmp:
            tensors = hf_tensors_from_gguf(os.path.join(OUT, f"glm-tiny-{variant}.gguf"), cfg)
            cfg32 = dict(cfg, dtype="float32")
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(cfg32, f)
            ref.write_checkpoint(tmp, tensors, 1)
            result = ref.transformers_reference(tmp, TOKENS, "float32")
        logits = result["logits"]
        logits.astype("<f4").tofile(os.path.join(OUT, f"reference-{variant}.f32"))
        with open(os.path.join(OUT, f"reference-{variant}.json"), "w") as f:
            json.dump({"source": f"transformers fp32 eager on glm-tiny-{variant}.gguf dequantised by gguf-py",
                       "tokens": TOKENS, "vocab_size": int(logits.shape[1]), "logits": f"reference-{variant}.f32",
                       "argmax": [int(i) for i in logits.argmax(-1)]}, f, indent=1)
            f.write("\n")
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
