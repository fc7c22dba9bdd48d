"""KV cache element types and session memory through the C API and Python: logits of every fixture model within
the type's tolerance of transformers (the same bounds as Tests/GLMModelTests/KVCacheTypeTests.swift, measured
there), the demo model's greedy reply unchanged, the memory estimate equal to what a session reports it holds,
and a session over its memory limit refused."""
import numpy as np
import pytest

import glm
from glm._chat import Chat
from fixtures import DEMO_MODEL, WEATHER_QUESTION, WEATHER_TOOLS
from test_model import MODELS, NAMES, reference

# Relative to the largest |logit|; docs/MODEL.md (KV cache) gives the measurements behind them.
TOLERANCE = {"f16": 1e-3, "bf16": 1e-2, "q8_0": 4e-2}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kv", sorted(TOLERANCE))
def test_logits_stay_within_the_types_tolerance(name, kv):
    ref = reference(name)
    model = glm.Model(MODELS / name, threads=2)
    logits = model.logits(ref["tokens"].tolist(), cache_type_k=kv, cache_type_v=kv)
    expected = ref["logits"]
    scale = float(np.abs(expected).max())
    errors = np.abs(logits - expected).max(axis=1) / scale
    # Top-k routing is discontinuous: a row may pick other experts (KVCacheTypeTests checks that rows with the
    # f32 routing are within the tolerance); at most one row of the 16 may be off here.
    assert int((errors >= TOLERANCE[kv]).sum()) <= 1, f"{name} {kv}: {errors}"


@pytest.mark.parametrize("kv", ["f16", "bf16", "q8_0"])
def test_the_demo_models_greedy_reply_does_not_change(kv):
    model = glm.Model(DEMO_MODEL, threads=2)
    exact = model.session(512, cache_type_k="f32", cache_type_v="f32").chat(
        WEATHER_QUESTION, tools=WEATHER_TOOLS, temperature=0)
    typed = model.session(512, cache_type_k=kv, cache_type_v=kv).chat(
        WEATHER_QUESTION, tools=WEATHER_TOOLS, temperature=0)
    def without_ids(message):   # tool-call ids are random
        return {**message, "tool_calls": [{k: v for k, v in c.items() if k != "id"}
                                          for c in message.get("tool_calls") or []]}
    assert without_ids(typed["choices"][0]["message"]) == without_ids(exact["choices"][0]["message"])
    assert typed["choices"][0]["message"].get("tool_calls")   # the reply the demo model was trained to give
    assert typed["usage"]["completion_tokens"] == exact["usage"]["completion_tokens"]


def test_the_session_reports_its_types_and_bytes():
    model = glm.Model(MODELS / "glm47", threads=1)
    config = model.info()["config"]
    layers, kv_heads, head_dim = config["num_hidden_layers"], config["num_key_value_heads"], config["head_dim"]
    per_layer_f16 = kv_heads * head_dim * 2 * 2
    assert model.info()["kv_bytes_per_token"]["f16"] == layers * per_layer_f16
    assert model.info()["kv_bytes_per_token"]["f32"] == 2 * layers * per_layer_f16
    # q8_0: each head of 16 values is one (short) 34-byte block.
    assert model.info()["kv_bytes_per_token"]["q8_0"] == layers * kv_heads * 2 * 34
    assert model.info()["mtp_kv_bytes_per_token"]["f16"] == per_layer_f16
    for k, v, mtp in [("f16", "f16", True), ("q8_0", "bf16", False), ("f32", "q8_0", True)]:
        session = model.session(300, cache_type_k=k, cache_type_v=v, mtp=mtp, batch_size=17)
        info = session.info()
        assert (info["type_k"], info["type_v"], info["mtp"], info["context_length"]) == (k, v, mtp, 300)
        assert info["bytes"] == model.session_memory(300, cache_type_k=k, cache_type_v=v, mtp=mtp, batch_size=17)
        head = {"f16": 2 * head_dim, "bf16": 2 * head_dim, "f32": 4 * head_dim, "q8_0": 34}
        per_layer = kv_heads * (head[k] + head[v])
        assert info["kv_bytes_per_token"] == layers * per_layer
        assert info["mtp_kv_bytes_per_token"] == (per_layer if mtp else 0)
    assert model.session().info()["type_k"] == "f16"   # the default


def test_a_session_over_its_memory_limit_is_refused():
    model = glm.Model(MODELS / "glm47", threads=1)
    needed = model.session_memory(2048, cache_type_k="q8_0", cache_type_v="q8_0")
    # q8_0 is smaller than f32 (not than f16 here: a 16-value head is one short 34-byte block)
    assert needed < model.session_memory(2048, cache_type_k="f32", cache_type_v="f32")
    with pytest.raises(glm.GLMMemoryError, match="memory limit"):
        model.session(2048, cache_type_k="q8_0", cache_type_v="q8_0", memory_limit=needed - 1)
    session = model.session(2048, cache_type_k="q8_0", cache_type_v="q8_0", memory_limit=needed)
    assert session.info()["bytes"] == needed
    with pytest.raises(glm.GLMMemoryError, match="memory limit"):    # glm_chat_new checks its session too
        Chat(glm.Model(DEMO_MODEL, threads=1), context_length=16, memory_limit=1000)


def test_bad_cache_types_are_refused():
    model = glm.Model(MODELS / "glm47", threads=1)
    with pytest.raises(ValueError, match="cache_type_k"):
        model.session(16, cache_type_k="q4_0")
    with pytest.raises(ValueError, match="memory_limit"):
        model.session(16, memory_limit=-1)
