// Implementation of glm_kernels.h. AVX2 + FMA + F16C (x86-64-v3); compiled with -O3 (Package.swift).
#include "glm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

// MARK: element loads, one per storage kind (the kind is a compile-time constant after inlining)

enum storage_kind { KIND_F32, KIND_BF16, KIND_F16 };

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE __m256 load8(const void *base, ptrdiff_t i, enum storage_kind kind) {
    switch (kind) {
    case KIND_F32:
        return _mm256_loadu_ps((const float *)base + i);
    case KIND_BF16: {
        // bf16 is the top 16 bits of an f32: widen to 32 bits and shift into place.
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)base + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case KIND_F16:
    default: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)base + i));
        return _mm256_cvtph_ps(h);
    }
    }
}

ALWAYS_INLINE float bf16_to_f32(uint16_t v) {
    uint32_t bits = (uint32_t)v << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

ALWAYS_INLINE float load1(const void *base, ptrdiff_t i, enum storage_kind kind) {
    switch (kind) {
    case KIND_F32:
        return ((const float *)base)[i];
    case KIND_BF16:
        return bf16_to_f32(((const uint16_t *)base)[i]);
    case KIND_F16:
    default:
        return _cvtsh_ss(((const uint16_t *)base)[i]);
    }
}

ALWAYS_INLINE const void *row_at(const void *base, ptrdiff_t row, ptrdiff_t ld, enum storage_kind kind) {
    size_t size = kind == KIND_F32 ? 4 : 2;
    return (const char *)base + (size_t)row * (size_t)ld * size;
}

ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// MARK: projections

// One input row (decode): four weight rows share each load of x, giving four independent FMA chains.
ALWAYS_INLINE void matmul_one_token(const void *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                                    const float *x, float *y, enum storage_kind kind) {
    const ptrdiff_t vector_end = columns & ~(ptrdiff_t)7;
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const void *w0 = row_at(w, r, ldw, kind), *w1 = row_at(w, r + 1, ldw, kind);
        const void *w2 = row_at(w, r + 2, ldw, kind), *w3 = row_at(w, r + 3, ldw, kind);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        ptrdiff_t c = 0;
        for (; c < vector_end; c += 8) {
            __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(load8(w0, c, kind), xv, a0);
            a1 = _mm256_fmadd_ps(load8(w1, c, kind), xv, a1);
            a2 = _mm256_fmadd_ps(load8(w2, c, kind), xv, a2);
            a3 = _mm256_fmadd_ps(load8(w3, c, kind), xv, a3);
        }
        float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
        for (; c < columns; c++) {
            s0 += load1(w0, c, kind) * x[c];
            s1 += load1(w1, c, kind) * x[c];
            s2 += load1(w2, c, kind) * x[c];
            s3 += load1(w3, c, kind) * x[c];
        }
        y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3;
    }
    for (; r < rows; r++) {
        const void *wr = row_at(w, r, ldw, kind);
        __m256 a = _mm256_setzero_ps();
        ptrdiff_t c = 0;
        for (; c < vector_end; c += 8) a = _mm256_fmadd_ps(load8(wr, c, kind), _mm256_loadu_ps(x + c), a);
        float s = hsum(a);
        for (; c < columns; c++) s += load1(wr, c, kind) * x[c];
        y[r] = s;
    }
}

