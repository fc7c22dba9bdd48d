"""Misuse that used to pass silently: strings cut at NUL, NaN weights, ignored request fields, foreign configs."""
import json
import math
import shutil
import struct

import pytest

import glm
from fixtures import FIXTURES

CHAT_MODEL = FIXTURES / "models" / "glm-tiny-chat"
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def model():
    return glm.Model(CHAT_MODEL, threads=1)


def test_strings_with_nul_are_refused_not_cut():
    with pytest.raises(glm.InvalidArgumentError, match="text contains a NUL character"):
        glm.parse_output("before\0after")
    with pytest.raises(ValueError, match="path contains a NUL character"):
        glm.Model(str(CHAT_MODEL) + "\0ignored")
    with pytest.raises(glm.InvalidArgumentError, match="source contains a NUL"):
        glm.ChatTemplate("{{ 'a' }}\0{{ 'b' }}")
    parser = glm.StreamParser()
    with pytest.raises(glm.InvalidArgumentError, match="chunk contains a NUL"):
        parser.feed("a\0b")
    tokenizer = glm.Tokenizer.from_file(CHAT_MODEL)
    with pytest.raises(glm.InvalidArgumentError, match="token contains a NUL"):
        tokenizer.token_to_id("a\0")
    # Text passed with its length keeps its NUL: it is text like any other.
    ids = tokenizer.encode("a\0b")
    assert tokenizer.decode(ids) == "a\0b"


def test_an_empty_model_path_says_so():
    with pytest.raises(glm.InvalidArgumentError, match="model path is empty") as error:
        glm.Model("")
    assert "/config.json" not in str(error.value)
    with pytest.raises(glm.GLMIOError, match="is not a directory"):
        glm.Model(CHAT_MODEL / "config.json")


def test_non_finite_logit_bias_is_refused(model):
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(glm.InvalidArgumentError, match=r'"logit_bias"\["5"\].*expected a finite number'):
            model.session(64).chat(HI, max_tokens=1, logit_bias={"5": value})


def test_fields_that_shape_the_response_are_unsupported(model):
    chat = model.session(64)
    for options, field in [({"response_format": {"type": "grammar"}}, "response_format"),
                           ({"logprobs": True}, "logprobs"), ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
                           ({"top_logprobs": 2}, "top_logprobs")]:
        with pytest.raises(glm.UnsupportedError, match=field):
            chat.chat(HI, max_tokens=1, **options)
    response = chat.chat(HI, max_tokens=1, response_format={"type": "text"}, logprobs=False)
    assert response["usage"]["completion_tokens"] == 1


def _copy_with_nan(source, destination, tensor):
    """Copies a model directory, overwriting `tensor`'s data in model.safetensors with 0xFF bytes (NaN in F32,
    BF16 and F16). Layout: 8-byte little-endian header length, JSON header, raw data."""
    shutil.copytree(source, destination)
    path = destination / "model.safetensors"
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    start, end = json.loads(data[8:8 + length])[tensor]["data_offsets"]
    base = 8 + length
    assert end > start
    data[base + start:base + end] = b"\xff" * (end - start)
    path.write_bytes(bytes(data))


def test_nan_weights_fail_instead_of_answering_garbage(tmp_path):
    directory = tmp_path / "nan-model"
    _copy_with_nan(CHAT_MODEL, directory, "model.norm.weight")
    nan_model = glm.Model(directory, threads=1)   # values are not scanned at load
    session = nan_model.session(64)
    with pytest.raises(glm.FormatError, match="non-finite logits"):
        session.chat(HI, max_tokens=2)
    with pytest.raises(glm.FormatError, match="non-finite logits"):
        session.eval([1, 2, 3])
    assert session.position == 0
    # The same request on the intact model answers.
    assert glm.Model(CHAT_MODEL, threads=1).session(64).chat(HI, max_tokens=2)["usage"]["completion_tokens"] == 2


def test_a_config_naming_another_architecture_is_unsupported(tmp_path):
    directory = tmp_path / "llama-named"
    shutil.copytree(CHAT_MODEL, directory)
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "glm4_moe"
    config["architectures"] = ["LlamaForCausalLM"]
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(glm.UnsupportedError, match="LlamaForCausalLM"):
        glm.Model(directory)
