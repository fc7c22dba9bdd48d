#!/usr/bin/env python3
"""Copy-only diagnostic for tools/make_demo_model_mtp.py (issue 15 item 4): trains its model on its "Repeat: X"
conversations alone (no tools, 24 per step) and probes 12 held-out payloads greedily every 100 steps.
Usage: python3 tools/demo_copy_diagnostic.py {base|noqk|noqk_rope|8h} STEPS  (see the trainer's Status for results).
CI never runs this."""
import os, sys, random, time, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_demo_model_mtp as M, glm_reference as ref
variant = sys.argv[1]; steps = int(sys.argv[2])
torch.manual_seed(M.SEED); torch.set_num_threads(2); torch.use_deterministic_algorithms(True)
rng = random.Random(M.SEED)
root = M.ROOT
r = M.Renderer(root + "/Tests/Fixtures/tokenizers/glm-tiny", root + "/Tests/Fixtures/templates/glm-4.7.jinja")
eos = [r.id("<|endoftext|>"), r.id("<|user|>"), r.id("<|observation|>")]
spec = dict(vocab_size=4292, hidden_size=128, intermediate_size=256, moe_intermediate_size=64, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32, first_k_dense_replace=1, n_routed_experts=4,
            num_experts_per_tok=2, n_shared_experts=1, n_group=1, topk_group=1, norm_topk_prob=True,
            routed_scaling_factor=2.5, use_qk_norm=(variant not in ("noqk", "noqk_rope")), attention_bias=True, rope_theta=1e6,
            partial_rotary_factor=0.5, tie_word_embeddings=False, num_nextn_predict_layers=1, rms_norm_eps=1e-5,
            hidden_act="silu", max_position_embeddings=2048, eos_token_id=eos, pad_token_id=eos[0])
if variant == "noqk_rope":
    spec.update(rope_theta=1e4)
if variant == "8h":
    spec.update(num_attention_heads=8, num_key_value_heads=4, head_dim=16)
from transformers import Glm4MoeForCausalLM
model = Glm4MoeForCausalLM(ref.make_hf_config(spec)); model.config.num_hidden_layers = 3
if spec["use_qk_norm"]:
    with torch.no_grad():
        for l in model.model.layers:
            l.self_attn.q_norm.weight.fill_(M.QK_NORM_INIT); l.self_attn.k_norm.weight.fill_(M.QK_NORM_INIT)
mtp = M.MTPHead(model.config)
pools = M.Pools(rng)
held = []
for i in range(12):
    c = pools.heldout_cities[i]; x = pools.number(set()); pools.heldout_numbers.add(x)
    held.append(f"{c}, {M.number_text(x)}" if i % 2 else c)
M.COPY_EXAMPLES = 0
convs = [(c, None, k) for c, t, k in M.copy_conversations(pools, 6000)]
ex = [M.training_example(r, m, t, k) for m, t, k in convs]
print("tokens/example", sum(len(i) for i, _ in ex) / len(ex), flush=True)
M.BATCH = 24; M.PROBE_EVERY = 100
def probe():
    ok = 0; bad = []
    for p in held:
        ids = r.ids(r.text([{"role": "user", "content": f"Repeat: {p}"}], None, {}, True))
        out = r.tok.decode(M.greedy_cached(model, ids, eos, 40), skip_special_tokens=False)
        want = f"The user wants me to repeat {p}.</think>{p}<|user|>"
        ok += out == want
        if out != want: bad.append(out)
    return f"{ok}/{len(held)} " + repr(bad[:2])
t0 = time.time()
M.train(model, mtp, ex, steps, rng, print, probe)
model.eval(); print("final probe", probe(), f"{time.time()-t0:.0f}s", flush=True)
