// Quantisation of f32 rows to ggml block formats, as llama-quantize does it without an importance matrix.
//
// Goal: the bytes equal ggml's (ggml_quantize_chunk with imatrix == NULL, i.e. the quantize_row_*_ref paths of
// ggml-quants.c), so a GGUF written by libglm is byte-identical to llama-quantize's. ggml builds that file for
// baseline x86-64 (no FMA) and without -ffast-math, so each f32 operation is rounded on its own, in source order:
// here too, every expression keeps ggml's grouping ((a*b)*c is not a*(b*c)), sums run in index order, and
// contraction to FMA is off (this file is built with -march=x86-64-v3). Written from the algorithm's description
// in ggml-quants.c (scale search, rounding trick, packing), not copied.
//
// Float → small-integer casts: ggml converts with C casts, which x86 compilers emit as cvttss2si (truncation to
// int32; NaN and out-of-range give INT32_MIN) followed by keeping the low byte. trunc_i32() spells that out, so that
// out-of-range values (only reachable with Inf/NaN inputs) give the same bytes without undefined behaviour.
#include "glm_kernels.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

#define QK_K 256
#define GROUP_MAX_EPS 1e-15f

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// f32 → IEEE half, round to nearest even; NaN becomes the quiet NaN 0x7E00 with the sign kept (ggml's rule).
static uint16_t f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return sign | 0x7E00u;                  // NaN
    if (ax >= 0x477FF000u) return sign | 0x7C00u;                 // rounds to ≥ 65520: Inf (and Inf itself)
    if (ax < 0x38800000u) {                                       // below the smallest normal half (2^-14)
        if (ax < 0x33000000u) return sign;                        // < 2^-25: rounds to ±0
        // subnormal half: value / 2^-24 rounded to nearest even
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e;                                // bits to drop so the unit is 2^-24
        uint32_t q = m >> shift;
        uint32_t rest = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rest > half || (rest == half && (q & 1u))) q++;
        return sign | (uint16_t)q;
    }
    // normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even (a carry into the
    // exponent is the correct result, including the step up to Inf, excluded above).
    uint32_t h = ((ax >> 13) - (112u << 10));
    uint32_t rest = ax & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return sign | (uint16_t)h;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (man << 13));
    if (exp != 0) return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0) return bits_f32(sign);
    int shift = 0;
    while ((man & 0x400u) == 0) { man <<= 1; shift++; }
    man &= 0x3FFu;
    return bits_f32(sign | ((uint32_t)(113 - shift) << 23) | (man << 13));
}

static inline void store_f16(uint8_t *p, float f) {
    uint16_t h = f32_to_f16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static inline float load_f16(const uint8_t *p) { return f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

// cvttss2si itself: truncation toward zero; NaN and values outside int32 give INT32_MIN (no branch).
static inline int32_t trunc_i32(float f) { return _mm_cvttss_si32(_mm_set_ss(f)); }

// ggml's rounding trick: adding 1.5·2^23 puts the rounded integer (ties to even) in the low mantissa bits.
// Exact for |f| < 2^22; beyond that it still gives ggml's (meaningless but deterministic) bits.
static inline int nearest_int(float f) {
    float v = f + 12582912.0f;
    return (int)(f32_bits(v) & 0x007FFFFFu) - 0x00400000;
}

static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int imin(int a, int b) { return a < b ? a : b; }

// MARK: 32-element blocks

// The value of largest magnitude in a 32-element block (the first of equals) and that magnitude, as ggml's scalar
// loop finds it (`if (amax < |v|) { amax = |v|; max = v; }`: NaN never wins, all zeros leave max = +0). MAXPS
// returns its second operand when the first is NaN, so a NaN element never enters the running maximum either.
static inline float block_signed_max(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 32; j += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    float amax = _mm_cvtss_f32(h);
    if (!(amax > 0.0f)) return 0.0f;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) == amax) return x[j];
    return 0.0f;
}

// Q4_0 (nmax 8, clamp 15) and Q5_0 (16, 31) quants of a block, 8 at a time: x·id, + (nmax + 0.5), truncated to
// int32 (cvttps2dq: INT32_MIN for NaN and out of range, as cvttss2si), the low byte as int8, min(·, clamp) as int8,
// then the byte: low[j] | high[j] << 4 (Q5_0 keeps bit 4 of each for qh). Same f32 operations as ggml's loop.
static inline void block_quants_0(const float *x, float id, float offset, int clamp, int32_t lo[16], int32_t hi[16]) {
    const __m256 vid = _mm256_set1_ps(id), voff = _mm256_set1_ps(offset);
    const __m256i vclamp = _mm256_set1_epi32(clamp);
    for (int j = 0; j < 16; j += 8) {
        __m256i a = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), vid), voff));
        __m256i b = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16 + j), vid), voff));
        a = _mm256_min_epi32(_mm256_srai_epi32(_mm256_slli_epi32(a, 24), 24), vclamp);
        b = _mm256_min_epi32(_mm256_srai_epi32(_mm256_slli_epi32(b, 24), 24), vclamp);
        _mm256_storeu_si256((__m256i *)(lo + j), a);
        _mm256_storeu_si256((__m256i *)(hi + j), b);
    }
}

