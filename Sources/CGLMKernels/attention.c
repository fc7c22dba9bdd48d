// Attention of a few query rows (decode, speculative verification) for one KV head over a range of cache positions,
// keys and values read (and, for a non-f32 cache, converted) once for all the rows that share the head.
//
// Layout: the stacked query rows are the vector lanes (16 per vector), so that
//   scores   s[j][lane] = Σ_c q[lane][c] · k[j][c]          (one FMA chain over c per lane and key)
//   softmax  max, exp and sum per lane, across keys          (no horizontal operation anywhere)
//   output   acc[c][lane] = acc · corr + Σ_j p[j][lane] · v[j][c]   (one FMA chain over j per lane and c)
// GLM-4.7 stacks G = 12 query heads per KV head, so decode fills 12 of 16 lanes and a 4-token verification 48 of 48.
// Every lane's sums run in the same order whatever the lane, the number of rows and the vector width, so:
// - verification rows equal one-token decoding bit for bit (a row's result does not depend on the other rows);
// - this file compiled for AVX2 (16-lane vectors as two ymm) and again for AVX-512 (attention_avx512.c, one zmm)
//   gives the same bits: only element-wise IEEE operations, written once with clang's vector extension.
//
// Keys are taken in blocks of ATTN_KEY_BLOCK positions from `first` (fixed boundaries, so the online softmax's
// running max, and hence every bit, depends on the position range only). Per block: K and V heads to f32 rows in
// scratch (convert_head; copied for an f32 cache), scores, masked per lane beyond the lane's last visible position,
// online softmax update (as glm_softmax_online: z = s · scale, m' = max(m, max_j z_j), corr = exp(m − m'),
// p = exp(z − m'), l = l · corr + Σ_j p_j), then the value accumulation. GLM-4.7's f16 cache, one Zen 5 core:
// ~51 G multiply-adds/s at 32k positions, the two FMA passes at the FMA units' rate (BENCHMARKS.md).
#include "glm_kernels.h"
#include "glm_kv_cache.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// 16-lane vectors pass between always-inline helpers only, never across a real call: no ABI is involved.
#pragma clang diagnostic ignored "-Wpsabi"

#ifndef GLM_ATTN_WIDE
#define GLM_ATTN_WIDE 0
#endif

#if GLM_ATTN_WIDE
#define ATTN_FN(name) name##_avx512
// Register blocking (does not change any sum's order): keys per score pass, dims per value pass.
#define SCORE_KEYS 16
#define VALUE_DIMS 16
#else
#define ATTN_FN(name) name##_avx2
#define SCORE_KEYS 4
#define VALUE_DIMS 4
#endif

typedef float v16f __attribute__((ext_vector_type(16)));
typedef int32_t v16i __attribute__((ext_vector_type(16)));
typedef _Float16 v16h __attribute__((ext_vector_type(16)));
typedef uint16_t v16u16 __attribute__((ext_vector_type(16)));

