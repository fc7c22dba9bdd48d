// attention.c compiled a second time with AVX-512 F: its 16-lane vectors become single zmm registers (two ymm in
// the AVX2 build). Same element-wise operations in the same order: the two builds give the same bits. The system
// headers come first, outside the target region.
#include "glm_kernels.h"
#include "glm_kv_cache.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define GLM_ATTN_WIDE 1
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#include "attention.c"
#pragma clang attribute pop
