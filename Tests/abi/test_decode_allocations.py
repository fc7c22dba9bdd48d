"""Decoding allocates nothing: after warm-up, 16 decoded tokens make no heap allocation (Tests/abi/decode_allocations.c
interposes malloc and friends), for a dense + MoE model, a model with QK-norm and attention biases, and one with
group-limited routing."""
import pytest

from abi_support import ROOT, run

MODELS = ["air", "glm47", "grouped"]


@pytest.fixture(scope="module")
def decode_allocations(tmp_path_factory, lib_path):
    exe = tmp_path_factory.mktemp("decode_allocations") / "decode_allocations"
    build = run(["cc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-Iinclude", "Tests/abi/decode_allocations.c",
                 "-o", str(exe), "-Lbuild/lib", "-lglm", "-Wl,-rpath," + str(lib_path.parent)])
    assert build.returncode == 0, build.stderr
    return exe


@pytest.mark.parametrize("model", MODELS)
def test_decoding_allocates_nothing(decode_allocations, model):
    result = run([str(decode_allocations), str(ROOT / "Tests" / "Fixtures" / "models" / model)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "allocations during 16 decoded tokens: 0" in result.stdout
