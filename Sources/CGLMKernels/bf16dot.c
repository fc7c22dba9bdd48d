// bf16 weights times bf16-rounded inputs: how ggml multiplies a BF16 tensor on CPU (its vec_dot_type for BF16 is
// BF16: the activations are rounded to bf16 once, then every product of two bf16 numbers, exact in f32, is summed in
// f32). Where the CPU has AVX-512 BF16, vdpbf16ps does 32 such products per instruction straight from the stored
// weights: no conversion of either operand in the loop, half the bytes of f32 inputs (glm_kernels.h).
//
// Summation order of one output (any number of rows and tokens, any tiling: decode and prefill give the same bits):
// 16 f32 lanes; per block of 32 columns vdpbf16ps adds the pair (2i, 2i+1) of the block into lane i; the last block
// is zero-padded; then lanes i and i + 8 are added, and the 8 sums are reduced as kernels.c's hsum.
#include "glm_kernels.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

// MARK: rounding the inputs (AVX2, every CPU)

// Round to nearest even; NaN stays a (quiet) NaN; subnormal inputs become signed zero, as vdpbf16ps reads them
// (it treats bf16 denormals as zero), so both forms of the inputs below hold the same numbers.
ALWAYS_INLINE uint16_t round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Eight floats rounded as round_bf16, as the top halves of eight 32-bit lanes (low halves zero).
ALWAYS_INLINE __m256i round_bf16_8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i magnitude = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i is_nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7f800000));
    const __m256i is_subnormal =
        _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
    __m256i top = _mm256_and_si256(rounded, _mm256_set1_epi32((int)0xffff0000u));
    const __m256i nan = _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32((int)0xffff0000u)),
                                        _mm256_set1_epi32(0x00400000));
    const __m256i zero = _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000u));
    top = _mm256_blendv_epi8(top, nan, is_nan);
    return _mm256_blendv_epi8(top, zero, is_subnormal);
}

ptrdiff_t glm_bf16act_row_bytes(ptrdiff_t columns, int native) {
    if (columns <= 0) return 0;
    return native ? ((columns + 31) / 32) * 32 * 2 : columns * 4;
}

void glm_bf16act_round(const float *x, ptrdiff_t ldx, ptrdiff_t columns, ptrdiff_t tokens, void *act, int native) {
    const ptrdiff_t row_bytes = glm_bf16act_row_bytes(columns, native);
    for (ptrdiff_t t = 0; t < tokens; t++) {
        const float *src = x + t * ldx;
        char *row = (char *)act + t * row_bytes;
        ptrdiff_t c = 0;
        if (native) {
            uint16_t *dst = (uint16_t *)row;
            for (; c + 16 <= columns; c += 16) {
                // 32-bit lanes holding bf16 in their top halves: shift down, pack to 16 bits, restore lane order.
                const __m256i a = _mm256_srli_epi32(round_bf16_8(_mm256_loadu_ps(src + c)), 16);
                const __m256i b = _mm256_srli_epi32(round_bf16_8(_mm256_loadu_ps(src + c + 8)), 16);
                const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
                _mm256_storeu_si256((__m256i *)(dst + c), packed);
            }
            for (; c < columns; c++) dst[c] = round_bf16(src[c]);
            const ptrdiff_t padded = row_bytes / 2;
            for (; c < padded; c++) dst[c] = 0;
        } else {
            float *dst = (float *)row;
            for (; c + 8 <= columns; c += 8)
                _mm256_storeu_ps(dst + c, _mm256_castsi256_ps(round_bf16_8(_mm256_loadu_ps(src + c))));
            for (; c < columns; c++) {
                const uint32_t bits = (uint32_t)round_bf16(src[c]) << 16;
                memcpy(dst + c, &bits, sizeof bits);
            }
        }
    }
}

// MARK: the vdpbf16ps kernel (AVX-512 BF16)

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))), apply_to = function)

ALWAYS_INLINE float hsum16(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The tile: R weight rows × T tokens (R <= 4, T <= 6: 24 accumulators, 4 + 1 more registers), one accumulator per
// output, over the columns [k0, k1). The accumulators start at zero (first) or from `acc`, and end as sums in `y`
// (last) or back in `acc`: storing and reloading an f32 lane is exact, so splitting the columns into chunks leaves
// every output's order of summation as it was. `x` rows are zero-padded to a multiple of 32, so only the weights'
// last block needs a masked load (never reading past the stored row).
ALWAYS_INLINE void tile_bf16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t k0, ptrdiff_t k1, ptrdiff_t columns,
                             const uint16_t *x, ptrdiff_t ldx, __m512 *acc_store, int first, int last, float *y,
                             ptrdiff_t ldy, const int R, const int T) {
    __m512 acc[4][6];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = first ? _mm512_setzero_ps() : acc_store[r * 6 + t];
    ptrdiff_t k = k0;
    const ptrdiff_t full = k1 < columns ? k1 : columns - (columns - k0) % 32;
    for (; k < full; k += 32) {
        __m512bh wv[4];
        for (int r = 0; r < R; r++) wv[r] = (__m512bh)_mm512_loadu_si512((const void *)(w + r * ldw + k));
        for (int t = 0; t < T; t++) {
            const __m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(x + t * ldx + k));
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
        }
    }
    if (k < k1 && k < columns) {
        const __mmask32 mask = (__mmask32)((1ull << (columns - k)) - 1);
        __m512bh wv[4];
        for (int r = 0; r < R; r++) wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(mask, w + r * ldw + k);
        for (int t = 0; t < T; t++) {
            const __m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(x + t * ldx + k));
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            if (last) y[t * ldy + r] = hsum16(acc[r][t]);
            else acc_store[r * 6 + t] = acc[r][t];
        }
}