// A block of R weight rows × T input rows (R·T ≤ 8 accumulators): each converted weight vector serves T input rows
// and each input vector R weight rows. Every output is summed in exactly matmul_one_token's order (one 8-lane FMA
// chain over the columns, hsum, then the scalar tail), so a token's result does not depend on how many tokens share
// the call: speculative decoding's verification rows equal one-token decoding bit for bit.
ALWAYS_INLINE void matmul_block(const void *w, ptrdiff_t ldw, ptrdiff_t r0, const int R, ptrdiff_t columns,
                                const float *x, ptrdiff_t ldx, ptrdiff_t t0, const int T, float *y, ptrdiff_t ldy,
                                enum storage_kind kind) {
    const ptrdiff_t vector_end = columns & ~(ptrdiff_t)7;
    const void *wr[4];
    const float *xt[4];
    __m256 acc[4][4];
    for (int i = 0; i < R; i++) {
        wr[i] = row_at(w, r0 + i, ldw, kind);
        for (int j = 0; j < T; j++) acc[i][j] = _mm256_setzero_ps();
    }
    for (int j = 0; j < T; j++) xt[j] = x + (t0 + j) * ldx;
    for (ptrdiff_t c = 0; c < vector_end; c += 8) {
        __m256 xv[4];
        for (int j = 0; j < T; j++) xv[j] = _mm256_loadu_ps(xt[j] + c);
        for (int i = 0; i < R; i++) {
            __m256 wv = load8(wr[i], c, kind);
            for (int j = 0; j < T; j++) acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < R; i++) {
        for (int j = 0; j < T; j++) {
            float s = hsum(acc[i][j]);
            for (ptrdiff_t c = vector_end; c < columns; c++) s += load1(wr[i], c, kind) * xt[j][c];
            y[(t0 + j) * ldy + r0 + i] = s;
        }
    }
}

// R weight rows from r0 against every input row, in blocks of up to four input rows (R·T ≤ 8).
ALWAYS_INLINE void matmul_row_group(const void *w, ptrdiff_t ldw, ptrdiff_t r0, const int R, ptrdiff_t columns,
                                    const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy,
                                    enum storage_kind kind) {
    for (ptrdiff_t t = 0; t < tokens;) {
        ptrdiff_t left = tokens - t;
        if (R <= 2 && left >= 4) { matmul_block(w, ldw, r0, R, columns, x, ldx, t, 4, y, ldy, kind); t += 4; }
        else if (R <= 2 && left == 3) { matmul_block(w, ldw, r0, R, columns, x, ldx, t, 3, y, ldy, kind); t += 3; }
        else if (left >= 2) { matmul_block(w, ldw, r0, R, columns, x, ldx, t, 2, y, ldy, kind); t += 2; }
        else { matmul_block(w, ldw, r0, R, columns, x, ldx, t, 1, y, ldy, kind); t += 1; }
    }
}

// A few input rows (fewer than the GEMM's threshold: speculative verification, experts that received few tokens):
// groups of weight rows against the input rows in blocks, six to eight independent FMA chains for 2-4 input rows
// (one chain per output was latency-bound: two tokens cost 2.7 single-token passes), each weight row read once.
ALWAYS_INLINE void matmul_few_tokens(const void *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                                     const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy,
                                     enum storage_kind kind) {
    ptrdiff_t r = 0;
    if (tokens == 2) {
        for (; r + 4 <= rows; r += 4) matmul_row_group(w, ldw, r, 4, columns, x, ldx, tokens, y, ldy, kind);
    } else {
        for (; r + 2 <= rows; r += 2) matmul_row_group(w, ldw, r, 2, columns, x, ldx, tokens, y, ldy, kind);
    }
    for (; r < rows; r++) matmul_row_group(w, ldw, r, 1, columns, x, ldx, tokens, y, ldy, kind);
}

ALWAYS_INLINE void matmul_rows(const void *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                               const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy,
                               enum storage_kind kind) {
    if (tokens == 1) matmul_one_token(w, ldw, rows, columns, x, y, kind);
    else matmul_few_tokens(w, ldw, rows, columns, x, ldx, tokens, y, ldy, kind);
}

void glm_matmul_rows_f32(const float *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                         const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    matmul_rows(w, ldw, rows, columns, x, ldx, tokens, y, ldy, KIND_F32);
}

void glm_matmul_rows_bf16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                          const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    matmul_rows(w, ldw, rows, columns, x, ldx, tokens, y, ldy, KIND_BF16);
}

void glm_matmul_rows_f16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                         const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    matmul_rows(w, ldw, rows, columns, x, ldx, tokens, y, ldy, KIND_F16);
}

