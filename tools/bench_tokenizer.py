#!/usr/bin/env python3
"""Tokenizer speed and load cost: HF tokenizers (Rust, one thread) against libglm's Swift tokenizer, same text,
same vocabularies, same run. Also checks that both produce identical ids on the whole text.

Usage (from the repository root, after `swift build -c release`):
  python3 tools/bench_tokenizer.py --swift ".build/release/glm-bench tokenizer" [--megabytes 8]

Vocabularies measured:
  glm-tiny        Tests/Fixtures/tokenizers/glm-tiny (GLM-like, ~4k merges)
  qwen2-json      a 151k-token tokenizer.json built here from the Qwen2 GGUF with the tokenizers library
  qwen2-gguf      Tests/Fixtures/tokenizers/ggml-vocab-qwen2.gguf (Swift only: HF cannot read GGUF)
The text is several MB of multilingual prose, code and random Unicode (tools/tokenizer_corpus.py).
"""

import argparse
import os
import shlex
import struct
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_corpus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def read_gguf_metadata(path):
    """The metadata key/values of a GGUF file (enough of the format for tokenizer arrays)."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t in scalar:
            return take(scalar[t])
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        raise ValueError(f"GGUF type {t}")

    assert take("I") == 0x46554747
    take("I")
    take("Q")
    kv = take("Q")
    meta = {}
    for _ in range(kv):
        k = string()
        meta[k] = value(take("I"))
    return meta


def qwen2_tokenizer_json(out_dir):
    meta = read_gguf_metadata(os.path.join(FIXTURES, "ggml-vocab-qwen2.gguf"))
    tokens, types, merges = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"], meta["tokenizer.ggml.merges"]
    vocab = {t: i for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 1}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges], ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    tok.save(path)
    # Sanity: the rebuilt file reproduces HF's expected ids for llama.cpp's test texts.
    texts = open(os.path.join(FIXTURES, "ggml-vocab-qwen2.gguf.inp"), encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
    expected = open(os.path.join(FIXTURES, "ggml-vocab-qwen2.gguf.out"), encoding="utf-8").read().split("\n")
    for text, line in zip(texts, expected):
        if text:
            assert tok.encode(text, add_special_tokens=False).ids == [int(x) for x in line.split()], text
    return path


HF_LOAD_PROBE = """
import os, sys, time
os.environ["RAYON_NUM_THREADS"] = "1"
from tokenizers import Tokenizer
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = rss()
t = time.perf_counter()
tok = Tokenizer.from_file(sys.argv[1])
print((time.perf_counter() - t) * 1000, (rss() - before) / 1e6)
"""


def chunks_of(text, size=4000):
    """The text as ~4 kB pieces cut after newlines (HF's batch API is faster than one giant string)."""
    pieces, current, length = [], [], 0
    for line in text.splitlines(keepends=True):
        current.append(line)
        length += len(line)
        if length >= size:
            pieces.append("".join(current))
            current, length = [], 0
    if current:
        pieces.append("".join(current))
    return pieces


def hf_measure(path, text, runs):
    out = subprocess.run([sys.executable, "-c", HF_LOAD_PROBE, path], capture_output=True, text=True, check=True)
    load_ms, load_mb = map(float, out.stdout.split())
    tok = Tokenizer.from_file(path)
    best, ids = float("inf"), None
    # HF's faster of: the whole text as one string, or 4 kB pieces through encode_batch (one thread).
    pieces = chunks_of(text)
    for _ in range(runs):
        t = time.perf_counter()
        ids = tok.encode(text, add_special_tokens=False).ids
        best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        tok.encode_batch(pieces, add_special_tokens=False)
        best = min(best, time.perf_counter() - t)
    return {"load_ms": load_ms, "load_rss_mb": load_mb, "encode_s": best, "ids": ids}


def swift_measure(command, tokenizer, text_path, runs, ids_path):
    args = shlex.split(command) + ["--tokenizer", tokenizer, "--text", text_path, "--runs", str(runs), "--ids-out", ids_path]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0 or "error" in out.stdout:
        raise SystemExit(f"swift benchmark failed: {out.stdout}{out.stderr}")
    result = dict(line.split("=", 1) for line in out.stdout.split("\n") if "=" in line)
    with open(ids_path, "rb") as f:
        raw = f.read()
    result["ids"] = list(struct.unpack(f"<{len(raw) // 4}i", raw))
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--swift", required=True, help="command that runs the Swift tokenizer benchmark")
    ap.add_argument("--megabytes", type=float, default=8.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="glm-tokbench-")
    text = tokenizer_corpus.large_text(args.megabytes)
    text_path = os.path.join(work, "text.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text)
    size_mb = len(text.encode()) / 1e6
    qwen_json = qwen2_tokenizer_json(os.path.join(work, "qwen2"))

    rows = []
    for name, swift_path, hf_path in [
        ("glm-tiny", os.path.join(FIXTURES, "glm-tiny", "tokenizer.json"), os.path.join(FIXTURES, "glm-tiny", "tokenizer.json")),
        ("qwen2-json", qwen_json, qwen_json),
        ("qwen2-gguf", os.path.join(FIXTURES, "ggml-vocab-qwen2.gguf"), qwen_json),
    ]:
        hf = hf_measure(hf_path, text, args.runs)
        sw = swift_measure(args.swift, swift_path, text_path, args.runs, os.path.join(work, name + ".ids"))
        hf_speed = size_mb / hf["encode_s"]
        sw_speed = float(sw["encode_mb_s"])
        rows.append((name, sw["vocab_size"], hf["load_ms"], float(sw["load_ms"]), hf["load_rss_mb"],
                     float(sw["load_rss_mb"]), hf_speed, sw_speed, sw_speed / hf_speed, hf["ids"] == sw["ids"],
                     len(hf["ids"])))

    print(f"text: {size_mb:.2f} MB multilingual (tools/tokenizer_corpus.py large_text), best of {args.runs} runs, one thread")
    print("HF: best of encode(whole text) and encode_batch(4 kB pieces) with RAYON_NUM_THREADS=1; Swift: encode(whole text)")
    print("ids identical: Swift ids == HF encode(whole text) ids (for qwen2-gguf: HF on the tokenizer.json built from it)")
    print("| vocabulary | tokens in vocab | load ms HF | load ms Swift | load MB HF | load MB Swift | "
          "encode MB/s HF | encode MB/s Swift | Swift/HF | ids identical | tokens |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.0f} | {r[3]:.0f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.2f} | {r[7]:.2f} | "
              f"{r[8]:.2f}x | {r[9]} | {r[10]} |")


if __name__ == "__main__":
    main()
