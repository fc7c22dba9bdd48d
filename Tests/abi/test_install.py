"""`make install PREFIX=...` gives a working pkg-config setup."""
import os

from abi_support import ROOT, run


def test_install_and_build_with_pkg_config(tmp_path):
    prefix = tmp_path / "prefix"
    result = run(["make", "--no-print-directory", "install", "PREFIX=" + str(prefix)])
    assert result.returncode == 0, result.stdout + result.stderr
    for rel in ("include/glm.h", "lib/libglm.so", "lib/pkgconfig/glm.pc", "bin/glm"):
        assert (prefix / rel).exists(), rel
    # The installed command line finds the installed library (rpath $ORIGIN/../lib).
    version = run([str(prefix / "bin" / "glm"), "--version"])
    assert version.returncode == 0 and "libglm API" in version.stdout, version.stderr
    env = {**os.environ, "PKG_CONFIG_PATH": str(prefix / "lib" / "pkgconfig")}
    flags = run(["pkg-config", "--cflags", "--libs", "glm"], env=env)
    assert flags.returncode == 0, flags.stderr
    assert str(prefix) in flags.stdout
    exe = tmp_path / "hello"
    build = run(["cc", str(ROOT / "examples" / "hello.c"), "-o", str(exe)] + flags.stdout.split(),
                cwd=tmp_path, env=env)
    assert build.returncode == 0, build.stderr
    out = run([str(exe)], cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "libglm" in out.stdout