// MARK: conversions

ALWAYS_INLINE void convert(const uint16_t *src, float *dst, ptrdiff_t count, enum storage_kind kind) {
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, load8(src, i, kind));
    for (; i < count; i++) dst[i] = load1(src, i, kind);
}

void glm_convert_bf16_to_f32(const uint16_t *src, float *dst, ptrdiff_t count) { convert(src, dst, count, KIND_BF16); }
void glm_convert_f16_to_f32(const uint16_t *src, float *dst, ptrdiff_t count) { convert(src, dst, count, KIND_F16); }

// MARK: exp, SiLU, softmax

// exp(x) for 8 lanes: x = n·ln2 + r with |r| <= ln2/2, exp(r) by a degree-6 polynomial (relative error about
// 2 ulp), 2^n through the exponent bits. Below the f32 underflow threshold (and for -inf) the result is 0.
ALWAYS_INLINE __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.0f);  // keeps 2^n finite
    const __m256 lo = _mm256_set1_ps(-87.3365447505531f);
    __m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

ALWAYS_INLINE float exp1(float x) {
    float in[8] = {x, 0, 0, 0, 0, 0, 0, 0}, out[8];
    _mm256_storeu_ps(out, exp8(_mm256_loadu_ps(in)));
    return out[0];
}

void glm_silu_mul(const float *gate, const float *up, float *out, ptrdiff_t count) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_xor_ps(g, sign))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    for (; i < count; i++) out[i] = gate[i] / (1.0f + exp1(-gate[i])) * up[i];
}

// x[i] = exp(x[i] - shift) for i < n, in place; returns their sum (8 lanes, then the tail). Shared by the softmax
// and the online softmax so that both sum in the same order.
static inline float exp_shifted(float *x, ptrdiff_t n, float shift) {
    const __m256 m = _mm256_set1_ps(shift);
    __m256 acc = _mm256_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum(acc);
    for (; i < n; i++) {
        x[i] = exp1(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

void glm_softmax(float *x, ptrdiff_t count) {
    if (count <= 0) return;
    float max = -INFINITY;
    for (ptrdiff_t i = 0; i < count; i++) max = x[i] > max ? x[i] : max;
    if (max == -INFINITY) max = 0;  // every entry masked: all probabilities become 0 below
    float sum = exp_shifted(x, count, max);
    ptrdiff_t i;
    float scale = sum > 0 ? 1.0f / sum : 0.0f;
    const __m256 s = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
    for (; i < count; i++) x[i] *= scale;
}

float glm_softmax_online(float *x, ptrdiff_t valid, ptrdiff_t count, float scale, float *running_max,
                         float *running_sum) {
    if (valid <= 0) {
        memset(x, 0, (size_t)count * sizeof(float));
        return 1.0f;
    }
    const __m256 sc = _mm256_set1_ps(scale);
    float max = *running_max;
    ptrdiff_t i = 0;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= valid; i += 8) {
        __m256 z = _mm256_mul_ps(_mm256_loadu_ps(x + i), sc);
        _mm256_storeu_ps(x + i, z);
        vmax = _mm256_max_ps(vmax, z);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    for (int j = 0; j < 8; j++) max = lanes[j] > max ? lanes[j] : max;
    for (; i < valid; i++) {
        x[i] *= scale;
        max = x[i] > max ? x[i] : max;
    }
    // A row whose visible scores are all -inf (never with finite q and k) keeps probability 0 everywhere.
    const float shift = max == -INFINITY ? 0.0f : max;
    const float correction = *running_max == -INFINITY ? 0.0f : exp1(*running_max - shift);
    float sum = exp_shifted(x, valid, shift);
    for (i = valid; i < count; i++) x[i] = 0;
    *running_sum = *running_sum * correction + sum;
    *running_max = max;
    return correction;
}

// MARK: norms and RoPE

void glm_rms_norm(const float *x, const float *w, float *y, ptrdiff_t count, float eps) {
    __m256 acc = _mm256_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    float sum = hsum(acc);
    for (; i < count; i++) sum += x[i] * x[i];
    // The reference multiplies x by the inverse root first and by the weight second.
    float inv = 1.0f / sqrtf(sum / (float)count + eps);
    const __m256 s = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= count; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), s);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(v, _mm256_loadu_ps(w + i)));
    }
    for (; i < count; i++) y[i] = (x[i] * inv) * w[i];
}

