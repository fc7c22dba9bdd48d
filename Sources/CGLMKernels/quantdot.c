// Integer dot products over Q8_0 / Q4_0 weights the way ggml's CPU backend computes them: the activation row is
// quantised to Q8_0 blocks (32 int8 values and an f16 scale), each block's products are summed exactly in int32
// (AVX2: sign trick + maddubs + madd), and the block sum enters the f32 accumulator scaled by d_w · d_x. The weights
// are read in place from the file's map and never widened to f32.
//
// Activation quantisation follows ggml's reference quantize_row_q8_0 (gguf-py quants.py Q8_0): d = amax / 127,
// q = roundf(x / d) (half away from zero, through the reciprocal 1/d), d stored as f16 rounded to nearest even.
// (ggml's AVX2 quantiser multiplies by 127/amax and rounds half to even instead; the two differ only where a value
// lies within an ulp of a rounding boundary.)
#include "glm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

#define QK 32
#define Q8_0_BYTES 34
#define Q4_0_BYTES 18

static inline float f16_to_f32(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    return _cvtsh_ss(h);
}

void glm_quantize_row_q8_0(const float *x, void *out, ptrdiff_t count) {
    uint8_t *y = (uint8_t *)out;
    for (ptrdiff_t b = 0; b < count / QK; b++, x += QK, y += Q8_0_BYTES) {
        float amax = 0.0f;
        int finite = 1;
        for (int j = 0; j < QK; j++) {
            float a = fabsf(x[j]);
            if (a > amax) amax = a;
            if (!isfinite(x[j])) finite = 0;
        }
        if (!finite) {
            // A NaN/Inf input must reach the output (the session reports non-finite logits): a NaN scale does it.
            y[0] = 0x00;
            y[1] = 0x7E;
            memset(y + 2, 0, QK);
            continue;
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        y[0] = (uint8_t)(h & 0xFF);
        y[1] = (uint8_t)(h >> 8);
        for (int j = 0; j < QK; j++) y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Σ over 32 lanes of a[i]·b[i] (signed int8 each) as 8 int32 partial sums, converted to float.
static inline __m256 dot32(__m256i a, __m256i b) {
    __m256i ua = _mm256_sign_epi8(a, a);          // |a| (as unsigned: -128 → 128)
    __m256i sb = _mm256_sign_epi8(b, a);          // b · sign(a)
    __m256i p16 = _mm256_maddubs_epi16(ua, sb);   // pairs, |.| ≤ 2·128·127 < 2^15: no saturation
    __m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(p32);
}

static float dot_q8_0_q8_0(const uint8_t *w, const uint8_t *x, ptrdiff_t blocks) {
    __m256 acc = _mm256_setzero_ps();
    for (ptrdiff_t b = 0; b < blocks; b++, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        __m256 scale = _mm256_set1_ps(f16_to_f32(w) * f16_to_f32(x));
        __m256i qw = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        acc = _mm256_fmadd_ps(scale, dot32(qw, qx), acc);
    }
    return hsum8(acc);
}

static float dot_q4_0_q8_0(const uint8_t *w, const uint8_t *x, ptrdiff_t blocks) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    for (ptrdiff_t b = 0; b < blocks; b++, w += Q4_0_BYTES, x += Q8_0_BYTES) {
        __m256 scale = _mm256_set1_ps(f16_to_f32(w) * f16_to_f32(x));
        __m128i packed = _mm_loadu_si128((const __m128i *)(w + 2));
        // elements 0..15 are the low nibbles, 16..31 the high nibbles (ggml's block_q4_0 order)
        __m256i nibbles = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
        __m256i qw = _mm256_sub_epi8(_mm256_and_si256(nibbles, low), eight);
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        acc = _mm256_fmadd_ps(scale, dot32(qw, qx), acc);
    }
    return hsum8(acc);
}

#define QDOT_STACK_BYTES 65536

int glm_matmul_rows_q8act(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                          const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    if ((type != GLM_GGML_Q8_0 && type != GLM_GGML_Q4_0) || columns % QK != 0) return -1;
    ptrdiff_t blocks = columns / QK;
    ptrdiff_t xq_bytes = blocks * Q8_0_BYTES;
    if (xq_bytes > QDOT_STACK_BYTES || blocks * (type == GLM_GGML_Q8_0 ? Q8_0_BYTES : Q4_0_BYTES) > row_bytes)
        return -1;
    uint8_t xq[QDOT_STACK_BYTES];
    ptrdiff_t group = QDOT_STACK_BYTES / xq_bytes;
    const uint8_t *base = (const uint8_t *)w;
    for (ptrdiff_t t0 = 0; t0 < tokens; t0 += group) {
        ptrdiff_t nt = tokens - t0 < group ? tokens - t0 : group;
        for (ptrdiff_t t = 0; t < nt; t++) glm_quantize_row_q8_0(x + (t0 + t) * ldx, xq + t * xq_bytes, columns);
        for (ptrdiff_t r = 0; r < rows; r++) {
            const uint8_t *row = base + r * row_bytes;
            for (ptrdiff_t t = 0; t < nt; t++) {
                y[(t0 + t) * ldy + r] = type == GLM_GGML_Q8_0 ? dot_q8_0_q8_0(row, xq + t * xq_bytes, blocks)
                                                              : dot_q4_0_q8_0(row, xq + t * xq_bytes, blocks);
            }
        }
    }
    return 0;
}
