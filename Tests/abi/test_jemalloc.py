"""The project's executables run on jemalloc; libglm.so does not link it."""
import os

from abi_support import ROOT, run


def test_examples_use_jemalloc():
    # hello (C) and glm (Swift, the command line and server).
    for demo, args in ((ROOT / "build" / "bin" / "hello", []), (ROOT / "build" / "bin" / "glm", ["--version"])):
        # jemalloc prints its statistics at exit when asked through MALLOC_CONF; glibc malloc ignores the variable.
        result = run([str(demo), *args], env={**os.environ, "MALLOC_CONF": "stats_print:true"})
        assert result.returncode == 0, result.stderr
        assert "jemalloc statistics" in result.stderr or "___ Begin jemalloc statistics ___" in result.stdout + result.stderr


def test_mallctl_stats_grow(tmp_path):
    source = tmp_path / "alloc.c"
    source.write_text(r'''
#include <jemalloc/jemalloc.h>
#include <glm.h>
#include <stdio.h>
#include <stdint.h>
static size_t allocated(void) {
    uint64_t epoch = 1; size_t sz = sizeof(epoch);
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    size_t value = 0; sz = sizeof(value);
    if (mallctl("stats.allocated", &value, &sz, NULL, 0) != 0) return 0;
    return value;
}
int main(void) {
    size_t before = allocated();
    char *volatile block = malloc(64 << 20);
    block[0] = 1;
    size_t after = allocated();
    printf("%s %zu %zu %p\n", glm_version(), before, after, (void *)block);
    free(block);
    return after >= before + (64 << 20) ? 0 : 1;
}
''')
    exe = tmp_path / "alloc"
    build = run(["cc", "-O1", "-Iinclude", str(source), "-o", str(exe), "-Lbuild/lib", "-lglm",
                 "-Wl,-rpath," + str(ROOT / "build" / "lib"), "-Wl,--no-as-needed", "-ljemalloc"])
    assert build.returncode == 0, build.stderr
    result = run([str(exe)])
    assert result.returncode == 0, result.stdout + result.stderr
