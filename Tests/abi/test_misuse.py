"""Malformed arguments to every C function return a status and a message (Tests/abi/misuse.c)."""
from abi_support import ROOT, run


def test_misuse_program(tmp_path):
    exe = tmp_path / "misuse"
    build = run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", "-pthread", "Tests/abi/misuse.c", "-o", str(exe),
                 "-Lbuild/lib", "-lglm", "-Wl,-rpath," + str(ROOT / "build" / "lib")])
    assert build.returncode == 0, build.stderr
    result = run([str(exe)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all misuse checks passed" in result.stdout


def test_examples_run():
    """The C chat example and the Python tool-calling example complete their tool loop on the tiny model."""
    model = ROOT / "Tests" / "Fixtures" / "models" / "glm-tiny-chat"
    chat = run([str(ROOT / "build" / "bin" / "chat"), str(model)])
    assert chat.returncode == 0, chat.stdout + chat.stderr
    assert "[tool call] get_weather" in chat.stdout and "Paris" in chat.stdout.split("[answer]")[-1]
    import sys
    python = run([sys.executable, str(ROOT / "examples" / "tool_calling.py"), str(model)])
    assert python.returncode == 0, python.stdout + python.stderr
    assert "[tool result]" in python.stdout and "[finish] stop" in python.stdout