static void q_q4_0(const float *x, uint8_t *y) {
    float max = block_signed_max(x);
    float d = max / -8;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    int32_t lo[16], hi[16];
    block_quants_0(x, id, 8.5f, 15, lo, hi);
    for (int j = 0; j < 16; j++) y[2 + j] = (uint8_t)((uint8_t)lo[j] | (uint8_t)((uint8_t)hi[j] << 4));
}

static void q_q4_1(const float *x, uint8_t *y) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    float d = (max - min) / 15;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    store_f16(y + 2, min);
    for (int j = 0; j < 16; j++) {
        float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
        int8_t a = (int8_t)trunc_i32(x0 + 0.5f), b = (int8_t)trunc_i32(x1 + 0.5f);
        uint8_t q0 = (uint8_t)(a < 15 ? a : 15), q1 = (uint8_t)(b < 15 ? b : 15);
        y[4 + j] = (uint8_t)(q0 | (uint8_t)(q1 << 4));
    }
}

static void q_q5_0(const float *x, uint8_t *y) {
    float max = block_signed_max(x);
    float d = max / -16;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    int32_t lo[16], hi[16];
    block_quants_0(x, id, 16.5f, 31, lo, hi);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        uint8_t q0 = (uint8_t)lo[j], q1 = (uint8_t)hi[j];
        y[6 + j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        qh |= ((q0 & 0x10u) >> 4) << j;
        qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    y[2] = (uint8_t)qh; y[3] = (uint8_t)(qh >> 8); y[4] = (uint8_t)(qh >> 16); y[5] = (uint8_t)(qh >> 24);
}

static void q_q5_1(const float *x, uint8_t *y) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    float d = (max - min) / 31;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    store_f16(y + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
        uint8_t q0 = (uint8_t)trunc_i32(x0 + 0.5f), q1 = (uint8_t)trunc_i32(x1 + 0.5f);   // no clamp in ggml
        y[8 + j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        qh |= ((q0 & 0x10u) >> 4) << j;
        qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    y[4] = (uint8_t)qh; y[5] = (uint8_t)(qh >> 8); y[6] = (uint8_t)(qh >> 16); y[7] = (uint8_t)(qh >> 24);
}

static void q_q8_0(const float *x, uint8_t *y) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    float d = amax / 127;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(y, d);
    for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)(int8_t)trunc_i32(roundf(x[j] * id));
}

// MARK: scale searches of the K-quants

// The element of largest magnitude, with its sign (the first one on ties; 0 when all are zero or NaN).
static float signed_absmax(int n, const float *x) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    return max;
}

