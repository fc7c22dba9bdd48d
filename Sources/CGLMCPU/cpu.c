// CPUID-based feature detection; see glm_cpu.h for why this file is built without -march.
#include "glm_cpu.h"

#include <cpuid.h>
#include <string.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

uint32_t glm_cpu_features(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int osxsave = (ecx >> 27) & 1;
    if (!osxsave) return 0;   // the OS does not save vector registers: no AVX of any kind may run
    const uint64_t xcr0 = read_xcr0();
    const int ymm_state = (xcr0 & 0x6) == 0x6;          // SSE and AVX state
    const int zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM0-15 upper halves, ZMM16-31
    uint32_t features = 0;
    if (!ymm_state) return 0;
    if ((ecx >> 28) & 1) features |= GLM_CPU_AVX;
    if ((ecx >> 12) & 1) features |= GLM_CPU_FMA;
    if ((ecx >> 29) & 1) features |= GLM_CPU_F16C;
    unsigned int max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        if ((ebx >> 5) & 1) features |= GLM_CPU_AVX2;
        if (zmm_state) {
            if ((ebx >> 16) & 1) features |= GLM_CPU_AVX512F;
            if ((ebx >> 17) & 1) features |= GLM_CPU_AVX512DQ;
            if ((ebx >> 30) & 1) features |= GLM_CPU_AVX512BW;
            if ((ebx >> 31) & 1) features |= GLM_CPU_AVX512VL;
            if ((ecx >> 11) & 1) features |= GLM_CPU_AVX512_VNNI;
        }
        unsigned int sub_leaves = eax;
        if (sub_leaves >= 1) {
            __cpuid_count(7, 1, eax, ebx, ecx, edx);
            if ((eax >> 4) & 1) features |= GLM_CPU_AVX_VNNI;
            if (zmm_state && ((eax >> 5) & 1)) features |= GLM_CPU_AVX512_BF16;
        }
    }
    return features;
}

void glm_cpu_brand(char *out, size_t capacity) {
    if (capacity == 0) return;
    out[0] = 0;
    unsigned int regs[12];
    if (__get_cpuid_max(0x80000000, NULL) < 0x80000004) return;
    for (unsigned int i = 0; i < 3; i++) {
        __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    }
    char brand[49];
    memcpy(brand, regs, 48);
    brand[48] = 0;
    const char *start = brand;
    while (*start == ' ') start++;   // some CPUs right-align the string
    size_t n = strlen(start);
    while (n > 0 && start[n - 1] == ' ') n--;
    if (n >= capacity) n = capacity - 1;
    memcpy(out, start, n);
    out[n] = 0;
}

void glm_cpu_vendor(char out[13]) {
    unsigned int eax, ebx, ecx, edx;
    out[0] = 0;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return;
    memcpy(out, &ebx, 4);
    memcpy(out + 4, &edx, 4);
    memcpy(out + 8, &ecx, 4);
    out[12] = 0;
}
