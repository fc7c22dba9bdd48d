#!/usr/bin/env bash
# Installs what building and testing libglm needs on a Debian machine (idempotent; fast when all is there):
# the C libraries (OpenBLAS, jemalloc), pkg-config, and the Python test tools. Run as root or with sudo.
set -euo pipefail
packages=(libopenblas-dev libjemalloc-dev pkg-config)
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
python3 -c "import pytest, numpy" 2>/dev/null || python3 -m pip install -q pytest numpy