// Symmetric quants in [-nmax, nmax-1], weights x² (rmse_type 1, no importance matrix): a first scale from the
// largest magnitude, then 18 nearby scales, keeping the one with the best weighted least-squares fit.
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = signed_absmax(n, x);
    if (fabsf(max) < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)(-nmax) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Q3_K's search: a first rounding, then up to 5 passes that move single quants when that improves the fit.
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = signed_absmax(n, x);
    if (fabsf(max) < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)(-nmax) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int nl = nearest_int(x[i] * sl2 / slx);
                nl = imax(-nmax, imin(nmax - 1, nl));
                if (nl != L[i]) {
                    slx += w * x[i] * (float)nl;
                    sl2 += w * (float)nl * (float)nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Asymmetric quants in [0, nmax] with a min: a first scale from the range, then nstep+1 trial scales each fitted
// by weighted least squares (scale and min), keeping the smallest weighted error (|error| when use_mad).
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// MARK: 256-element super-blocks

// Layout: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
static void q_q2_k(const float *x, uint8_t *y) {
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    uint8_t *sc = y, *qs = y + 16;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
        scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
        float iscale = 15.0f / max_scale;
        for (int j = 0; j < 16; j++) sc[j] = (uint8_t)nearest_int(iscale * scales[j]);
        store_f16(y + 80, max_scale / 15.0f);
    } else {
        for (int j = 0; j < 16; j++) sc[j] = 0;
        store_f16(y + 80, 0.0f);
    }
    if (max_min > 0) {
        float iscale = 15.0f / max_min;
        for (int j = 0; j < 16; j++) sc[j] = (uint8_t)(sc[j] | (uint8_t)(nearest_int(iscale * mins[j]) << 4));
        store_f16(y + 82, max_min / 15.0f);
    } else {
        store_f16(y + 82, 0.0f);
    }
    float dall = load_f16(y + 80), dmin = load_f16(y + 82);
    for (int j = 0; j < 16; j++) {
        float d = dall * (float)(sc[j] & 0xF);
        if (d == 0.0f) continue;
        float dm = dmin * (float)(sc[j] >> 4);
        for (int i = 0; i < 16; i++) {
            int l = nearest_int((x[16 * j + i] + dm) / d);
            L[16 * j + i] = (uint8_t)imax(0, imin(3, l));
        }
    }
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// Layout: hmask[32], qs[64], scales[12] (6-bit, packed), d.
static void q_q3_k(const float *x, uint8_t *y) {
    int8_t L[QK_K];
    float scales[16];
    uint8_t *hmask = y, *qs = y + 32, *sc = y + 96;
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; j++) {
        scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
        float s = fabsf(scales[j]);
        if (s > amax) { amax = s; max_scale = scales[j]; }
    }
    memset(sc, 0, 12);
    if (max_scale != 0.0f) {
        float iscale = -32.0f / max_scale;
        for (int j = 0; j < 16; j++) {
            int8_t l = (int8_t)nearest_int(iscale * scales[j]);
            l = (int8_t)(imax(-32, imin(31, l)) + 32);
            if (j < 8) sc[j] = (uint8_t)(l & 0xF);
            else sc[j - 8] = (uint8_t)(sc[j - 8] | ((l & 0xF) << 4));
            l = (int8_t)(l >> 4);
            sc[j % 4 + 8] = (uint8_t)(sc[j % 4 + 8] | (l << (2 * (j / 4))));
        }
        store_f16(y + 108, 1 / iscale);
    } else {
        store_f16(y + 108, 0.0f);
    }
    float dall = load_f16(y + 108);
    for (int j = 0; j < 16; j++) {
        int8_t s = (int8_t)(j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4);
        s = (int8_t)((s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
        float d = dall * (float)s;
        if (d == 0.0f) continue;
        for (int i = 0; i < 16; i++) {
            int l = nearest_int(x[16 * j + i] / d);
            L[16 * j + i] = (int8_t)(imax(-4, imin(3, l)) + 4);
        }
    }
    memset(hmask, 0, 32);
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < QK_K; j++) {
        if (L[j] > 3) {
            hmask[m] |= hm;
            L[j] = (int8_t)(L[j] - 4);
        }
        if (++m == 32) { m = 0; hm = (uint8_t)(hm << 1); }
    }
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// The 6-bit scale/min pairs of Q4_K/Q5_K: sub-blocks 0..3 in the low 6 bits of bytes 0..7, 4..7 split into a
// nibble in bytes 8..11 and two bits on top of bytes 0..7.
static void pack_scale_min(uint8_t *s, const float *scales, const float *mins, float max_scale, float max_min) {
    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            s[j - 4] = (uint8_t)(s[j - 4] | ((ls >> 4) << 6));
            s[j] = (uint8_t)(s[j] | ((lm >> 4) << 6));
        }
    }
}

