// quantdot.c compiled a third time, for CPUs with AVX-VNNI (the VEX-encoded vpdpbusd of Intel Alder Lake and later,
// its E-core Xeons without AVX-512, and AMD Zen 5): the AVX2 build's layout and code, with dot_u8s8 as vpdpbusd where
// that build takes maddubs + madd + add, the same exact int32 sums and the same float operations: the same bits.
// Like quantdot_vnni.c this copy holds the products only (qdot_pre_avxvnni); quantdot.c's q8act_run calls it for the
// Q8_0-activation types on the avx2 path where the CPU has AVX-VNNI (and says why not the K-quants). The system headers come first, outside the target region.
#include "glm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GLM_QDOT_AVXVNNI 1
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avxvnni"))), apply_to = function)
#include "quantdot.c"
#pragma clang attribute pop
