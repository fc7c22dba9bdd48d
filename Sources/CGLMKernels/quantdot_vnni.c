// quantdot.c compiled a second time, for CPUs with AVX-512 VNNI (and BW, for the 512-bit madd of the K panels):
// every function of that file gets the target features below, and GLM_QDOT_VNNI makes its kernels sum with vpdpbusd
// (one instruction where AVX2 needs maddubs + madd + add, or sign + sign + maddubs + madd for the signed weights of
// the panels, stored + 128 here), the row kernels on the same 256-bit layout, the prefill panels with 16 rows per
// 512-bit vector instead of 8 per 256-bit one, with the same exact int32 sums and the same float operations in the
// same order per output: the two builds give the same bits. This copy holds the products only (quantdot.c leaves out activation quantisation and the entry
// points when GLM_QDOT_VNNI is set); quantdot.c's q8act_run calls its qdot_pre_vnni where the caller asks for the
// AVX-512 path and the CPU has it, for the panels and the Q8_0-activation row kernels (q8act_run says why not the
// K-quants' row kernels). The system headers come first, outside the target region, so that only quantdot.c's own
// functions are compiled for it.
#include "glm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GLM_QDOT_VNNI 1
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni"))), \
                             apply_to = function)
#include "quantdot.c"
#pragma clang attribute pop
