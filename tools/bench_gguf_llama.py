#!/usr/bin/env python3
"""libglm vs llama.cpp on the same GGUF files, one after the other in one run (BENCHMARKS.md, issue 11 item 7).

For each file: `glm-bench model FILE T PROMPT DECODE` for every thread count T, each after reading the file once
(page cache warm, as llama.cpp's load leaves it) (prefill and decode tokens/s, the
memory-read bandwidth measured in the same process, decode's share of it, peak RSS), then
`llama-bench -m FILE -t T1,T2 -p PROMPT -n DECODE -r REPS -o json` under /usr/bin/time (peak RSS). Prints one
markdown table with the ratios libglm / llama.cpp, and the raw outputs to --log.

llama.cpp's decode share of the bandwidth uses the bytes libglm's decode reads per token (the same file's weights
plus the KV cache at the average position): llama.cpp reads the same weights.

Usage: python3 tools/bench_gguf_llama.py --llama-bench PATH/llama-bench [--glm-bench build/bin/glm-bench]
       [--threads 1,2] [--prompt 512] [--decode 32] [--reps 2] [--log FILE] [--decode-rounds N] FILE.gguf...
Run big files under `flock /work/scratch/bench.lock` so that no other benchmark shares the machine. Creating
LOG.stop ends the run after the file being measured (the rows so far are printed).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def run(command, log):
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    log.write(f"$ {' '.join(command)}  ({time.time() - started:.1f} s, rc {result.returncode}, load {load_average()})\n")
    log.write(result.stdout + result.stderr + "\n")
    log.flush()
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return result


def number(pattern, text):
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"no match for {pattern!r} in:\n{text}")
    return float(m.group(1))


def warm(path, log):
    """Reads the file once so that the page cache holds it. llama.cpp reads (and repacks) the whole file at load,
    before its timing starts; libglm maps it and would otherwise fault pages in from disk inside its timed decode
    when the files of one run do not all fit in memory together (the four synthetic files are 25 GB on a 23 GiB
    machine: the first libglm run of a file measured 9.6 instead of 18.9 tokens/s of Q4_0 decode)."""
    started = time.time()
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass
    log.write(f"warmed {path} in {time.time() - started:.1f} s\n")


def libglm(glm_bench, path, threads, prompt, decode, log, warm_first=True):
    if warm_first:
        warm(path, log)
    out = run([glm_bench, "model", path, str(threads), str(prompt), str(decode)], log).stdout
    return {
        "prefill": number(r"prefill \([^)]*\): \d+ tokens in [\d.]+ s = ([\d.]+) tokens/s", out),
        "decode": number(r"decode \([^)]*\): \d+ tokens in [\d.]+ s = ([\d.]+) tokens/s", out),
        "bandwidth": number(r"memory bandwidth \(\d+ threads\): read ([\d.]+) GB/s", out),
        "share": number(r"= ([\d.]+)% of the measured read bandwidth", out),
        "weights_mb": number(r"bytes per decoded token: ([\d.]+) MB weights", out),
        "kv_mb": number(r"MB weights \+ ([\d.]+) MB KV cache", out),
        "rss_mb": number(r"peak RSS[^:]*: ([\d.]+) MB", out),
        "files_mb": number(r"model files ([\d.]+) MB", out),
        "session_mb": number(r"session \(KV cache and buffers\) ([\d.]+) MB", out),
    }


def llama(llama_bench, path, threads, prompt, decode, reps, log):
    command = ["/usr/bin/time", "-f", "peak_rss_kb=%M", llama_bench, "-m", path, "-t", ",".join(map(str, threads)),
               "-p", str(prompt), "-n", str(decode), "-r", str(reps), "-o", "json"]
    result = run(command, log)
    rss_mb = number(r"peak_rss_kb=(\d+)", result.stderr) * 1024 / 1e6
    rows = json.loads(result.stdout)
    out = {}
    for t in threads:
        pp = [r for r in rows if r["n_threads"] == t and r["n_prompt"] == prompt and r["n_gen"] == 0]
        tg = [r for r in rows if r["n_threads"] == t and r["n_gen"] == decode and r["n_prompt"] == 0]
        if not pp or not tg:
            sys.exit(f"llama-bench gave no pp{prompt}/tg{decode} rows for {t} threads")
        out[t] = {"prefill": pp[0]["avg_ts"], "prefill_sd": pp[0]["stddev_ts"], "decode": tg[0]["avg_ts"],
                  "decode_sd": tg[0]["stddev_ts"], "rss_mb": rss_mb}
    return out


def llama_decode(llama_bench, path, threads, decode, log):
    rows = json.loads(run([llama_bench, "-m", path, "-t", str(threads), "-p", "0", "-n", str(decode), "-r", "1",
                           "-o", "json"], log).stdout)
    return rows[0]["avg_ts"]


def decode_rounds(a, path, llama_path, log):
    """Decode alone, the two programs alternating, `a.decode_rounds` rounds per thread count: decode speed on this
    kind of machine moves by 10-20% from one minute to the next, so one pair of runs cannot rank two programs that
    are within that of each other; the median of the per-round ratios can. libglm's rounds run glm-bench as the
    main table does (its prefill of --prompt tokens, untimed here, touches every expert before the decode)."""
    warm(path, log)
    rows = []
    for t in a.threads:
        ours, theirs = [], []
        for _ in range(a.decode_rounds):
            ours.append(libglm(a.glm_bench, path, t, a.prompt, a.rounds_decode, log, warm_first=False)["decode"])
            theirs.append(llama_decode(a.llama_bench, llama_path, t, a.rounds_decode, log))
        ratios = sorted(o / l for o, l in zip(ours, theirs))
        rows.append(f"| {os.path.basename(path)} | {t} | {', '.join(f'{v:.2f}' for v in ours)} |"
                    f" {', '.join(f'{v:.2f}' for v in theirs)} | {ratios[len(ratios) // 2]:.2f}×"
                    f" ({ratios[0]:.2f}–{ratios[-1]:.2f}) |")
    return rows


def tokenizer_model_offset(path):
    """Where the 4-byte value 'gpt2' of the key tokenizer.ggml.model lies in a GGUF file (a string: type 8)."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    key = b"tokenizer.ggml.model"
    at = head.find(key)
    if at < 0:
        sys.exit(f"{path}: no tokenizer.ggml.model key in the first MiB")
    at += len(key)
    value_type = int.from_bytes(head[at:at + 4], "little")
    length = int.from_bytes(head[at + 4:at + 12], "little")
    if value_type != 8 or length != 4 or head[at + 12:at + 16] != b"gpt2":
        sys.exit(f"{path}: tokenizer.ggml.model is not the string 'gpt2'")
    return at + 12


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--glm-bench", default="build/bin/glm-bench")
    p.add_argument("--llama-bench", required=True)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--prompt", type=int, default=512)
    p.add_argument("--decode", type=int, default=32)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--log", default="bench_gguf_llama.log")
    p.add_argument("--llama-copy", action="append", default=[], metavar="FILE=COPY",
                   help="run llama-bench on COPY for FILE (a copy whose tensors are FILE's bytes, e.g. with a"
                        " tokenizer type llama.cpp loads: the synthetic model has no BPE merges)")
    p.add_argument("--bert-in-place", action="append", default=[], metavar="FILE",
                   help="for llama-bench only, rewrite FILE's tokenizer.ggml.model string 'gpt2' as 'bert' in place"
                        " (4 bytes; restored right after, also on failure): --llama-copy's effect without the disk"
                        " space of a copy (the synthetic BF16 file is 11.6 GB)")
    p.add_argument("--decode-rounds", type=int, default=0, metavar="N",
                   help="then, per file and thread count, N rounds of decode alone with the two programs"
                        " alternating (`glm-bench model F T PROMPT D`, `llama-bench -p 0 -n D -r 1`; D = --rounds-decode),"
                        " and a second table of the rounds and the median ratio")
    p.add_argument("--rounds-decode", type=int, default=64, metavar="D", help="tokens per decode round (64)")
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    a.threads = threads
    round_rows = []
    print(f"| file | threads | decode tok/s libglm / llama.cpp (ratio) | prefill {a.prompt} tok/s libglm / llama.cpp"
          f" (ratio) | read bandwidth GB/s | decode share of it libglm / llama.cpp | peak RSS MB libglm / llama.cpp"
          f" (file, libglm session) | load avg |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    with open(a.log, "a") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {os.uname().nodename}\n")
        for path in a.files:   # one row per file and thread count as soon as the file is done
            if os.path.exists(a.log + ".stop"):   # `touch LOG.stop` ends the run after the current file
                log.write(f"stopped before {path}: {a.log}.stop exists\n")
                break
            load = load_average()
            ours = {t: libglm(a.glm_bench, path, t, a.prompt, a.decode, log) for t in threads}
            copies = dict(c.split("=", 1) for c in a.llama_copy)
            if path in a.bert_in_place:
                offset = tokenizer_model_offset(path)
                with open(path, "r+b") as f:
                    f.seek(offset)
                    f.write(b"bert")
                try:
                    theirs = llama(a.llama_bench, path, threads, a.prompt, a.decode, a.reps, log)
                finally:
                    with open(path, "r+b") as f:
                        f.seek(offset)
                        f.write(b"gpt2")
            else:
                theirs = llama(a.llama_bench, copies.get(path, path), threads, a.prompt, a.decode, a.reps, log)
            for t in threads:
                o, l = ours[t], theirs[t]
                bytes_per_token = (o["weights_mb"] + o["kv_mb"]) * 1e6
                llama_share = 100 * bytes_per_token * l["decode"] / (o["bandwidth"] * 1e9)
                print(f"| {os.path.basename(path)} | {t} | {o['decode']:.2f} / {l['decode']:.2f}"
                      f" ({o['decode'] / l['decode']:.2f}×) | {o['prefill']:.1f} / {l['prefill']:.1f}"
                      f" ({o['prefill'] / l['prefill']:.2f}×) | {o['bandwidth']:.1f} |"
                      f" {o['share']:.0f}% / {llama_share:.0f}% | {o['rss_mb']:.0f} / {l['rss_mb']:.0f}"
                      f" ({o['files_mb']:.0f}, {o['session_mb']:.0f}) | {load} |", flush=True)
            if a.decode_rounds > 0:
                round_rows += decode_rounds(a, path, copies.get(path, path), log)
    if round_rows:
        print(f"\n| file | threads | libglm decode tok/s, {a.decode_rounds} rounds | llama.cpp, alternating |"
              f" median ratio (range) |")
        print("|---|---|---|---|---|")
        for row in round_rows:
            print(row, flush=True)


if __name__ == "__main__":
    main()
