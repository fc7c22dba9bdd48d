// Integer dot products over block-quantised weights (every type glm_dequantize handles) the way ggml's CPU backend computes them: the activation row is
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

// Two accumulators (even and odd blocks) so that consecutive blocks' FMAs do not wait on each other; dx holds the
// activation blocks' scales as f32 (converted once per input row, not once per weight row).
static float dot_q8_0_q8_0(const uint8_t *w, const uint8_t *x, const float *dx, ptrdiff_t blocks) {
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (ptrdiff_t b = 0; b < blocks; b++, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        __m256 scale = _mm256_set1_ps(f16_to_f32(w) * dx[b]);
        __m256i qw = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        acc[b & 1] = _mm256_fmadd_ps(scale, dot32(qw, qx), acc[b & 1]);
    }
    return hsum8(_mm256_add_ps(acc[0], acc[1]));
}

static float dot_q4_0_q8_0(const uint8_t *w, const uint8_t *x, const float *dx, ptrdiff_t blocks) {
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m256i low = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    for (ptrdiff_t b = 0; b < blocks; b++, w += Q4_0_BYTES, x += Q8_0_BYTES) {
        __m256 scale = _mm256_set1_ps(f16_to_f32(w) * dx[b]);
        __m128i packed = _mm_loadu_si128((const __m128i *)(w + 2));
        // elements 0..15 are the low nibbles, 16..31 the high nibbles (ggml's block_q4_0 order)
        __m256i nibbles = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
        __m256i qw = _mm256_sub_epi8(_mm256_and_si256(nibbles, low), eight);
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        acc[b & 1] = _mm256_fmadd_ps(scale, dot32(qw, qx), acc[b & 1]);
    }
    return hsum8(_mm256_add_ps(acc[0], acc[1]));
}

// Every other block type, generically: a weight block is unpacked 32 elements at a time into int8 values q and, for
// each group of 4 consecutive elements (one int32 lane of the AVX2 dot), a scale s and a min m such that the weight
// is s·q − m exactly as in dequant.c (s and m are the same f32 products). The group's contribution to the dot with a
// Q8_0 activation block (scale dx, values x) is dx·(s·Σ q·x − m·Σ x), the integer sums exact. unpack32 is the scalar
// definition; unpack32_simd does the same with vector shifts and lookups for every type, so unpack32 is the fallback
// a new type starts from.
static const int8_t kvalues_nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline float ld16(const uint8_t *p) { return f16_to_f32(p); }

static void k_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 0x3F;
        mn[j] = s[4 + j] & 0x3F;
        sc[j + 4] = (uint8_t)((s[8 + j] & 0x0F) | ((s[j] >> 2) & 0x30));
        mn[j + 4] = (uint8_t)((s[8 + j] >> 4) | ((s[4 + j] >> 2) & 0x30));
    }
}

