#!/usr/bin/env python3
"""llama.cpp's own logits on the GGUF fixtures of Tests/Fixtures/models/glm-tiny-gguf (issue 11 item 5(b)), written
as fixtures that GGUFLlamaCppParityTests compares libglm with (in CI, without llama.cpp).

    LLAMA_CPP_LIB_PATH=<dir with libllama.so> \\
    PYTHONPATH=<llama-cpp-python sdist root> python3 tools/make_llama_cpp_logits.py

A development tool, like torch: llama.cpp is the llama-cpp-python sdist's vendored tree (PyPI, 0.3.36) built in a
scratch folder (cmake -DBUILD_SHARED_LIBS=ON, CPU only); the sdist's `llama_cpp` package is its ctypes binding.
Nothing here is part of the build or of CI.

Each fixture model is evaluated once on TOKENS as one batch with logits for every position, as `llama-cli` would
compute them on this CPU except: the KV cache in F32 (llama.cpp's default is F16; libglm's test sessions use f32,
so K and V are not rounded on either side) and flash attention off (its CPU kernel converts Q to F16). Weights
are used as llama.cpp loads them by default (memory-mapped; the CPU backend may repack Q4_0/Q8_0 into its
interleaved layouts, which changes the order of the sums, not the products). One thread, so the run is repeatable.

The reference models air and tied_shared2 carry a placeholder vocabulary ("<tN>" tokens, no merges: their
checkpoints have no tokenizer), which llama.cpp refuses ("cannot find tokenizer merges"); they are evaluated from a
copy with a one-entry merges list added by gguf-py (tensors and every other key as in the committed file).
glm-tiny-q8_0-gate_up.gguf (fused ffn_gate_up_exps) is skipped when llama.cpp does not load it: the 0.3.36 sdist's
llama.cpp looks for ffn_gate_exps / ffn_up_exps only for this architecture.

`--compare FILE.gguf [...]` writes nothing: it evaluates each file in llama.cpp and in libglm (the Python bindings,
build/lib/libglm.so or GLM_LIBRARY; KV cache f32 in both) on --tokens ids and prints the largest |Δlogit| relative to
the largest logit and the argmax agreement per position: for files too big to commit (e.g. the synthetic
GLM-4.7-shaped model quantised by llama-quantize, with K-quants that the tiny fixtures cannot hold).

The K-quant fixtures (k256-q2_k ... k256-q6_k) are llama-quantize's mixes of k256-bf16.gguf made in a temporary
folder (LLAMA_CPP_LIB_PATH/llama-quantize); their JSON records the type and the SHA-256 of the file evaluated.

Written per model: llama-cpp-<name>.f32 (logits [tokens, vocab], little-endian f32) and llama-cpp-<name>.json
(tokens, settings, the llama.cpp build, argmax and the gap between the two largest logits per position).
"""
import ctypes
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from make_gguf_models import copy_metadata  # the same directory: run as tools/make_llama_cpp_logits.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
DIR = ROOT / "Tests" / "Fixtures" / "models" / "glm-tiny-gguf"
# The ids tools/make_gguf_models.py gives transformers (reference-*.json): in the vocabulary of every fixture
# with glm-tiny's tokenizer. The reference models (air, tied_shared2: 384 and 256 tokens) get TOKENS_SMALL.
TOKENS = [4257, 4259, 10, 200, 3000, 77]
TOKENS_SMALL = [1, 7, 42, 3, 19, 100, 5]
MODELS = {
    "glm-tiny-bf16": ("glm-tiny-bf16-00001-of-00002.gguf", TOKENS),
    "glm-tiny-q8_0": ("glm-tiny-q8_0.gguf", TOKENS),
    "glm-tiny-q8_0-qkv": ("glm-tiny-q8_0-qkv.gguf", TOKENS),
    "glm-tiny-q8_0-gate_up": ("glm-tiny-q8_0-gate_up.gguf", TOKENS),
    "glm-tiny-mixed": ("glm-tiny-mixed.gguf", TOKENS),
    "air-bf16": ("air-bf16.gguf", TOKENS_SMALL),
    "tied_shared2-f32": ("tied_shared2-f32.gguf", TOKENS_SMALL),
}
# The K-quants need rows of 256 elements, which only k256-bf16.gguf has (tools/make_gguf_quantize_models.py). Its
# quantisations are not committed: llama-quantize makes them here, the fixture records the SHA-256 of what it wrote,
# and the test quantises the same source with libglm (byte-identical to llama-quantize, GGUFQuantizeModelTests),
# checks the digest and compares logits. Together these five mixes hold every K-quant type (Q2_K..Q6_K).
QUANTISED = {f"k256-{t.lower()}": ("k256-bf16.gguf", t) for t in ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"]}


def with_merges(src, dst):
    """A copy of `src` with a `tokenizer.ggml.merges` added (gguf-py; tensors copied as they are)."""
    import gguf
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, arch=r.fields[gguf.Keys.General.ARCHITECTURE].contents())
    copy_metadata(r, w)
    # gguf-py writes no empty arrays: one merge of two placeholder tokens (only tokenizing would use it).
    w.add_token_merges(["<t1> <t2>"])
    for t in r.tensors:
        w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def has_merges(path):
    import gguf
    r = gguf.GGUFReader(path)
    model = r.fields.get("tokenizer.ggml.model")
    return model is None or model.contents() != "gpt2" or "tokenizer.ggml.merges" in r.fields


