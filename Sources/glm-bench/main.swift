// glm-bench: libglm's benchmark programs, one subcommand per component. Numbers go to BENCHMARKS.md; the
// tools/bench_*.py drivers run the reference implementation in the same run and print ratios.
import CGLMKernels
import Glibc

let usage = """
usage: glm-bench <component> [arguments]
  model MODEL_DIR THREADS PROMPT_TOKENS DECODE_TOKENS [--gemm packed|openblas|both] [--kernels auto|avx2|avx512|both]
        [--bf16-inputs auto|f32|bf16|both]
        [--kv f32|f16|bf16|q8_0] [--depth D1,D2,...]    prefill/decode tokens/s, bytes per token, memory bandwidth;
                                                        --depth: pp/tg after filling the context to each depth
  quant [ROWS COLUMNS [REPEATS [TOKENS]]]               one product per weight encoding (BF16 and every GGUF block type)
  fp8 [ROWS COLUMNS REPEATS]                            one decode product in BF16 and FP8 (channel, block) vs read bandwidth
  attention [DEPTHS [ROWS [KV]]]                        decode attention of one GLM-4.7-shaped layer at each depth, per kernel path
  chat ...                                              time to first token and second-turn speed with/without prefix reuse
  tokenizer ...                                         encoding throughput and vocabulary load time
  template ...                                          chat-template rendering
  parser [SECONDS] [batch|streaming]                    output parsing throughput
  grammar --tokenizer PATH --cases FILE [--out FILE]    constrained decoding: compile time, per-token mask time
  speculative-cost MODEL_DIR THREADS [--prompt N] [--reps N]
                                                        MTP speculative decoding: cost of verifying k+1 tokens and of
                                                        the drafts relative to one decoded token; implied speed-up
  speculative MODEL_DIR --requests FILE [--k 1..3] [--threads N] [--max-tokens N]
                                                        MTP acceptance rate and decode tok/s with vs without, per request
  threads MODEL [--threads 1,2] [--spin 0,200] [--tokens N] [--rounds R]
                                                        decode tok/s and CPU per token under each thread count and
                                                        thread-pool spin (GLM_THREAD_SPIN_US), side by side
"""

let arguments = Array(CommandLine.arguments.dropFirst())
guard let component = arguments.first else {
    fputs(usage, stderr)
    exit(2)
}
let rest = Array(arguments.dropFirst())
// GLM_BENCH_NO_PANEL=1: block-quantised prefill on the row × token tiles instead of the panel kernels (quantdot.c),
// for before/after rows with one binary.
if getenv("GLM_BENCH_NO_PANEL") != nil { glm_q8act_set_panel(0) }
do {
    switch component {
    case "model": try modelBenchmark(arguments: rest)
    case "chat": try chatBenchmark(arguments: rest)
    case "quant": try quantBenchmark(arguments: rest)
    case "fp8": try fp8Benchmark(arguments: rest)
    case "attention": try attentionBenchmark(arguments: rest)
    case "tokenizer": try tokenizerBenchmark(arguments: rest)
    case "template": try templateBenchmark(arguments: rest)
    case "parser": try parserBenchmark(arguments: rest)
    case "grammar": try grammarBenchmark(arguments: rest)
    case "speculative-cost": try speculativeCostBenchmark(arguments: rest)
    case "speculative": try speculativeBenchmark(arguments: rest)
    case "threads": try threadsBenchmark(arguments: rest)
    default:
        fputs(usage, stderr)
        exit(2)
    }
} catch {
    fputs("glm-bench \(component): \(error)\n", stderr)
    exit(1)
}
