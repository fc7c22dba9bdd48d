"""libglm.so exports exactly the glm_* functions of glm.h and needs no Swift runtime."""
from abi_support import header_functions, run


def test_exports_only_glm_symbols(lib_path):
    out = run(["nm", "-D", "--extern-only", "--defined-only", str(lib_path)]).stdout
    symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert symbols, "nm listed nothing"
    foreign = [s for s in symbols if not s.startswith("glm_")]
    assert foreign == []


def test_every_header_function_is_exported(lib_path):
    out = run(["nm", "-D", "--extern-only", "--defined-only", str(lib_path)]).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    declared = header_functions()
    assert len(declared) > 5
    missing = [f for f in declared if f not in exported]
    assert missing == []


def test_needs_no_swift_runtime_and_no_jemalloc(lib_path):
    out = run(["readelf", "-d", str(lib_path)]).stdout
    needed = [line for line in out.splitlines() if "(NEEDED)" in line]
    assert needed
    for bad in ("libswift", "libdispatch", "libFoundation", "libBlocksRuntime", "jemalloc"):
        assert not any(bad in line for line in needed), needed
