#!/usr/bin/env bash
# Installs what building and testing libglm needs on a Debian machine (idempotent; fast when all is there):
# the C libraries (OpenBLAS, jemalloc), pkg-config, qemu-user (the tests run libglm on emulated older CPUs), Go
# (golang-go: the tests build and run the cgo example), curl (the README's server snippet), and the Python test
# tools into whichever python3 is first on PATH (a venv works). Run as root or with sudo.
set -euo pipefail
packages=(libopenblas-dev libjemalloc-dev pkg-config qemu-user golang-go curl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# pytest and numpy for the tests (pytest-xdist: `make test` runs them in two processes); jsonschema to validate
# constrained outputs; setuptools >= 70.1 (it builds wheels itself; older ones need the separate `wheel` package) for
# the test that pip-installs bindings/python without build isolation; openai, the official client, for the tests of
# `glm serve`.
python3 - <<'PY' || python3 -m pip install -q --disable-pip-version-check pytest pytest-xdist numpy jsonschema "setuptools>=70.1" openai
import importlib.metadata as metadata
import pytest, xdist, numpy, jsonschema, openai  # noqa: F401
version = tuple(int(part) for part in metadata.version("setuptools").split(".")[:2])
raise SystemExit(0 if version >= (70, 1) else 1)
PY