// Returns 1 if the group has a min term.
static int unpack32(int type, const uint8_t *b, int g, int8_t q[32], float s[8], float m[8]) {
    for (int k = 0; k < 8; k++) m[k] = 0.0f;
    switch (type) {
    case GLM_GGML_Q4_1: {
        float d = ld16(b), mm = ld16(b + 2);
        for (int j = 0; j < 16; j++) { q[j] = (int8_t)(b[4 + j] & 0x0F); q[j + 16] = (int8_t)(b[4 + j] >> 4); }
        for (int k = 0; k < 8; k++) { s[k] = d; m[k] = -mm; }
        return 1;
    }
    case GLM_GGML_Q5_0: case GLM_GGML_Q5_1: {
        int one = type == GLM_GGML_Q5_1;
        float d = ld16(b), mm = one ? ld16(b + 2) : 0.0f;
        const uint8_t *h = b + (one ? 4 : 2), *qs = h + 4;
        uint32_t qh = (uint32_t)h[0] | ((uint32_t)h[1] << 8) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 24);
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(((qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - (one ? 0 : 16));
            q[j + 16] = (int8_t)(((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - (one ? 0 : 16));
        }
        for (int k = 0; k < 8; k++) { s[k] = d; m[k] = -mm; }
        return one;
    }
    case GLM_GGML_IQ4_NL: {
        float d = ld16(b);
        for (int j = 0; j < 16; j++) { q[j] = kvalues_nl[b[2 + j] & 0x0F]; q[j + 16] = kvalues_nl[b[2 + j] >> 4]; }
        for (int k = 0; k < 8; k++) s[k] = d;
        return 0;
    }
    case GLM_GGML_Q2_K: {
        const uint8_t *sc = b, *qs = b + 16;
        float d = ld16(b + 80), dmin = ld16(b + 82);
        int half = g / 4, shift = 2 * (g % 4);
        for (int l = 0; l < 32; l++) q[l] = (int8_t)((qs[half * 32 + l] >> shift) & 3);
        for (int k = 0; k < 8; k++) {
            int sub = 2 * g + k / 4;
            s[k] = d * (float)(sc[sub] & 0x0F);
            m[k] = dmin * (float)(sc[sub] >> 4);
        }
        return 1;
    }
    case GLM_GGML_Q3_K: {
        const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
        float d = ld16(b + 108);
        int half = g / 4, shift = 2 * (g % 4);
        for (int l = 0; l < 32; l++) {
            int ql = (qs[half * 32 + l] >> shift) & 3;
            int hb = ((hmask[l] >> g) & 1) ^ 1;
            q[l] = (int8_t)(ql - (hb << 2));
        }
        for (int k = 0; k < 8; k++) {
            int i = 2 * g + k / 4;
            int low = (i < 8 ? sc[i] : sc[i - 8] >> 4) & 0x0F;
            int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
            s[k] = d * (float)((int)(int8_t)(uint8_t)(low | (high << 4)) - 32);
        }
        return 0;
    }
    case GLM_GGML_Q4_K: case GLM_GGML_Q5_K: {
        float d = ld16(b), dmin = ld16(b + 2);
        uint8_t sc[8], mn[8];
        k_scales(b + 4, sc, mn);
        int five = type == GLM_GGML_Q5_K;
        const uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16) + (g / 2) * 32;
        int shift = 4 * (g % 2);
        for (int l = 0; l < 32; l++) {
            int v = (qs[l] >> shift) & 0x0F;
            if (five) v |= ((qh[l] >> g) & 1) << 4;
            q[l] = (int8_t)v;
        }
        float ds = d * (float)sc[g], dm = dmin * (float)mn[g];
        for (int k = 0; k < 8; k++) { s[k] = ds; m[k] = dm; }
        return 1;
    }
    case GLM_GGML_Q6_K: {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *scales = (const int8_t *)(b + 192);
        float d = ld16(b + 208);
        for (int l = 0; l < 32; l++) {
            int e = 32 * g + l, half = e / 128, within = e % 128;
            int low = (ql[half * 64 + within % 64] >> (4 * (within / 64))) & 0x0F;
            int high = (qh[half * 32 + within % 32] >> (2 * (within / 32))) & 0x03;
            q[l] = (int8_t)((low | (high << 4)) - 32);
        }
        for (int k = 0; k < 8; k++) s[k] = d * (float)scales[2 * g + k / 4];
        return 0;
    }
    case GLM_GGML_IQ4_XS: {
        float d = ld16(b);
        uint16_t scales_h = (uint16_t)(b[2] | (b[3] << 8));
        int low = (b[4 + g / 2] >> (4 * (g % 2))) & 0x0F;
        int high = (scales_h >> (2 * g)) & 0x03;
        float dl = d * (float)((low | (high << 4)) - 32);
        const uint8_t *qs = b + 8 + g * 16;
        for (int l = 0; l < 16; l++) { q[l] = kvalues_nl[qs[l] & 0x0F]; q[l + 16] = kvalues_nl[qs[l] >> 4]; }
        for (int k = 0; k < 8; k++) s[k] = dl;
        return 0;
    }
    default:
        return -1;
    }
}

// SIMD unpacking of one 32-element group for the types below: the same q, s and m as unpack32 (a table lookup for
// the IQ4 non-linear values, shifts and masks for the packed bits). Returns 1 with a min term, 0 without, -1 for a
// type it does not handle (unpack32 then does).
static inline __m256i nibbles_q4_0_order(const uint8_t *p) {   // 16 bytes → low nibbles then high nibbles
    __m128i packed = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
}

static inline __m256 two_scales(float lo, float hi) { return _mm256_set_m128(_mm_set1_ps(hi), _mm_set1_ps(lo)); }

static inline int unpack32_simd(int type, const uint8_t *b, int g, __m256i *qw, __m256 *sv, __m256 *mv) {
    const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    switch (type) {
    case GLM_GGML_Q4_1:
        *qw = nibbles_q4_0_order(b + 4);
        *sv = _mm256_set1_ps(ld16(b));
        *mv = _mm256_set1_ps(-ld16(b + 2));
        return 1;
    case GLM_GGML_Q5_0: case GLM_GGML_Q5_1: {
        int five1 = type == GLM_GGML_Q5_1;
        const uint8_t *h = b + (five1 ? 4 : 2);
        uint32_t qh;
        memcpy(&qh, h, 4);
        // byte i of the result = 0x10 where bit i of qh is set: spread byte i/8 of qh to byte i, test bit i % 8
        const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
        __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
        __m256i q = _mm256_or_si256(nibbles_q4_0_order(h + 4), _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
        *qw = five1 ? q : _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        *sv = _mm256_set1_ps(ld16(b));
        if (!five1) return 0;
        *mv = _mm256_set1_ps(-ld16(b + 2));
        return 1;
    }
    case GLM_GGML_IQ4_NL: {
        __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_nl));
        *qw = _mm256_shuffle_epi8(table, nibbles_q4_0_order(b + 2));
        *sv = _mm256_set1_ps(ld16(b));
        return 0;
    }
    case GLM_GGML_IQ4_XS: {
        __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_nl));
        *qw = _mm256_shuffle_epi8(table, nibbles_q4_0_order(b + 8 + g * 16));
        uint16_t scales_h = (uint16_t)(b[2] | (b[3] << 8));
        int low = (b[4 + g / 2] >> (4 * (g % 2))) & 0x0F;
        int high = (scales_h >> (2 * g)) & 0x03;
        *sv = _mm256_set1_ps(ld16(b) * (float)((low | (high << 4)) - 32));
        return 0;
    }
    case GLM_GGML_Q2_K: {
        const uint8_t *sc = b;
        float d = ld16(b + 80), dmin = ld16(b + 82);
        __m256i packed = _mm256_loadu_si256((const __m256i *)(b + 16 + (g / 4) * 32));
        *qw = _mm256_and_si256(_mm256_srl_epi16(packed, _mm_cvtsi32_si128(2 * (g % 4))), three);
        *sv = two_scales(d * (float)(sc[2 * g] & 0x0F), d * (float)(sc[2 * g + 1] & 0x0F));
        *mv = two_scales(dmin * (float)(sc[2 * g] >> 4), dmin * (float)(sc[2 * g + 1] >> 4));
        return 1;
    }
    case GLM_GGML_Q3_K: {
        const uint8_t *sc = b + 96;
        float d = ld16(b + 108);
        __m256i packed = _mm256_loadu_si256((const __m256i *)(b + 32 + (g / 4) * 32));
        __m256i ql = _mm256_and_si256(_mm256_srl_epi16(packed, _mm_cvtsi32_si128(2 * (g % 4))), three);
        __m256i hm = _mm256_loadu_si256((const __m256i *)b);
        __m256i hb = _mm256_xor_si256(_mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(g)), one), one);
        *qw = _mm256_sub_epi8(ql, _mm256_slli_epi16(hb, 2));
        float sub[2];
        for (int k = 0; k < 2; k++) {
            int i = 2 * g + k;
            int low = (i < 8 ? sc[i] : sc[i - 8] >> 4) & 0x0F;
            int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
            sub[k] = d * (float)((int)(int8_t)(uint8_t)(low | (high << 4)) - 32);
        }
        *sv = two_scales(sub[0], sub[1]);
        return 0;
    }
    case GLM_GGML_Q5_K: {
        float d = ld16(b), dmin = ld16(b + 2);
        uint8_t sc[8], mn[8];
        k_scales(b + 4, sc, mn);
        __m256i packed = _mm256_loadu_si256((const __m256i *)(b + 48 + (g / 2) * 32));
        __m256i lo = _mm256_and_si256(g % 2 ? _mm256_srli_epi16(packed, 4) : packed, _mm256_set1_epi8(0x0F));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
        __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(g)), one);
        *qw = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        *sv = _mm256_set1_ps(d * (float)sc[g]);
        *mv = _mm256_set1_ps(dmin * (float)mn[g]);
        return 1;
    }
    default:
        return -1;
    }
}

