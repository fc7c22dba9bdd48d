// Implementation of glm_kv_cache.h. AVX2 + FMA + F16C (x86-64-v3), like kernels.c.
#include "glm_kv_cache.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

size_t glm_kv_head_bytes(int kind, ptrdiff_t head_dim) {
    switch (kind) {
    case GLM_KV_KIND_F32: return (size_t)head_dim * 4;
    case GLM_KV_KIND_Q8_0:
        return (size_t)((head_dim + GLM_KV_Q8_0_BLOCK - 1) / GLM_KV_Q8_0_BLOCK) * GLM_KV_Q8_0_BLOCK_BYTES;
    default: return (size_t)head_dim * 2;
    }
}

ALWAYS_INLINE uint16_t f32_to_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    // NaN: keep it a (quiet) NaN rather than let rounding carry it into infinity.
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7FFFu + ((bits >> 16) & 1u);   // round to nearest, ties to even
    return (uint16_t)(bits >> 16);
}

ALWAYS_INLINE float bf16_to_f32(uint16_t v) {
    uint32_t bits = (uint32_t)v << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

// ggml's quantize_row_q8_0_ref for one block of n <= 32 values (the rest of the block is zero): d = amax/127,
// q = roundf(x / d) (round half away from zero), d stored as f16 (round to nearest even).
static void store_q8_0_block(const float *x, ptrdiff_t n, uint8_t *block) {
    float amax = 0;
    for (ptrdiff_t j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    memcpy(block, &dh, 2);
    int8_t *qs = (int8_t *)(block + 2);
    for (ptrdiff_t j = 0; j < GLM_KV_Q8_0_BLOCK; j++) qs[j] = j < n ? (int8_t)roundf(x[j] * id) : 0;
}

static void store_head(int kind, const float *src, uint8_t *dst, ptrdiff_t d) {
    switch (kind) {
    case GLM_KV_KIND_F32:
        memcpy(dst, src, (size_t)d * 4);
        return;
    case GLM_KV_KIND_F16: {
        uint16_t *h = (uint16_t *)dst;
        ptrdiff_t j = 0;
        for (; j + 8 <= d; j += 8)
            _mm_storeu_si128((__m128i *)(h + j), _mm256_cvtps_ph(_mm256_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT));
        for (; j < d; j++) h[j] = _cvtss_sh(src[j], _MM_FROUND_TO_NEAREST_INT);
        return;
    }
    case GLM_KV_KIND_BF16: {
        uint16_t *h = (uint16_t *)dst;
        for (ptrdiff_t j = 0; j < d; j++) h[j] = f32_to_bf16(src[j]);
        return;
    }
    case GLM_KV_KIND_Q8_0:
    default:
        for (ptrdiff_t b = 0; b * GLM_KV_Q8_0_BLOCK < d; b++) {
            ptrdiff_t first = b * GLM_KV_Q8_0_BLOCK;
            ptrdiff_t n = d - first < GLM_KV_Q8_0_BLOCK ? d - first : GLM_KV_Q8_0_BLOCK;
            store_q8_0_block(src + first, n, dst + b * GLM_KV_Q8_0_BLOCK_BYTES);
        }
        return;
    }
}

void glm_kv_store(int kind, const float *src, void *dst, ptrdiff_t heads, ptrdiff_t head_dim) {
    size_t bytes = glm_kv_head_bytes(kind, head_dim);
    for (ptrdiff_t h = 0; h < heads; h++) store_head(kind, src + h * head_dim, (uint8_t *)dst + h * bytes, head_dim);
}

// One head to f32 (dst holds head_dim values).
ALWAYS_INLINE void load_head(int kind, const uint8_t *src, float *dst, ptrdiff_t d) {
    switch (kind) {
    case GLM_KV_KIND_F32:
        memcpy(dst, src, (size_t)d * 4);
        return;
    case GLM_KV_KIND_F16: {
        const uint16_t *h = (const uint16_t *)src;
        ptrdiff_t j = 0;
        for (; j + 8 <= d; j += 8)
            _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + j))));
        for (; j < d; j++) dst[j] = _cvtsh_ss(h[j]);
        return;
    }
    case GLM_KV_KIND_BF16: {
        const uint16_t *h = (const uint16_t *)src;
        ptrdiff_t j = 0;
        for (; j + 8 <= d; j += 8) {
            __m128i x = _mm_loadu_si128((const __m128i *)(h + j));
            _mm256_storeu_ps(dst + j, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(x), 16)));
        }
        for (; j < d; j++) dst[j] = bf16_to_f32(h[j]);
        return;
    }
    case GLM_KV_KIND_Q8_0:
    default:
        for (ptrdiff_t b = 0; b * GLM_KV_Q8_0_BLOCK < d; b++) {
            const uint8_t *block = src + b * GLM_KV_Q8_0_BLOCK_BYTES;
            uint16_t dh;
            memcpy(&dh, block, 2);
            const __m256 scale = _mm256_set1_ps(_cvtsh_ss(dh));
            const int8_t *qs = (const int8_t *)(block + 2);
            ptrdiff_t first = b * GLM_KV_Q8_0_BLOCK;
            ptrdiff_t n = d - first < GLM_KV_Q8_0_BLOCK ? d - first : GLM_KV_Q8_0_BLOCK;
            ptrdiff_t j = 0;
            for (; j + 8 <= n; j += 8) {
                __m128i q8 = _mm_loadl_epi64((const __m128i *)(qs + j));
                __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
                _mm256_storeu_ps(dst + first + j, _mm256_mul_ps(v, scale));
            }
            for (; j < n; j++) dst[first + j] = (float)qs[j] * _cvtsh_ss(dh);
        }
        return;
    }
}

void glm_kv_load(int kind, const void *src, float *dst, ptrdiff_t head_dim) {
    load_head(kind, (const uint8_t *)src, dst, head_dim);
}

void glm_kv_load_rows(int kind, const void *src, ptrdiff_t stride, ptrdiff_t count, float *dst, ptrdiff_t ldd,
                      ptrdiff_t head_dim) {
    for (ptrdiff_t s = 0; s < count; s++) load_head(kind, (const uint8_t *)src + s * stride, dst + s * ldd, head_dim);
}
