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

// A few input rows: each converted weight vector is used for four input rows before the next is loaded.
ALWAYS_INLINE void matmul_few_tokens(const void *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                                     const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy,
                                     enum storage_kind kind) {
    const ptrdiff_t vector_end = columns & ~(ptrdiff_t)7;
    for (ptrdiff_t r = 0; r < rows; r++) {
        const void *wr = row_at(w, r, ldw, kind);
        ptrdiff_t t = 0;
        for (; t + 4 <= tokens; t += 4) {
            const float *x0 = x + t * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            ptrdiff_t c = 0;
            for (; c < vector_end; c += 8) {
                __m256 wv = load8(wr, c, kind);
                a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + c), a0);
                a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + c), a1);
                a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + c), a2);
                a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + c), a3);
            }
            float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
            for (; c < columns; c++) {
                float wc = load1(wr, c, kind);
                s0 += wc * x0[c]; s1 += wc * x1[c]; s2 += wc * x2[c]; s3 += wc * x3[c];
            }
            y[t * ldy + r] = s0; y[(t + 1) * ldy + r] = s1;
            y[(t + 2) * ldy + r] = s2; y[(t + 3) * ldy + r] = s3;
        }
        for (; t < tokens; t++) {
            const float *xt = x + t * ldx;
            __m256 a = _mm256_setzero_ps();
            ptrdiff_t c = 0;
            for (; c < vector_end; c += 8) a = _mm256_fmadd_ps(load8(wr, c, kind), _mm256_loadu_ps(xt + c), a);
            float s = hsum(a);
            for (; c < columns; c++) s += load1(wr, c, kind) * xt[c];
            y[t * ldy + r] = s;
        }
    }
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
    const __m256 hi = _mm256_set1_ps(88.3762626647949f);
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

void glm_softmax(float *x, ptrdiff_t count) {
    if (count <= 0) return;
    float max = -INFINITY;
    for (ptrdiff_t i = 0; i < count; i++) max = x[i] > max ? x[i] : max;
    if (max == -INFINITY) max = 0;  // every entry masked: all probabilities become 0 below
    const __m256 m = _mm256_set1_ps(max);
    __m256 acc = _mm256_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum(acc);
    for (; i < count; i++) {
        x[i] = exp1(x[i] - max);
        sum += x[i];
    }
    float scale = sum > 0 ? 1.0f / sum : 0.0f;
    const __m256 s = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
    for (; i < count; i++) x[i] *= scale;
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

void glm_add(const float *x, float *y, ptrdiff_t count) {
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < count; i++) y[i] += x[i];
}

float glm_dot_f32(const float *x, const float *y, ptrdiff_t count) {
    __m256 acc = _mm256_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc);
    float sum = hsum(acc);
    for (; i < count; i++) sum += x[i] * y[i];
    return sum;
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
