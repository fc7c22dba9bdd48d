"""Prefill and decode speed per KV cache type on a model (default: the glm47 test model): 2048 prompt tokens,
then 64 decoded tokens at depth 2048. Usage: python tools/bench_kv_types.py [MODEL_DIR]"""
import sys, time
import pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bindings" / "python"))
import glm
m = glm.Model(sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/models/glm47", threads=2)
toks = [(i * 7919) % 500 + 1 for i in range(2048)]
for kv in ["f32", "f16", "bf16", "q8_0"]:
    s = m.session(2200, mtp=False, cache_type_k=kv, cache_type_v=kv)
    t = time.perf_counter(); s.eval(toks, want_logits=False); pf = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(64): s.eval([i + 1])
    dc = time.perf_counter() - t
    print(f"{kv}: prefill 2048 {2048/pf:.0f} tok/s, decode at depth 2048..2112 {64/dc:.0f} tok/s")
