// What the processor running us can do, asked with CPUID and XGETBV. This target is compiled for baseline
// x86-64 (no -march): it is what decides whether the AVX2/AVX-512 kernels may run at all, so it must itself run
// on any x86-64 CPU.
#ifndef GLM_CPU_H
#define GLM_CPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Feature bits, set only when both the CPU and the operating system (XSAVE state enabled in XCR0) support them.
enum {
    GLM_CPU_AVX = 1u << 0,
    GLM_CPU_AVX2 = 1u << 1,
    GLM_CPU_FMA = 1u << 2,
    GLM_CPU_F16C = 1u << 3,
    GLM_CPU_AVX512F = 1u << 4,
    GLM_CPU_AVX512BW = 1u << 5,
    GLM_CPU_AVX512VL = 1u << 6,
    GLM_CPU_AVX512DQ = 1u << 7,
    GLM_CPU_AVX512_VNNI = 1u << 8,
    GLM_CPU_AVX512_BF16 = 1u << 9,
    GLM_CPU_AVX_VNNI = 1u << 10,
};

uint32_t glm_cpu_features(void);

// The processor's brand string ("AMD EPYC 9R14 96-Core Processor"), NUL-terminated, at most capacity-1 bytes;
// "" when the CPU does not report one.
void glm_cpu_brand(char *out, size_t capacity);

// The vendor id ("GenuineIntel", "AuthenticAMD"), NUL-terminated in out[13].
void glm_cpu_vendor(char out[13]);

// One PAUSE instruction (SSE2, so baseline x86-64): the spin-wait hint that lets a sibling hyperthread run and
// keeps a spinning core from flooding the memory pipeline.
static inline void glm_cpu_relax(void) { __builtin_ia32_pause(); }

#ifdef __cplusplus
}
#endif

#endif
