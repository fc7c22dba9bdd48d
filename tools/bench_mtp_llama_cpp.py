#!/usr/bin/env python3
"""MTP speculative decoding, libglm vs llama.cpp, on the same GGUF file (issue 15, item 6).

    python3 tools/bench_mtp_llama_cpp.py MODEL_DIR --llama-cpp LLAMA_SRC [--requests FILE] [--k 1 2 3]
                                         [--threads N] [--outtype f32|bf16] [--work DIR]

MODEL_DIR is a Hugging Face checkpoint with an MTP layer (the demo model made by tools/make_demo_model_mtp.py);
LLAMA_SRC is llama.cpp's source tree with a CMake build in LLAMA_SRC/build (configured with
-DLLAMA_BUILD_EXAMPLES=ON for `llama-speculative-simple`; see BENCHMARKS.md for how the peer was built). Steps:

  1. llama.cpp's converter (convert_hf_to_gguf.py, Glm4MoeModel, via tools/make_gguf_models.convert) writes
     MODEL_DIR as one GGUF file, MTP ("nextn") block included;
  2. for every request of FILE (default tools/bench_speculative_requests.jsonl) the prompt is rendered with the
     model's chat template by libglm (the same text llama.cpp tokenises: special tokens parsed), then
       * llama.cpp without MTP: `llama-completion` (greedy, --temp 0), its decode tokens/s;
       * llama.cpp with MTP: `llama-speculative-simple --spec-type draft-mtp --spec-draft-n-max k` (greedy): its
         drafts, accepted drafts and decode tokens/s, and the text (which must equal the plain run's);
  3. libglm on the same GGUF file: `build/bin/glm-bench speculative GGUF --k k --requests FILE` (plain and MTP
     decoding of every request on one session; needs `make bench`).

Both programs run with the same thread count, one after the other in this one run; the table gives each side's
MTP tokens/s relative to its own plain decoding, then libglm's relative to llama.cpp's. llama.cpp counts a draft
as accepted as libglm does (drafts kept by the verifier), so the acceptance columns compare directly.
A development tool (needs llama.cpp built in a scratch folder, numpy, and libglm built by `make lib bench`);
CI never runs it.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))


def run(command, complete=None):
    """stdout and stderr of `command`. llama.cpp logs from a background thread: now and then a run exits before its
    last lines are written, so a run whose output lacks the pattern `complete` is repeated (up to three times)."""
    for _ in range(3):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{command[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        if complete is None or re.search(complete, result.stdout + result.stderr):
            break
    return result.stdout, result.stderr


def number(pattern, text, what):
    match = re.search(pattern, text)
    if match is None:
        sys.exit(f"llama.cpp's output has no {what} (pattern {pattern!r}):\n{text[-2000:]}")
    return float(match.group(1))


def llama_plain(bin_dir, gguf, prompt_file, max_tokens, threads):
    command = [os.path.join(bin_dir, "llama-completion"), "-m", gguf, "-f", prompt_file, "-n", str(max_tokens),
               "--temp", "0", "-t", str(threads), "-tb", str(threads), "-c", "4096", "-no-cnv",
               "--no-display-prompt", "--no-warmup"]
    out, err = run(command, complete=r"common_perf_print:\s+eval time =")
    log = out + err
    # "prompt eval time" is the prefill; the line that is only "eval time" is decoding (its first token comes
    # from the prompt's pass, so runs = tokens - 1)
    tokens = number(r"common_perf_print:\s+eval time =\s*[\d.]+ ms /\s*(\d+) runs", log, "eval runs")
    speed = number(r"common_perf_print:\s+eval time =[^\n]*?([\d.]+) tokens per second", log, "eval speed")
    return out.replace("[end of text]", ""), int(tokens), speed


def llama_mtp(bin_dir, gguf, prompt_file, max_tokens, threads, k):
    command = [os.path.join(bin_dir, "llama-speculative-simple"), "-m", gguf, "-f", prompt_file,
               "-n", str(max_tokens), "--temp", "0", "-t", str(threads), "-tb", str(threads), "-c", "4096",
               "--spec-type", "draft-mtp", "--spec-draft-n-max", str(k), "--spec-draft-n-min", "0"]
    out, err = run(command, complete=r"n_accept\s*=")
    log = out + err
    return (out, int(number(r"n_drafted\s*=\s*(\d+)", log, "n_drafted")),
            int(number(r"n_accept\s*=\s*(\d+)", log, "n_accept")),
            int(number(r"decoded\s+(\d+) tokens", log, "decoded tokens")),
            number(r"decoded\s+\d+ tokens in\s+[\d.]+ seconds, speed:\s*([\d.]+) t/s", log, "decode speed"))


def template_messages(messages):
    """OpenAI messages as the template reads them: a tool call's "arguments" JSON text as the object it encodes
    (what the chat API does before rendering)."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [dict(c, function=dict(c["function"], arguments=json.loads(c["function"]["arguments"])))
                               if isinstance(c.get("function", {}).get("arguments"), str) else c
                               for c in m["tool_calls"]]
        out.append(m)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--llama-cpp", required=True)
    parser.add_argument("--requests", default=os.path.join(HERE, "bench_speculative_requests.jsonl"))
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--outtype", default="f32", choices=["f32", "bf16"])
    parser.add_argument("--work", default=None, help="folder for the GGUF file and prompts (default: a temp folder)")
    args = parser.parse_args()

    import glm
    import make_gguf_models

    bin_dir = os.path.join(args.llama_cpp, "build", "bin")
    work = args.work or tempfile.mkdtemp(prefix="mtp-llama-")
    os.makedirs(work, exist_ok=True)
    gguf = os.path.join(work, f"model-{args.outtype}.gguf")
    make_gguf_models.convert(args.llama_cpp, [args.model, "--outtype", args.outtype, "--outfile", gguf])

    with open(args.requests) as f:
        text = f.read().strip()
    requests = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line]
    template = glm.ChatTemplate.from_path(args.model)

    print(f"model: {args.model} -> {gguf} ({args.outtype}); threads {args.threads}; {len(requests)} requests")
    for k in args.k:
        rows, totals = [], [0, 0, 0, 0.0, 0.0]   # tokens, drafted, accepted, plain seconds, MTP seconds
        for i, request in enumerate(requests):
            prompt_file = os.path.join(work, f"prompt-{i}.txt")
            with open(prompt_file, "w") as f:
                f.write(template.render(template_messages(request["messages"]), request.get("tools"),
                                        **request.get("chat_template_kwargs", {})))
            max_tokens = request.get("max_tokens", 128)
            plain_text, plain_tokens, plain_speed = llama_plain(bin_dir, gguf, prompt_file, max_tokens, args.threads)
            mtp_text, drafted, accepted, tokens, mtp_speed = llama_mtp(bin_dir, gguf, prompt_file, max_tokens,
                                                                       args.threads, k)
            rows.append((i + 1, tokens, accepted, drafted, plain_speed, mtp_speed, plain_text.strip() in mtp_text))
            totals[0] += tokens
            totals[1] += drafted
            totals[2] += accepted
            totals[3] += plain_tokens / plain_speed if plain_speed else 0
            totals[4] += tokens / mtp_speed if mtp_speed else 0
        print(f"\nllama.cpp, k = {k}\n")
        print("| request | reply tokens | drafts accepted | plain tok/s | MTP tok/s | MTP / plain | same text |")
        print("|---|---|---|---|---|---|---|")
        for n, tokens, accepted, drafted, plain, mtp, same in rows:
            print(f"| {n} | {tokens} | {accepted}/{drafted} | {plain:.1f} | {mtp:.1f} | {mtp / plain:.2f} | "
                  f"{'yes' if same else 'NO'} |")
        acceptance = totals[2] / totals[1] if totals[1] else 0.0
        plain_rate = totals[0] / totals[3] if totals[3] else 0.0
        mtp_rate = totals[0] / totals[4] if totals[4] else 0.0
        print(f"\nllama.cpp total k = {k}: drafts accepted {totals[2]}/{totals[1]} ({100 * acceptance:.1f}%), "
              f"plain {plain_rate:.1f} tok/s, MTP {mtp_rate:.1f} tok/s, MTP / plain "
              f"{mtp_rate / plain_rate if plain_rate else 0:.2f}")
        bench = os.path.join(ROOT, "build", "bin", "glm-bench")
        out, _ = run([bench, "speculative", gguf, "--k", str(k), "--requests", args.requests,
                      "--threads", str(args.threads)])
        print(f"\nlibglm (glm-bench speculative), k = {k}, same GGUF file:\n")
        print(out.strip())


if __name__ == "__main__":
    main()