void glm_rope_neox(float *x, const float *cos_sin, ptrdiff_t half) {
    for (ptrdiff_t i = 0; i < half; i++) {
        float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
        float a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

// MARK: vector helpers

void glm_axpy(float a, const float *x, float *y, ptrdiff_t count) {
    const __m256 av = _mm256_set1_ps(a);
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < count; i++) y[i] += a * x[i];
}

void glm_scale(float *x, float a, ptrdiff_t count) {
    const __m256 av = _mm256_set1_ps(a);
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), av));
    for (; i < count; i++) x[i] *= a;
}

void glm_scale_add(float a, float *y, const float *x, ptrdiff_t count) {
    const __m256 av = _mm256_set1_ps(a);
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < count; i++) y[i] = fmaf(a, y[i], x[i]);
}

void glm_add(const float *x, float *y, ptrdiff_t count) {
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < count; i++) y[i] += x[i];
}

// MARK: bandwidth probes

float glm_stream_read(const float *x, ptrdiff_t count) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 32 <= count; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < count; i++) sum += x[i];
    return sum;
}

void glm_stream_triad(float *a, const float *b, const float *c, float s, ptrdiff_t count) {
    const __m256 sv = _mm256_set1_ps(s);
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(a + i, _mm256_fmadd_ps(sv, _mm256_loadu_ps(c + i), _mm256_loadu_ps(b + i)));
    for (; i < count; i++) a[i] = b[i] + s * c[i];
}

// MARK: packed GEMM for prefill
//
// y[t, n] = Σ_k x[t, k] · w[n, k]. Blocking (BLIS-style): for each block of KC columns, the weight rows of the call
// (<= GLM_GEMM_MAX_ROWS) are packed k-major into f32 panels [KC][NR] (the bf16/f16 conversion happens here); then blocks of MC
// input rows are packed into panels [KC][MR], and a micro-kernel keeps an MR×NR block of y in registers while it
// streams both panels. Padding rows/columns of the panels are zero and never stored. Two micro-kernels: 6×16 with
// AVX2 (12 ymm accumulators) and, where the CPU has it (checked at run time), 12×32 with AVX-512 (24 zmm). Both
// sum each output in the same order (k ascending, one FMA chain per KC block), so they give identical results.

enum { GEMM_KC = 256, GEMM_MC = 96 };  // MC is a multiple of both MRs

ptrdiff_t glm_gemm_scratch_floats(void) {
    return (ptrdiff_t)GEMM_KC * GLM_GEMM_MAX_ROWS + (ptrdiff_t)GEMM_KC * GEMM_MC + 16;  // + 64 bytes to align
}

