"""glm.quantize: GGUF → GGUF with llama-quantize's recipes. The bytes must equal llama-quantize's (digests in
glm-tiny-gguf/llama-quantize.json, made by tools/make_gguf_quantize_models.py); the written file loads and runs."""
import hashlib
import json

import numpy as np
import pytest

import glm
from fixtures import FIXTURES

GGUF = FIXTURES / "models" / "glm-tiny-gguf"
EXPECTED = json.loads((GGUF / "llama-quantize.json").read_text())


@pytest.mark.parametrize("source,qtype", [("k256-bf16.gguf", "Q4_K_M"), ("k256-bf16.gguf", "Q2_K"),
                                          ("air-bf16.gguf", "Q8_0"), ("glm-tiny-bf16-00001-of-00002.gguf", "Q6_K")])
def test_bytes_equal_llama_quantize(tmp_path, source, qtype):
    dst = tmp_path / "out.gguf"
    glm.quantize(GGUF / source, dst, qtype, threads=2)
    data = dst.read_bytes()
    assert len(data) == EXPECTED[source][qtype]["size"]
    assert hashlib.sha256(data).hexdigest() == EXPECTED[source][qtype]["sha256"]


def test_written_model_loads_and_runs(tmp_path):
    dst = tmp_path / "k256-q8_0.gguf"
    glm.quantize(str(GGUF / "k256-bf16.gguf"), str(dst), "q8_0")
    model = glm.Model(dst)
    info = model.info()
    assert info["format"] == "gguf" and info["dtype"] == "Q8_0"
    source = glm.Model(GGUF / "k256-bf16.gguf").logits([1, 2, 3])
    quantised = model.logits([1, 2, 3])
    assert np.all(np.isfinite(quantised))
    # 8-bit weights and activations: close to the bf16 model's logits, not equal.
    assert 0 < np.max(np.abs(quantised - source)) < 0.05 * np.max(np.abs(source))


def test_progress_and_cancellation(tmp_path):
    dst = tmp_path / "out.gguf"
    calls = []
    glm.quantize(GGUF / "air-bf16.gguf", dst, "Q4_0", progress=lambda d, t, name: calls.append((d, t, name)))
    assert len(calls) >= 72 and calls[-1][0] == calls[-1][1] > 0
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert {c[2] for c in calls} >= {"token_embd.weight", "blk.3.nextn.eh_proj.weight"}

    dst.unlink()
    with pytest.raises(glm.CancelledError):
        glm.quantize(GGUF / "air-bf16.gguf", dst, "Q4_0", progress=lambda d, t, name: d < 1000)
    assert not dst.exists()

    class Stop(Exception):
        pass

    def boom(d, t, name):
        raise Stop()
    with pytest.raises(Stop):
        glm.quantize(GGUF / "air-bf16.gguf", dst, "Q4_0", progress=boom)
    assert not dst.exists()


def test_errors(tmp_path):
    dst = tmp_path / "out.gguf"
    with pytest.raises(glm.InvalidArgumentError, match="Q9_X"):
        glm.quantize(GGUF / "air-bf16.gguf", dst, "Q9_X")
    with pytest.raises(glm.GLMIOError):
        glm.quantize(tmp_path / "missing.gguf", dst, "Q4_0")
    with pytest.raises(glm.InvalidArgumentError, match="allow_requantize"):
        glm.quantize(GGUF / "glm-tiny-q8_0.gguf", dst, "Q4_0")
    glm.quantize(GGUF / "glm-tiny-q8_0.gguf", dst, "Q4_0", allow_requantize=True)
    assert glm.Model(dst).info()["dtype"] == "Q4_0"
    with pytest.raises(TypeError):
        glm.quantize(GGUF / "air-bf16.gguf", dst, 7)
