"""libglm embedded from Go (cgo) and Rust (extern "C", no crates): each example runs the tiny model's streamed
tool loop and must end with the model's answer from the tool result, as examples/chat.c does.

Skipped where the toolchain is missing: Go is Debian's golang-go, which tools/setup.sh installs (so CI runs it);
Rust (rustc) is used where the machine has it (this project's machines do, in ~/.cargo/bin) and is not installed
by setup.sh.
"""
import os
import pathlib
import re
import shutil

import pytest

from abi_support import ROOT, run

TINY = ROOT / "Tests" / "Fixtures" / "models" / "glm-tiny-chat"


def check_transcript(out):
    assert "[tool call] get_weather {\"city\": \"Paris\"}" in out
    assert "[tool result] {\"city\": \"Paris\", \"temperature\": 18, \"condition\": \"sunny\"}" in out
    assert "[answer] It is sunny in Paris, 18 degrees." in out
    # (chat.c prints the finish reason as its JSON string, the others as text)
    assert re.findall(r'\[finish "?(\w+)', out) == ["tool_calls", "stop"]
    # The second turn reused the first turn's KV cache.
    cached = [int(n) for n in re.findall(r'"cached_tokens": ?(\d+)', out)]
    assert len(cached) == 2 and cached[0] == 0 and cached[1] > 0


def rustc():
    """rustc on PATH, else rustup's default place (CI's environment may not put ~/.cargo/bin on PATH)."""
    found = shutil.which("rustc") or pathlib.Path.home() / ".cargo" / "bin" / "rustc"
    return str(found) if pathlib.Path(found).exists() else None


def test_c_example_for_comparison(lib_path):
    result = run([str(ROOT / "build/bin/chat"), str(TINY)])
    assert result.returncode == 0, result.stderr
    check_transcript(result.stdout)


@pytest.mark.skipif(not shutil.which("go"), reason="no Go toolchain (tools/setup.sh installs golang-go)")
def test_go_example(lib_path, tmp_path):
    env = {**os.environ, "GOCACHE": str(tmp_path / "gocache"), "GOPATH": str(tmp_path / "gopath"), "GOFLAGS": "-mod=mod"}
    exe = tmp_path / "chat-go"
    build = run(["go", "build", "-o", str(exe), "."], cwd=ROOT / "examples" / "go", env=env)
    assert build.returncode == 0, build.stderr
    result = run([str(exe), str(TINY)])
    assert result.returncode == 0, result.stderr
    check_transcript(result.stdout)


@pytest.mark.skipif(not rustc(), reason="no Rust toolchain")
def test_rust_example(lib_path, tmp_path):
    exe = tmp_path / "chat-rs"
    build = run([rustc(), "-O", "--edition", "2021", "examples/rust/chat.rs", "-o", str(exe), "-L", "build/lib",
                 "-l", "glm", "-C", "link-args=-Wl,-rpath," + str(ROOT / "build" / "lib")])
    assert build.returncode == 0, build.stderr
    result = run([str(exe), str(TINY)])
    assert result.returncode == 0, result.stderr
    check_transcript(result.stdout)
