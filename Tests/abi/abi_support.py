"""Shared helpers for the packaging and C-ABI checks (they run after `make all`)."""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIB = ROOT / "build" / "lib" / "libglm.so"
HEADER = ROOT / "include" / "glm.h"


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("cwd", ROOT)
    return subprocess.run(cmd, **kw)


def header_functions():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    return sorted(set(re.findall(r"\b(glm_[a-z0-9_]+)\s*\(", text)))


@pytest.fixture(scope="session")
def lib_path():
    if not LIB.exists():
        pytest.fail("build/lib/libglm.so missing: run `make` first")
    return LIB
