#!/usr/bin/env python3
"""Compare an implementation of the GLM-4 MoE forward pass against transformers and the float64 NumPy spec.

    python3 tools/check_model.py MODEL_DIR                      # one checkpoint directory
    python3 tools/check_model.py MODEL_DIR --callable pkg.mod:fn # fn(model_dir, tokens) -> logits [T,V]
    python3 tools/check_model.py --random 5 [--seed 1]          # 5 random tiny configs built on the fly

For every model it computes fresh references: transformers fp32 eager logits (from_pretrained(dir, dtype=float32,
attn_implementation="eager", experts_implementation="eager")) and the independent float64 NumPy implementation of
docs/MODEL.md §3 (main pass and, when the checkpoint has model.layers.{L}.*, the MTP draft of §3.9).
It always reports NumPy-vs-transformers (a self-check of the references). Candidates compared against them:
  * `--callable module:function`: function(model_dir, tokens) returning logits [T,V] (anything numpy.asarray takes);
  * the Python binding, when `import glm` works: glm.Model(dir).logits(tokens) against transformers, and
    glm.Model(dir).mtp_logits(tokens) against the NumPy MTP reference (its first T-1 rows: row t uses token t+1).
A candidate passes when max|Δ| <= atol + rtol * max|reference|. Exit status 1 if any candidate fails.
Random configs vary every config field the engine reads (vocab, widths, heads/GQA, head_dim, partial rotary factor,
rope_theta present or absent, legacy or transformers-5 config spelling, dense/MoE split, experts/top-k, group-limited
routing, shared experts, norm_topk_prob, routed scaling, tied embeddings, qk-norm, attention bias, F32/BF16/F16 weight
files, 1 or 2 shards, MTP layer present or not) and are written to a temporary directory (--keep DIR to keep them).
Not run by CI. Needs torch (CPU), transformers 5.x, safetensors, numpy.
"""

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glm_reference as ref  # noqa: E402
import make_reference_models as mrm  # noqa: E402