static int generic_layout(int type, int *block, int *bytes) {
    switch (type) {
    case GLM_GGML_Q4_1: *block = 32; *bytes = 20; return 1;
    case GLM_GGML_Q5_0: *block = 32; *bytes = 22; return 1;
    case GLM_GGML_Q5_1: *block = 32; *bytes = 24; return 1;
    case GLM_GGML_IQ4_NL: *block = 32; *bytes = 18; return 1;
    case GLM_GGML_Q2_K: *block = 256; *bytes = 84; return 1;
    case GLM_GGML_Q3_K: *block = 256; *bytes = 110; return 1;
    case GLM_GGML_Q4_K: *block = 256; *bytes = 144; return 1;
    case GLM_GGML_Q5_K: *block = 256; *bytes = 176; return 1;
    case GLM_GGML_Q6_K: *block = 256; *bytes = 210; return 1;
    case GLM_GGML_IQ4_XS: *block = 256; *bytes = 136; return 1;
    default: return 0;
    }
}

// Always inlined into dot_typed's cases, so that each type gets its own loop with the switch and divisions folded.
static inline __attribute__((always_inline)) float dot_generic(int type, const uint8_t *w, int block, int bytes,
                                                               const uint8_t *x, const float *dxs, ptrdiff_t groups) {
    __m256 acc = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();   // scale terms, min terms
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    int8_t q[32];
    float s[8], m[8];
    int per_block = block / QK;
    for (ptrdiff_t gi = 0; gi < groups; gi++, x += Q8_0_BYTES) {
        const uint8_t *b = w + (gi / per_block) * bytes;
        int g = (int)(gi % per_block);
        __m256i qw;
        __m256 sv, mv = _mm256_setzero_ps();
        int has_min = unpack32_simd(type, b, g, &qw, &sv, &mv);
        if (has_min < 0) {
            has_min = unpack32(type, b, g, q, s, m);
            qw = _mm256_loadu_si256((const __m256i *)q);
            sv = _mm256_loadu_ps(s);
            mv = _mm256_loadu_ps(m);
        }
        __m256 dx = _mm256_set1_ps(dxs[gi]);
        __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        acc = _mm256_fmadd_ps(_mm256_mul_ps(dx, sv), dot32(qw, qx), acc);
        if (has_min) {
            __m256 sx = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, qx), ones16));
            acc2 = _mm256_fnmadd_ps(_mm256_mul_ps(dx, mv), sx, acc2);
        }
    }
    return hsum8(_mm256_add_ps(acc, acc2));
}

