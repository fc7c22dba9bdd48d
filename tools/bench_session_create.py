"""How long creating a session takes, per KV cache type and context length: the KV caches are zeroed when a
session is created so that its memory is resident (docs/MODEL.md §5). Usage:
    T=THREADS python tools/bench_session_create.py [MODEL_DIR]   (default: the glm47 test model)"""
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bindings" / "python"))
import glm  # noqa: E402

THREADS = int(os.environ.get("T", "1"))
path = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/models/glm47"
m = glm.Model(path, threads=THREADS)
for ctx in [1 << 20, 1 << 22]:
    for kv in ["f16", "f32"]:
        need = m.session_memory(ctx, mtp=False, cache_type_k=kv, cache_type_v=kv, threads=THREADS)
        t = time.perf_counter()
        s = m.session(ctx, mtp=False, cache_type_k=kv, cache_type_v=kv, threads=THREADS)
        dt = time.perf_counter() - t
        kvb = s.info()["kv_bytes_per_token"] * ctx
        print(f"ctx {ctx} {kv}: session {need / 2**30:.2f} GiB (KV {kvb / 2**30:.2f} GiB) created in {dt:.2f} s")
        del s
