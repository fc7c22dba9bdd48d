"""GGUF models through the C API and the Python binding: files made by llama.cpp's converter from the fixture
models (tools/make_gguf_models.py), compared with the safetensors checkpoints they came from and with transformers
on the dequantised Q8_0 weights."""
import json
import shutil

import numpy as np
import pytest

import glm
from fixtures import FIXTURES

GGUF = FIXTURES / "models" / "glm-tiny-gguf"
TOKENS = [4257, 4259, 10, 200, 3000, 77]


def test_split_bf16_gguf_equals_the_safetensors_checkpoint():
    """With f32 inputs the GGUF file computes what the checkpoint does, bit for bit; by default (bf16_inputs "auto")
    a GGUF model rounds the inputs of bf16 weights to bf16 as llama.cpp does, which moves the logits a little."""
    gguf = glm.Model(GGUF / "glm-tiny-bf16-00001-of-00002.gguf", bf16_inputs="f32")
    st = glm.Model(FIXTURES / "models" / "glm-tiny-chat")
    info = gguf.info()
    assert info["format"] == "gguf" and info["dtype"] == "bfloat16" and info["bf16_inputs"] == "f32"
    assert st.info()["bf16_inputs"] == "f32"
    assert info["config"]["num_hidden_layers"] == st.info()["config"]["num_hidden_layers"]
    assert info["parameter_count"] == st.info()["parameter_count"]
    expected = st.logits(TOKENS)
    np.testing.assert_array_equal(gguf.logits(TOKENS), expected)
    rounded = glm.Model(GGUF / "glm-tiny-bf16-00001-of-00002.gguf")
    assert rounded.info()["bf16_inputs"] == "bf16"
    moved = float(np.abs(rounded.logits(TOKENS) - expected).max()) / float(np.abs(expected).max())
    assert 0 < moved < 0.01


def test_bf16_inputs_option():
    for choice in ("f32", "bf16"):
        assert glm.Model(FIXTURES / "models" / "air", bf16_inputs=choice).info()["bf16_inputs"] == choice
    with pytest.raises(ValueError, match="bf16_inputs"):
        glm.Model(FIXTURES / "models" / "air", bf16_inputs="fp8")


def test_populate_option():
    """populate=True maps every page of the files at load (glm_model_params.populate): the process's mapping of
    each split part is wholly resident, and the logits are the lazy model's, bit for bit."""
    path = GGUF / "glm-tiny-bf16-00001-of-00002.gguf"
    lazy = glm.Model(path)
    populated = glm.Model(path, populate=True)
    for part in ("glm-tiny-bf16-00001-of-00002.gguf", "glm-tiny-bf16-00002-of-00002.gguf"):
        target, maps, header = str(GGUF / part), [], None
        for line in open("/proc/self/smaps"):
            fields = line.split()
            if fields and "-" in fields[0] and len(fields) >= 5:
                header = " ".join(fields[5:]) if len(fields) >= 6 else ""
                size = None
            elif header == target and fields[0] == "Size:":
                size = int(fields[1])
            elif header == target and fields[0] == "Rss:":
                maps.append((int(fields[1]), size))
        assert any(size and rss >= size for rss, size in maps), (part, maps)
    # Checked before any forward pass: on a model this small one would page the lazy model's weights in too.
    np.testing.assert_array_equal(populated.logits(TOKENS), lazy.logits(TOKENS))


def test_bf16_gguf_matches_llama_cpp():
    """llama.cpp's logits on air-bf16.gguf (tools/make_llama_cpp_logits.py): with the inputs of bf16 weights rounded
    as ggml rounds them, within the bound of GGUFLlamaCppParityTests (0.2%), on every kernel path."""
    meta = json.loads((GGUF / "llama-cpp-air-bf16.json").read_text())
    expected = np.fromfile(GGUF / meta["logits"], dtype="<f4").reshape(len(meta["tokens"]), meta["vocab_size"])
    scale = float(np.abs(expected).max())
    for kernels in glm.system_info()["kernels"]["available"]:
        actual = glm.Model(GGUF / meta["file"], kernels=kernels).logits(meta["tokens"])
        assert float(np.abs(actual - expected).max()) <= 0.002 * scale, kernels


