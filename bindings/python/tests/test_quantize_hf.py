"""glm.quantize with a Hugging Face checkpoint directory as the source: the tensor data equals what llama.cpp's
convert_hf_to_gguf.py + llama-quantize write (the SHA-256 of the data section in glm-tiny-gguf/hf-convert.json, made
by tools/make_hf_gguf_fixtures.py); the written file loads and its logits equal those of llama.cpp's conversion
quantised the same way; broken checkpoints are refused with the partial file removed."""
import hashlib
import json
import shutil

import numpy as np
import pytest

import glm
from fixtures import FIXTURES

MODELS = FIXTURES / "models"
EXPECTED = json.loads((MODELS / "glm-tiny-gguf" / "hf-convert.json").read_text())


@pytest.mark.parametrize("source,qtype", [("glm-tiny-chat", "Q8_0"), ("glm-tiny-chat", "Q4_K_M"),
                                          ("air", "Q5_K_M"), ("fp8/channel", "Q8_0"), ("fp8/deepseek", "Q3_K_M")])
def test_tensor_data_equals_llama_cpp(tmp_path, source, qtype):
    dst = tmp_path / "out.gguf"
    glm.quantize(MODELS / source, dst, qtype, threads=2)
    data = dst.read_bytes()
    ref = EXPECTED[source]["outputs"][qtype]
    # The data section is the end of the file; only the header may differ (the converter's name-heuristic keys).
    section = data[-ref["data_size"]:]
    assert hashlib.sha256(section).hexdigest() == ref["data_sha256"]
    if not EXPECTED[source]["placeholder_vocabulary"]:
        assert 0 <= ref["size"] - len(data) < 200


def test_loads_with_the_logits_of_llama_cpps_conversion(tmp_path):
    ours, theirs = tmp_path / "ours.gguf", tmp_path / "theirs.gguf"
    glm.quantize(MODELS / "glm-tiny-chat", ours, "Q8_0")
    # llama.cpp's converter output (committed, split in two) quantised by libglm = llama-quantize's bytes
    # (test_quantize.py).
    glm.quantize(MODELS / "glm-tiny-gguf" / "glm-tiny-bf16-00001-of-00002.gguf", theirs, "Q8_0")
    tokens = [4257, 4259, 10, 200, 3000, 77]
    a = glm.Model(ours).logits(tokens)
    b = glm.Model(theirs).logits(tokens)
    assert np.all(np.isfinite(a)) and np.array_equal(a, b)


def test_broken_checkpoints(tmp_path):
    dst = tmp_path / "out.gguf"
    broken = tmp_path / "air"
    shutil.copytree(MODELS / "air", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(glm.FormatError):
        glm.quantize(broken, dst, "Q8_0")
    assert not dst.exists()

    unknown = tmp_path / "channel"
    shutil.copytree(MODELS / "fp8" / "channel", unknown)
    config = json.loads((unknown / "config.json").read_text())
    config["quantization_config"]["quant_method"] = "awq"
    (unknown / "config.json").write_text(json.dumps(config))
    with pytest.raises(glm.UnsupportedError, match="awq"):
        glm.quantize(unknown, dst, "Q8_0")
    assert not dst.exists()

    with pytest.raises(glm.CancelledError):
        glm.quantize(MODELS / "glm-tiny-chat", dst, "Q4_0", progress=lambda d, t, name: d < 1000)
    assert not dst.exists()
