"""glm_quantize through the C ABI (Tests/abi/quantize.c): a GGUF → GGUF conversion whose bytes equal
llama-quantize's (the digest recorded by tools/make_gguf_quantize_models.py), the progress callback with user
data, cancellation removing the partial file, and every refusal as a status with a message."""
import hashlib
import json

import pytest

from abi_support import ROOT, run

MODELS = ROOT / "Tests" / "Fixtures" / "models" / "glm-tiny-gguf"


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quantize")
    exe = folder / "quantize"
    build = run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", "Tests/abi/quantize.c",
                 "-o", str(exe), "-Lbuild/lib", "-lglm", "-Wl,-rpath," + str(ROOT / "build" / "lib")])
    assert build.returncode == 0, build.stderr
    dst = folder / "k256-q4_k_m.gguf"
    result = run([str(exe), str(MODELS / "k256-bf16.gguf"), str(dst), "Q4_K_M"])
    assert result.returncode == 0, result.stderr
    return dst, result.stdout


def test_bytes_equal_llama_quantize(output):
    dst, _ = output
    expected = json.loads((MODELS / "llama-quantize.json").read_text())["k256-bf16.gguf"]["Q4_K_M"]
    data = dst.read_bytes()
    assert len(data) == expected["size"]
    assert hashlib.sha256(data).hexdigest() == expected["sha256"]


def test_progress_and_cancel(output):
    _, text = output
    assert "quantize GLM_OK" in text
    progress = [l for l in text.splitlines() if l.startswith("progress ")][0]
    fields = dict(kv.split("=") for kv in progress.split()[1:])
    done, total = map(int, fields["last"].split("/"))
    assert int(fields["calls"]) >= 20 and done == total > 0 and fields["monotone"] == "1"
    assert "cancel GLM_ERR_CANCELLED" in text
    assert "cancelled file exists=0" in text
    assert "partial file exists=0" in text


@pytest.mark.parametrize("what,status,words", [
    ("bad type", "GLM_ERR_INVALID_ARGUMENT", "Q9_X"),
    ("null type", "GLM_ERR_INVALID_ARGUMENT", "params.type"),
    ("short size", "GLM_ERR_INVALID_ARGUMENT", "params.size"),
    ("bad threads", "GLM_ERR_INVALID_ARGUMENT", "threads"),
    ("null params", "GLM_ERR_INVALID_ARGUMENT", "params"),
    ("null src", "GLM_ERR_INVALID_ARGUMENT", "src"),
    ("missing src", "GLM_ERR_IO", "/nonexistent/model.gguf"),
    ("bad dst", "GLM_ERR_IO", "/nonexistent/dir/out.gguf"),
    ("dst is src", "GLM_ERR_INVALID_ARGUMENT", "source"),
    ("dst is a device", "GLM_ERR_INVALID_ARGUMENT", "regular file"),
    ("write fails", "GLM_ERR_IO", "File too large"),
])
def test_refusals(output, what, status, words):
    _, text = output
    line = [l for l in text.splitlines() if l.startswith(what + " ")]
    assert line, text
    assert line[0].startswith(f"{what} {status}: ") and words in line[0], line[0]


def test_checkpoint_directory_source(tmp_path):
    """The same C program with a Hugging Face checkpoint directory as the source: the tensor data equal what
    llama.cpp's convert_hf_to_gguf.py + llama-quantize write (glm-tiny-gguf/hf-convert.json, made by
    tools/make_hf_gguf_fixtures.py); progress, cancellation and the partial-file removal as for a GGUF source."""
    exe = tmp_path / "quantize"
    build = run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", "Tests/abi/quantize.c",
                 "-o", str(exe), "-Lbuild/lib", "-lglm", "-Wl,-rpath," + str(ROOT / "build" / "lib")])
    assert build.returncode == 0, build.stderr
    dst = tmp_path / "chat-q8_0.gguf"
    result = run([str(exe), str(ROOT / "Tests" / "Fixtures" / "models" / "glm-tiny-chat"), str(dst), "Q8_0"])
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "quantize GLM_OK" in text and "cancel GLM_ERR_CANCELLED" in text
    assert "cancelled file exists=0" in text and "partial file exists=0" in text
    expected = json.loads((MODELS / "hf-convert.json").read_text())["glm-tiny-chat"]["outputs"]["Q8_0"]
    data = dst.read_bytes()
    assert hashlib.sha256(data[-expected["data_size"]:]).hexdigest() == expected["data_sha256"]
