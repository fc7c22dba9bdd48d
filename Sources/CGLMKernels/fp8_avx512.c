// fp8.c's decode row kernel compiled a second time for AVX-512 F/BW (GLM_FP8_WIDE): its 32-code step runs on 512-bit
// vectors whose halves are the AVX2 build's two accumulators (fp8.c says how), so both builds give the same bits.
// This copy holds the row kernel only (glm_matmul_rows_fp8_avx512); fp8.c's glm_matmul_rows_fp8 calls it where the
// caller asks for the AVX-512 path and the CPU has it. The system headers come first, outside the target region.
#include "glm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define GLM_FP8_WIDE 1
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw"))), apply_to = function)
#include "fp8.c"
#pragma clang attribute pop