static void get_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Q4_K (nmax 15) and Q5_K (nmax 31): 8 sub-blocks of 32 with a scale and a min each. Fills L with the quants.
static void k_scale_min_quants(const float *x, uint8_t *y, uint8_t *L, int nmax, float rmin, int nstep) {
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    pack_scale_min(y + 4, scales, mins, max_scale, max_min);
    store_f16(y, max_scale / 63.0f);
    store_f16(y + 2, max_min / 63.0f);
    float dall = load_f16(y), dmin = load_f16(y + 2);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        get_scale_min(j, y + 4, &sc, &m);
        float d = dall * (float)sc;
        if (d == 0.0f) continue;
        float dm = dmin * (float)m;
        for (int i = 0; i < 32; i++) {
            int l = nearest_int((x[32 * j + i] + dm) / d);
            L[32 * j + i] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

// Layout: d, dmin, scales[12], qs[128].
static void q_q4_k(const float *x, uint8_t *y) {
    uint8_t L[QK_K];
    k_scale_min_quants(x, y, L, 15, -1.0f, 20);
    uint8_t *q = y + 16;
    for (int j = 0; j < QK_K; j += 64) {
        for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

// Layout: d, dmin, scales[12], qh[32], qs[128].
static void q_q5_k(const float *x, uint8_t *y) {
    uint8_t L[QK_K];
    k_scale_min_quants(x, y, L, 31, -0.5f, 15);
    uint8_t *qh = y + 16, *ql = y + 48;
    memset(qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64) {
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j];
            if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
            int l2 = L[n + j + 32];
            if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 = (uint8_t)(m1 << 2);
        m2 = (uint8_t)(m2 << 2);
        ql += 32;
    }
}

// Layout: ql[128], qh[64], scales[16] (int8), d.
static void q_q6_k(const float *x, uint8_t *y) {
    int8_t L[QK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
        float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
        scales[ib] = scale;
        float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) { max_abs_scale = abs_scale; max_scale = scale; }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, 210);
        return;
    }
    int8_t *sc = (int8_t *)(y + 192);
    float iscale = -128.0f / max_scale;
    store_f16(y + 208, 1 / iscale);
    for (int ib = 0; ib < 16; ib++) sc[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
    float dall = load_f16(y + 208);
    for (int j = 0; j < 16; j++) {
        float d = dall * (float)sc[j];
        if (d == 0.0f) continue;
        for (int i = 0; i < 16; i++) {
            int l = nearest_int(x[16 * j + i] / d);
            L[16 * j + i] = (int8_t)(imax(-32, imin(31, l)) + 32);
        }
    }
    uint8_t *ql = y, *qh = y + 128;
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; l++) {
            uint8_t q1 = (uint8_t)(L[j + l] & 0xF), q2 = (uint8_t)(L[j + l + 32] & 0xF);
            uint8_t q3 = (uint8_t)(L[j + l + 64] & 0xF), q4 = (uint8_t)(L[j + l + 96] & 0xF);
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)(((uint8_t)L[j + l] >> 4) | (((uint8_t)L[j + l + 32] >> 4) << 2)
                              | (((uint8_t)L[j + l + 64] >> 4) << 4) | (((uint8_t)L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

// MARK: dispatch

typedef void (*q_block_fn)(const float *, uint8_t *);

static int quant_layout(int type, int *block, int *bytes, q_block_fn *fn) {
    switch (type) {
    case GLM_GGML_Q4_0: *block = 32; *bytes = 18; *fn = q_q4_0; return 1;
    case GLM_GGML_Q4_1: *block = 32; *bytes = 20; *fn = q_q4_1; return 1;
    case GLM_GGML_Q5_0: *block = 32; *bytes = 22; *fn = q_q5_0; return 1;
    case GLM_GGML_Q5_1: *block = 32; *bytes = 24; *fn = q_q5_1; return 1;
    case GLM_GGML_Q8_0: *block = 32; *bytes = 34; *fn = q_q8_0; return 1;
    case GLM_GGML_Q2_K: *block = 256; *bytes = 84; *fn = q_q2_k; return 1;
    case GLM_GGML_Q3_K: *block = 256; *bytes = 110; *fn = q_q3_k; return 1;
    case GLM_GGML_Q4_K: *block = 256; *bytes = 144; *fn = q_q4_k; return 1;
    case GLM_GGML_Q5_K: *block = 256; *bytes = 176; *fn = q_q5_k; return 1;
    case GLM_GGML_Q6_K: *block = 256; *bytes = 210; *fn = q_q6_k; return 1;
    default: return 0;
    }
}

int glm_ggml_quantizable(int type) {
    int block, bytes;
    q_block_fn fn;
    return type == GLM_GGML_F32 || type == GLM_GGML_F16 || type == GLM_GGML_BF16
        || quant_layout(type, &block, &bytes, &fn);
}

int glm_quantize_blocks(int type, const float *src, void *dst, ptrdiff_t count) {
    uint8_t *p = (uint8_t *)dst;
    switch (type) {
    case GLM_GGML_F32:
        memcpy(dst, src, (size_t)count * 4);
        return 0;
    case GLM_GGML_F16:
        for (ptrdiff_t i = 0; i < count; i++) store_f16(p + 2 * i, src[i]);
        return 0;
    case GLM_GGML_BF16:
        // ggml's rounding to bf16: NaN keeps its sign and becomes quiet; otherwise round to nearest even.
        for (ptrdiff_t i = 0; i < count; i++) {
            uint32_t u = f32_bits(src[i]);
            uint16_t h;
            if ((u & 0x7FFFFFFFu) > 0x7F800000u) h = (uint16_t)((u >> 16) | 64);
            else h = (uint16_t)((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
            p[2 * i] = (uint8_t)h;
            p[2 * i + 1] = (uint8_t)(h >> 8);
        }
        return 0;
    default: break;
    }
    int block, bytes;
    q_block_fn fn;
    if (!quant_layout(type, &block, &bytes, &fn) || count % block != 0) return -1;
    for (ptrdiff_t i = 0; i < count / block; i++) fn(src + i * block, p + i * bytes);
    return 0;
}