// Transposes the 8×8 block r[0..8) in place: r[i][j] <- r[j][i].
ALWAYS_INLINE void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// packed[k * nr + j] = w[j, k0 + k] for the panel's rows (zero beyond `rows`), converting 8×8 blocks in registers.
// Also prefetches the same rows' next KC block, which the following call packs: the micro-kernels in between
// give the loads time to arrive (each row is a separate stream the hardware prefetcher loses track of).
ALWAYS_INLINE void pack_weight_panel(const void *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t k0, ptrdiff_t kc,
                                     ptrdiff_t columns, ptrdiff_t nr, float *packed, enum storage_kind kind) {
    const ptrdiff_t size = kind == KIND_F32 ? 4 : 2;
    const ptrdiff_t valid = rows < nr ? rows : nr;
    const ptrdiff_t next = k0 + kc, next_end = next + GEMM_KC < columns ? next + GEMM_KC : columns;
    for (ptrdiff_t j = 0; j < valid && next < columns; j++) {
        const char *row = (const char *)row_at(w, j, ldw, kind);
        for (ptrdiff_t k = next; k < next_end; k += 64 / size) _mm_prefetch(row + k * size, _MM_HINT_T0);
    }
    const ptrdiff_t vector_end = kc & ~(ptrdiff_t)7;
    for (ptrdiff_t half = 0; half < nr; half += 8) {
        const void *r[8];
        for (ptrdiff_t i = 0; i < 8; i++) r[i] = half + i < valid ? row_at(w, half + i, ldw, kind) : NULL;
        for (ptrdiff_t k = 0; k < vector_end; k += 8) {
            __m256 block[8];
            for (ptrdiff_t i = 0; i < 8; i++) block[i] = r[i] ? load8(r[i], k0 + k, kind) : _mm256_setzero_ps();
            transpose8(block);
            for (ptrdiff_t i = 0; i < 8; i++) _mm256_store_ps(packed + (k + i) * nr + half, block[i]);
        }
        for (ptrdiff_t k = vector_end; k < kc; k++) {
            for (ptrdiff_t i = 0; i < 8; i++) packed[k * nr + half + i] = r[i] ? load1(r[i], k0 + k, kind) : 0;
        }
    }
}

// packed[k * mr + i] = x[i, k0 + k] (zero beyond `tokens`), in 8×8 register transposes: groups of up to 8 rows,
// each transposed column stored with a masked store of the group's width.
static void pack_input_panel(const float *x, ptrdiff_t ldx, ptrdiff_t tokens, ptrdiff_t k0, ptrdiff_t kc,
                             ptrdiff_t mr, float *packed) {
    const ptrdiff_t vector_end = kc & ~(ptrdiff_t)7;
    for (ptrdiff_t g = 0; g < mr; g += 8) {
        const ptrdiff_t width = mr - g < 8 ? mr - g : 8;
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)width), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const float *r[8];
        for (ptrdiff_t i = 0; i < 8; i++) r[i] = i < width && g + i < tokens ? x + (g + i) * ldx + k0 : NULL;
        for (ptrdiff_t k = 0; k < vector_end; k += 8) {
            __m256 block[8];
            for (ptrdiff_t i = 0; i < 8; i++) block[i] = r[i] ? _mm256_loadu_ps(r[i] + k) : _mm256_setzero_ps();
            transpose8(block);
            for (ptrdiff_t i = 0; i < 8; i++) _mm256_maskstore_ps(packed + (k + i) * mr + g, mask, block[i]);
        }
        for (ptrdiff_t k = vector_end; k < kc; k++) {
            for (ptrdiff_t i = 0; i < width; i++) packed[k * mr + g + i] = r[i] ? r[i][k] : 0;
        }
    }
}

// y[0..m, 0..n] (+)= block[0..m, 0..n] (row stride nr).
static void store_block(const float *block, ptrdiff_t nr, float *y, ptrdiff_t ldy, int accumulate, ptrdiff_t m,
                        ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < m; i++) {
        float *out = y + i * ldy;
        const float *in = block + i * nr;
        ptrdiff_t j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 v = _mm256_loadu_ps(in + j);
            if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(out + j));
            _mm256_storeu_ps(out + j, v);
        }
        for (; j < n; j++) out[j] = accumulate ? out[j] + in[j] : in[j];
    }
}

typedef void (*micro_kernel)(ptrdiff_t kc, const float *a, const float *b, float *y, ptrdiff_t ldy,
                             int accumulate, ptrdiff_t m, ptrdiff_t n);

