// C declarations glm-fuzz needs that no module of the Swift toolchain exports (and fuzz_support.c).
#include <stddef.h>
#include <stdint.h>

// libFuzzer's driver entry point (compiler-rt's FuzzerInterface.h). `-sanitize=fuzzer` links libFuzzer, which
// defines it; glm-fuzz has a main of its own so that one binary serves every target.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

// glibc's <sys/mman.h> declares it only under _GNU_SOURCE, which the Glibc module is not built with.
int memfd_create(const char *name, unsigned int flags);
