"""Malformed arguments to every C function return a status and a message (Tests/abi/misuse.c)."""
from abi_support import ROOT, run


def test_misuse_program(tmp_path):
    exe = tmp_path / "misuse"
    build = run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", "Tests/abi/misuse.c", "-o", str(exe),
                 "-Lbuild/lib", "-lglm", "-Wl,-rpath," + str(ROOT / "build" / "lib")])
    assert build.returncode == 0, build.stderr
    result = run([str(exe)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all misuse checks passed" in result.stdout
