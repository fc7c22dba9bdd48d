"""Shared pieces of the GLM-4 MoE reference tools (imported by make_reference_models.py and check_model.py).

Three independent things live here:
  * tiny random Glm4MoeForCausalLM checkpoints on disk (every parameter randomised at O(1) scale, optional MTP layer,
    optional bf16/f16 weight files, optional sharding, optional legacy config spelling);
  * the transformers reference run (fp32 or bf16, eager kernels) with per-layer expert sets captured from the router;
  * an independent float64 NumPy implementation of docs/MODEL.md §3 (main forward pass and the MTP draft of
    §3.9), reading the safetensors files and config.json directly (no transformers code involved).

Not run by CI. Requires torch (CPU), transformers 5.x, safetensors, numpy.
"""

import json
import math
import os
import re

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

# ----------------------------------------------------------------------------------------------------------------------
# Config helpers


def parse_config(config_json):
    """Reads the fields the forward pass needs from a config.json dict, accepting both spellings of the rope settings
    (transformers-5 `rope_parameters` dict, legacy top-level `rope_theta` / `partial_rotary_factor`)."""
    c = config_json
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    theta = rope.get("rope_theta", c.get("rope_theta", 10000.0))
    prf = rope.get("partial_rotary_factor", c.get("partial_rotary_factor", 0.5))
    heads = c["num_attention_heads"]
    head_dim = c.get("head_dim") or c["hidden_size"] // heads
    return {
        "V": c["vocab_size"],
        "H": c["hidden_size"],
        "FF": c["intermediate_size"],
        "I": c["moe_intermediate_size"],
        "L": c["num_hidden_layers"],
        "nH": heads,
        "nKV": c["num_key_value_heads"],
        "D": head_dim,
        "R": int(head_dim * prf),
        "theta": float(theta),
        "eps": c.get("rms_norm_eps", 1e-5),
        "bias": c.get("attention_bias", False),
        "qk_norm": c.get("use_qk_norm", False),
        "dense": c.get("first_k_dense_replace", 1),
        "E": c.get("n_routed_experts", c.get("num_local_experts")),
        "shared": c.get("n_shared_experts", 1),
        "K": c["num_experts_per_tok"],
        "n_group": c.get("n_group", 1),
        "topk_group": c.get("topk_group", 1),
        "norm_topk": c.get("norm_topk_prob", True),
        "rsf": c.get("routed_scaling_factor", 1.0),
        "tied": c.get("tie_word_embeddings", False),
    }


def make_hf_config(spec):
    """A transformers Glm4MoeConfig from a plain dict of HF field names."""
    from transformers import Glm4MoeConfig

    return Glm4MoeConfig(**spec)


# ----------------------------------------------------------------------------------------------------------------------
# Random O(1) parameters


def _random_value(name, shape, gen):
    """Init rule by parameter name: fan-in scaled weights, norm gains 1±0.2, biases ±0.2, router weights ×2,
    correction bias 0.3·N(0,1), embeddings N(0,1)."""
    if name.endswith("e_score_correction_bias"):
        return 0.3 * torch.randn(shape, generator=gen)
    if "norm" in name.split(".")[-2] or name.endswith("norm.weight"):
        return 1.0 + 0.2 * (2.0 * torch.rand(shape, generator=gen) - 1.0)
    if name.endswith(".bias"):
        return 0.2 * (2.0 * torch.rand(shape, generator=gen) - 1.0)
    if name.endswith("embed_tokens.weight"):
        return torch.randn(shape, generator=gen)
    fan_in = shape[-1]
    scale = fan_in ** -0.5
    if name.endswith("mlp.gate.weight"):
        scale *= 2.0
    return scale * torch.randn(shape, generator=gen)


