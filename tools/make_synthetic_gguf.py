#!/usr/bin/env python3
"""GGUF files of the synthetic GLM-4.7-shaped model (tools/make_synthetic_glm47.py), made by llama.cpp's own tools, for
the side-by-side benchmarks in BENCHMARKS.md (libglm and llama-bench on the same file):

    python3 tools/make_synthetic_gguf.py SYNTH_DIR OUT_DIR --llama-cpp LLAMA_SRC --llama-bin LLAMA_BIN [--types ...]

SYNTH_DIR is the safetensors directory make_synthetic_glm47.py wrote; LLAMA_SRC llama.cpp's source tree (the
`vendor/llama.cpp` folder of the llama-cpp-python 0.3.36 sdist on PyPI); LLAMA_BIN the folder holding a build of its
`llama-quantize`. Writes OUT_DIR/synth-bf16.gguf with convert_hf_to_gguf.py (--outtype bf16; the synthetic model has
no tokenizer, so it gets the placeholder vocabulary of make_gguf_models.py plus one merge: benchmarks never read
token strings),
then OUT_DIR/synth-TYPE.gguf for each --types entry with `llama-quantize synth-bf16.gguf synth-TYPE.gguf TYPE 2`
(default: q8_0 q4_0 q4_k_m). Development tool, like torch: nothing here is part of the build or of CI; the outputs
are gigabytes and never committed.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_gguf_models  # noqa: E402  (the converter with the placeholder-vocabulary patch)

# llama.cpp refuses a "gpt2" vocabulary without merges; one placeholder merge lets llama-bench load the file (it feeds
# token ids, never text). Files made before this line were given it afterwards by tools/gguf_add_placeholder_merges.py.
make_gguf_models.FAKE_VOCAB = make_gguf_models.FAKE_VOCAB.replace(
    "glm.Glm4MoeModel.set_vocab = fake_vocab",
    "    self.gguf_writer.add_token_merges(['<t0> <t1>'])\nglm.Glm4MoeModel.set_vocab = fake_vocab")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("synth_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--llama-cpp", required=True, help="llama.cpp source tree (convert_hf_to_gguf.py, gguf-py)")
    ap.add_argument("--llama-bin", required=True, help="folder with llama-quantize")
    ap.add_argument("--types", nargs="*", default=["q8_0", "q4_0", "q4_k_m"])
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    bf16 = os.path.join(args.out_dir, "synth-bf16.gguf")
    if not os.path.exists(bf16):
        start = time.time()
        make_gguf_models.convert(os.path.abspath(args.llama_cpp), ["--outtype", "bf16", "--outfile", bf16,
                                                   os.path.abspath(args.synth_dir)], fake_vocab=True)
        print(f"{bf16}: {os.path.getsize(bf16) / 1e9:.2f} GB in {time.time() - start:.0f} s", flush=True)
    for t in args.types:
        out = os.path.join(args.out_dir, f"synth-{t}.gguf")
        if os.path.exists(out):
            continue
        start = time.time()
        subprocess.run([os.path.join(args.llama_bin, "llama-quantize"), bf16, out, t.upper(), "2"], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"{out}: {os.path.getsize(out) / 1e9:.2f} GB in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
