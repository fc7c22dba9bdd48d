#!/usr/bin/env python3
"""Hugging Face checkpoint → quantised GGUF, libglm in one step (build/bin/quantize CHECKPOINT_DIR DST TYPE) against
llama.cpp's two (convert_hf_to_gguf.py --outtype bf16, then llama-quantize), on the same checkpoint, type and thread
count; wall time and peak RSS (/usr/bin/time -v), and whether the tensor data are the same bytes.

    flock /work/scratch/bench.lock python3 tools/bench_quantize_hf.py --llama-cpp LLAMA_CPP \
        --checkpoint /work/scratch/synth/bf16 --converted /work/scratch/synth/gguf/synth-bf16.gguf

Disk is the constraint at this size (an 11.5 GB checkpoint): the converter's BF16 output is given (--converted, made
earlier by the same converter from the same checkpoint; the converter is timed here writing its own copy, deleted
at once), and only one big output exists at a time. "same data" compares the SHA-256 of
the two outputs' tensor data sections and their tensor lists (the headers differ by the converter's name keys and
the placeholder vocabulary the checkpoint, having no tokenizer, needed). Needs `make lib examples` and llama.cpp
built in LLAMA_CPP/build. Prints a Markdown table for BENCHMARKS.md.
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def timed(cmd):
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{out.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", out.stderr).group(1)
    seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return seconds, rss


def data_digest(gguf, path):
    r = gguf.GGUFReader(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(r.data_offset)
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest(), [(t.name, t.tensor_type.name, [int(d) for d in t.shape]) for t in r.tensors]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--converted", required=True, help="the converter's BF16 GGUF of --checkpoint")
    ap.add_argument("--work", default="/tmp/glm-bench-quantize-hf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types", nargs="+", default=["Q8_0", "Q4_K_M"])
    ap.add_argument("--skip-converter", action="store_true", help="do not time the converter (reuse a number)")
    args = ap.parse_args()
    llama = os.path.abspath(args.llama_cpp)
    sys.path.insert(0, os.path.join(llama, "gguf-py"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf

    os.makedirs(args.work, exist_ok=True)
    quantize = os.path.join(llama, "build", "bin", "llama-quantize")
    ours = os.path.join(ROOT, "build", "bin", "quantize")
    print(f"checkpoint {args.checkpoint}, {os.cpu_count()} CPUs, threads {args.threads}", flush=True)
    if not args.skip_converter:
        converted = os.path.join(args.work, "converted-bf16.gguf")
        free = os.statvfs(args.work).f_bavail * os.statvfs(args.work).f_frsize
        if free < os.path.getsize(args.converted) + (2 << 30):
            sys.exit(f"not enough disk for the converter's output ({free >> 30} GiB free)")
        load = os.getloadavg()[0]
        code = (
            "import sys, runpy\n"
            f"sys.path.insert(0, {llama!r}); sys.path.insert(0, {os.path.join(llama, 'gguf-py')!r})\n"
            f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
            "import make_gguf_models\n"
            "import conversion.base as base\n"
            "base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'glm4'\n"
            "exec(make_gguf_models.FAKE_VOCAB)\n"
            f"sys.argv = ['convert_hf_to_gguf.py', '--outtype', 'bf16', '--outfile', {converted!r}, {args.checkpoint!r}]\n"
            f"runpy.run_path({os.path.join(llama, 'convert_hf_to_gguf.py')!r}, run_name='__main__')\n"
        )
        try:
            cs, cr = timed([sys.executable, "-c", code])
        finally:
            if os.path.exists(converted):
                os.unlink(converted)
        print(f"converter (--outtype bf16): {cs:.1f} s, peak RSS {cr:.0f} MiB, load avg {load:.1f}", flush=True)
    print("| type | llama-quantize s | libglm s (HF → type) | llama RSS MiB | libglm RSS MiB | same data | load avg |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for t in args.types:
        out = os.path.join(args.work, "out.gguf")
        load = os.getloadavg()[0]
        ls, lr = timed([quantize, args.converted, out, t, str(args.threads)])
        theirs = data_digest(gguf, out)
        os.unlink(out)
        gs, gr = timed([ours, args.checkpoint, out, t, "--threads", str(args.threads)])
        mine = data_digest(gguf, out)
        os.unlink(out)
        print(f"| {t} | {ls:.1f} | {gs:.1f} | {lr:.0f} | {gr:.0f} | {theirs == mine} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()