def test_q8_0_gguf_matches_transformers_on_its_dequantised_weights():
    model = glm.Model(GGUF / "glm-tiny-q8_0.gguf")
    info = model.info()
    assert info["dtype"] == "Q8_0"
    assert set(info["quantization"]) == {"Q8_0", "F32"}
    meta = json.loads((GGUF / "reference-q8_0.json").read_text())
    expected = np.fromfile(GGUF / meta["logits"], dtype="<f4").reshape(len(meta["tokens"]), meta["vocab_size"])
    actual = model.logits(meta["tokens"])
    scale = float(np.abs(expected).max())
    # Q8_0 weights multiply 8-bit (Q8_0) activations as in ggml: the documented bound of GGUFModelTests.
    assert float(np.abs(actual - expected).max()) <= 0.02 * scale
    assert list(actual.argmax(-1)) == meta["argmax"]


def test_mtp_drafts_from_gguf_equal_safetensors():
    gguf = glm.Model(GGUF / "air-bf16.gguf", bf16_inputs="f32")
    st = glm.Model(FIXTURES / "models" / "air")
    tokens = [1, 7, 42, 3, 19]
    np.testing.assert_array_equal(gguf.mtp_logits(tokens), st.mtp_logits(tokens))


def test_missing_split_part_is_an_io_error(tmp_path):
    shutil.copy(GGUF / "glm-tiny-bf16-00001-of-00002.gguf", tmp_path / "m-00001-of-00002.gguf")
    with pytest.raises(glm.GLMIOError, match="part 2 of 2"):
        glm.Model(tmp_path / "m-00001-of-00002.gguf")


def test_unsupported_tensor_type_is_refused(tmp_path):
    data = bytearray((GGUF / "glm-tiny-q8_0.gguf").read_bytes())
    name = b"blk.1.ffn_up_exps.weight"
    at = data.index(name) + len(name)
    dims = int.from_bytes(data[at:at + 4], "little")
    at += 4 + 8 * dims
    data[at:at + 4] = (39).to_bytes(4, "little")      # MXFP4: a ggml block type libglm does not compute with
    (tmp_path / "x.gguf").write_bytes(bytes(data))
    with pytest.raises(glm.UnsupportedError, match=r"blk\.1\.ffn_up_exps\.weight.*MXFP4"):
        glm.Model(tmp_path / "x.gguf")


def test_chat_on_a_gguf_alone_equals_the_safetensors_directory():
    """The GGUF carries tokenizer and chat template (copied by the converter from glm-tiny-chat); greedy chat on the
    split BF16 file (same logits bit for bit with f32 inputs) must give the directory's reply."""
    messages = [{"role": "user", "content": "Hi"}]
    gguf = glm.Model(GGUF / "glm-tiny-bf16-00002-of-00002.gguf", bf16_inputs="f32").chat(messages, max_tokens=12, temperature=0)
    st = glm.Model(FIXTURES / "models" / "glm-tiny-chat").chat(messages, max_tokens=12, temperature=0)
    assert gguf["choices"][0]["message"] == st["choices"][0]["message"]
    assert gguf["usage"] == st["usage"]


def test_tokenizer_of_a_split_gguf_comes_from_its_first_part():
    gguf = glm.Model(GGUF / "glm-tiny-bf16-00002-of-00002.gguf")
    st = glm.Model(FIXTURES / "models" / "glm-tiny-chat")
    assert gguf.info()["gguf_file"].endswith("glm-tiny-bf16-00001-of-00002.gguf")
    text = "Hello, world! 你好 123"
    assert gguf.tokenizer.encode(text) == st.tokenizer.encode(text)
