"""README.md's "From your language" snippets: each is a file under examples/readme/, included in the README
verbatim (checked here), and run here against the tiny demo model (the server ones against `glm serve`, with the
README's port 8080 replaced by the free port the test server reports)."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from apps_support import ROOT, TINY, greedy_cases

README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"<!-- snippet: (\S+) -->\n```\w*\n(.*?)```\n", README, flags=re.S)
HELLO = greedy_cases()["greeting"]["completion_text"].removesuffix("<|user|>").split("</think>")[1]


def run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=kw.pop("cwd", ROOT), **kw)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_readme_includes_each_snippet_file_verbatim():
    assert {path for path, _ in SNIPPETS} == {str(p.relative_to(ROOT)) for p in (ROOT / "examples/readme").iterdir()}
    for path, text in SNIPPETS:
        assert text == (ROOT / path).read_text(), path + " differs from its copy in README.md"


def content_of(completion_json):
    return json.loads(completion_json)["choices"][0]["message"]["content"]


def test_c(tmp_path):
    exe = tmp_path / "answer"
    run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", "examples/readme/answer.c", "-o", exe,
         "-Lbuild/lib", "-lglm", "-Wl,-rpath," + str(ROOT / "build/lib")])
    assert content_of(run([exe, TINY])) == HELLO


def test_python():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "bindings/python")}
    assert run([sys.executable, "examples/readme/answer.py"], env=env).strip() == HELLO


@pytest.mark.skipif(not shutil.which("go"), reason="no Go toolchain (tools/setup.sh installs Debian's golang-go)")
def test_go(tmp_path):
    env = {**os.environ, "GOCACHE": str(tmp_path / "gocache"), "GOPATH": str(tmp_path / "gopath")}
    assert content_of(run(["go", "run", "answer.go", TINY], cwd=ROOT / "examples/readme", env=env)) == HELLO


def rustc():
    """rustc on PATH, else rustup's default place (CI's environment may not put ~/.cargo/bin on PATH)."""
    found = shutil.which("rustc") or pathlib.Path.home() / ".cargo" / "bin" / "rustc"
    return str(found) if pathlib.Path(found).exists() else None


@pytest.mark.skipif(not rustc(), reason="no Rust toolchain")
def test_rust(tmp_path):
    exe = tmp_path / "answer"
    run([rustc(), "--edition", "2021", "examples/readme/answer.rs", "-o", exe, "-L", "build/lib", "-l", "glm",
         "-C", "link-args=-Wl,-rpath," + str(ROOT / "build/lib")])
    assert content_of(run([exe, TINY])) == HELLO


def test_the_server_with_curl_and_the_openai_client(glm_binary):
    command = (ROOT / "examples/readme/serve.sh").read_text().replace("--port 8080", "--port 0 --host 127.0.0.1")
    server = subprocess.Popen(["bash", "-c", "exec " + command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        line = server.stdout.readline()
        port = re.search(r"127\.0\.0\.1:(\d+)", line).group(1)

        def local(path):
            return (ROOT / path).read_text().replace("127.0.0.1:8080", "127.0.0.1:" + port)

        if shutil.which("curl"):
            assert content_of(run(["bash", "-c", local("examples/readme/curl.sh")])) == HELLO
        assert run([sys.executable, "-c", local("examples/readme/openai_client.py")]).strip() == HELLO
    finally:
        server.terminate()
        server.wait(timeout=30)