#define ATTN_LANES 16
#define ATTN_KEY_BLOCK 32

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE v16f load16(const float *p) {
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

ALWAYS_INLINE void store16(float *p, v16f v) { memcpy(p, &v, sizeof v); }

ALWAYS_INLINE v16f fma16(v16f a, v16f b, v16f c) { return __builtin_elementwise_fma(a, b, c); }

// exp(x) per lane: the algorithm of kernels.c's exp8 (x = n·ln2 + r, degree-6 polynomial, 2^n via the exponent
// bits; 0 below the f32 underflow threshold and for −inf), with the same operations in the same order.
ALWAYS_INLINE v16f exp16(v16f x) {
    const v16f lo = (v16f)(-87.3365447505531f), hi = (v16f)(88.0f);
    v16i keep = x >= lo;
    x = __builtin_elementwise_min(__builtin_elementwise_max(x, lo), hi);
    v16f n = __builtin_elementwise_floor(fma16(x, (v16f)(1.44269504088896341f), (v16f)(0.5f)));
    v16f r = fma16(-n, (v16f)(0.693359375f), x);
    r = fma16(-n, (v16f)(-2.12194440e-4f), r);
    v16f p = (v16f)(1.9875691500e-4f);
    p = fma16(p, r, (v16f)(1.3981999507e-3f));
    p = fma16(p, r, (v16f)(8.3334519073e-3f));
    p = fma16(p, r, (v16f)(4.1665795894e-2f));
    p = fma16(p, r, (v16f)(1.6666665459e-1f));
    p = fma16(p, r, (v16f)(5.0000001201e-1f));
    v16f r2 = r * r;
    p = fma16(p, r2, r + (v16f)(1.0f));
    v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
    v16f y = p * (v16f)e;
    return (v16f)((v16i)y & keep);
}

// One cached head to f32 (exact): f32 copied, f16 and bf16 16 values per step in this build's vector width, Q8_0 by
// glm_kv_load.
ALWAYS_INLINE void convert_head(int kind, const uint8_t *src, float *dst, ptrdiff_t d) {
    ptrdiff_t c = 0;
    if (kind == GLM_KV_KIND_F32) {
        memcpy(dst, src, (size_t)d * sizeof(float));
        return;
    }
    if (kind == GLM_KV_KIND_F16) {
        for (; c + 16 <= d; c += 16) {
            v16h h;
            memcpy(&h, src + 2 * c, sizeof h);
            store16(dst + c, __builtin_convertvector(h, v16f));
        }
    } else if (kind == GLM_KV_KIND_BF16) {
        for (; c + 16 <= d; c += 16) {
            v16u16 h;
            memcpy(&h, src + 2 * c, sizeof h);
            store16(dst + c, (v16f)(__builtin_convertvector(h, v16i) << 16));
        }
    }
    if (c < d) glm_kv_load(kind, src, dst, d);   // Q8_0, or a head_dim that is not a multiple of 16
}

// scores[j][·] = Σ_c qt[c][·] · keys[j][c] for K keys from j (K independent FMA chains), one lane vector.
ALWAYS_INLINE void score_keys(const float *qt, ptrdiff_t ldqt, const float *keys, ptrdiff_t j, const int K,
                              ptrdiff_t d, float *scores, ptrdiff_t lds) {
    v16f acc[16];
    for (int k = 0; k < K; k++) acc[k] = (v16f)(0.0f);
    for (ptrdiff_t c = 0; c < d; c++) {
        v16f q = load16(qt + c * ldqt);
        for (int k = 0; k < K; k++) acc[k] = fma16(q, (v16f)(keys[(j + k) * d + c]), acc[k]);
    }
    for (int k = 0; k < K; k++) store16(scores + (j + k) * lds, acc[k]);
}

// The scores of the n keys of a block.
ALWAYS_INLINE void block_scores(const float *qt, ptrdiff_t ldqt, const float *keys, ptrdiff_t n, ptrdiff_t d,
                                float *scores, ptrdiff_t lds) {
    ptrdiff_t j = 0;
    for (; j + SCORE_KEYS <= n; j += SCORE_KEYS) score_keys(qt, ldqt, keys, j, SCORE_KEYS, d, scores, lds);
    for (; j + 4 <= n; j += 4) score_keys(qt, ldqt, keys, j, 4, d, scores, lds);
    for (; j < n; j++) score_keys(qt, ldqt, keys, j, 1, d, scores, lds);
}

// acc[c][·] = acc[c][·] · corr + Σ_j p[j][·] · values[j][c], j in order, for C dims from c; one lane vector.
ALWAYS_INLINE void value_dims(const float *p, ptrdiff_t ldp, const float *values, ptrdiff_t d, ptrdiff_t n,
                              ptrdiff_t c, const int C, v16f corr, float *acc, ptrdiff_t lda) {
    v16f a[16];
    for (int k = 0; k < C; k++) a[k] = load16(acc + (c + k) * lda) * corr;
    for (ptrdiff_t j = 0; j < n; j++) {
        v16f pj = load16(p + j * ldp);
        for (int k = 0; k < C; k++) a[k] = fma16(pj, (v16f)(values[j * d + c + k]), a[k]);
    }
    for (int k = 0; k < C; k++) store16(acc + (c + k) * lda, a[k]);
}

ALWAYS_INLINE void block_values(const float *p, ptrdiff_t ldp, const float *values, ptrdiff_t n, ptrdiff_t d,
                                v16f corr, float *acc, ptrdiff_t lda) {
    ptrdiff_t c = 0;
    for (; c + VALUE_DIMS <= d; c += VALUE_DIMS) value_dims(p, ldp, values, d, n, c, VALUE_DIMS, corr, acc, lda);
    for (; c + 4 <= d; c += 4) value_dims(p, ldp, values, d, n, c, 4, corr, acc, lda);
    for (; c < d; c++) value_dims(p, ldp, values, d, n, c, 1, corr, acc, lda);
}

// The two builds' entry points, internal to libglm (each runs only on a CPU with its instructions).
__attribute__((visibility("hidden"))) void glm_attend_rows_avx2(const struct glm_attend_rows_args *args,
                                                               float *scratch);
__attribute__((visibility("hidden"))) void glm_attend_rows_avx512(const struct glm_attend_rows_args *args,
                                                                 float *scratch);

void ATTN_FN(glm_attend_rows)(const struct glm_attend_rows_args *args, float *scratch) {
    const ptrdiff_t d = args->head_dim, rows = args->rows, group = args->group;
    const ptrdiff_t lanes = (rows + ATTN_LANES - 1) / ATTN_LANES * ATTN_LANES;
    const ptrdiff_t B = ATTN_KEY_BLOCK;
    // scratch (glm_attend_rows_scratch_floats): qt [d][lanes], acc [d][lanes], scores / p [B][16], max, sum and
    // limit [lanes] each, key and value rows [B][d] each.
    float *qt = scratch, *acc = qt + d * lanes, *scores = acc + d * lanes;
    float *row_max = scores + B * ATTN_LANES, *row_sum = row_max + lanes;
    int32_t *limit = (int32_t *)(row_sum + lanes);
    float *key_rows = (float *)(limit + lanes), *value_rows = key_rows + B * d;

    for (ptrdiff_t i = 0; i < lanes; i++) {
        const float *q = args->query + (i / group) * args->query_token_stride + (i % group) * args->query_head_stride;
        for (ptrdiff_t c = 0; c < d; c++) qt[c * lanes + i] = i < rows ? q[c] : 0;
        row_max[i] = -INFINITY;
        row_sum[i] = 0;
        // Padding lanes see nothing (their probabilities are all 0).
        limit[i] = i < rows ? (int32_t)(args->first_limit + i / group) : INT32_MIN;
    }
    memset(acc, 0, (size_t)(d * lanes) * sizeof(float));

    const v16f scale = (v16f)(args->scale);
    const v16f minus_infinity = (v16f)(-INFINITY);
    for (ptrdiff_t s0 = args->first; s0 < args->end; s0 += B) {
        const ptrdiff_t n = args->end - s0 < B ? args->end - s0 : B;
        // Each position's head converted to f32 rows (copied for an f32 cache: the kernels then see one layout,
        // rows d floats apart, so that with d a constant their addresses are base + constant offsets), with the
        // position one block ahead prefetched: a head is a few cache lines of each position's row (2 KiB apart in
        // GLM-4.7's f16 cache), a pattern the hardware prefetchers do not run far enough ahead on.
        const uint8_t *key_row = (const uint8_t *)args->keys + s0 * args->key_stride;
        const uint8_t *value_row = (const uint8_t *)args->values + s0 * args->value_stride;
        for (ptrdiff_t j = 0; j < n; j++) {
            if (s0 + B + j < args->end) {
                for (ptrdiff_t line = 0; line < args->key_head_bytes; line += 64)
                    __builtin_prefetch(key_row + (B + j) * args->key_stride + line);
                for (ptrdiff_t line = 0; line < args->value_head_bytes; line += 64)
                    __builtin_prefetch(value_row + (B + j) * args->value_stride + line);
            }
            convert_head(args->key_kind, key_row + j * args->key_stride, key_rows + j * d, d);
            convert_head(args->value_kind, value_row + j * args->value_stride, value_rows + j * d, d);
        }
        for (ptrdiff_t lane0 = 0; lane0 < lanes; lane0 += ATTN_LANES) {
            switch (d) {   // GLM's head sizes as constants (see above); any other size takes the general loops
            case 128: block_scores(qt + lane0, lanes, key_rows, n, 128, scores, ATTN_LANES); break;
            case 64: block_scores(qt + lane0, lanes, key_rows, n, 64, scores, ATTN_LANES); break;
            default: block_scores(qt + lane0, lanes, key_rows, n, d, scores, ATTN_LANES); break;
            }
            // z = s · scale, −inf where the lane's row does not see position s0 + j.
            v16i lim;
            memcpy(&lim, limit + lane0, sizeof lim);
            v16f old_max = load16(row_max + lane0), new_max = old_max;
            for (ptrdiff_t j = 0; j < n; j++) {
                v16i seen = (v16i)(int32_t)(s0 + j) < lim;
                v16f z = load16(scores + j * ATTN_LANES) * scale;
                z = (v16f)(((v16i)z & seen) | ((v16i)minus_infinity & ~seen));
                store16(scores + j * ATTN_LANES, z);
                new_max = __builtin_elementwise_max(new_max, z);
            }
            // A lane that has seen only −inf keeps shift 0 (its probabilities are 0, its correction exp(−inf) = 0);
            // one that sees no key of this block keeps its max, so its correction is exp(0) = 1 exactly.
            v16i none = new_max == minus_infinity;
            v16f shift = (v16f)((v16i)new_max & ~none);
            v16f corr = exp16(old_max - shift);
            v16f sum = load16(row_sum + lane0) * corr;
            for (ptrdiff_t j = 0; j < n; j++) {
                v16f p = exp16(load16(scores + j * ATTN_LANES) - shift);
                store16(scores + j * ATTN_LANES, p);
                sum = sum + p;
            }
            store16(row_sum + lane0, sum);
            store16(row_max + lane0, new_max);
            switch (d) {
            case 128: block_values(scores, ATTN_LANES, value_rows, n, 128, corr, acc + lane0, lanes); break;
            case 64: block_values(scores, ATTN_LANES, value_rows, n, 64, corr, acc + lane0, lanes); break;
            default: block_values(scores, ATTN_LANES, value_rows, n, d, corr, acc + lane0, lanes); break;
            }
        }
    }

    for (ptrdiff_t i = 0; i < rows; i++) {
        float *out = args->output + (i / group) * args->output_token_stride + (i % group) * args->output_head_stride;
        if (args->partial) {
            for (ptrdiff_t c = 0; c < d; c++) out[c] = acc[c * lanes + i];
            out[d] = row_max[i];
            out[d + 1] = row_sum[i];
        } else {
            const float inverse = row_sum[i] > 0 ? 1 / row_sum[i] : 0;
            for (ptrdiff_t c = 0; c < d; c++) out[c] = acc[c * lanes + i] * inverse;
        }
    }
}

#if !GLM_ATTN_WIDE

size_t glm_attend_rows_scratch_floats(ptrdiff_t head_dim, ptrdiff_t rows) {
    const size_t lanes = (size_t)(rows + ATTN_LANES - 1) / ATTN_LANES * ATTN_LANES;
    return 2 * (size_t)head_dim * lanes + ATTN_KEY_BLOCK * ATTN_LANES + 3 * lanes
        + 2 * (size_t)ATTN_KEY_BLOCK * (size_t)head_dim;
}

static int attn_cpu_avx512 = -1;   // -1: not yet checked

void glm_attend_rows(const struct glm_attend_rows_args *args, float *scratch, int avx512) {
    if (avx512 && attn_cpu_avx512 < 0) {
        __builtin_cpu_init();
        attn_cpu_avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    if (avx512 && attn_cpu_avx512 == 1) glm_attend_rows_avx512(args, scratch);
    else glm_attend_rows_avx2(args, scratch);
}
#endif