// Q4_K and Q6_K (the types of the common Q4_K_M recipe) with SIMD unpacking: the same products as dot_generic, summed
// in two accumulators.
static float dot_q4_k(const uint8_t *w, const uint8_t *x, const float *dxs, ptrdiff_t blocks256) {
    __m256 acc = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0F), ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (ptrdiff_t b = 0; b < blocks256; b++, w += 144) {
        float d = f16_to_f32(w), dmin = f16_to_f32(w + 2);
        uint8_t sc[8], mn[8];
        k_scales(w + 4, sc, mn);
        for (int g = 0; g < 8; g++, x += Q8_0_BYTES) {
            __m256i packed = _mm256_loadu_si256((const __m256i *)(w + 16 + (g / 2) * 32));
            __m256i qw = _mm256_and_si256(g % 2 ? _mm256_srli_epi16(packed, 4) : packed, low);
            __m256 dx = _mm256_set1_ps(dxs[b * 8 + g]);
            __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
            acc = _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(d * (float)sc[g])), dot32(qw, qx), acc);
            __m256 sx = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, qx), ones16));
            acc2 = _mm256_fnmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(dmin * (float)mn[g])), sx, acc2);
        }
    }
    return hsum8(_mm256_add_ps(acc, acc2));
}

static float dot_q6_k(const uint8_t *w, const uint8_t *x, const float *dxs, ptrdiff_t blocks256) {
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m256i low = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3), bias = _mm256_set1_epi8(32);
    for (ptrdiff_t b = 0; b < blocks256; b++, w += 210) {
        const int8_t *scales = (const int8_t *)(w + 192);
        float d = f16_to_f32(w + 208);
        for (int g = 0; g < 8; g++, x += Q8_0_BYTES) {
            int half = g / 4, quarter = g % 4;
            __m256i ql = _mm256_loadu_si256((const __m256i *)(w + half * 64 + (quarter % 2) * 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(w + 128 + half * 32));
            ql = _mm256_and_si256(quarter / 2 ? _mm256_srli_epi16(ql, 4) : ql, low);
            qh = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * quarter)), three);
            __m256i qw = _mm256_sub_epi8(_mm256_or_si256(ql, _mm256_slli_epi16(qh, 4)), bias);
            __m256 sv = _mm256_set_m128(_mm_set1_ps(d * (float)scales[2 * g + 1]), _mm_set1_ps(d * (float)scales[2 * g]));
            __m256 dx = _mm256_set1_ps(dxs[b * 8 + g]);
            __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
            acc[g & 1] = _mm256_fmadd_ps(_mm256_mul_ps(dx, sv), dot32(qw, qx), acc[g & 1]);
        }
    }
    return hsum8(_mm256_add_ps(acc[0], acc[1]));
}