static void micro_kernel_6x16(ptrdiff_t kc, const float *a, const float *b, float *y, ptrdiff_t ldy,
                              int accumulate, ptrdiff_t m, ptrdiff_t n) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (ptrdiff_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 a0 = _mm256_broadcast_ss(a), a1 = _mm256_broadcast_ss(a + 1);
        c00 = _mm256_fmadd_ps(a0, b0, c00); c01 = _mm256_fmadd_ps(a0, b1, c01);
        c10 = _mm256_fmadd_ps(a1, b0, c10); c11 = _mm256_fmadd_ps(a1, b1, c11);
        a0 = _mm256_broadcast_ss(a + 2); a1 = _mm256_broadcast_ss(a + 3);
        c20 = _mm256_fmadd_ps(a0, b0, c20); c21 = _mm256_fmadd_ps(a0, b1, c21);
        c30 = _mm256_fmadd_ps(a1, b0, c30); c31 = _mm256_fmadd_ps(a1, b1, c31);
        a0 = _mm256_broadcast_ss(a + 4); a1 = _mm256_broadcast_ss(a + 5);
        c40 = _mm256_fmadd_ps(a0, b0, c40); c41 = _mm256_fmadd_ps(a0, b1, c41);
        c50 = _mm256_fmadd_ps(a1, b0, c50); c51 = _mm256_fmadd_ps(a1, b1, c51);
        a += 6;
        b += 16;
    }
    float block[6 * 16];
    _mm256_storeu_ps(block + 0, c00); _mm256_storeu_ps(block + 8, c01);
    _mm256_storeu_ps(block + 16, c10); _mm256_storeu_ps(block + 24, c11);
    _mm256_storeu_ps(block + 32, c20); _mm256_storeu_ps(block + 40, c21);
    _mm256_storeu_ps(block + 48, c30); _mm256_storeu_ps(block + 56, c31);
    _mm256_storeu_ps(block + 64, c40); _mm256_storeu_ps(block + 72, c41);
    _mm256_storeu_ps(block + 80, c50); _mm256_storeu_ps(block + 88, c51);
    store_block(block, 16, y, ldy, accumulate, m, n);
}

__attribute__((target("avx512f")))
static void micro_kernel_12x32(ptrdiff_t kc, const float *a, const float *b, float *y, ptrdiff_t ldy,
                               int accumulate, ptrdiff_t m, ptrdiff_t n) {
    __m512 lo[12], hi[12];
    for (int i = 0; i < 12; i++) { lo[i] = _mm512_setzero_ps(); hi[i] = _mm512_setzero_ps(); }
    for (ptrdiff_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        for (int i = 0; i < 12; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
            hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
        }
        a += 12;
        b += 32;
    }
    float block[12 * 32] __attribute__((aligned(64)));
    for (int i = 0; i < 12; i++) {
        _mm512_store_ps(block + i * 32, lo[i]);
        _mm512_store_ps(block + i * 32 + 16, hi[i]);
    }
    store_block(block, 32, y, ldy, accumulate, m, n);
}

// The AVX-512 micro-kernel runs only when the caller asked for it AND the CPU has it: a wrong request (a test,
// a caller that did not resolve the kernel path) then falls back to AVX2 instead of faulting.
static int cpu_has_avx512 = -1;   // -1: not yet checked

static int avx512_allowed(int requested) {
    if (!requested) return 0;
    if (cpu_has_avx512 < 0) { __builtin_cpu_init(); cpu_has_avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0; }
    return cpu_has_avx512;
}

// packed[k * nr + j] = b[(k0 + k) * ldb + j] for j < n (zero beyond): a panel of a [K][N] matrix (the attention
// values), already k-major, so packing is a copy.
static void pack_kn_panel(const float *b, ptrdiff_t ldb, ptrdiff_t n, ptrdiff_t k0, ptrdiff_t kc, ptrdiff_t nr,
                          float *packed) {
    const ptrdiff_t valid = n < nr ? n : nr;
    for (ptrdiff_t k = 0; k < kc; k++) {
        const float *row = b + (k0 + k) * ldb;
        float *out = packed + k * nr;
        ptrdiff_t j = 0;
        for (; j < valid; j++) out[j] = row[j];
        for (; j < nr; j++) out[j] = 0;
    }
}