def evaluate(llama_cpp, path, tokens, threads=1):
    mparams = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
    if not model:
        return None
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = 64
    cparams.n_batch = 64
    cparams.n_ubatch = 64
    cparams.n_threads = threads
    cparams.n_threads_batch = threads
    cparams.type_k = 0   # GGML_TYPE_F32
    cparams.type_v = 0
    cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    if not ctx:
        llama_cpp.llama_model_free(model)
        return None
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
    for i, t in enumerate(tokens):
        batch.token[i] = t
        batch.pos[i] = i
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = 1
    batch.n_tokens = len(tokens)
    rc = llama_cpp.llama_decode(ctx, batch)
    if rc != 0:
        raise SystemExit(f"{path}: llama_decode returned {rc}")
    rows = []
    for i in range(len(tokens)):
        p = llama_cpp.llama_get_logits_ith(ctx, i)
        rows.append(np.ctypeslib.as_array(ctypes.cast(p, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy())
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(model)
    return np.stack(rows).astype("<f4")


def llama_build(llama_cpp):
    """What was run, for the record: the sdist and the CPU features the build uses."""
    return {"sdist": "llama-cpp-python 0.3.36 (PyPI), vendor/llama.cpp",
            "system_info": llama_cpp.llama_print_system_info().decode().strip()}


def import_binding():
    """The sdist's ctypes layer (llama_cpp/llama_cpp.py) without the package's __init__, which imports the
    high-level API and its dependencies (diskcache, ...) that this script does not need."""
    import importlib
    import importlib.util
    import types
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llama_cpp not found: set PYTHONPATH to the llama-cpp-python sdist root")
    package = types.ModuleType("llama_cpp")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["llama_cpp"] = package
    return importlib.import_module("llama_cpp.llama_cpp")


def compare(llama_cpp, files, count):
    sys.path.insert(0, str(pathlib.Path(os.environ.get("PYTHONPATH", ".").split(":")[0]) / "vendor" / "llama.cpp" / "gguf-py"))
    sys.path.insert(0, str(ROOT / "bindings" / "python"))
    import glm
    for path in files:
        model = glm.Model(path, threads=2)
        vocab = model.vocab_size
        tokens = [(i * 7919 + 13) % vocab for i in range(count)]
        if has_merges(path):
            theirs = evaluate(llama_cpp, path, tokens, threads=2)
        else:   # e.g. the synthetic model's tokenizer: a copy with a merges list (the file's size again in TMPDIR)
            with tempfile.TemporaryDirectory() as tmp:
                with_merges(path, os.path.join(tmp, os.path.basename(path)))
                theirs = evaluate(llama_cpp, os.path.join(tmp, os.path.basename(path)), tokens, threads=2)
        if theirs is None:
            print(f"{os.path.basename(path)}: llama.cpp does not load it")
            continue
        session = model.session(len(tokens) + 1, mtp=False, cache_type_k="f32", cache_type_v="f32")
        ours = np.asarray(session.eval(tokens, all_logits=True), dtype=np.float32)
        del session, model
        scale = float(np.abs(theirs).max())
        delta = np.abs(ours - theirs)
        top2 = np.sort(theirs, axis=-1)[:, -2:]
        same = ours.argmax(-1) == theirs.argmax(-1)
        near = (top2[:, 1] - top2[:, 0]) < 2 * delta.max(-1)
        print(f"{os.path.basename(path)}: {len(tokens)} tokens, max |Δlogit| {delta.max():.4g} of scale {scale:.4g}"
              f" ({delta.max() / scale:.3%}); per position {np.round(delta.max(-1) / scale * 100, 3).tolist()} %;"
              f" argmax equal at {int(same.sum())}/{len(tokens)} positions"
              f" (the others near-ties: {bool(np.all(same | near))})", flush=True)


def main():
    if not os.environ.get("LLAMA_CPP_LIB_PATH"):
        raise SystemExit("set LLAMA_CPP_LIB_PATH to the folder with libllama.so (and PYTHONPATH to the sdist root)")
    llama_cpp = import_binding()
    llama_cpp.llama_backend_init()
    if len(sys.argv) > 1:
        import argparse
        ap = argparse.ArgumentParser()
        ap.add_argument("--compare", nargs="+", required=True)
        ap.add_argument("--tokens", type=int, default=16)
        args = ap.parse_args()
        compare(llama_cpp, args.compare, args.tokens)
        return
    build = llama_build(llama_cpp)
    sys.path.insert(0, str(pathlib.Path(os.environ.get("PYTHONPATH", ".").split(":")[0]) / "vendor" / "llama.cpp" / "gguf-py"))
    quantize = pathlib.Path(os.environ["LLAMA_CPP_LIB_PATH"]) / "llama-quantize"
    jobs = [(name, file, tokens, None) for name, (file, tokens) in MODELS.items()]
    jobs += [(name, source, TOKENS_SMALL, qtype) for name, (source, qtype) in QUANTISED.items()]
    for name, file, tokens, qtype in jobs:
        quantised = None
        with tempfile.TemporaryDirectory() as tmp:
            path = DIR / file
            if qtype is not None:
                path = pathlib.Path(tmp) / f"{name}.gguf"
                subprocess.run([str(quantize), str(DIR / file), str(path), qtype], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                quantised = {"source": file, "type": qtype,
                             "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            if not has_merges(path):
                with_merges(str(path), os.path.join(tmp, "merges-" + path.name))
                path = pathlib.Path(tmp) / ("merges-" + path.name)
            logits = evaluate(llama_cpp, path, tokens)
        if logits is None:
            print(f"{name}: llama.cpp does not load {file}; no fixture")
            for suffix in (".f32", ".json"):
                (DIR / f"llama-cpp-{name}{suffix}").unlink(missing_ok=True)
            continue
        top2 = np.sort(logits, axis=-1)[:, -2:]
        logits.tofile(DIR / f"llama-cpp-{name}.f32")
        with open(DIR / f"llama-cpp-{name}.json", "w") as f:
            json.dump({"source": f"llama.cpp on {file if qtype is None else f'llama-quantize {file} {qtype}'}: one batch of {len(tokens)} tokens, logits for all positions,"
                                 " KV cache F32, flash attention off, 1 thread",
                       "file": file, "tokens": tokens, "vocab_size": int(logits.shape[1]),
                       "logits": f"llama-cpp-{name}.f32", "argmax": [int(i) for i in logits.argmax(-1)],
                       "top2_gap": [float(g) for g in top2[:, 1] - top2[:, 0]], "llama_cpp": build}
                      | ({"quantised": quantised} if quantised else {}), f, indent=1)
            f.write("\n")
        print(f"{name}: {logits.shape}, argmax {logits.argmax(-1).tolist()}, scale {np.abs(logits).max():.3f}")


if __name__ == "__main__":
    main()