static float dot_typed(int type, const uint8_t *w, const uint8_t *x, const float *dxs, ptrdiff_t groups) {
    switch (type) {
    case GLM_GGML_Q4_1: return dot_generic(GLM_GGML_Q4_1, w, 32, 20, x, dxs, groups);
    case GLM_GGML_Q5_0: return dot_generic(GLM_GGML_Q5_0, w, 32, 22, x, dxs, groups);
    case GLM_GGML_Q5_1: return dot_generic(GLM_GGML_Q5_1, w, 32, 24, x, dxs, groups);
    case GLM_GGML_IQ4_NL: return dot_generic(GLM_GGML_IQ4_NL, w, 32, 18, x, dxs, groups);
    case GLM_GGML_Q2_K: return dot_generic(GLM_GGML_Q2_K, w, 256, 84, x, dxs, groups);
    case GLM_GGML_Q3_K: return dot_generic(GLM_GGML_Q3_K, w, 256, 110, x, dxs, groups);
    case GLM_GGML_Q5_K: return dot_generic(GLM_GGML_Q5_K, w, 256, 176, x, dxs, groups);
    case GLM_GGML_IQ4_XS: return dot_generic(GLM_GGML_IQ4_XS, w, 256, 136, x, dxs, groups);
    default: return 0.0f;   // not reached: glm_matmul_rows_q8act checked the type
    }
}

#define QDOT_STACK_BYTES 65536

int glm_matmul_rows_q8act(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                          const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    int gblock = QK, gbytes = 0;
    int special = type == GLM_GGML_Q8_0 || type == GLM_GGML_Q4_0;
    if (special) gbytes = type == GLM_GGML_Q8_0 ? Q8_0_BYTES : Q4_0_BYTES;
    else if (!generic_layout(type, &gblock, &gbytes)) return -1;
    if (columns % gblock != 0) return -1;
    ptrdiff_t blocks = columns / QK;
    ptrdiff_t xq_bytes = blocks * Q8_0_BYTES;
    if (xq_bytes > QDOT_STACK_BYTES || columns / gblock * gbytes > row_bytes) return -1;
    uint8_t xq[QDOT_STACK_BYTES];
    float dxs[QDOT_STACK_BYTES / Q8_0_BYTES];   // the activation blocks' scales as f32
    ptrdiff_t group = QDOT_STACK_BYTES / xq_bytes;
    const uint8_t *base = (const uint8_t *)w;
    for (ptrdiff_t t0 = 0; t0 < tokens; t0 += group) {
        ptrdiff_t nt = tokens - t0 < group ? tokens - t0 : group;
        for (ptrdiff_t t = 0; t < nt; t++) glm_quantize_row_q8_0(x + (t0 + t) * ldx, xq + t * xq_bytes, columns);
        for (ptrdiff_t i = 0; i < nt * blocks; i++) dxs[i] = f16_to_f32(xq + i * Q8_0_BYTES);
        for (ptrdiff_t r = 0; r < rows; r++) {
            const uint8_t *row = base + r * row_bytes;
            for (ptrdiff_t t = 0; t < nt; t++) {
                const uint8_t *xt = xq + t * xq_bytes;
                const float *dt = dxs + t * blocks;
                y[(t0 + t) * ldy + r] = type == GLM_GGML_Q8_0 ? dot_q8_0_q8_0(row, xt, dt, blocks)
                                      : type == GLM_GGML_Q4_0 ? dot_q4_0_q8_0(row, xt, dt, blocks)
                                      : type == GLM_GGML_Q4_K ? dot_q4_k(row, xt, dt, blocks / 8)
                                      : type == GLM_GGML_Q6_K ? dot_q6_k(row, xt, dt, blocks / 8)
                                      : dot_typed(type, row, xt, dt, blocks);
            }
        }
    }
    return 0;
}
