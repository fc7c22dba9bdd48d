// quantdot.c compiled a second time, for CPUs with AVX-512 VNNI: every function of that file gets the target
// features below, and GLM_QDOT_VNNI makes its prefill panels sum with vpdpbusd (one instruction where AVX2 needs
// maddubs + add, or sign + sign + maddubs + madd for the signed weights, stored + 128 here) on the same 256-bit
// layout, with the same exact int32 sums and the same float operations in the same order: the two builds give the
// same bits. Only the panels are in this copy (quantdot.c leaves out activation quantisation, the row × token tiles
// and the entry points when GLM_QDOT_VNNI is set; its q8act_pre says why the tiles stay on AVX2); quantdot.c calls
// qdot_panel_vnni where the caller asks for the AVX-512 path and the CPU has it. The system headers come first,
// outside the target region, so that only quantdot.c's own functions are compiled for it.
#include "glm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GLM_QDOT_VNNI 1
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512vnni"))), \
                             apply_to = function)
#include "quantdot.c"
#pragma clang attribute pop
