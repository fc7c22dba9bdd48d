"""bindings/python installs with pip and finds libglm.so inside the package."""
import os
import shutil
import sys

from abi_support import ROOT, run


def test_pip_install_and_import(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT / "bindings" / "python", source, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "build" / "lib" / "libglm.so", source / "glm" / "libglm.so")
    target = tmp_path / "site"
    result = run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                  "--target", str(target), str(source)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "glm" / "libglm.so").exists()
    env = {k: v for k, v in os.environ.items() if k != "GLM_LIBRARY"}
    env["PYTHONPATH"] = str(target)
    check = run([sys.executable, "-c",
                 "import glm, glm._native as n; print(glm.version(), n.lib._name); "
                 "print(glm.render_chat([{'role': 'user', 'content': 'Hi'}]))"], cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stderr
    assert str(target) in check.stdout
    assert "<|assistant|><think>" in check.stdout