// weights_kn = 0: w is [rows][columns] (row stride ldw), the projection layout; y = x · wᵀ.
// weights_kn = 1: w is [columns][rows] (row stride ldw), f32 only; y = x · w.
ALWAYS_INLINE void gemm(const void *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                        const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy,
                        float *scratch, enum storage_kind kind, int weights_kn, int avx512) {
    const int wide = avx512_allowed(avx512);
    const ptrdiff_t mr = wide ? 12 : 6, nr = wide ? 32 : 16;
    const micro_kernel kernel = wide ? micro_kernel_12x32 : micro_kernel_6x16;
    if (rows > GLM_GEMM_MAX_ROWS) rows = GLM_GEMM_MAX_ROWS;   // contract: callers tile; never write past it
    // The panels are read with aligned vector loads: start them on a 64-byte boundary (the slack is in the size).
    scratch = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *packed_w = scratch;                                   // [panels][KC][nr]
    float *packed_x = scratch + (ptrdiff_t)GEMM_KC * GLM_GEMM_MAX_ROWS;  // [MC / mr][KC][mr]
    const ptrdiff_t panels = (rows + nr - 1) / nr;
    for (ptrdiff_t k0 = 0; k0 < columns; k0 += GEMM_KC) {
        const ptrdiff_t kc = columns - k0 < GEMM_KC ? columns - k0 : GEMM_KC;
        for (ptrdiff_t p = 0; p < panels; p++) {
            if (weights_kn) {
                pack_kn_panel((const float *)w + p * nr, ldw, rows - p * nr, k0, kc, nr, packed_w + p * GEMM_KC * nr);
            } else {
                pack_weight_panel(row_at(w, p * nr, ldw, kind), ldw, rows - p * nr, k0, kc, columns, nr,
                                  packed_w + p * GEMM_KC * nr, kind);
            }
        }
        for (ptrdiff_t m0 = 0; m0 < tokens; m0 += GEMM_MC) {
            const ptrdiff_t mc = tokens - m0 < GEMM_MC ? tokens - m0 : GEMM_MC;
            const ptrdiff_t strips = (mc + mr - 1) / mr;
            for (ptrdiff_t s = 0; s < strips; s++) {
                pack_input_panel(x + (m0 + s * mr) * ldx, ldx, mc - s * mr, k0, kc, mr, packed_x + s * GEMM_KC * mr);
            }
            for (ptrdiff_t s = 0; s < strips; s++) {
                const ptrdiff_t m = mc - s * mr < mr ? mc - s * mr : mr;
                for (ptrdiff_t p = 0; p < panels; p++) {
                    const ptrdiff_t n = rows - p * nr < nr ? rows - p * nr : nr;
                    kernel(kc, packed_x + s * GEMM_KC * mr, packed_w + p * GEMM_KC * nr,
                           y + (m0 + s * mr) * ldy + p * nr, ldy, k0 > 0, m, n);
                }
            }
        }
    }
}

void glm_gemm_f32(const float *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                  const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, float *scratch,
                  int avx512) {
    gemm(w, ldw, rows, columns, x, ldx, tokens, y, ldy, scratch, KIND_F32, 0, avx512);
}

void glm_gemm_bf16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                   const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, float *scratch,
                   int avx512) {
    gemm(w, ldw, rows, columns, x, ldx, tokens, y, ldy, scratch, KIND_BF16, 0, avx512);
}

void glm_gemm_f16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                  const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, float *scratch,
                  int avx512) {
    gemm(w, ldw, rows, columns, x, ldx, tokens, y, ldy, scratch, KIND_F16, 0, avx512);
}

void glm_gemm_f32_kn(const float *w, ptrdiff_t ldw, ptrdiff_t columns_out, ptrdiff_t depth,
                     const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, float *scratch,
                     int avx512) {
    gemm(w, ldw, columns_out, depth, x, ldx, tokens, y, ldy, scratch, KIND_F32, 1, avx512);
}
