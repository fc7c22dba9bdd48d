"""MTP speculative decoding through the C ABI from Python: num_speculative_tokens per request and per session,
usage.completion_tokens_details, and the same replies as plain decoding.

glm-tiny-chat has no MTP layer, so the positive tests give a copy of it one (the MTP decoder layer copied from its
MoE layer, eh_proj passing the hidden half through, the main embedding and lm_head shared): its drafts are poor,
which exercises rejection and rollback on almost every step; what must hold is that the replies do not change."""
import json
import shutil
import struct

import numpy as np
import pytest

import glm
from fixtures import FIXTURES

MODEL = FIXTURES / "models" / "glm-tiny-chat"
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def read_safetensors(path):
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = (info["dtype"], info["shape"], data[base + start:base + end])
    return tensors


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


@pytest.fixture(scope="module")
def mtp_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-chat-mtp")
    for f in MODEL.iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, directory / f.name)
    config = json.loads((MODEL / "config.json").read_text())
    layers, hidden = config["num_hidden_layers"], config["hidden_size"]
    config["num_nextn_predict_layers"] = 1
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    tensors = read_safetensors(MODEL / "model.safetensors")
    prefix = f"model.layers.{layers - 1}."
    mtp = f"model.layers.{layers}."
    for name, value in list(tensors.items()):
        if name.startswith(prefix):
            tensors[mtp + name[len(prefix):]] = value
    ones = np.ones(hidden, dtype=np.float32).tobytes()
    combine = np.zeros((hidden, 2 * hidden), dtype=np.float32)
    combine[:, hidden:] = np.eye(hidden, dtype=np.float32)
    combine[:, :hidden] = 0.1 * np.eye(hidden, dtype=np.float32)
    tensors[mtp + "enorm.weight"] = ("F32", [hidden], ones)
    tensors[mtp + "hnorm.weight"] = ("F32", [hidden], ones)
    tensors[mtp + "eh_proj.weight"] = ("F32", [hidden, 2 * hidden], combine.tobytes())
    tensors[mtp + "shared_head.norm.weight"] = ("F32", [hidden], ones)
    write_safetensors(directory / "model.safetensors", tensors)
    model = glm.Model(directory, threads=1)
    assert model.info()["has_mtp"]
    return model


def details(reply):
    return reply["usage"].get("completion_tokens_details")


@pytest.mark.parametrize("k", [1, 2, 3])
def test_greedy_replies_equal_plain_decoding(mtp_model, k):
    for messages, tools in [(QUESTION, TOOLS), ([{"role": "user", "content": "Hello"}], None)]:
        plain = mtp_model.session(1024).chat(messages, tools=tools, temperature=0, seed=3, max_tokens=80)
        fast = mtp_model.session(1024).chat(messages, tools=tools, temperature=0, seed=3, max_tokens=80,
                                            num_speculative_tokens=k)
        assert fast["choices"] == plain["choices"]
        d = details(fast)
        assert d["accepted_prediction_tokens"] + d["rejected_prediction_tokens"] > 0
        assert d["accepted_prediction_tokens"] <= fast["usage"]["completion_tokens"]
        assert details(plain) is None


def test_session_default_streaming_and_max_tokens(mtp_model):
    session = mtp_model.session(1024, num_speculative_tokens=2)
    plain = mtp_model.session(1024)
    for limit in (1, 3, 17):
        a = plain.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, max_tokens=limit)
        b = session.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, max_tokens=limit)
        assert b["choices"] == a["choices"]
        assert b["usage"]["completion_tokens"] == a["usage"]["completion_tokens"] <= limit
        assert details(b) is not None
    chunks = list(session.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, stream=True,
                               stream_options={"include_usage": True}))
    reference = list(plain.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, stream=True,
                                stream_options={"include_usage": True}))
    assert [c["choices"] for c in chunks] == [c["choices"] for c in reference]
    assert details(chunks[-1]) is not None
    # A request may turn it off on a speculative session.
    off = session.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, num_speculative_tokens=0)
    assert details(off) is None


def test_models_without_mtp_and_bad_values_are_errors(mtp_model):
    plain_model = glm.Model(MODEL, threads=1)
    with pytest.raises(glm.InvalidArgumentError, match="MTP"):
        plain_model.chat(QUESTION, num_speculative_tokens=1)
    with pytest.raises(glm.InvalidArgumentError, match="MTP"):
        plain_model.session(256, num_speculative_tokens=1).chat(QUESTION)
    for bad in (4, -1):
        with pytest.raises(glm.InvalidArgumentError, match="num_speculative_tokens"):
            mtp_model.chat(QUESTION, num_speculative_tokens=bad)
    with pytest.raises(glm.InvalidArgumentError, match="mtp"):
        mtp_model.chat(QUESTION, speculative_config={"method": "ngram"})