def random_model_spec(rng, index):
    """A random tiny (HF config fields, build options) pair."""
    nKV = int(rng.choice([1, 2, 4]))
    nH = nKV * int(rng.choice([1, 2, 3]))
    D = int(rng.choice([8, 16, 32]))
    H = int(rng.choice([16, 32, 48, 64]))
    L = int(rng.integers(1, 5))
    E = int(rng.choice([2, 4, 6, 8, 12]))
    groups = [g for g in (1, 2, 3, 4, 6) if E % g == 0 and E // g >= 2]
    n_group = int(rng.choice(groups)) if rng.random() < 0.5 else 1
    topk_group = int(rng.integers(1, n_group + 1))
    K = int(rng.integers(1, min(4, topk_group * (E // n_group)) + 1))
    spec = dict(
        vocab_size=int(rng.integers(64, 400)), hidden_size=H, intermediate_size=int(rng.choice([16, 40, 64])),
        moe_intermediate_size=int(rng.choice([8, 16, 24])), num_hidden_layers=L, num_attention_heads=nH,
        num_key_value_heads=nKV, head_dim=D, first_k_dense_replace=int(rng.integers(0, L + 1)),
        n_routed_experts=E, num_experts_per_tok=K, n_shared_experts=int(rng.choice([1, 2])), n_group=n_group,
        topk_group=topk_group, norm_topk_prob=bool(rng.random() < 0.7),
        routed_scaling_factor=float(rng.choice([1.0, 2.5, round(float(rng.uniform(0.5, 3.0)), 3)])),
        use_qk_norm=bool(rng.random() < 0.6), attention_bias=bool(rng.random() < 0.7),
        rope_theta=float(rng.choice([1e4, 5e5, 1e6])), partial_rotary_factor=float(rng.choice([0.25, 0.5, 1.0])),
        tie_word_embeddings=bool(rng.random() < 0.25), num_nextn_predict_layers=1,
    )
    dtype = str(rng.choice(["float32", "float32", "bfloat16", "float16"]))
    keep = [(), ("e_score_correction_bias",), ("mlp.gate.weight", "e_score_correction_bias")][int(rng.integers(0, 3))]
    opts = dict(seed=10_000 + index, dtype=dtype, keep_f32=keep, shards=int(rng.choice([1, 2])),
                legacy_config=bool(rng.random() < 0.5), drop_rope_theta=bool(rng.random() < 0.25),
                mtp=bool(rng.random() < 0.8))
    return spec, opts


def describe(spec, opts):
    s = spec
    return (f"V{s['vocab_size']} H{s['hidden_size']} L{s['num_hidden_layers']}(dense {s['first_k_dense_replace']}) "
            f"heads {s['num_attention_heads']}/{s['num_key_value_heads']}x{s['head_dim']} prf {s['partial_rotary_factor']} "
            f"theta {'absent' if opts.get('drop_rope_theta') else s['rope_theta']} E{s['n_routed_experts']} "
            f"top{s['num_experts_per_tok']} groups {s['n_group']}/{s['topk_group']} shared {s['n_shared_experts']} "
            f"norm_topk {s['norm_topk_prob']} rsf {s['routed_scaling_factor']} qknorm {s['use_qk_norm']} "
            f"bias {s['attention_bias']} tied {s['tie_word_embeddings']} {opts['dtype']} shards {opts['shards']} "
            f"legacy {opts.get('legacy_config', False)} mtp {opts.get('mtp', False)}")


def as_matrix(x, V):
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(-1, V) if a.ndim == 1 else a.reshape(a.shape[-2], a.shape[-1])


class Checker:
    def __init__(self, callable_spec, atol, rtol):
        self.atol, self.rtol = atol, rtol
        self.failures = 0
        self.candidate = None
        if callable_spec:
            module, _, fn = callable_spec.partition(":")
            self.candidate = getattr(importlib.import_module(module), fn)
        try:
            self.glm = importlib.import_module("glm")
        except ImportError as e:
            self.glm = None
            print(f"(glm binding not importable: {e}; comparing the references only)")

    def verdict(self, label, got, want):
        if got.shape != want.shape:
            print(f"  FAIL {label}: shape {got.shape} != reference {want.shape}")
            self.failures += 1
            return
        diff = float(np.max(np.abs(got - want)))
        bound = self.atol + self.rtol * float(np.max(np.abs(want)))
        ok = diff <= bound
        self.failures += 0 if ok else 1
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(got - want))), got.shape))
        print(f"  {'ok  ' if ok else 'FAIL'} {label}: max|Δ| {diff:.3e} (bound {bound:.1e}) worst at row/col {worst}; "
              f"argmax agreement {int(np.sum(got.argmax(-1) == want.argmax(-1)))}/{got.shape[0]}")

    def check(self, model_dir, tokens):
        hf = ref.transformers_reference(model_dir, tokens, "float32")
        cfg, W = ref.load_float64(model_dir)
        npy = ref.numpy_forward(cfg, W, tokens)
        c = mrm.compare(hf, npy)
        print(f"  ref  numpy-float64 vs transformers-fp32: logits {c['logits_max_abs_diff']:.2e}, hidden "
              f"{c['hidden_states_max_abs_diff']:.2e}, expert-set mismatches {c['expert_set_mismatches']}/"
              f"{c['expert_token_layers']}")
        mtp = ref.numpy_mtp(cfg, W, tokens, npy["final"])["mtp_logits"] if ref.has_mtp(cfg, W) else None
        V = cfg["V"]
        if self.candidate is not None:
            self.verdict("callable logits vs transformers", as_matrix(self.candidate(model_dir, tokens), V),
                         hf["logits"].astype(np.float64))
        if self.glm is not None:
            model = self.glm.Model(model_dir)
            self.verdict("glm logits vs transformers", as_matrix(model.logits(tokens), V),
                         hf["logits"].astype(np.float64))
            if mtp is not None and hasattr(model, "mtp_logits"):
                got = as_matrix(model.mtp_logits(tokens), V)[: len(tokens) - 1]
                self.verdict("glm mtp_logits vs numpy MTP spec", got, mtp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", nargs="?")
    ap.add_argument("--callable", help="module:function taking (model_dir, tokens) and returning logits [T,V]")
    ap.add_argument("--tokens", help="comma-separated token ids (default: reference.json's, else 16 seeded ids)")
    ap.add_argument("--random", type=int, default=0, help="number of random configs to build and check")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random configs")
    ap.add_argument("--keep", help="directory to keep the random models in (default: a temporary directory)")
    ap.add_argument("--atol", type=float, default=1e-3)
    ap.add_argument("--rtol", type=float, default=1e-4)
    args = ap.parse_args()
    if not args.model_dir and not args.random:
        ap.error("give a MODEL_DIR or --random N")
    checker = Checker(args.callable, args.atol, args.rtol)

    if args.model_dir:
        if args.tokens:
            tokens = [int(t) for t in args.tokens.split(",")]
        elif os.path.exists(os.path.join(args.model_dir, "reference.json")):
            with open(os.path.join(args.model_dir, "reference.json")) as f:
                tokens = json.load(f)["tokens"]
        else:
            with open(os.path.join(args.model_dir, "config.json")) as f:
                tokens = mrm.fixed_tokens(json.load(f)["vocab_size"], 0)
        print(args.model_dir)
        checker.check(args.model_dir, tokens)

    if args.random:
        base = args.keep or tempfile.mkdtemp(prefix="glm-random-")
        rng = np.random.default_rng(args.seed)
        for i in range(args.random):
            spec, opts = random_model_spec(rng, i)
            model_dir = os.path.join(base, f"random{i}")
            V = spec["vocab_size"]
            cfg = mrm.build_model(spec, opts, model_dir)
            if opts["mtp"]:
                mrm.add_mtp(model_dir, cfg, opts)
            T = int(rng.integers(2, 21))
            tokens = [int(t) for t in rng.integers(0, V, size=T)]
            print(f"random{i}: {describe(spec, opts)}, T={T}")
            checker.check(model_dir, tokens)
        if not args.keep:
            shutil.rmtree(base)

    print("FAILED" if checker.failures else "all candidates within tolerance" if (checker.candidate or checker.glm)
          else "references computed (no candidate to compare)")
    sys.exit(1 if checker.failures else 0)


if __name__ == "__main__":
    main()
