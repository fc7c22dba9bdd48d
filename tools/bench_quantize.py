#!/usr/bin/env python3
"""GGUF quantisation speed and memory, libglm (build/bin/quantize, glm_quantize) against llama.cpp's llama-quantize
on the same source, type and thread count, one after the other in one run; also checks that the two outputs are the
same bytes. The source is a random glm4moe BF16 GGUF of about 370 MB (tools/make_gguf_quantize_models.make_model:
hidden 1024, 16 experts of 1024, 4 layers, vocabulary 4096), made once in --work.

    flock /work/scratch/bench.lock python3 tools/bench_quantize.py --llama-cpp LLAMA_CPP [--threads 1 2]

Needs `make lib examples` (build/bin/quantize) and llama.cpp built in LLAMA_CPP/build. Prints a Markdown table
(wall seconds and peak RSS from /usr/bin/time, the load average before each run) for BENCHMARKS.md.
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
        sys.exit(f"{cmd[0]} failed:\n{out.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", out.stderr).group(1)
    seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return seconds, rss


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True)
    ap.add_argument("--work", default="/tmp/glm-bench-quantize")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--types", nargs="+", default=["Q8_0", "Q4_0", "Q4_K_M"])
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf
    from make_gguf_quantize_models import make_model

    os.makedirs(args.work, exist_ok=True)
    source = os.path.join(args.work, "bench-bf16.gguf")
    if not os.path.exists(source):
        make_model(gguf, source, h=1024, vocab=4096, ff=1024, heads=8, kv=4, hd=128, experts=16, layers=4, seed=7,
                   name="Bench")
    with open(source, "rb") as f:                  # warm the page cache for both tools alike
        while f.read(1 << 24):
            pass
    size = os.path.getsize(source) / 2 ** 20
    llama = os.path.join(args.llama_cpp, "build", "bin", "llama-quantize")
    ours = os.path.join(ROOT, "build", "bin", "quantize")
    print(f"source: {source} ({size:.0f} MiB), {os.cpu_count()} CPUs")
    print("| type | threads | llama-quantize s | libglm s | libglm / llama.cpp time | llama RSS MiB | libglm RSS MiB "
          "| same bytes | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in args.types:
        for n in args.threads:
            a, b = os.path.join(args.work, "llama.gguf"), os.path.join(args.work, "libglm.gguf")
            load = os.getloadavg()[0]
            ls, lr = timed([llama, source, a, t, str(n)])
            gs, gr = timed([ours, source, b, t, "--threads", str(n)])
            same = digest(a) == digest(b)
            print(f"| {t} | {n} | {ls:.1f} | {gs:.1f} | {gs / ls:.2f} | {lr:.0f} | {gr:.0f} | {same} | {load:.1f} |",
                  flush=True)
            os.unlink(a)
            os.unlink(b)


if __name__ == "__main__":
    main()
