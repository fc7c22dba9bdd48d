#!/usr/bin/env python3
"""Copy-only diagnostic for tools/make_demo_model_mtp.py (issue 15 item 4): trains the trainer's model (its fast
forward) on its "Repeat: X" conversations alone (no tools) and probes held-out payloads greedily.
Usage: python3 tools/demo_copy_diagnostic.py STEPS [key=value ...]
(keys: batch lr warmup qk qkinit theta heads probe n threads).
See the trainer's docstring for results. CI never runs this."""
import os, sys, random, time, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_demo_model_mtp as M
steps = int(sys.argv[1])
kv = dict(a.split("=") for a in sys.argv[2:])
torch.manual_seed(M.SEED); torch.set_num_threads(int(kv.get("threads", 1))); torch.use_deterministic_algorithms(True)
rng = random.Random(M.SEED)
r = M.Renderer(M.ROOT + "/Tests/Fixtures/tokenizers/glm-tiny", M.ROOT + "/Tests/Fixtures/templates/glm-4.7.jinja")
eos = [r.id("<|endoftext|>"), r.id("<|user|>"), r.id("<|observation|>")]
spec = M.model_spec(4292, eos)
spec.update(use_qk_norm=kv.get("qk", "1") == "1", rope_theta=float(kv.get("theta", spec["rope_theta"])))
if "heads" in kv:
    h = int(kv["heads"]); spec.update(num_attention_heads=h, num_key_value_heads=h // 2, head_dim=128 // h)
model = M.FastGLM(M.model_cfg(spec, M.LAYERS), M.SEED, qk_norm_init=float(kv.get("qkinit", M.QK_NORM_INIT)))
pools = M.Pools(rng)
held = []
for i in range(20):
    c = pools.heldout_cities[i]; x = pools.number(set()); pools.heldout_numbers.add(x)
    held.append(f"{c}, {M.number_text(x)}" if i % 2 else c)
convs = [(c, None, k) for c, t, k in M.copy_conversations(pools, int(kv.get("n", 6000)))]
ex = [M.training_example(r, m, t, k) for m, t, k in convs]
print("tokens/example", sum(len(i) for i, _ in ex) / len(ex), flush=True)
def probe():
    ok = 0; bad = []
    for p in held:
        ids = r.ids(r.text([{"role": "user", "content": f"Repeat: {p}"}], None, {}, True))
        out = r.tok.decode(model.greedy(ids, eos, 40), skip_special_tokens=False)
        want = f"The user wants me to repeat {p}.</think>{p}<|user|>"
        ok += out == want
        if out != want: bad.append(out)
    return f"{ok}/{len(held)} " + repr(bad[:2])
t0 = time.time()
M.train(model, ex, steps, rng, print, r.id("<|user|>"), probe, batch=int(kv.get("batch", 32)), lr=float(kv.get("lr", 2e-3)),
        warmup=int(kv.get("warmup", 100)), probe_every=int(kv.get("probe", 250)), context_weight=0.25, mtp_weight=0.0)
print("final probe", probe(), f"{time.time()-t0:.0f}s", flush=True)
