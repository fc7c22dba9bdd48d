#!/usr/bin/env python3
"""Peak resident memory (VmHWM) of libglm loading a GGUF model and generating a few tokens, against the bound of
issue 11 item 2: peak RSS <= file size + KV cache + 10% (weights memory-mapped and computed on in place, no
dequantised or repacked copy).

    python3 tools/gguf_peak_rss.py MODEL.gguf [MODEL2.gguf ...] [--context 4096] [--prompt 64] [--decode 32]
                                   [--threads 2] [--cache-type f16]

Each model runs in a fresh child process (VmHWM is per process and never goes down): it loads libglm (the Python
bindings, so build/lib/libglm.so from `make lib` or GLM_LIBRARY), reads VmHWM ("baseline": interpreter + library),
loads the model, makes a session of --context positions, evaluates a --prompt-token prompt, then decodes --decode
tokens greedily one at a time, and reads VmHWM again, plus RssFile (pages of mapped files: the weights) and RssAnon
(heap and anonymous memory: KV cache, workspaces, and any copy of the weights, which there must not be).

Bound: file bytes (all parts) + the session's bytes (glm_session_info "bytes": KV cache + workspaces) + 10%,
compared with the peak minus the baseline and with the whole peak. Big files: run under
`flock /work/scratch/bench.lock` with nothing else reading large files (the page cache matters) and note the load.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def status():
    """VmHWM, VmRSS, RssFile, RssAnon in bytes (/proc/self/status)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssFile", "RssAnon", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024
    return out


def child(args):
    sys.path.insert(0, str(ROOT / "bindings" / "python"))
    import glm
    baseline = status()
    model = glm.Model(args.model, threads=args.threads)
    info = model.info()
    vocab = model.vocab_size
    session = model.session(args.context, mtp=False, cache_type_k=args.cache_type, cache_type_v=args.cache_type)
    sinfo = session.info()
    prompt = [(i * 7919 + 13) % vocab for i in range(args.prompt)]
    logits = session.eval(prompt)
    generated = []
    for _ in range(args.decode):
        token = max(range(vocab), key=logits.__getitem__)
        generated.append(token)
        logits = session.eval([token])
    end = status()
    print(json.dumps({"baseline": baseline, "end": end, "session": sinfo, "bytes_mapped": info["bytes_mapped"],
                      "dtype": info["dtype"], "generated": generated}))


def files_of(path):
    """The model's files: a split set's every part."""
    p = pathlib.Path(path)
    name = p.name
    if len(name) > 20 and name[-20] == "-" and name[-14:-10] == "-of-":
        count = int(name[-9:-5])
        return [p.with_name(f"{name[:-20]}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    return [p]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-type", default="f16")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.model = args.models[0]
        child(args)
        return
    mib = 1 << 20
    print(f"load average {os.getloadavg()[0]:.2f}; context {args.context} ({args.cache_type} KV), prompt {args.prompt},"
          f" decode {args.decode}, threads {args.threads}", flush=True)
    for model in args.models:
        cmd = [sys.executable, __file__, "--child", model, "--context", str(args.context), "--prompt", str(args.prompt),
               "--decode", str(args.decode), "--threads", str(args.threads), "--cache-type", args.cache_type]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        file_bytes = sum(f.stat().st_size for f in files_of(model))
        session = r["session"]["bytes"]
        kv = r["session"]["kv_bytes_per_token"] * args.context
        bound = (file_bytes + session) * 1.10
        peak, base = r["end"]["VmHWM"], r["baseline"]["VmHWM"]
        print(f"{pathlib.Path(model).name} ({r['dtype']}): file {file_bytes / mib:.0f} MiB, KV cache {kv / mib:.0f} MiB,"
              f" session total {session / mib:.0f} MiB; peak RSS {peak / mib:.0f} MiB (baseline {base / mib:.0f} MiB:"
              f" interpreter + libglm; growth {(peak - base) / mib:.0f} MiB); at the end RssFile"
              f" {r['end']['RssFile'] / mib:.0f} MiB, RssAnon {r['end']['RssAnon'] / mib:.0f} MiB;"
              f" bound (file + session) × 1.10 = {bound / mib:.0f} MiB: growth {(peak - base) / bound:.2f}×,"
              f" whole peak {peak / bound:.2f}× of it")


if __name__ == "__main__":
    main()