def randomize_model(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            p.copy_(_random_value(name, tuple(p.shape), gen))
        for name, b in sorted(model.named_buffers()):
            if name.endswith("e_score_correction_bias"):
                b.copy_(_random_value(name, tuple(b.shape), gen))


def mtp_tensor_shapes(cfg, prefix):
    """On-disk names and shapes of the MTP layer `model.layers.{L}.*` (a full MoE decoder layer plus the NextN parts)."""
    H, D, nH, nKV, E, I = cfg["H"], cfg["D"], cfg["nH"], cfg["nKV"], cfg["E"], cfg["I"]
    s = {
        "enorm.weight": (H,),
        "hnorm.weight": (H,),
        "eh_proj.weight": (H, 2 * H),
        "shared_head.norm.weight": (H,),
        "shared_head.head.weight": (cfg["V"], H),
        "embed_tokens.weight": (cfg["V"], H),
        "input_layernorm.weight": (H,),
        "post_attention_layernorm.weight": (H,),
        "self_attn.q_proj.weight": (nH * D, H),
        "self_attn.k_proj.weight": (nKV * D, H),
        "self_attn.v_proj.weight": (nKV * D, H),
        "self_attn.o_proj.weight": (H, nH * D),
        "mlp.gate.weight": (E, H),
        "mlp.gate.e_score_correction_bias": (E,),
        "mlp.shared_experts.gate_proj.weight": (I * cfg["shared"], H),
        "mlp.shared_experts.up_proj.weight": (I * cfg["shared"], H),
        "mlp.shared_experts.down_proj.weight": (H, I * cfg["shared"]),
    }
    if cfg["bias"]:
        s.update({"self_attn.q_proj.bias": (nH * D,), "self_attn.k_proj.bias": (nKV * D,),
                  "self_attn.v_proj.bias": (nKV * D,)})
    if cfg["qk_norm"]:
        s.update({"self_attn.q_norm.weight": (D,), "self_attn.k_norm.weight": (D,)})
    for e in range(E):
        s[f"mlp.experts.{e}.gate_proj.weight"] = (I, H)
        s[f"mlp.experts.{e}.up_proj.weight"] = (I, H)
        s[f"mlp.experts.{e}.down_proj.weight"] = (H, I)
    return {prefix + k: v for k, v in s.items()}


def random_mtp_tensors(cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    shapes = mtp_tensor_shapes(cfg, f"model.layers.{cfg['L']}.")
    return {name: _random_value(name, shape, gen).to(torch.float32) for name, shape in sorted(shapes.items())}


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoint files


TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def weight_files(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return sorted(set(json.load(f)["weight_map"].values()))
    return ["model.safetensors"]


def read_tensors(model_dir):
    """Every tensor of the checkpoint as a torch tensor in its on-disk dtype."""
    out = {}
    for fname in weight_files(model_dir):
        with safe_open(os.path.join(model_dir, fname), "pt") as f:
            for k in f.keys():
                out[k] = f.get_tensor(k)
    return out


def convert_dtype(tensors, dtype_name, keep_f32):
    """Casts every tensor to dtype_name except names matching one of the keep_f32 suffixes."""
    dt = TORCH_DTYPES[dtype_name]
    return {k: (v.to(torch.float32) if any(k.endswith(s) for s in keep_f32) else v.to(dt)).contiguous()
            for k, v in tensors.items()}


def write_checkpoint(model_dir, tensors, shards):
    """Writes tensors as model.safetensors (shards == 1) or model-0000i-of-0000n.safetensors + index. Tensors are
    assigned to shards in name order, split by bytes; names of the MTP layer always go to the last shard (as in the
    real checkpoints)."""
    for fname in os.listdir(model_dir):
        if fname.endswith(".safetensors") or fname == "model.safetensors.index.json":
            os.remove(os.path.join(model_dir, fname))
    if shards == 1:
        save_file(tensors, os.path.join(model_dir, "model.safetensors"), metadata={"format": "pt"})
        return
    names = sorted(tensors, key=_natural_key)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    per_shard = total / shards
    groups = [[] for _ in range(shards)]
    acc = 0
    for n in names:
        i = min(int(acc // per_shard), shards - 1)
        groups[i].append(n)
        acc += tensors[n].numel() * tensors[n].element_size()
    weight_map = {}
    for i, g in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: tensors[n] for n in g}, os.path.join(model_dir, fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in g})
    with open(os.path.join(model_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")


def _natural_key(name):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def add_tensors_to_last_shard(model_dir, extra):
    """Appends tensors to the checkpoint: into model.safetensors, or into the last shard with the index updated."""
    files = weight_files(model_dir)
    last = os.path.join(model_dir, files[-1])
    with safe_open(last, "pt") as f:
        existing = {k: f.get_tensor(k) for k in f.keys()}
    existing.update(extra)
    save_file(existing, last, metadata={"format": "pt"})
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            idx = json.load(f)
        for k, v in extra.items():
            idx["weight_map"][k] = files[-1]
            idx["metadata"]["total_size"] += v.numel() * v.element_size()
        idx["weight_map"] = dict(sorted(idx["weight_map"].items()))
        with open(index, "w") as f:
            json.dump(idx, f, indent=2)
            f.write("\n")


# ----------------------------------------------------------------------------------------------------------------------
# transformers reference


def load_transformers(model_dir, dtype_name="float32"):
    """from_pretrained with eager kernels. The MTP layer `model.layers.{L}.*` is declared ignorable so that a tiny
    model's MTP tensors are skipped silently, as transformers does for index 46/92 of the real models."""
    from transformers import AutoConfig, Glm4MoeForCausalLM

    L = AutoConfig.from_pretrained(model_dir).num_hidden_layers

    class Glm4MoeIgnoringMTP(Glm4MoeForCausalLM):
        _keys_to_ignore_on_load_unexpected = [rf"model\.layers\.{L}\..*"]

    model, info = Glm4MoeIgnoringMTP.from_pretrained(
        model_dir, dtype=TORCH_DTYPES[dtype_name], attn_implementation="eager", experts_implementation="eager",
        output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if k]
    if missing:
        raise RuntimeError(f"{model_dir}: transformers reports missing keys {missing}")
    unexpected = [k for k in info.get("unexpected_keys", []) if not k.startswith(f"model.layers.{L}.")]
    if unexpected:
        raise RuntimeError(f"{model_dir}: transformers reports unexpected keys {unexpected}")
    model.eval()
    return model


def transformers_reference(model_dir, tokens, dtype_name="float32"):
    """logits [T,V], hidden_states list of [T,H] (last one post-final-norm), experts {layer: [T,K] sorted}."""
    model = load_transformers(model_dir, dtype_name)
    chosen = {}
    hooks = []
    for l, layer in enumerate(model.model.layers):
        gate = getattr(layer.mlp, "gate", None)
        if gate is not None and hasattr(gate, "e_score_correction_bias"):
            def hook(_module, _inputs, output, l=l):
                chosen[l] = torch.sort(output[2], dim=-1).values.to(torch.int32).numpy()
            hooks.append(gate.register_forward_hook(hook))
    with torch.no_grad():
        out = model(input_ids=torch.tensor([tokens], dtype=torch.long), output_hidden_states=True)
    for h in hooks:
        h.remove()
    return {
        "logits": out.logits[0].to(torch.float32).numpy(),
        "hidden_states": [h[0].to(torch.float32).numpy() for h in out.hidden_states],
        "experts": chosen,
    }


# ----------------------------------------------------------------------------------------------------------------------
# Independent float64 NumPy implementation of docs/MODEL.md §3


def load_float64(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = parse_config(json.load(f))
    W = {k: v.to(torch.float64).numpy() for k, v in read_tensors(model_dir).items()}
    return cfg, W


def rms_norm(a, w, eps):
    return w * (a / np.sqrt(np.mean(a * a, axis=-1, keepdims=True) + eps))


def silu(z):
    return z / (1.0 + np.exp(-z))


def rope(x, positions, R, theta):
    """NeoX rotate-half RoPE on the first R dims of each head; x is [T, heads, D]."""
    half = R // 2
    inv_freq = theta ** (-(2.0 * np.arange(half)) / R)
    ang = positions[:, None].astype(np.float64) * inv_freq[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = x.copy()
    x1, x2 = x[..., :half], x[..., half:R]
    y[..., :half] = x1 * cos - x2 * sin
    y[..., half:R] = x2 * cos + x1 * sin
    return y


def linear(a, W, name, bias=False):
    y = a @ W[name + ".weight"].T
    if bias:
        y = y + W[name + ".bias"]
    return y


def mlp(a, W, p):
    return linear(silu(linear(a, W, p + ".gate_proj")) * linear(a, W, p + ".up_proj"), W, p + ".down_proj")


def attention(a, W, p, cfg, positions):
    T = a.shape[0]
    nH, nKV, D = cfg["nH"], cfg["nKV"], cfg["D"]
    q = linear(a, W, p + "q_proj", cfg["bias"]).reshape(T, nH, D)
    k = linear(a, W, p + "k_proj", cfg["bias"]).reshape(T, nKV, D)
    v = linear(a, W, p + "v_proj", cfg["bias"]).reshape(T, nKV, D)
    if cfg["qk_norm"]:
        q = rms_norm(q, W[p + "q_norm.weight"], cfg["eps"])
        k = rms_norm(k, W[p + "k_norm.weight"], cfg["eps"])
    q, k = rope(q, positions, cfg["R"], cfg["theta"]), rope(k, positions, cfg["R"], cfg["theta"])
    G = nH // nKV
    o = np.zeros((T, nH, D))
    causal = np.tril(np.ones((T, T), dtype=bool))
    for h in range(nH):
        kv = h // G
        s = (q[:, h, :] @ k[:, kv, :].T) / math.sqrt(D)
        s = np.where(causal, s, -np.inf)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        s /= s.sum(axis=1, keepdims=True)
        o[:, h, :] = s @ v[:, kv, :]
    return linear(o.reshape(T, nH * D), W, p + "o_proj")


def route(m, W, p, cfg):
    """Selected experts [T,K] (ascending) and their weights [T,K]."""
    E, K = cfg["E"], cfg["K"]
    s = 1.0 / (1.0 + np.exp(-(m @ W[p + "gate.weight"].T)))
    c = s + W[p + "gate.e_score_correction_bias"]
    if cfg["n_group"] > 1:
        groups = c.reshape(c.shape[0], cfg["n_group"], E // cfg["n_group"])
        group_score = np.sort(groups, axis=-1)[..., -2:].sum(axis=-1)
        keep = np.argsort(-group_score, axis=-1, kind="stable")[:, : cfg["topk_group"]]
        mask = np.zeros_like(group_score, dtype=bool)
        np.put_along_axis(mask, keep, True, axis=-1)
        c = np.where(np.repeat(mask, E // cfg["n_group"], axis=-1), c, -np.inf)
    chosen = np.sort(np.argsort(-c, axis=-1, kind="stable")[:, :K], axis=-1)
    w = np.take_along_axis(s, chosen, axis=-1)
    if cfg["norm_topk"]:
        w = w / (w.sum(axis=-1, keepdims=True) + 1e-20)
    return chosen, w * cfg["rsf"]


def moe(m, W, p, cfg):
    chosen, w = route(m, W, p, cfg)
    out = mlp(m, W, p + "shared_experts")
    for t in range(m.shape[0]):
        for j, e in enumerate(chosen[t]):
            out[t] += w[t, j] * mlp(m[t : t + 1], W, f"{p}experts.{e}")[0]
    return out, chosen


def decoder_layer(h, W, l, cfg, positions):
    p = f"model.layers.{l}."
    a = rms_norm(h, W[p + "input_layernorm.weight"], cfg["eps"])
    h = h + attention(a, W, p + "self_attn.", cfg, positions)
    m = rms_norm(h, W[p + "post_attention_layernorm.weight"], cfg["eps"])
    if l < cfg["dense"]:
        return h + mlp(m, W, p + "mlp"), None
    out, chosen = moe(m, W, p + "mlp.", cfg)
    return h + out, chosen


def numpy_forward(cfg, W, tokens):
    """Main model: logits [T,V], hidden_states (HF convention: L+1 entries, last one post-final-norm), experts."""
    tokens = np.asarray(tokens)
    positions = np.arange(len(tokens))
    h = W["model.embed_tokens.weight"][tokens]
    hidden = [h]
    experts = {}
    for l in range(cfg["L"]):
        h, chosen = decoder_layer(h, W, l, cfg, positions)
        hidden.append(h)
        if chosen is not None:
            experts[l] = chosen
    final = rms_norm(h, W["model.norm.weight"], cfg["eps"])
    hidden[-1] = final
    head = W["model.embed_tokens.weight"] if cfg["tied"] and "lm_head.weight" not in W else W["lm_head.weight"]
    return {"logits": final @ head.T, "hidden_states": hidden, "experts": experts, "final": final}


def numpy_mtp(cfg, W, tokens, final_hidden):
    """docs/MODEL.md §3.9: draft row t (t = 0..T-2) from token t+1 and the final-normed main hidden state at t;
    returns draft logits [T-1, V] (row t predicts token t+2) and the MTP layer's expert sets [T-1, K]."""
    L = cfg["L"]
    p = f"model.layers.{L}."
    tokens = np.asarray(tokens)
    e = W[p + "embed_tokens.weight"][tokens[1:]]
    hprev = final_hidden[:-1]
    u = np.concatenate([rms_norm(e, W[p + "enorm.weight"], cfg["eps"]),
                        rms_norm(hprev, W[p + "hnorm.weight"], cfg["eps"])], axis=-1) @ W[p + "eh_proj.weight"].T
    y, chosen = decoder_layer(u, W, L, cfg, np.arange(len(tokens) - 1))
    y = rms_norm(y, W[p + "shared_head.norm.weight"], cfg["eps"])
    return {"mtp_logits": y @ W[p + "shared_head.head.weight"].T, "mtp_experts": chosen}


def has_mtp(cfg, W):
    return f"model.layers.{cfg['L']}.eh_proj.weight" in W
