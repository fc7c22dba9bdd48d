"""FP8 E4M3 checkpoints (tools/make_fp8_models.py, Tests/Fixtures/models/fp8) through glm.Model."""
import json

import numpy as np
import pytest

import glm
from fixtures import FIXTURES, read_reference

FP8 = FIXTURES / "models" / "fp8"
LAYOUTS = ["channel", "block", "tensor", "deepseek"]


def reference(layout):
    return read_reference(FP8 / layout / "reference.safetensors")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fp8_logits_match_transformers_on_dequantised_weights(layout):
    ref = reference(layout)
    model = glm.Model(FP8 / layout)
    logits = model.logits(ref["tokens"].tolist())
    assert logits.shape == ref["logits"].shape
    scale = float(np.abs(ref["logits"]).max())
    assert float(np.abs(logits - ref["logits"]).max()) <= 1e-4 * scale


def test_fp8_info():
    info = glm.Model(FP8 / "channel").info()
    assert info["dtype"] == "float8_e4m3fn"
    assert info["quantization"]["F8_E4M3"] > info["quantization"]["BF16"] > 0
    assert info["fp8"] == {"method": "compressed-tensors", "strategy": "channel"}
    assert info["config"]["quantization_config"]["quant_method"] == "compressed-tensors"


def test_fp8_checkpoint_without_config_is_unsupported(tmp_path):
    for name in ("model.safetensors",):
        (tmp_path / name).write_bytes((FP8 / "channel" / name).read_bytes())
    config = json.loads((FP8 / "channel" / "config.json").read_text())
    del config["quantization_config"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(glm.UnsupportedError) as e:
        glm.Model(tmp_path)
    assert "quantization_config" in str(e.value)
