"""glm.Model against the committed transformers references (Tests/Fixtures/models)."""
import multiprocessing
import os

import numpy as np
import pytest

import glm
from fixtures import FIXTURES, read_reference

MODELS = FIXTURES / "models"
NAMES = sorted(p.name for p in MODELS.iterdir() if (p / "reference.safetensors").exists())


def reference(name):
    return read_reference(MODELS / name / "reference.safetensors")


def close(actual, expected, rel=1e-4):
    scale = max(1.0, float(np.abs(expected).max()))
    return float(np.abs(actual - expected).max()) <= rel * scale


def test_the_reference_fixtures_are_all_there():
    """The parametrized tests below cannot pass on an empty set: the fixture models must be found."""
    assert len(NAMES) >= 5
    assert {n for n in NAMES if "mtp_logits" in reference(n)} == {"air", "glm47", "rope_default", "tied_shared2"}


# Every kernel path this CPU runs: the parity tests run on each (AVX2 everywhere, AVX-512 where present).
PATHS = glm.system_info()["kernels"]["available"]


def test_this_cpu_runs_the_kernels():
    info = glm.system_info()
    assert info["kernels"]["supported"] and info["kernels"]["missing"] == []
    assert "avx2" in PATHS
    assert ("avx512" in PATHS) == ("avx512f" in info["cpu"]["features"])
    cpuinfo = open("/proc/cpuinfo").read()
    flags = set(next(line for line in cpuinfo.splitlines() if line.startswith("flags")).split(":")[1].split())
    assert set(info["cpu"]["features"]) == {f for f in info["cpu"]["features"] if f in flags}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", NAMES)
def test_logits_match_transformers(name, path):
    ref = reference(name)
    model = glm.Model(MODELS / name, kernels=path)
    assert model.info()["kernels"] == path
    logits = model.logits(ref["tokens"].tolist())
    assert logits.shape == ref["logits"].shape
    assert close(logits, ref["logits"])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", [n for n in NAMES if "mtp_logits" in reference(n)])
def test_mtp_drafts_match_reference(name, path):
    ref = reference(name)
    drafts = glm.Model(MODELS / name, kernels=path).mtp_logits(ref["tokens"].tolist())
    assert drafts.shape == ref["mtp_logits"].shape
    assert close(drafts, ref["mtp_logits"])


def test_an_explicit_gemm_backend_wins_over_the_environment():
    import subprocess
    import sys
    code = ("import glm, sys; print(*[glm.Model(sys.argv[1], gemm=g).info()['gemm'] "
            "for g in ('auto', 'packed', 'openblas')])")
    env = {**os.environ, "PYTHONPATH": str(MODELS.parents[2] / "bindings" / "python")}
    for variable, expected in [(None, "packed packed openblas"), ("openblas", "openblas packed openblas"),
                               ("packed", "packed packed openblas")]:
        env.pop("GLM_GEMM", None)
        if variable:
            env["GLM_GEMM"] = variable
        result = subprocess.run([sys.executable, "-c", code, str(MODELS / "glm47")], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.stdout.split() == expected.split(), result.stderr
    env["GLM_GEMM"] = "mkl"
    result = subprocess.run([sys.executable, "-c", code, str(MODELS / "glm47")], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "GLM_GEMM" in result.stderr


def test_kernel_path_choice_and_environment():
    import subprocess
    import sys
    default = glm.Model(MODELS / "glm47")
    assert default.info()["kernels"] == glm.system_info()["kernels"]["default"]
    if "avx512" not in PATHS:
        with pytest.raises(glm.UnsupportedError, match="AVX-512"):
            glm.Model(MODELS / "glm47", kernels="avx512")
    with pytest.raises(ValueError):
        glm.Model(MODELS / "glm47", kernels="sse2")
    # GLM_KERNELS picks the path where the caller does not; an explicit choice wins; a bad value is an error.
    code = ("import glm, sys; m = glm.Model(sys.argv[1], kernels=sys.argv[2]); "
            "print(m.info()['kernels'], glm.system_info()['kernels']['default'])")
    env = {**os.environ, "PYTHONPATH": str(MODELS.parents[2] / "bindings" / "python"), "GLM_KERNELS": "avx2"}
    run = lambda kernels: subprocess.run([sys.executable, "-c", code, str(MODELS / "glm47"), kernels], env=env,
                                         capture_output=True, text=True, timeout=120)
    assert run("auto").stdout.split() == ["avx2", "avx2"]
    assert run("avx2").stdout.split() == ["avx2", "avx2"]
    if "avx512" in PATHS:
        assert run("avx512").stdout.split() == ["avx512", "avx2"]
    env["GLM_KERNELS"] = "sse9"
    bad = run("auto")
    assert bad.returncode != 0 and "GLM_KERNELS" in bad.stderr


@pytest.mark.parametrize("path", PATHS)
def test_cached_decode_equals_prefill(path):
    ref = reference("glm47")
    tokens = ref["tokens"].tolist()
    model = glm.Model(MODELS / "glm47", threads=2, kernels=path)
    session = model.session(64, cache_type_k="f32", cache_type_v="f32")   # the exact cache (test_kv_cache: others)
    rows = [session.eval([t]) for t in tokens]
    assert close(np.stack(rows), ref["logits"])
    assert session.position == len(tokens)
    session.truncate(5)
    assert close(session.eval(tokens[5:], all_logits=True), ref["logits"][5:])


def test_openblas_backend_matches():
    ref = reference("air")
    logits = glm.Model(MODELS / "air", gemm="openblas").logits(ref["tokens"].tolist())
    assert close(logits, ref["logits"])


def test_info_and_errors():
    model = glm.Model(MODELS / "glm47")
    info = model.info()
    assert info["config"]["num_hidden_layers"] == 5
    assert info["parameter_count"] > 0
    session = model.session(4)
    with pytest.raises(glm.InvalidArgumentError, match="outside the vocabulary"):
        session.eval([model.vocab_size])
    with pytest.raises(glm.ContextFullError):
        session.eval([1, 2, 3, 4, 5])
    assert session.position == 0
    assert session.eval([1, 2]).shape == (model.vocab_size,)
    with pytest.raises(glm.GLMIOError):
        glm.Model(MODELS / "does-not-exist")


def _child_logits(path, tokens, queue):
    queue.put(glm.Model(path, threads=2).logits(tokens).tolist())


def test_fork_after_use():
    """A forked child (multiprocessing's fork start method) works after the parent used the thread pool."""
    ref = reference("glm47")
    tokens = ref["tokens"].tolist()
    parent = glm.Model(MODELS / "glm47", threads=2).logits(tokens)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_logits, args=(str(MODELS / "glm47"), tokens, queue))
    child.start()
    result = queue.get(timeout=60)  # before join: a child blocks on exit until its queue data is read
    child.join(60)
    assert child.exitcode == 0
    assert np.array_equal(np.array(result, dtype=np.float32), parent)


def test_random_unseen_configs_match_transformers():
    """tools/check_model.py: fresh random configs through glm.Model vs transformers (needs torch; skipped in CI)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import pathlib
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root / "bindings" / "python")}
    result = subprocess.run([sys.executable, str(root / "tools" / "check_model.py"), "--random", "2", "--seed", "99"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all candidates within tolerance" in result.stdout
