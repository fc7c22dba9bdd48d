"""libglm on CPUs other than this one, presented by qemu-user (Debian's qemu-user, installed by tools/setup.sh):
  - Westmere (SSE4.2, no AVX): everything that does not compute (tokenizer, templates, parsers, system info)
    works, and loading a model is GLM_ERR_UNSUPPORTED naming the missing features, never SIGILL;
  - Haswell (AVX2, FMA, F16C, no AVX-512): the model runs on the AVX2 path and its logits equal this machine's
    bit for bit (on an AVX-512 host that is the AVX-512 path's result: both paths sum in the same order).
Also natively: the kernel path reported, and GLM_KERNELS=avx2 forcing the AVX2 path.
"""
import json
import os
import shutil

import pytest

from abi_support import ROOT, run

MODEL = ROOT / "Tests" / "Fixtures" / "models" / "glm47"
TOKENIZER = ROOT / "Tests" / "Fixtures" / "tokenizers" / "glm-tiny"
QEMU = shutil.which("qemu-x86_64")


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    exe = tmp_path_factory.mktemp("cpu") / "cpu_portability"
    build = run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", "Tests/abi/cpu_portability.c", "-o",
                 str(exe), "-Lbuild/lib", "-lglm", "-Wl,-rpath," + str(ROOT / "build" / "lib")])
    assert build.returncode == 0, build.stderr
    return exe


def report(program, cpu=None, env=None):
    command = [str(program), str(MODEL), str(TOKENIZER)]
    if cpu is not None:
        if QEMU is None:
            pytest.fail("qemu-x86_64 is missing: tools/setup.sh installs Debian's qemu-user")
        command = [QEMU, "-cpu", cpu] + command
    result = run(command, env={**os.environ, **(env or {})}, timeout=600)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_tokenizer_exists():
    assert (TOKENIZER / "tokenizer.json").exists() and (MODEL / "config.json").exists()


def test_an_old_cpu_gets_an_error_not_sigill(program):
    old = report(program, "Westmere")
    assert old["system"]["kernels"]["supported"] is False
    assert old["system"]["kernels"]["missing"] == ["avx", "avx2", "fma", "f16c"]
    assert old["system"]["kernels"]["available"] == [] and old["system"]["kernels"]["default"] is None
    assert "avx" not in old["system"]["cpu"]["features"]
    assert old["tokens"] > 0 and old["rendered"] and old["parsed"]
    assert old["load_status"] == "GLM_ERR_UNSUPPORTED"
    assert "lacks avx, avx2, fma, f16c" in old["load_message"] and "x86-64-v3" in old["load_message"]
    # The examples that need no weights run there too.
    hello = run([QEMU, "-cpu", "Westmere", str(ROOT / "build" / "bin" / "hello")], timeout=120)
    assert hello.returncode == 0, hello.stderr
    assert "parsed output" in hello.stdout


def test_an_avx2_cpu_runs_the_avx2_path_with_identical_logits(program):
    native = report(program)
    haswell = report(program, "Haswell")
    assert haswell["system"]["kernels"]["available"] == ["avx2"]
    assert haswell["load_status"] == "GLM_OK" and haswell["eval_status"] == "GLM_OK"
    assert haswell["model"]["kernels"] == "avx2"
    assert native["eval_status"] == "GLM_OK" and len(native["logits"]) == native["model"]["config"]["vocab_size"]
    assert haswell["logits"] == native["logits"]


def test_native_path_and_the_environment_switch(program):
    native = report(program)
    available = native["system"]["kernels"]["available"]
    assert native["model"]["kernels"] == native["system"]["kernels"]["default"] == available[-1]
    forced = report(program, env={"GLM_KERNELS": "avx2"})
    assert forced["system"]["kernels"]["environment"] == "avx2"
    assert forced["model"]["kernels"] == "avx2"
    assert forced["logits"] == native["logits"]
    bad = report(program, env={"GLM_KERNELS": "mmx"})
    assert bad["load_status"] == "GLM_ERR_INVALID_ARGUMENT" and "GLM_KERNELS" in bad["load_message"]
