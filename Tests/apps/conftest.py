"""Fixtures for Tests/apps (helpers in apps_support.py, importable under a name no other test directory uses)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from apps_support import GLM, Server  # noqa: E402


@pytest.fixture(scope="session")
def glm_binary():
    if not GLM.exists():
        pytest.fail("build/bin/glm missing: run `make` first")
    return GLM


@pytest.fixture(scope="module")
def server(glm_binary):
    s = Server("--parallel", "2", "--context", "2048")
    yield s
    assert s.stop() == 0, s.process.stderr.read()