#define TILE_CASE(R, T) \
    case (R) * 8 + (T): tile_bf16(w, ldw, k0, k1, columns, x, ldx, acc, first, last, y, ldy, R, T); break;

static void tile_dispatch(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t k0, ptrdiff_t k1, ptrdiff_t columns,
                          const uint16_t *x, ptrdiff_t ldx, __m512 *acc, int first, int last, float *y,
                          ptrdiff_t ldy, int rows, int tokens) {
    switch (rows * 8 + tokens) {
    TILE_CASE(4, 6) TILE_CASE(4, 5) TILE_CASE(4, 4) TILE_CASE(4, 3) TILE_CASE(4, 2) TILE_CASE(4, 1)
    TILE_CASE(3, 6) TILE_CASE(3, 5) TILE_CASE(3, 4) TILE_CASE(3, 3) TILE_CASE(3, 2) TILE_CASE(3, 1)
    TILE_CASE(2, 6) TILE_CASE(2, 5) TILE_CASE(2, 4) TILE_CASE(2, 3) TILE_CASE(2, 2) TILE_CASE(2, 1)
    TILE_CASE(1, 6) TILE_CASE(1, 5) TILE_CASE(1, 4) TILE_CASE(1, 3) TILE_CASE(1, 2) TILE_CASE(1, 1)
    default: break;
    }
}

// Blocking (measured on Zen 5, 1536 × 5120 products): rows in blocks of 32 and tokens in groups of 48, and the
// columns in chunks of 2048, so that one chunk of a row block (128 KiB) stays in L2 while the tokens pass over it and
// a 6-token chunk of inputs (24 KiB) in L1 while the row block's 4-row tiles pass over it; the accumulators of a
// block wait in `scratch` between chunks (ROW_BLOCK × TOKEN_GROUP vectors, 96 KiB). In-cache products reach ~200
// multiply-adds per ns here, whole-row tiles over 5120 columns ~145; the chunks bring the latter to ~185. Without
// scratch (few tokens, or no memory), or with columns that fit one chunk, each tile runs over all the columns at
// once: the same sums in the same order.
// Decode (one token) takes one weight row at a time: the weights then stream from memory as one sequential read
// instead of four rows' interleaved streams. A 49152 × 5120 product from a mapped file on one core of an AMD EPYC
// Zen 4, 2026-12-08: 21.4 GB/s with 4-row tiles, 26.0 with 1-row tiles (2 tokens: 19.9 and 19.5; 3 and more:
// 1-row tiles slower, 11.5 vs 17.3). Same sums in the same order either way.
enum { ROW_BLOCK = 32, TOKEN_GROUP = 48, K_CHUNK = 2048, TILE_ROWS = 4, TILE_TOKENS = 6 };

static void matmul_bf16act_native(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                                  const uint16_t *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy,
                                  __m512 *scratch) {
    const ptrdiff_t chunk = scratch ? K_CHUNK : columns;
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
        const ptrdiff_t r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
        for (ptrdiff_t g0 = 0; g0 < tokens; g0 += TOKEN_GROUP) {
            const ptrdiff_t g1 = g0 + TOKEN_GROUP < tokens ? g0 + TOKEN_GROUP : tokens;
            for (ptrdiff_t k0 = 0; k0 < columns; k0 += chunk) {
                const ptrdiff_t k1 = k0 + chunk < columns ? k0 + chunk : columns;
                const int first = k0 == 0, last = k1 == columns;
                for (ptrdiff_t t = g0; t < g1; t += TILE_TOKENS) {
                    const int tn = g1 - t < TILE_TOKENS ? (int)(g1 - t) : TILE_TOKENS;
                    const int tile_rows = tokens == 1 ? 1 : TILE_ROWS;
                    for (ptrdiff_t r = r0; r < r1; r += tile_rows) {
                        const int rn = r1 - r < tile_rows ? (int)(r1 - r) : tile_rows;
                        __m512 *acc = scratch ? scratch + ((r - r0) / TILE_ROWS * (TOKEN_GROUP / TILE_TOKENS)
                                                           + (t - g0) / TILE_TOKENS) * (TILE_ROWS * TILE_TOKENS)
                                              : NULL;
                        tile_dispatch(w + r * ldw, ldw, k0, k1, columns, x + t * ldx, ldx, acc, first, last,
                                      y + t * ldy + r, ldy, rn, tn);
                    }
                }
            }
        }
    }
}

#pragma clang attribute pop

static int cpu_has_bf16 = -1;

int glm_bf16act_native_available(void) {
    if (cpu_has_bf16 < 0) {
        __builtin_cpu_init();
        cpu_has_bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
    }
    return cpu_has_bf16;
}

int glm_matmul_rows_bf16act(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns, const void *act,
                            ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    if (!glm_bf16act_native_available() || columns <= 0) return -1;
    const ptrdiff_t ldx = glm_bf16act_row_bytes(columns, 1) / 2;
    // Chunked columns only where they pay (more than one tile of tokens over more than one chunk); a failed
    // allocation runs unchunked, with the same results.
    __m512 *scratch = NULL;
    if (tokens > TILE_TOKENS && columns > K_CHUNK)
        scratch = aligned_alloc(64, sizeof(__m512) * ROW_BLOCK * TOKEN_GROUP);
    matmul_bf16act_native(w, ldw, rows, columns, (const uint16_t *)act, ldx, tokens, y, ldy, scratch);
    free(scratch);
    return 0;
}
