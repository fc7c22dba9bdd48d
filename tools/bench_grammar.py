#!/usr/bin/env python3
"""Constrained-decoding speed: libglm beside llguidance and xgrammar, in one run, on the same schemas, the same
151k-token vocabulary and the same token sequences.

    python3 -m venv /tmp/grammar-bench && /tmp/grammar-bench/bin/pip install llguidance numpy jsonschema
    /tmp/grammar-bench/bin/pip install --no-deps xgrammar apache-tvm-ffi pydantic typing-extensions
    make lib bench && /tmp/grammar-bench/bin/python tools/bench_grammar.py

For each schema (Tests/Fixtures/grammar/*.jsonl) the driver draws valid instances (tools/grammar_instances.py,
checked with jsonschema), writes each as json.dumps text and tokenizes it with libglm's tokenizer for the
vocabulary (Tests/Fixtures/tokenizers/ggml-vocab-qwen2.gguf, Qwen2's 151,643 byte-level BPE tokens, the size of
GLM-4's). Every engine then compiles the schema and walks the same ids: a mask before each token (timed), the
token accepted, and at the end a mask that must allow the end id. Only cases every engine accepted count in the
side-by-side table. Times are CPU time, not wall-clock time: the benchmark machine is shared, and preemption would
otherwise add whole scheduler slices to random masks. libglm is timed inside `glm-bench grammar` (the thread's
CPU clock around `fillMask`); llguidance and xgrammar around their Python calls that fill a preallocated mask
(`time.thread_time`, their Python call overhead, about a microsecond, included); compile times with the process's
CPU clock (`time.process_time`, so helper threads would count).

xgrammar imports torch and transformers at import time, but its CPU matcher fills any DLPack array: the driver
installs neither and registers empty stand-in modules for them, so the code measured is xgrammar's own.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import types

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "tools"))


def stub_modules():
    """Stand-ins for torch/transformers so `import xgrammar` works without them."""
    class Anything:
        def __init__(self, *a, **k):
            pass

        def __call__(self, *a, **k):
            return Anything()

        def __getattr__(self, name):
            return Anything()

    class Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (Anything,), {})

    # tvm_ffi (xgrammar's binding layer) patches torch when it imports; the stand-in has nothing to patch.
    os.environ.setdefault("TVM_FFI_DISABLE_TORCH_C_DLPACK", "1")
    for name in ("torch", "torch.utils", "torch.utils.cpp_extension", "transformers", "triton", "triton.language"):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                sys.modules[name] = Stub(name)


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(times):
    return {"tokens": len(times), "mean": statistics.fmean(times) if times else float("nan"),
            "p50": percentile(times, 50), "p99": percentile(times, 99), "max": max(times) if times else float("nan")}


def make_cases(schema_files, tokenizer, per_schema):
    from grammar_instances import instance
    cases = []
    for path in schema_files:
        for line in open(path):
            entry = json.loads(line)
            for seed in range(per_schema):
                value = instance(entry["schema"], seed)
                if value is None:
                    continue
                text = json.dumps(value, ensure_ascii=False)
                cases.append({"name": "%s#%d" % (entry["name"], seed), "schema": entry["schema"], "text": text,
                              "tokens": tokenizer.encode(text)})
    return cases


def run_glm(args, cases):
    with tempfile.TemporaryDirectory() as tmp:
        cases_path = os.path.join(tmp, "cases.jsonl")
        out_path = os.path.join(tmp, "out.jsonl")
        with open(cases_path, "w") as f:
            for c in cases:
                f.write(json.dumps({"name": c["name"], "schema": c["schema"], "tokens": c["tokens"]}) + "\n")
        subprocess.run([args.glm_bench, "grammar", "--tokenizer", args.tokenizer, "--cases", cases_path,
                        "--out", out_path, "--end-id", str(args.end_id)], check=True)
        lines = [json.loads(l) for l in open(out_path)]
    header, rows = lines[0], lines[1:]
    results = {}
    for r in rows:
        results[r["name"]] = {"ok": r["ok"], "error": r.get("error"), "compile_ms": r.get("compile_ms"),
                              "compile_first_ms": r.get("compile_first_ms"), "mask_us": r.get("mask_us", [])}
    return header, results


def run_llguidance(args, cases, pieces):
    import llguidance
    import numpy as np
    from glm import Tokenizer

    glm_tokenizer = Tokenizer.from_file(args.tokenizer)

    class Wrapped:
        eos_token_id = args.end_id
        bos_token_id = None
        tokens = pieces
        special_token_ids = []

        def __call__(self, text):
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            return glm_tokenizer.encode(text)

    t0 = time.process_time()
    tokenizer = llguidance.LLTokenizer(llguidance.TokenizerWrapper(Wrapped()))
    setup_ms = (time.process_time() - t0) * 1000
    results = {}
    mask = np.zeros((len(pieces) + 31) // 32, dtype=np.int32)
    for c in cases:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(c["schema"], defaults={"whitespace_flexible": True})
        t = time.process_time()
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        compile_ms = (time.process_time() - t) * 1000
        if matcher.is_error():
            results[c["name"]] = {"ok": False, "error": matcher.get_error()}
            continue
        times, ok, error = [], True, None
        for tok in c["tokens"] + [args.end_id]:
            t = time.thread_time()
            matcher.unsafe_compute_mask_ptr(mask.ctypes.data, mask.nbytes)
            times.append((time.thread_time() - t) * 1e6)
            if not (int(mask[tok >> 5]) >> (tok & 31)) & 1:
                ok, error = False, "token %d not allowed" % tok
                break
            if tok != args.end_id and not matcher.consume_token(tok):
                ok, error = False, matcher.get_error()
                break
        results[c["name"]] = {"ok": ok, "error": error, "compile_ms": compile_ms, "mask_us": times}
    return setup_ms, results


def run_xgrammar(args, cases, pieces):
    stub_modules()
    import numpy as np
    import xgrammar as xgr

    t0 = time.process_time()
    info = xgr.TokenizerInfo(pieces, vocab_type=xgr.VocabType.RAW, vocab_size=len(pieces),
                             stop_token_ids=[args.end_id])
    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    setup_ms = (time.process_time() - t0) * 1000
    mask = np.zeros((1, (len(pieces) + 31) // 32), dtype=np.int32)
    results = {}
    for c in cases:
        try:
            t = time.process_time()
            compiled = compiler.compile_json_schema(json.dumps(c["schema"]), any_whitespace=True, strict_mode=False)
            compile_ms = (time.process_time() - t) * 1000
        except Exception as e:  # unsupported schema
            results[c["name"]] = {"ok": False, "error": str(e)[:200]}
            continue
        matcher = xgr.GrammarMatcher(compiled)
        times, ok, error = [], True, None
        for tok in c["tokens"] + [args.end_id]:
            t = time.thread_time()
            matcher.fill_next_token_bitmask(mask)
            times.append((time.thread_time() - t) * 1e6)
            if not (int(mask[0, tok >> 5]) >> (tok & 31)) & 1:
                ok, error = False, "token %d not allowed" % tok
                break
            if tok != args.end_id and not matcher.accept_token(tok):
                ok, error = False, "token %d rejected" % tok
                break
        results[c["name"]] = {"ok": ok, "error": error, "compile_ms": compile_ms, "mask_us": times}
    return setup_ms, results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glm-bench", default=str(ROOT / "build" / "bin" / "glm-bench"))
    parser.add_argument("--tokenizer", default=str(ROOT / "Tests" / "Fixtures" / "tokenizers" / "ggml-vocab-qwen2.gguf"))
    parser.add_argument("--end-id", type=int, default=151643)
    parser.add_argument("--schemas", nargs="*", default=[str(p) for p in sorted((ROOT / "Tests" / "Fixtures" / "grammar").glob("*.jsonl"))])
    parser.add_argument("--per-schema", type=int, default=3, help="instances per schema")
    parser.add_argument("--engines", default="glm,llguidance,xgrammar")
    parser.add_argument("--json", help="write all per-case results here")
    args = parser.parse_args()
    os.environ.setdefault("GLM_LIBRARY", str(ROOT / "build" / "lib" / "libglm.so"))
    from glm import Tokenizer

    tokenizer = Tokenizer.from_file(args.tokenizer)
    pieces = [tokenizer.token_to_piece(i) for i in range(tokenizer.vocab_size)]
    cases = make_cases(args.schemas, tokenizer, args.per_schema)
    print("%d cases from %d schema files, %d tokens, vocabulary %d" %
          (len(cases), len(args.schemas), sum(len(c["tokens"]) for c in cases), len(pieces)))

    engines = args.engines.split(",")
    results, setup = {}, {}
    if "glm" in engines:
        header, results["libglm"] = run_glm(args, cases)
        setup["libglm"] = header["vocabulary"]["build_ms"]
    if "llguidance" in engines:
        setup["llguidance"], results["llguidance"] = run_llguidance(args, cases, pieces)
    if "xgrammar" in engines:
        setup["xgrammar"], results["xgrammar"] = run_xgrammar(args, cases, pieces)

    common = [c["name"] for c in cases if all(r.get(c["name"], {}).get("ok") for r in results.values())]
    print("\ncases every engine accepted: %d of %d" % (len(common), len(cases)))
    for engine, r in results.items():
        failed = [(n, v.get("error")) for n, v in r.items() if not v.get("ok")]
        print("  %s: %d failed%s" % (engine, len(failed), (" (e.g. %s: %s)" % failed[0]) if failed else ""))
    print("\n| engine | per-vocabulary setup | compile median (ms) | compile max (ms) | mask mean (µs) | p50 | p99 | max | tokens |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for engine, r in results.items():
        times = [t for n in common for t in r[n]["mask_us"]]
        compiles = [r[n]["compile_ms"] for n in common]
        s = summary(times)
        rows[engine] = (s, compiles)
        print("| %s | %.0f ms | %.2f | %.2f | %.1f | %.1f | %.1f | %.1f | %d |" % (
            engine, setup[engine], statistics.median(compiles) if compiles else float("nan"),
            max(compiles) if compiles else float("nan"), s["mean"], s["p50"], s["p99"], s["max"], s["tokens"]))
    if "libglm" in rows:
        base, base_compiles = rows["libglm"]
        print("\nratios, other engine / libglm (above 1: libglm faster)")
        for engine, (s, compiles) in rows.items():
            if engine == "libglm":
                continue
            print("  %s: mask mean %.2fx, p50 %.2fx, p99 %.2fx, max %.2fx, compile median %.2fx" % (
                engine, s["mean"] / base["mean"], s["p50"] / base["p50"], s["p99"] / base["p99"],
                s["max"] / base["max"], statistics.median(compiles) / statistics.median(base_compiles)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": [{k: c[k] for k in ("name", "text")} for c in cases], "results": results}, f)


if __name__ == "__main__":
    main()
