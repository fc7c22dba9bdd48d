"""The C example, the glm command line and the Python tests pass with the Swift toolchain's runtime libraries out
of reach.

A private mount namespace (unshare -m, needs root as in CI) mounts an empty tmpfs over every runtime library
directory the toolchain reports, so anything that still needed libswiftCore.so & co. would fail to load.
"""
import json
import os
import shlex
import shutil
import sys

import pytest

from abi_support import ROOT, run


def runtime_dirs():
    swiftc = shutil.which("swiftc")
    if not swiftc:
        return []
    info = json.loads(run([swiftc, "-print-target-info"]).stdout)
    dirs = set(info["paths"].get("runtimeLibraryPaths", []))
    # The directory above .../swift/linux holds the other runtime pieces (Foundation, Dispatch).
    dirs |= {os.path.dirname(d.rstrip("/")) for d in dirs}
    dirs = sorted(d for d in dirs if os.path.isdir(d))
    # Mount over the outermost directories only: a mount over a parent already hides its children.
    return [d for d in dirs if not any(d != p and d.startswith(p.rstrip("/") + "/") for p in dirs)]


def test_c_example_glm_and_python_tests_without_swift_runtime():
    dirs = runtime_dirs()
    if not dirs:
        pytest.skip("no Swift toolchain on this machine: nothing to hide")
    probe = run(["unshare", "-m", "true"])
    if probe.returncode != 0:
        pytest.skip("unshare -m not permitted here (needs root): " + probe.stderr.strip())
    mounts = " && ".join("mount -t tmpfs none %s" % shlex.quote(d) for d in dirs)
    hidden = dirs[0]
    script = (
        f"{mounts} && "
        f"test -z \"$(ls -A {shlex.quote(hidden)})\" && "
        f"./build/bin/hello && ./build/bin/chat Tests/Fixtures/models/glm-tiny-chat && "
        f"./build/bin/glm complete Tests/Fixtures/models/glm-tiny-chat Hello --max-tokens 4 -q && "
        f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider bindings/python/tests"
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    result = run(["unshare", "-m", "sh", "-c", script], env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "passed" in result.stdout
