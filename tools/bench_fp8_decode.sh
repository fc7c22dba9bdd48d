#!/bin/bash
# Item 4 decode benchmark: libglm FP8 (channel scales, lm_head FP8) vs llama.cpp Q8_0 on the synthetic GLM-4.7-shaped model.
# Run from the repository under the shared benchmark lock: flock /work/scratch/bench.lock tools/bench_fp8_decode.sh
# (LB: llama.cpp build/bin; Q8: the Q8_0 GGUF with tokenizer merges, see tools/gguf_add_placeholder_merges.py).
cd "$(dirname "$0")/.."
LB=${LB:-/work/scratch/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin}
Q8=${Q8:-/work/scratch/h1-fp8/synth-q8_0-merges.gguf}
for round in 1 2; do
  echo "== round $round $(date -u) loadavg: $(cat /proc/loadavg)"
  build/bin/glm-bench model /work/scratch/synth/fp8 2 32 32 | grep -v "^CPU"
  echo "== $(date -u) loadavg: $(cat /proc/loadavg)"
  LD_LIBRARY_PATH=$LB $LB/llama-bench -m $Q8 -t 2 -p 0 -n 32
  echo "== $(date -u) loadavg: $(cat /proc/loadavg)"
done
build/bin/glm-bench fp8 12288 5120 20
echo "== end $(date -u) loadavg: $(cat /proc/loadavg)"
