// Integer dot products over block-quantised weights (every type glm_dequantize handles) the way ggml's CPU backend
// computes them: the activation row is quantised once (Q8_0 blocks of 32 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/IQ4_NL, Q8_K
// blocks of 256 for the K-quants and IQ4_XS, the activation type ggml pairs with each), products are summed exactly
// in int32 with AVX2 (maddubs + madd), and the integer sums enter f32 scaled by the weight and activation scales. The
// weights are read in place from the file's map and never widened to f32.
//
// Two kernel families, each written once per type as an always-inlined body:
// - The row kernel: NR weight rows × NT activation rows read in place, so that one unpacked weight block serves NT
//   tokens and one activation block NR rows, with NR·NT independent accumulators (8 int32 lanes per output, summed
//   horizontally at the end). Decode runs 1×1 tiles (the drivers say why); from 4 tokens to the panel's threshold 1×4
//   (Q8_0-activation types) or 2×4 (K types) and the remainders 1×NT and NR×1. Every tile computes each output with the
//   same operations in the same order, so decode and the few-token rows of speculative verification agree bit for bit.
// - The panel kernel (from glm_q8act_panel_min_tokens tokens on, 5–8 by type: prefill and experts with that many
//   routed tokens; every type but Q4_1, Q5_1 and IQ4_XS, which keep the row × token tiles): 8 weight rows of a K range
//   are repacked into a stack panel (18–23 KiB, interleaved so that a vector's 32-bit lanes are the 8 rows, values
//   unpacked to bytes, scales as lane vectors) once per 64-token block, and an 8 rows × 4 tokens micro-kernel over it
//   spends one maddubs on 4 elements of 8 rows, and one conversion and one FMA per token and block on 8 rows (ggml's
//   AVX2 prefill does the same on weights repacked at load; here no copy outlives the call). Its float order (the MARK:
//   prefill panels sections give it) is per block one rounding of the exact int32 block sum, accumulated in block
//   order, the same for every tile shape, token block and K range; it is not the row kernel's order, so a prefill logit
//   and the same position decoded differ in the last bits (the tests check both against the exact product, the panel
//   also bit for bit against a scalar evaluation of its order). Decode was not moved to the panel's order (not tried
//   for lack of time): it would need a horizontal int32 reduction per block and row and one serial f32 FMA chain per
//   row (4-cycle latency × 160 blocks of a 5120-column row is the same order as the time that row takes to stream at
//   decode bandwidth), or row tiles that decode measured slower (the drivers' comment).
//
// On CPUs with AVX-512 VNNI, and when the caller asks for the avx512 kernel path, the panels and the Q8_0-activation
// row kernels run from a second build of this file (quantdot_vnni.c: vpdpbusd, Q8_0/IQ4_NL panels stored as w + 128)
// that gives the same bits (q8act_run says which and why). On the avx2 path, a CPU with AVX-VNNI (the VEX form:
// Intel Alder Lake and its E-core Xeons, which lack AVX-512; Zen 5) runs the Q8_0-activation types from a third build
// (quantdot_avxvnni.c): this build's layout and code with vpdpbusd as dot_u8s8, the same bits again.
//
// Activation quantisation follows ggml's reference quantisers: Q8_0 (quantize_row_q8_0_ref; gguf-py quants.py):
// d = amax / 127, q = roundf(x / d) (half away from zero, through the reciprocal 1/d), d rounded to f16 (nearest
// even). Q8_K (quantize_row_q8_K_ref, which ggml's x86 backend calls): with m the element of largest magnitude
// (first one), iscale = −127 / m, q = min(127, nearest-even(iscale · x)), d = 1 / iscale in f32, bsums = Σ q per 16.
// (ggml's AVX2 Q8_0 quantiser multiplies by 127/amax and rounds half to even instead; the two differ only where a
// value lies within an ulp of a rounding boundary.) A row with a NaN/Inf element gets a NaN scale, so the non-finite
// input reaches the output (the session reports non-finite logits) instead of vanishing in the rounding.
//
// Internal activation layout, per token row (glm_q8act_row_bytes apart, 32-byte aligned): int8 q[columns], then f32
// d[columns / B] (B = 32 or 256), then the sums: Q8_0 f32 d·Σq per block and int32 Σq per block (the panel kernel's
// offset terms); Q8_K int16 Σq per 16 (ggml's bsums).
#include "glm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma clang fp contract(off)

// 1 when this file is compiled as quantdot_vnni.c's second copy (AVX-512 VNNI); the kernels then use vpdpbusd
// where this build uses maddubs + madd, with the same exact int32 sums and the same float operations, so
// both builds give the same bits (the tests compare them).
#ifndef GLM_QDOT_VNNI
#define GLM_QDOT_VNNI 0
#endif
// 1 when compiled as quantdot_avxvnni.c's copy: this (AVX2) build with dot_u8s8 as the VEX vpdpbusd.
#ifndef GLM_QDOT_AVXVNNI
#define GLM_QDOT_AVXVNNI 0
#endif

#define QK 32
#define QK_K 256
#define Q8_0_BYTES 34

// Through a zero-extended vmovd: clang otherwise lowers an f16 load to a vpinsrw into whatever register it picks,
// often an accumulator, which chains every scale conversion to that accumulator's FMA latency.
static inline float f16_to_f32(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    __m128i v = _mm_cvtsi32_si128(h);
    __asm__("" : "+x"(v));   // materialise the zero-extended vector: keeps clang from a vpinsrw into a live register
    return _mm_cvtss_f32(_mm_cvtph_ps(v));
}

// acc + Σ u·s over each 32-bit lane's 4 byte pairs (u unsigned, s signed), exact in int32. maddubs sums two
// products in int16 with saturation; every caller keeps |u·s + u'·s'| ≤ 32512 (|s| ≤ 127, or u ≤ 128 against
// |s| ≤ 127), so its madd-widened sum equals vpdpbusd's, which has no int16 stage.
static inline __attribute__((always_inline)) __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if GLM_QDOT_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#elif GLM_QDOT_AVXVNNI
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// MARK: weight layouts

enum { ACT_Q8_0 = 0, ACT_Q8_K = 1 };

static inline int weight_layout(int type, int *block, int *bytes, int *act) {
    *act = ACT_Q8_0;
    switch (type) {
    case GLM_GGML_Q8_0: *block = 32; *bytes = 34; return 1;
    case GLM_GGML_Q4_0: *block = 32; *bytes = 18; return 1;
    case GLM_GGML_Q4_1: *block = 32; *bytes = 20; return 1;
    case GLM_GGML_Q5_0: *block = 32; *bytes = 22; return 1;
    case GLM_GGML_Q5_1: *block = 32; *bytes = 24; return 1;
    case GLM_GGML_IQ4_NL: *block = 32; *bytes = 18; return 1;
    default: break;
    }
    *act = ACT_Q8_K;
    switch (type) {
    case GLM_GGML_Q2_K: *block = 256; *bytes = 84; return 1;
    case GLM_GGML_Q3_K: *block = 256; *bytes = 110; return 1;
    case GLM_GGML_Q4_K: *block = 256; *bytes = 144; return 1;
    case GLM_GGML_Q5_K: *block = 256; *bytes = 176; return 1;
    case GLM_GGML_Q6_K: *block = 256; *bytes = 210; return 1;
    case GLM_GGML_IQ4_XS: *block = 256; *bytes = 136; return 1;
    default: return 0;
    }
}

// MARK: activation quantisation

typedef struct {
    ptrdiff_t row_bytes;   // bytes between token rows
    ptrdiff_t d_offset;    // byte offset of the f32 scales in a row
    ptrdiff_t s_offset;    // byte offset of the sums (Q8_0: f32 d·Σq per block; Q8_K: int16 Σq per 16)
    ptrdiff_t i_offset;    // Q8_0 only: byte offset of the int32 Σq per block (the panel kernel's offset terms)
} act_layout;

static inline act_layout activation_layout(int act, ptrdiff_t columns) {
    act_layout l;
    ptrdiff_t nd = act == ACT_Q8_0 ? columns / QK : columns / QK_K;
    ptrdiff_t s_bytes = act == ACT_Q8_0 ? 4 * (columns / QK) : 2 * (columns / 16);
    ptrdiff_t i_bytes = act == ACT_Q8_0 ? 4 * (columns / QK) : 0;
    l.d_offset = columns;
    l.s_offset = columns + 4 * nd;
    l.i_offset = l.s_offset + s_bytes;
    l.row_bytes = (l.i_offset + i_bytes + 31) / 32 * 32;
    return l;
}

// Rounds to the nearest integer, half away from zero (roundf), exactly, for |t| < 2^22.
static inline __m256 round_half_away(__m256 t) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign_bit, _mm256_sub_ps(t, r));             // |t − trunc(t)|, exact
    __m256 step = _mm256_or_ps(_mm256_and_ps(t, sign_bit), _mm256_set1_ps(1.0f));   // ±1 with t's sign
    return _mm256_add_ps(r, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step));
}

// 32 floats holding integers in [−128, 127] → 32 int8 in order.
static inline __m256i pack32(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256i ab = _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(b));
    __m256i cd = _mm256_packs_epi32(_mm256_cvtps_epi32(c), _mm256_cvtps_epi32(d));
    __m256i q = _mm256_packs_epi16(ab, cd);   // lanes interleaved by 32-bit groups: a0 b0 c0 d0 a1 b1 c1 d1
    return _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline int sum_i8_32(__m256i q) {
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h);
}

static inline int all_finite(const __m256 *v, int n) {
    __m256 bad = _mm256_setzero_ps();
    for (int i = 0; i < n; i++) bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_mul_ps(v[i], _mm256_setzero_ps()),
                                                                      _mm256_setzero_ps(), _CMP_NEQ_UQ));
    return _mm256_movemask_ps(bad) == 0;
}

#if !GLM_QDOT_VNNI && !GLM_QDOT_AVXVNNI   // the other builds' copies have only the products

// One 32-element Q8_0 block: q, the f16-rounded scale as f32, and Σq.
static void quantize_block_q8_0(const float *x, int8_t *q, float *d_out, int *sum) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 v[4];
    for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(x + 8 * i);
    if (!all_finite(v, 4)) {
        memset(q, 0, QK);
        *d_out = NAN;
        *sum = 0;
        return;
    }
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                             _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    __m256 idv = _mm256_set1_ps(id);
    __m256i qv = pack32(round_half_away(_mm256_mul_ps(v[0], idv)), round_half_away(_mm256_mul_ps(v[1], idv)),
                        round_half_away(_mm256_mul_ps(v[2], idv)), round_half_away(_mm256_mul_ps(v[3], idv)));
    _mm256_storeu_si256((__m256i *)q, qv);
    *d_out = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
    *sum = sum_i8_32(qv);
}

// One 256-element Q8_K block.
static void quantize_block_q8_k(const float *x, int8_t *q, float *d_out, int16_t *bsums) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 v[32];
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 32; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        m = _mm256_max_ps(m, _mm256_and_ps(v[i], abs_mask));
    }
    if (!all_finite(v, 32)) {
        memset(q, 0, QK_K);
        memset(bsums, 0, 32);
        *d_out = NAN;
        return;
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    if (amax == 0.0f) {
        memset(q, 0, QK_K);
        memset(bsums, 0, 32);
        *d_out = 0.0f;
        return;
    }
    float max = 0.0f;   // the first element whose magnitude is amax, with its sign
    for (int j = 0; j < QK_K; j++) {
        if (fabsf(x[j]) == amax) { max = x[j]; break; }
    }
    float iscale = -127.0f / max;
    __m256 is = _mm256_set1_ps(iscale);
    for (int i = 0; i < 8; i++) {
        __m256 r[4];
        // min(127, ·): −127/max · x can round to 128 only for x = −max·(1+ε), which the amax bound excludes; kept
        // as the reference has it.
        for (int k = 0; k < 4; k++) r[k] = _mm256_min_ps(_mm256_round_ps(_mm256_mul_ps(is, v[4 * i + k]),
                                                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                                        _mm256_set1_ps(127.0f));
        __m256i qv = pack32(r[0], r[1], r[2], r[3]);
        _mm256_storeu_si256((__m256i *)(q + 32 * i), qv);
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), qv), _mm256_set1_epi16(1));
        // s: 8 int32 sums of 4; 16-element sums are lanes (0+1+2+3) and (4+5+6+7)
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm_setzero_si128());
        __m128i hi = _mm256_extracti128_si256(s, 1);
        h = _mm_hadd_epi32(h, hi);          // lo0+lo1, lo2+lo3, hi0+hi1, hi2+hi3
        h = _mm_hadd_epi32(h, h);           // lo, hi, lo, hi
        bsums[2 * i] = (int16_t)_mm_cvtsi128_si32(h);
        bsums[2 * i + 1] = (int16_t)_mm_extract_epi32(h, 1);
    }
    *d_out = 1.0f / iscale;
}

ptrdiff_t glm_q8act_row_bytes(int type, ptrdiff_t columns) {
    int block, bytes, act;
    if (!weight_layout(type, &block, &bytes, &act) || columns <= 0 || columns % block != 0) return -1;
    return activation_layout(act, columns).row_bytes;
}

int glm_q8act_kind(int type) {
    int block, bytes, act;
    return weight_layout(type, &block, &bytes, &act) ? act : -1;
}

int glm_q8act_quantize(int type, const float *x, ptrdiff_t ldx, ptrdiff_t columns, ptrdiff_t tokens, void *out) {
    int block, bytes, act;
    if (!weight_layout(type, &block, &bytes, &act) || columns <= 0 || columns % block != 0) return -1;
    act_layout l = activation_layout(act, columns);
    for (ptrdiff_t t = 0; t < tokens; t++) {
        uint8_t *row = (uint8_t *)out + t * l.row_bytes;
        int8_t *q = (int8_t *)row;
        float *d = (float *)(row + l.d_offset);
        const float *xt = x + t * ldx;
        if (act == ACT_Q8_0) {
            float *ds = (float *)(row + l.s_offset);
            int32_t *is = (int32_t *)(row + l.i_offset);
            for (ptrdiff_t b = 0; b < columns / QK; b++) {
                int sum;
                quantize_block_q8_0(xt + b * QK, q + b * QK, d + b, &sum);
                ds[b] = d[b] * (float)sum;   // ggml's Q8_1 keeps the same product (as f16) for the min terms
                is[b] = sum;
            }
        } else {
            int16_t *s = (int16_t *)(row + l.s_offset);
            for (ptrdiff_t b = 0; b < columns / QK_K; b++)
                quantize_block_q8_k(xt + b * QK_K, q + b * QK_K, d + b, s + 16 * b);
        }
    }
    return 0;
}

void glm_quantize_row_q8_0(const float *x, void *out, ptrdiff_t count) {
    uint8_t *y = (uint8_t *)out;
    int8_t q[QK];
    for (ptrdiff_t b = 0; b < count / QK; b++, x += QK, y += Q8_0_BYTES) {
        float d;
        int sum;
        quantize_block_q8_0(x, q, &d, &sum);
        uint16_t h = isnan(d) ? 0x7E00 : _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        y[0] = (uint8_t)(h & 0xFF);
        y[1] = (uint8_t)(h >> 8);
        memcpy(y + 2, q, QK);
    }
}

int glm_quantize_row_q8_k(const float *x, void *out, ptrdiff_t count) {
    if (count % QK_K != 0) return -1;
    uint8_t *y = (uint8_t *)out;   // ggml's block_q8_K: f32 d, int8 qs[256], int16 bsums[16] (292 bytes)
    for (ptrdiff_t b = 0; b < count / QK_K; b++, x += QK_K, y += 292) {
        float d;
        int16_t bsums[16];
        quantize_block_q8_k(x, (int8_t *)(y + 4), &d, bsums);
        memcpy(y, &d, 4);
        memcpy(y + 260, bsums, 32);
    }
    return 0;
}

#endif   // !GLM_QDOT_VNNI && !GLM_QDOT_AVXVNNI

// MARK: Q8_0-activation kernels

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256i nibbles_q4_0_order(const uint8_t *p) {   // 16 bytes → low nibbles then high nibbles
    __m128i packed = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
}

static const int8_t kvalues_nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// One 32-element weight block of a Q8_0-activation type: values q (signed int8 when *is_signed, else unsigned 0..31),
// the f32 scale d and the offset m with weight = d·q + m. Q4_0 and Q5_0, whose values are signed, are taken unsigned
// with m = −8·d or −16·d: maddubs then needs no sign trick, and Σ m·x costs one scalar FMA per block (m · d_x·Σq_x).
static inline __attribute__((always_inline)) __m256i unpack_block32(int type, const uint8_t *b, float *d, float *m,
                                                                     int *is_signed) {
    *m = 0.0f;
    *is_signed = 0;
    switch (type) {
    case GLM_GGML_Q8_0:
        *d = f16_to_f32(b);
        *is_signed = 1;
        return _mm256_loadu_si256((const __m256i *)(b + 2));
    case GLM_GGML_Q4_0:
        *d = f16_to_f32(b);
        *m = -8.0f * *d;
        return nibbles_q4_0_order(b + 2);
    case GLM_GGML_Q4_1:
        *d = f16_to_f32(b);
        *m = f16_to_f32(b + 2);
        return nibbles_q4_0_order(b + 4);
    case GLM_GGML_IQ4_NL: {
        __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_nl));
        *d = f16_to_f32(b);
        *is_signed = 1;
        return _mm256_shuffle_epi8(table, nibbles_q4_0_order(b + 2));
    }
    default: {   // Q5_0, Q5_1
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
        *d = f16_to_f32(b);
        *m = five1 ? f16_to_f32(b + 2) : -16.0f * *d;
        return _mm256_or_si256(nibbles_q4_0_order(h + 4), _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    }
}

// NR rows × NT tokens over `blocks` 32-element blocks; y[t*ldy + r]. Per block and output: the int32 lanes of the
// block's products, converted and multiplied by d_w·d_x into an 8-lane f32 accumulator; offset terms (m·d_x·Σq_x)
// in a scalar f32 sum. Summation order per output is independent of NR and NT.
static inline __attribute__((always_inline)) void
q8_0act_block(int type, int NR, int NT, const uint8_t *w, ptrdiff_t row_bytes, int bytes, ptrdiff_t b,
              const uint8_t *act, act_layout l, __m256 acc[4][4], float macc[4][4]) {
    for (int r = 0; r < NR; r++) {
        const uint8_t *wb = w + r * row_bytes + b * bytes;
        float d, m;
        int is_signed;
        __m256i qw = unpack_block32(type, wb, &d, &m, &is_signed);
        __m256i uw = is_signed ? _mm256_sign_epi8(qw, qw) : qw;   // |w| (as unsigned: −128 → 128)
        for (int t = 0; t < NT; t++) {
            // The activation block is loaded here, per row, rather than once per block into NT registers: the
            // loads are cheap, and NR·NT accumulators plus NT live blocks would spill.
            const uint8_t *row = act + t * l.row_bytes;
            __m256i qx = _mm256_loadu_si256((const __m256i *)(row + b * QK));
            float dx = ((const float *)(row + l.d_offset))[b];
            __m256i sxv = is_signed ? _mm256_sign_epi8(qx, qw) : qx;   // x · sign(w)
            __m256i p = dot_u8s8(_mm256_setzero_si256(), uw, sxv);
            acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(p), acc[r][t]);
            if (type != GLM_GGML_Q8_0 && type != GLM_GGML_IQ4_NL)
                macc[r][t] = fmaf(m, ((const float *)(row + l.s_offset))[b], macc[r][t]);
        }
    }
}

// NR rows × NT tokens over `blocks` 32-element blocks; y[t*ldy + r]. Per block and output: the int32 lanes of the
// block's products, converted and multiplied by d_w·d_x into an 8-lane f32 accumulator; offset terms (m·d_x·Σq_x)
// in a scalar f32 sum. Even and odd blocks go to separate accumulators (summed at the end), so that consecutive
// blocks do not wait on each other's FMA: decode's one row has no other independent chain.
#if GLM_QDOT_VNNI
// The pair of blocks of a 4-bit type (Q4_0, Q4_1, IQ4_NL: an f16 d, for Q4_1 an f16 m, then 16 nibble bytes)
// straight into the 512-bit layout: each block's nibble bytes broadcast to two 128-bit lanes (one load each), the
// odd lanes shifted down by 4, then masked: lanes 0–3 hold block b's values 0–15, 16–31, block b + 1's likewise, as
// unpack_block32 gives them. The blocks' f16 scales (and Q4_1's offsets) go through one conversion.
static inline __attribute__((always_inline)) __m512i nibble_pair(const uint8_t *wb, int header, int bytes, __m128 *d,
                                                                 __m128 *m) {
    const __m256i n0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(wb + header)));
    const __m256i n1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(wb + bytes + header)));
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(n0), n1, 1);
    v = _mm512_mask_srli_epi16(v, (__mmask32)0xFF00FF00u, v, 4);
    uint16_t h0, h1;
    memcpy(&h0, wb, 2);
    memcpy(&h1, wb + bytes, 2);
    *d = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16)));
    if (header == 4) {   // Q4_1's m after its d
        memcpy(&h0, wb + 2, 2);
        memcpy(&h1, wb + bytes + 2, 2);
        *m = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16)));
    }
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}

// The VNNI build's pair of blocks b (even) and b + 1 (odd) in one 512-bit vector: lanes 0–7 are what
// q8_0act_block computes into the even accumulator, lanes 8–15 what it computes into the odd one, with the same
// integer sums (|w| × x·sign(w) per 4 bytes; x is not zeroed where w = 0, |w| is) and the same FMA per lane, so
// the bits are the AVX2 build's; one vpdpbusd, conversion and FMA serve two blocks. The scales d·d_x of both
// blocks are one 2-lane product, and the offset terms (m·d_x·Σq_x) two lanes of one FMA (lane 0 the even blocks'
// chain, lane 1 the odd blocks'): each lane the scalar operation q8_0act_block does, so the same bits.
static inline __attribute__((always_inline)) void
q8_0act_pair(int type, int NR, int NT, const uint8_t *w, ptrdiff_t row_bytes, int bytes, ptrdiff_t b,
             const uint8_t *act, act_layout l, __m512 acc[4][4], __m128 macc[4][4]) {
    // lanes 0–7 ← lane 0 (the even block's d·d_x), lanes 8–15 ← lane 1
    const __m512i halves = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const int has_offset = type != GLM_GGML_Q8_0 && type != GLM_GGML_IQ4_NL;
    for (int r = 0; r < NR; r++) {
        const uint8_t *wb = w + r * row_bytes + b * bytes;
        __m512i qw;
        __m128 d, m = _mm_setzero_ps();
        int is_signed;
        if (type == GLM_GGML_Q4_0 || type == GLM_GGML_Q4_1 || type == GLM_GGML_IQ4_NL) {
            qw = nibble_pair(wb, type == GLM_GGML_Q4_1 ? 4 : 2, bytes, &d, &m);   // m: Q4_1's
            is_signed = type == GLM_GGML_IQ4_NL;
            if (type == GLM_GGML_Q4_0) m = _mm_mul_ps(d, _mm_set1_ps(-8.0f));
            if (type == GLM_GGML_IQ4_NL)
                qw = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)kvalues_nl)), qw);
        } else {
            float d0, m0, d1, m1;
            int is_signed1;
            const __m256i q0 = unpack_block32(type, wb, &d0, &m0, &is_signed);
            const __m256i q1 = unpack_block32(type, wb + bytes, &d1, &m1, &is_signed1);
            qw = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
            d = _mm_setr_ps(d0, d1, 0.0f, 0.0f);
            if (has_offset) m = _mm_setr_ps(m0, m1, 0.0f, 0.0f);
        }
        const __m512i uw = is_signed ? _mm512_abs_epi8(qw) : qw;   // |w| (as unsigned: −128 → 128)
        const __mmask64 negative = _mm512_movepi8_mask(qw);
        for (int t = 0; t < NT; t++) {
            const uint8_t *row = act + t * l.row_bytes;
            const __m512i qx = _mm512_loadu_si512((const void *)(row + b * QK));   // blocks b and b + 1
            const __m128 dx = _mm_castpd_ps(_mm_load_sd((const double *)((const float *)(row + l.d_offset) + b)));
            const __m512i sxv = is_signed ? _mm512_mask_sub_epi8(qx, negative, _mm512_setzero_si512(), qx) : qx;
            const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), uw, sxv);
            // d·d_x per block, as the scalar products of q8_0act_block, spread over the block's eight lanes
            const __m512 scale = _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(_mm_mul_ps(d, dx)));
            acc[r][t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(p), acc[r][t]);
            if (has_offset) {   // lane 0: the even blocks' offset chain, lane 1: the odd blocks'
                const __m128 sx =
                    _mm_castpd_ps(_mm_load_sd((const double *)((const float *)(row + l.s_offset) + b)));
                macc[r][t] = _mm_fmadd_ps(m, sx, macc[r][t]);
            }
        }
    }
}
#endif

static inline __attribute__((always_inline)) void
tile_q8_0act(int type, int NR, int NT, const uint8_t *w, ptrdiff_t row_bytes, int bytes, ptrdiff_t blocks,
             const uint8_t *act, act_layout l, float *y, ptrdiff_t ldy) {
#if GLM_QDOT_VNNI
    {
        __m512 acc[4][4];
        __m128 pair_macc[4][4];
        float macc[2][4][4];
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) { acc[r][t] = _mm512_setzero_ps(); pair_macc[r][t] = _mm_setzero_ps(); }
        ptrdiff_t b = 0;
        for (; b + 2 <= blocks; b += 2) q8_0act_pair(type, NR, NT, w, row_bytes, bytes, b, act, l, acc, pair_macc);
        __m256 even[4][4], odd[4][4];
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) {
                even[r][t] = _mm512_castps512_ps256(acc[r][t]);
                odd[r][t] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r][t]), 1));
                macc[0][r][t] = _mm_cvtss_f32(pair_macc[r][t]);
                macc[1][r][t] = _mm_cvtss_f32(_mm_movehdup_ps(pair_macc[r][t]));
            }
        if (b < blocks) q8_0act_block(type, NR, NT, w, row_bytes, bytes, b, act, l, even, macc[0]);
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++)
                y[t * ldy + r] = hsum8(_mm256_add_ps(even[r][t], odd[r][t])) + (macc[0][r][t] + macc[1][r][t]);
        return;
    }
#endif
    __m256 acc[2][4][4];
    float macc[2][4][4];
    for (int p = 0; p < 2; p++)
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) { acc[p][r][t] = _mm256_setzero_ps(); macc[p][r][t] = 0.0f; }
    ptrdiff_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        q8_0act_block(type, NR, NT, w, row_bytes, bytes, b, act, l, acc[0], macc[0]);
        q8_0act_block(type, NR, NT, w, row_bytes, bytes, b + 1, act, l, acc[1], macc[1]);
    }
    if (b < blocks) q8_0act_block(type, NR, NT, w, row_bytes, bytes, b, act, l, acc[0], macc[0]);
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++)
            y[t * ldy + r] = hsum8(_mm256_add_ps(acc[0][r][t], acc[1][r][t])) + (macc[0][r][t] + macc[1][r][t]);
}

// MARK: Q8_K-activation kernels (K-quants, IQ4_XS)

// Per 256-element weight block and row: 16 int8 sub-block scales (per-32 types: 8, in bytes 0..7) and the f32
// factors.
typedef struct {
    __m128i scales8;
    float d, dmin;
} kblock;

// A value computed in general-purpose registers and moved into a vector: clang builds it with vpinsrd into whatever
// vector register it likes, sometimes an accumulator, which makes the next block wait on that accumulator's chain.
// The empty asm makes it a fresh vector.
static inline __m128i fresh(__m128i v) {
    __asm__("" : "+x"(v));
    return v;
}

static inline int k_has_min(int type) {
    return type == GLM_GGML_Q2_K || type == GLM_GGML_Q4_K || type == GLM_GGML_Q5_K;
}
static inline int k_per16(int type) {   // scales per 16 elements (else per 32)
    return type == GLM_GGML_Q2_K || type == GLM_GGML_Q3_K || type == GLM_GGML_Q6_K;
}
static inline int k_offset(int type) {   // the weight is scale·(u − offset) with u unsigned
    return type == GLM_GGML_Q6_K ? 32 : type == GLM_GGML_Q3_K ? 4 : 0;
}

// Q4_K/Q5_K's 12 scale bytes → 8 scales (bytes 0..7) and 8 mins (bytes 8..15), each 6 bits: scale j < 4 is the low
// 6 bits of byte j, min j < 4 of byte 4+j; scale 4+j is the low nibble of byte 8+j with the top 2 bits of byte j
// above it, min 4+j the high nibble of byte 8+j with the top 2 bits of byte 4+j.
static inline __m128i k4_scales_mins(const uint8_t *s) {
#if GLM_QDOT_VNNI
    // The VNNI build: in vector registers throughout (the 16 bytes read stay inside the block: its quants follow the
    // 12 bytes). Built from general-purpose registers as below, clang inserted the words into an arbitrary vector
    // register of this build, the row kernel's accumulator, which chained every block to the previous one (Q4_K
    // decode 2× slower than the AVX2 build on Zen 5, 1.4× on Zen 4); the AVX2 build keeps the scalar form, ~7%
    // faster there.
    const __m128i a = _mm_loadu_si128((const __m128i *)s);             // dwords a0, a1, a2 (and 4 bytes of quants)
    const __m128i words = _mm_shuffle_epi32(a, _MM_SHUFFLE(2, 1, 2, 0)); // a0, a2, a1, a2
    const __m128i high = _mm_shuffle_epi32(a, _MM_SHUFFLE(1, 1, 0, 0));  // a0, a0, a1, a1
    const __m128i low6 = _mm_set1_epi32(0x3F3F3F3F), low4 = _mm_set1_epi32(0x0F0F0F0F), low2 = _mm_set1_epi32(0x03030303);
    const __m128i even = _mm_and_si128(words, low6);                     // o0 = a0 & low6, o2 = a1 & low6
    const __m128i nibbles = _mm_and_si128(_mm_srlv_epi32(words, _mm_setr_epi32(0, 0, 0, 4)), low4);
    const __m128i top = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(high, 6), low2), 4);
    const __m128i odd = _mm_or_si128(nibbles, top);                      // o1, o3
    return _mm_blend_epi32(even, odd, 0xA);
#else
    uint32_t a[3], o[4];
    memcpy(a, s, 12);
    const uint32_t low6 = 0x3F3F3F3Fu, low4 = 0x0F0F0F0Fu, low2 = 0x03030303u;
    o[0] = a[0] & low6;
    o[1] = (a[2] & low4) | (((a[0] >> 6) & low2) << 4);
    o[2] = a[1] & low6;
    o[3] = ((a[2] >> 4) & low4) | (((a[1] >> 6) & low2) << 4);
    return fresh(_mm_loadu_si128((const __m128i *)o));
#endif
}

static inline __attribute__((always_inline)) kblock k_block_header(int type, const uint8_t *b) {
    kblock k;
    k.dmin = 0.0f;
    switch (type) {
    case GLM_GGML_Q4_K: case GLM_GGML_Q5_K: {
        k.d = f16_to_f32(b);
        k.dmin = f16_to_f32(b + 2);
        k.scales8 = k4_scales_mins(b + 4);
        break;
    }
    case GLM_GGML_Q6_K:
        k.d = f16_to_f32(b + 208);
        k.scales8 = _mm_loadu_si128((const __m128i *)(b + 192));
        break;
    case GLM_GGML_Q2_K: {
        k.d = f16_to_f32(b + 80);
        k.dmin = f16_to_f32(b + 82);
        k.scales8 = _mm_and_si128(_mm_loadu_si128((const __m128i *)b), _mm_set1_epi8(0x0F));
        break;
    }
    case GLM_GGML_Q3_K: {
        // 16 6-bit scales minus 32: scale i has the low nibble of byte i (i < 8) or the high nibble of byte i − 8,
        // and above it bits 2·(i/4)..2·(i/4)+1 of byte 8 + i % 4; four at a time in 32-bit words.
        uint32_t a[3], o[4];
        memcpy(a, b + 96, 12);
        const uint32_t low4 = 0x0F0F0F0Fu, low2 = 0x03030303u;
        o[0] = (a[0] & low4) | ((a[2] & low2) << 4);
        o[1] = (a[1] & low4) | (((a[2] >> 2) & low2) << 4);
        o[2] = ((a[0] >> 4) & low4) | (((a[2] >> 4) & low2) << 4);
        o[3] = ((a[1] >> 4) & low4) | (((a[2] >> 6) & low2) << 4);
        k.d = f16_to_f32(b + 108);
        k.scales8 = _mm_sub_epi8(fresh(_mm_loadu_si128((const __m128i *)o)), _mm_set1_epi8(32));
        break;
    }
    default: {   // IQ4_XS
        // scale g = (nibble g of scales_l (low nibble first) | bits 2g..2g+1 of scales_h << 4) − 32, for g < 8:
        // the nibbles interleaved with a byte unpack, the 2-bit fields spread to one per byte with shifts and masks
        uint32_t l;
        memcpy(&l, b + 4, 4);
        uint64_t h = (uint64_t)(b[2] | (b[3] << 8));
        h = (h & 0xFF) | ((h & 0xFF00) << 24);
        h = (h & 0x0000000F0000000Full) | ((h & 0x000000F0000000F0ull) << 12);
        h = (h & 0x0003000300030003ull) | ((h & 0x000C000C000C000Cull) << 6);
        __m128i packed = fresh(_mm_cvtsi32_si128((int)l));
        __m128i nibbles = _mm_unpacklo_epi8(_mm_and_si128(packed, _mm_set1_epi8(0x0F)),
                                            _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
        __m128i high = _mm_slli_epi16(fresh(_mm_cvtsi64_si128((long long)h)), 4);
        k.d = f16_to_f32(b);
        k.scales8 = _mm_sub_epi8(_mm_or_si128(nibbles, high), _mm_set1_epi8(32));   // bytes 8..15 unused
        break;
    }
    }
    return k;
}

// The mins of a block with them (Q2_K, Q4_K, Q5_K) as 16 int16, one per 16 elements (the layout of the bsums);
// computed when a block's sums are finished rather than kept in registers through it.
static inline __attribute__((always_inline)) __m256i k_block_mins(int type, const uint8_t *b) {
    if (type == GLM_GGML_Q2_K)
        return _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)b), 4),
                                                  _mm_set1_epi8(0x0F)));
    // Q4_K/Q5_K: the mins (bytes 8..15) each duplicated for the two 16-element halves of its 32 elements
    __m128i dup = _mm_shuffle_epi8(k4_scales_mins(b + 4),
                                   _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15));
    return _mm256_cvtepu8_epi16(dup);
}

// Elements 32g..32g+31 of a 256-element block: unsigned values (IQ4_XS: signed).
static inline __attribute__((always_inline)) __m256i k_unpack(int type, const uint8_t *b, int g) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    switch (type) {
    case GLM_GGML_Q4_K: {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(b + 16 + (g / 2) * 32));
        return _mm256_and_si256(g % 2 ? _mm256_srli_epi16(packed, 4) : packed, low4);
    }
    case GLM_GGML_Q5_K: {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(b + 48 + (g / 2) * 32));
        __m256i lo = _mm256_and_si256(g % 2 ? _mm256_srli_epi16(packed, 4) : packed, low4);
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, g), one);
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    }
    case GLM_GGML_Q6_K: {
        int half = g / 4, quarter = g % 4;
        __m256i ql = _mm256_loadu_si256((const __m256i *)(b + half * 64 + (quarter % 2) * 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + half * 32));
        ql = _mm256_and_si256(quarter / 2 ? _mm256_srli_epi16(ql, 4) : ql, low4);
        qh = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * quarter), three);
        return _mm256_or_si256(ql, _mm256_slli_epi16(qh, 4));
    }
    case GLM_GGML_Q2_K: {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(b + 16 + (g / 4) * 32));
        return _mm256_and_si256(_mm256_srli_epi16(packed, 2 * (g % 4)), three);
    }
    case GLM_GGML_Q3_K: {   // u = low 2 bits | 4·(hmask bit): the weight is u − 4
        __m256i packed = _mm256_loadu_si256((const __m256i *)(b + 32 + (g / 4) * 32));
        __m256i ql = _mm256_and_si256(_mm256_srli_epi16(packed, 2 * (g % 4)), three);
        __m256i hm = _mm256_loadu_si256((const __m256i *)b);
        __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, g), one);
        return _mm256_or_si256(ql, _mm256_slli_epi16(hb, 2));
    }
    default: {   // IQ4_XS
        __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_nl));
        return _mm256_shuffle_epi8(table, nibbles_q4_0_order(b + 8 + g * 16));
    }
    }
}

// A block's scales widened to int16 once (every type's scales fit int8), each half broadcast to both 128-bit lanes:
// lo2 holds sub-block scales 0..7, hi2 8..15 (per-32 types: lo2 only). Group g's scale vector is then one byte
// shuffle (k_group_scales): lanes 0..7 the scale of elements 32g..32g+15, lanes 8..15 of 32g+16..32g+31.
typedef struct { __m256i lo2, hi2; } kscales;

static inline __attribute__((always_inline)) kscales k_widen_scales(int type, __m128i scales8) {
    kscales k;
    __m256i s16 = _mm256_cvtepi8_epi16(scales8);
    k.lo2 = _mm256_permute2x128_si256(s16, s16, 0x00);
    k.hi2 = k_per16(type) ? _mm256_permute2x128_si256(s16, s16, 0x11) : k.lo2;
    return k;
}

// The same from the int8 scales directly, two instructions instead of one but no wide registers held through the
// block: the prefill tiles use it (they amortise it over 4 tokens and are short of registers).
static inline __attribute__((always_inline)) __m256i k_group_scales_narrow(int type, __m128i scales8, int g) {
    __m128i pick = k_per16(type)
        ? _mm_setr_epi8(2 * g, 2 * g, 2 * g, 2 * g, 2 * g, 2 * g, 2 * g, 2 * g,
                        2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1)
        : _mm_set1_epi8((char)g);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales8, pick));
}

static inline __attribute__((always_inline)) __m256i k_group_scales(int type, kscales k, int g) {
    if (!k_per16(type)) {   // scale g (int16 lane g) in every lane
        const char lo = (char)(2 * g), hi = (char)(2 * g + 1);
        return _mm256_shuffle_epi8(k.lo2, _mm256_setr_epi8(lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi,
                                                           lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi,
                                                           lo, hi, lo, hi));
    }
    // per-16: scale 2g in the low lane, 2g+1 in the high lane; both in lo2 (g < 4) or hi2 (g >= 4)
    const char a = (char)(2 * ((2 * g) % 8)), b = (char)(2 * ((2 * g + 1) % 8));
    __m256i pick = _mm256_setr_epi8(a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1,
                                    b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1);
    return _mm256_shuffle_epi8(g < 4 ? k.lo2 : k.hi2, pick);
}

// NR rows × NT tokens over `blocks` 256-element blocks. Per block and output everything is summed exactly in int32
// (Σ_groups scale·Σ u·x, minus offset·Σ scale·bsum) and enters f32 once as d_w·d_x·sum, the min term as
// dmin·d_x·Σ min·bsum.
#if GLM_QDOT_VNNI
// Decode's one row × one token in the VNNI build: groups g and g + 1 of a block side by side in one 512-bit vector
// (one maddubs and one madd for 64 elements). The block's int32 sum is the same exact integer as the 256-bit
// kernel's (lanes 0–7 and 8–15 added at the end of the block), and everything after it is that kernel's, so the
// bits are the AVX2 build's.
static inline __attribute__((always_inline)) __m512i pair256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __attribute__((always_inline)) float
row_q8_kact512(int type, const uint8_t *w, int bytes, ptrdiff_t blocks, const uint8_t *act, act_layout l) {
    const int is_signed = type == GLM_GGML_IQ4_XS;
    __m256 acc = _mm256_setzero_ps();
    for (ptrdiff_t b = 0; b < blocks; b++) {
        const uint8_t *wb = w + b * bytes;
        for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(wb + 8 * bytes + o), _MM_HINT_T0);
        const kblock kb = k_block_header(type, wb);
        const kscales ks = k_widen_scales(type, kb.scales8);
        __m512i isum = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int g = 0; g < 8; g += 2) {
            const __m512i qx = _mm512_loadu_si512((const void *)(act + b * QK_K + g * 32));
            const __m512i u = pair256(k_unpack(type, wb, g), k_unpack(type, wb, g + 1));
            const __m512i sv = pair256(k_group_scales(type, ks, g), k_group_scales(type, ks, g + 1));
            const __m512i uu = is_signed ? _mm512_abs_epi8(u) : u;
            const __m512i xs = is_signed ? _mm512_mask_sub_epi8(qx, _mm512_movepi8_mask(u), _mm512_setzero_si512(), qx)
                                         : qx;
            __m512i p32 = _mm512_madd_epi16(_mm512_maddubs_epi16(uu, xs), sv);
            __asm__("" : "+v"(p32));   // no vpdpwssd fusion (its latency would sit on the isum chain)
            isum = _mm512_add_epi32(isum, p32);
        }
        __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
        const float dx = ((const float *)(act + l.d_offset))[b];
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)(act + l.s_offset + 32 * b));
        if (k_offset(type)) {
            const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(kb.scales8), bsums);
            s = _mm256_sub_epi32(s, k_offset(type) == 32 ? _mm256_slli_epi32(corr, 5) : _mm256_slli_epi32(corr, 2));
        }
        __m256 value = _mm256_mul_ps(_mm256_set1_ps(kb.d * dx), _mm256_cvtepi32_ps(s));
        if (k_has_min(type)) {
            const __m256i mins = _mm256_madd_epi16(k_block_mins(type, wb), bsums);
            value = _mm256_fnmadd_ps(_mm256_set1_ps(kb.dmin * dx), _mm256_cvtepi32_ps(mins), value);
        }
        acc = _mm256_add_ps(acc, value);
    }
    return hsum8(acc);
}
#endif

static inline __attribute__((always_inline)) void
tile_q8_kact(int type, int NR, int NT, const uint8_t *w, ptrdiff_t row_bytes, int bytes, ptrdiff_t blocks,
             const uint8_t *act, act_layout l, float *y, ptrdiff_t ldy) {
#if GLM_QDOT_VNNI
    if (NR == 1 && NT == 1) {
        (void)row_bytes;
        (void)ldy;
        y[0] = row_q8_kact512(type, w, bytes, blocks, act, l);
        return;
    }
#endif
    __m256 acc[4][4];
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();
    const int is_signed = type == GLM_GGML_IQ4_XS;
    for (ptrdiff_t b = 0; b < blocks; b++) {
        kblock kb[4];
        kscales ks[4];
        const uint8_t *wb[4];
        for (int r = 0; r < NR; r++) {
            wb[r] = w + r * row_bytes + b * bytes;
            // 8 blocks (0.7–1.7 KB) ahead: measured 10–25% faster decode for the K types (none for the 32-element
            // types, which the hardware prefetcher serves alone).
            for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(wb[r] + 8 * bytes + o), _MM_HINT_T0);
            kb[r] = k_block_header(type, wb[r]);
            if (NT == 1) ks[r] = k_widen_scales(type, kb[r].scales8);
        }
        __m256i isum[4][4];
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) isum[r][t] = _mm256_setzero_si256();
#pragma clang loop unroll(full)
        for (int g = 0; g < 8; g++) {
            __m256i qx[4];
            for (int t = 0; t < NT; t++)
                qx[t] = _mm256_loadu_si256((const __m256i *)(act + t * l.row_bytes + b * QK_K + g * 32));
            for (int r = 0; r < NR; r++) {
                __m256i u = k_unpack(type, wb[r], g);
                __m256i sv = NT == 1 ? k_group_scales(type, ks[r], g) : k_group_scales_narrow(type, kb[r].scales8, g);
                __m256i uu = is_signed ? _mm256_sign_epi8(u, u) : u;
                for (int t = 0; t < NT; t++) {
                    __m256i xs = is_signed ? _mm256_sign_epi8(qx[t], u) : qx[t];
                    __m256i p16 = _mm256_maddubs_epi16(uu, xs);
                    __m256i p32 = _mm256_madd_epi16(p16, sv);
#if GLM_QDOT_VNNI
                    // Keeps clang from fusing the madd and the add into vpdpwssd, whose 4–5-cycle latency on this
                    // accumulator chain made Q4_K decode 1.5× slower. (The VNNI build's K tiles are not used:
                    // q8act_run says why; this keeps them correct and no slower than they can be.)
                    __asm__("" : "+v"(p32));
#endif
                    isum[r][t] = _mm256_add_epi32(isum[r][t], p32);
                }
            }
            // As in the panel tiles: the 8 sums pinned to registers after each group, or clang reorders the 2 × 4
            // tile row by row and spills (stack loads and stores in k_2x4 212/315 → 162/156; 4 and 16 tokens of
            // Q4_K measured ~1.2× faster, noisy machine).
            if (NR == 2 && NT == 4)
                __asm__("" : "+x"(isum[0][0]), "+x"(isum[0][1]), "+x"(isum[0][2]), "+x"(isum[0][3]),
                             "+x"(isum[1][0]), "+x"(isum[1][1]), "+x"(isum[1][2]), "+x"(isum[1][3]));
        }
        for (int t = 0; t < NT; t++) {
            const uint8_t *row = act + t * l.row_bytes;
            float dx = ((const float *)(row + l.d_offset))[b];
            __m256i bsums = _mm256_loadu_si256((const __m256i *)(row + l.s_offset + 32 * b));
            for (int r = 0; r < NR; r++) {
                __m256i s = isum[r][t];
                if (k_offset(type)) {
                    __m256i s16 = _mm256_cvtepi8_epi16(kb[r].scales8);
                    __m256i corr = _mm256_madd_epi16(s16, bsums);
                    s = _mm256_sub_epi32(s, k_offset(type) == 32 ? _mm256_slli_epi32(corr, 5)
                                                                 : _mm256_slli_epi32(corr, 2));
                }
                // The block's value first, then one add: the accumulator's chain is one add per block.
                __m256 value = _mm256_mul_ps(_mm256_set1_ps(kb[r].d * dx), _mm256_cvtepi32_ps(s));
                if (k_has_min(type)) {
                    __m256i mins = _mm256_madd_epi16(k_block_mins(type, wb[r]), bsums);
                    value = _mm256_fnmadd_ps(_mm256_set1_ps(kb[r].dmin * dx), _mm256_cvtepi32_ps(mins), value);
                }
                acc[r][t] = _mm256_add_ps(acc[r][t], value);
            }
        }
    }
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) y[t * ldy + r] = hsum8(acc[r][t]);
}

// MARK: drivers

#define TILE_FN(name, body, NR, NT)                                                                               \
    static void name(int type, const uint8_t *w, ptrdiff_t row_bytes, int bytes, ptrdiff_t blocks,                 \
                     const uint8_t *act, act_layout l, float *y, ptrdiff_t ldy) {                                  \
        switch (type) {                                                                                            \
        case GLM_GGML_Q8_0: body(GLM_GGML_Q8_0, NR, NT, w, row_bytes, 34, blocks, act, l, y, ldy); break;         \
        case GLM_GGML_Q4_0: body(GLM_GGML_Q4_0, NR, NT, w, row_bytes, 18, blocks, act, l, y, ldy); break;         \
        case GLM_GGML_Q4_1: body(GLM_GGML_Q4_1, NR, NT, w, row_bytes, 20, blocks, act, l, y, ldy); break;         \
        case GLM_GGML_Q5_0: body(GLM_GGML_Q5_0, NR, NT, w, row_bytes, 22, blocks, act, l, y, ldy); break;         \
        case GLM_GGML_Q5_1: body(GLM_GGML_Q5_1, NR, NT, w, row_bytes, 24, blocks, act, l, y, ldy); break;         \
        case GLM_GGML_IQ4_NL: body(GLM_GGML_IQ4_NL, NR, NT, w, row_bytes, 18, blocks, act, l, y, ldy); break;     \
        default: (void)bytes; break;                                                                               \
        }                                                                                                          \
    }
#define KTILE_FN(name, body, NR, NT)                                                                              \
    static void name(int type, const uint8_t *w, ptrdiff_t row_bytes, int bytes, ptrdiff_t blocks,                 \
                     const uint8_t *act, act_layout l, float *y, ptrdiff_t ldy) {                                  \
        switch (type) {                                                                                            \
        case GLM_GGML_Q2_K: body(GLM_GGML_Q2_K, NR, NT, w, row_bytes, 84, blocks, act, l, y, ldy); break;         \
        case GLM_GGML_Q3_K: body(GLM_GGML_Q3_K, NR, NT, w, row_bytes, 110, blocks, act, l, y, ldy); break;        \
        case GLM_GGML_Q4_K: body(GLM_GGML_Q4_K, NR, NT, w, row_bytes, 144, blocks, act, l, y, ldy); break;        \
        case GLM_GGML_Q5_K: body(GLM_GGML_Q5_K, NR, NT, w, row_bytes, 176, blocks, act, l, y, ldy); break;        \
        case GLM_GGML_Q6_K: body(GLM_GGML_Q6_K, NR, NT, w, row_bytes, 210, blocks, act, l, y, ldy); break;        \
        case GLM_GGML_IQ4_XS: body(GLM_GGML_IQ4_XS, NR, NT, w, row_bytes, 136, blocks, act, l, y, ldy); break;    \
        default: (void)bytes; break;                                                                               \
        }                                                                                                          \
    }

typedef void (*tile_fn)(int, const uint8_t *, ptrdiff_t, int, ptrdiff_t, const uint8_t *, act_layout, float *,
                        ptrdiff_t);

// Decode: one row × one token. Tiles of 2 or 4 rows sharing the activation loads measured slower on a memory-bound
// product (12288 × 5120, 1 thread: Q4_0 6.6 vs 4.6 ms, Q6_K 8.3 vs 4.3 ms; more concurrent weight streams, and the
// K tiles spill), so the rows go one after the other. Prefill: Q8_0 activations 1 row × 4 tokens, Q8_K 2 × 4 (one
// unpacked weight block serves 4 tokens), and the remainders; of 1×4, 2×2, 2×4, 3×4, 4×2 these measured fastest
// (512 × 5120 × 64 tokens, thread CPU time, by 5–15%).
TILE_FN(q8_1x1, tile_q8_0act, 1, 1)
TILE_FN(q8_1x4, tile_q8_0act, 1, 4)
KTILE_FN(k_1x1, tile_q8_kact, 1, 1)
KTILE_FN(k_2x4, tile_q8_kact, 2, 4)
KTILE_FN(k_1x4, tile_q8_kact, 1, 4)
KTILE_FN(k_2x1, tile_q8_kact, 2, 1)

// Token rows per prefill pass: their quantised activations (at most 64 × ~5.4 KB for a 5120-wide row) stay in L2
// while a tile's weight rows stream past them.
enum { GEMM_TOKEN_BLOCK = 64 };

// MARK: prefill panels (Q8_0, Q4_0, Q5_0, IQ4_NL)

// The row × token tiles above pay a float conversion and an FMA (and for Q4_0/Q5_0 a scalar offset term) per row,
// token and 32-element block. Here 8 weight rows are repacked into a small panel, interleaved so that a vector's
// 32-bit lanes are the 8 rows: one maddubs then multiplies 4 elements of 8 rows by the same 4 activations (one
// broadcast load), the block's int32 sums come out with lanes = rows, and one conversion and one FMA per token and
// block serve all 8 rows. The panel is a K range (PANEL_BLOCKS blocks) of 8 rows in a stack buffer, packed once per
// 64-token block and reused by all its tokens; no copy of the weights outlives the call.
//
// Panel block (PANEL_BLOCK_BYTES): f32 d[8] (the rows' scales), then 8 vectors k = 0..7 of 32 bytes, vector k
// holding elements 4k..4k+3 of rows 0..7 (4 bytes per row) as unpack_block32 gives them: Q8_0 and IQ4_NL signed
// int8, Q4_0 and Q5_0 unsigned (u = q + 8 or q + 16). Rows past the matrix are zeros.
//
// Per output and block the integer sum S = Σ w·x is exact (Q4_0/Q5_0: Σ u·x − offset·Σx with the activation's
// integer Σx), and the output is acc = fma(float(S), d_w·d_x, acc) over the blocks in order, one chain from 0 —
// the same float operations for every tile and remainder shape, token block and K range. It is a different order
// from the row kernel's (8 partial int32 lanes scaled separately, even/odd blocks apart, offset terms in f32), so
// the two differ in the last bits (the tests bound each against the exact product); the panel runs from
// glm_q8act_panel_min_tokens (≥ 5) tokens on, so decode and the few-token rows of speculative verification keep the
// row kernel's bits.
enum { PANEL_ROWS = 8, PANEL_BLOCKS = 64, PANEL_BLOCK_BYTES = 32 + 8 * 32, PANEL_MIN_TOKENS = 5 };

static inline int panel_type(int type) {
    return type == GLM_GGML_Q8_0 || type == GLM_GGML_Q4_0 || type == GLM_GGML_Q5_0 || type == GLM_GGML_IQ4_NL;
}
// The panel's offset: weight = d·(u − offset) with u the unsigned byte stored. Q4_0 8, Q5_0 16; the signed types
// (Q8_0, IQ4_NL) 0 in the AVX2 build (stored signed, the sign trick as in the row kernel) and 128 in the VNNI build
// (stored as w + 128, so that one vpdpbusd per 4 elements does the work of sign, sign, maddubs and madd).
static inline int panel_offset(int type) {
    return type == GLM_GGML_Q4_0 ? 8 : type == GLM_GGML_Q5_0 ? 16 : GLM_QDOT_VNNI ? 128 : 0;
}
// How many maddubs results may be summed in int16 before widening (the AVX2 build; VNNI sums in int32 directly): a
// lane holds u0·x0 + u1·x1 with |x| ≤ 128, at most 3840 for Q4_0's u ≤ 15 (8 fit under 32767) and 7936 for Q5_0's
// u ≤ 31 (4 fit); the signed types' |w| ≤ 128 give up to 32768 − 256: one.
static inline int panel_k16(int type) {
    return type == GLM_GGML_Q4_0 ? 8 : type == GLM_GGML_Q5_0 ? 4 : 1;
}

// v[r] holds dwords 0..7 of row r; afterwards v[k] holds dword k of rows 0..7.
static inline __attribute__((always_inline)) void transpose8_epi32(__m256i v[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {   // rows 4i..4i+3: dwords (0,4), (1,5), (2,6), (3,7) of the two 128-bit halves
        u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
        v[k + 4] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
    }
}

static inline __attribute__((always_inline)) void
panel_pack(int type, const uint8_t *w, ptrdiff_t row_bytes, int bytes, int nrows, ptrdiff_t b0, ptrdiff_t nb,
           uint8_t *panel) {
    for (ptrdiff_t b = 0; b < nb; b++) {
        uint8_t *pb = panel + b * PANEL_BLOCK_BYTES;
        float *d = (float *)pb;
        __m256i v[8];
        for (int r = 0; r < PANEL_ROWS; r++) {
            if (r < nrows) {
                float m;
                int is_signed;
                v[r] = unpack_block32(type, w + r * row_bytes + (b0 + b) * bytes, &d[r], &m, &is_signed);
                if (is_signed && panel_offset(type) == 128) v[r] = _mm256_xor_si256(v[r], _mm256_set1_epi8(-128));
            } else {
                d[r] = 0.0f;
                v[r] = _mm256_setzero_si256();
            }
        }
        transpose8_epi32(v);
        for (int k = 0; k < 8; k++) _mm256_store_si256((__m256i *)(pb + 32 + 32 * k), v[k]);
    }
}

// 8 rows × NT tokens over the panel's nb blocks (blocks b0.. of the activation rows); acc_io[t·ld_acc + r] carries
// the accumulators between K ranges.
static inline __attribute__((always_inline)) void
panel_tile(int type, int NT, const uint8_t *panel, ptrdiff_t nb, ptrdiff_t b0, const uint8_t *act, act_layout l,
           float *acc_io, ptrdiff_t ld_acc) {
    const int is_signed = panel_offset(type) == 0, k16 = panel_k16(type);
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_loadu_ps(acc_io + ld_acc * t);
    for (ptrdiff_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + b * PANEL_BLOCK_BYTES;
        const ptrdiff_t bb = b0 + b;
        __m256i isum[4], s16[4];
        for (int t = 0; t < NT; t++) { isum[t] = _mm256_setzero_si256(); s16[t] = _mm256_setzero_si256(); }
#pragma clang loop unroll(full)
        for (int k = 0; k < 8; k++) {
            __m256i wv = _mm256_load_si256((const __m256i *)(pb + 32 + 32 * k));
            __m256i uw = is_signed ? _mm256_sign_epi8(wv, wv) : wv;
            for (int t = 0; t < NT; t++) {
                int32_t xi;
                memcpy(&xi, act + t * l.row_bytes + bb * QK + 4 * k, 4);
                __m256i xb = _mm256_set1_epi32(xi);
                if (is_signed) xb = _mm256_sign_epi8(xb, wv);
                if (GLM_QDOT_VNNI || k16 == 1) {
                    isum[t] = dot_u8s8(isum[t], uw, xb);
                } else {
                    __m256i p = _mm256_maddubs_epi16(uw, xb);
                    s16[t] = _mm256_add_epi16(s16[t], p);
                    if ((k + 1) % k16 == 0) {
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16[t], _mm256_set1_epi16(1)));
                        s16[t] = _mm256_setzero_si256();
                    }
                }
            }
            if (NT == 4) {   // keeps the k-major order (kpanel_tile says why)
                if (GLM_QDOT_VNNI || k16 == 1) __asm__("" : "+x"(isum[0]), "+x"(isum[1]), "+x"(isum[2]), "+x"(isum[3]));
                else __asm__("" : "+x"(s16[0]), "+x"(s16[1]), "+x"(s16[2]), "+x"(s16[3]));
            }
        }
        __m256 dw = _mm256_load_ps((const float *)pb);
        for (int t = 0; t < NT; t++) {
            const uint8_t *row = act + t * l.row_bytes;
            __m256i s = isum[t];
            if (panel_offset(type))
                s = _mm256_sub_epi32(s, _mm256_set1_epi32(panel_offset(type) * ((const int32_t *)(row + l.i_offset))[bb]));
            __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(((const float *)(row + l.d_offset))[bb]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(acc_io + ld_acc * t, acc[t]);
}

#if GLM_QDOT_VNNI
// The VNNI build's panels of the 32-element types hold 16 rows: lanes 0–7 of a 512-bit vector are the rows of one
// 8-row panel as above, lanes 8–15 the next 8 rows'. Each lane still computes one row's exact int32 sum S and one fma
// chain per output, in the same order, so the results equal the 8-row panels' (and the AVX2 build's) bit for bit;
// one vpdpbusd now serves 16 rows (a CPU with full-width AVX-512, Zen 5, runs it at the rate of the 256-bit form).
// Panel block: every 32-byte unit of the 8-row block (f32 d[8], then the 8 vectors k) becomes 64 bytes, the two
// halves' units side by side (panel_pack16, below, for both families: the K-quants' panel is made of 32-byte units
// too). The driver gives it half the K range of the 8-row panel, so that the panel keeps its size (18 KiB) in L1.
enum { PANEL16_BLOCK_BYTES = 2 * PANEL_BLOCK_BYTES };

// panel_tile for 16 rows: the same operations on 16 lanes.
static inline __attribute__((always_inline)) void
panel_tile16(int type, int NT, const uint8_t *panel, ptrdiff_t nb, ptrdiff_t b0, const uint8_t *act, act_layout l,
             float *acc_io, ptrdiff_t ld_acc) {
    __m512 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_loadu_ps(acc_io + ld_acc * t);
    for (ptrdiff_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + b * PANEL16_BLOCK_BYTES;
        const ptrdiff_t bb = b0 + b;
        __m512i isum[4];
        for (int t = 0; t < NT; t++) isum[t] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int k = 0; k < 8; k++) {
            const __m512i wv = _mm512_load_si512((const void *)(pb + 64 + 64 * k));
            for (int t = 0; t < NT; t++) {
                int32_t xi;
                memcpy(&xi, act + t * l.row_bytes + bb * QK + 4 * k, 4);
                isum[t] = _mm512_dpbusd_epi32(isum[t], wv, _mm512_set1_epi32(xi));
            }
        }
        const __m512 dw = _mm512_load_ps((const float *)pb);
        for (int t = 0; t < NT; t++) {
            const uint8_t *row = act + t * l.row_bytes;
            const __m512i sx = _mm512_set1_epi32(panel_offset(type) * ((const int32_t *)(row + l.i_offset))[bb]);
            const __m512i sum = _mm512_sub_epi32(isum[t], sx);
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(((const float *)(row + l.d_offset))[bb]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(acc_io + ld_acc * t, acc[t]);
}
#endif

// The K-quants (Q2_K..Q6_K) the same way, per 256-element block. Panel block (KPANEL_BLOCK_BYTES): f32 d[8],
// f32 dmin[8]; 16 scale vectors h = 0..15 (one per 16 elements: lane r holds row r's scale of elements
// 16h..16h+15 as two int16; the per-32 types repeat theirs); 8 correction vectors p = 0..7 (lane r: the int16
// pair c_2p, c_2p+1 with c_h = the min of 16-element group h (Q2_K, Q4_K, Q5_K) or offset·scale (Q6_K: 32, Q3_K:
// 4)); then 8 groups g of 8 vectors k of 32 bytes (elements 32g + 4k..+3 of rows 0..7, unsigned as k_unpack gives
// them). Per output and block, all exact in int32: S = Σ_h scale_h·Σ u·x and M = Σ_h c_h·bsum_h (bsums: the
// activation's Σq per 16); value = (d·d_x)·float(S) − (dmin·d_x)·float(M) as one fnmadd (types with mins) or
// (d·d_x)·float(S − M) (types with an offset), and acc = acc + value over the blocks in order from 0.
enum { KPANEL_BLOCKS = 8, KPANEL_SCALES = 64, KPANEL_CORR = 64 + 16 * 32, KPANEL_VALUES = 64 + 24 * 32,
       KPANEL_BLOCK_BYTES = 64 + 24 * 32 + 64 * 32 };

static inline int kpanel_type(int type) {
    return type == GLM_GGML_Q2_K || type == GLM_GGML_Q3_K || type == GLM_GGML_Q4_K || type == GLM_GGML_Q5_K ||
           type == GLM_GGML_Q6_K;
}
// maddubs results summed in int16 before the scale's madd: u ≤ 15 (Q4_K) allows 8 (8·2·15·128 < 32768), u ≤ 31
// (Q5_K) 4, u ≤ 63 (Q6_K) 2; the per-16 types change scale after 4 (Q2_K's u ≤ 3, Q3_K's u ≤ 7 would allow more).
static inline int kpanel_k16(int type) {
    return type == GLM_GGML_Q4_K ? 8 : type == GLM_GGML_Q6_K ? 2 : 4;
}

static inline __attribute__((always_inline)) void
kpanel_pack(int type, const uint8_t *w, ptrdiff_t row_bytes, int bytes, int nrows, ptrdiff_t b0, ptrdiff_t nb,
            uint8_t *panel) {
    for (ptrdiff_t b = 0; b < nb; b++) {
        uint8_t *pb = panel + b * KPANEL_BLOCK_BYTES;
        float *d = (float *)pb, *dmin = (float *)(pb + 32);
        const uint8_t *src[PANEL_ROWS];
        // Per row: the 16 per-16 scales each doubled to a dword (scale vectors h = 0..7 and 8..15), the 16
        // corrections as 8 dwords of pairs; transposed, lane r of vector h is row r's.
        __m256i lo[8], hi[8], corr[8];
        for (int r = 0; r < PANEL_ROWS; r++) {
            if (r >= nrows) {
                src[r] = NULL;
                d[r] = dmin[r] = 0.0f;
                lo[r] = hi[r] = corr[r] = _mm256_setzero_si256();
                continue;
            }
            src[r] = w + r * row_bytes + (b0 + b) * bytes;
            kblock kb = k_block_header(type, src[r]);
            d[r] = kb.d;
            dmin[r] = kb.dmin;
            __m128i s8 = k_per16(type) ? kb.scales8
                                       : _mm_shuffle_epi8(kb.scales8, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
                                                                                    6, 6, 7, 7));
            __m256i s16 = _mm256_cvtepi8_epi16(s8);
            __m256i dl = _mm256_unpacklo_epi16(s16, s16), dh = _mm256_unpackhi_epi16(s16, s16);
            lo[r] = _mm256_permute2x128_si256(dl, dh, 0x20);
            hi[r] = _mm256_permute2x128_si256(dl, dh, 0x31);
            corr[r] = k_has_min(type) ? k_block_mins(type, src[r])
                                      : _mm256_mullo_epi16(s16, _mm256_set1_epi16((short)k_offset(type)));
        }
        transpose8_epi32(lo);
        transpose8_epi32(hi);
        transpose8_epi32(corr);
        for (int h = 0; h < 8; h++) {
            _mm256_store_si256((__m256i *)(pb + KPANEL_SCALES + 32 * h), lo[h]);
            _mm256_store_si256((__m256i *)(pb + KPANEL_SCALES + 32 * (8 + h)), hi[h]);
            _mm256_store_si256((__m256i *)(pb + KPANEL_CORR + 32 * h), corr[h]);
        }
        for (int g = 0; g < 8; g++) {
            __m256i v[8];
            for (int r = 0; r < PANEL_ROWS; r++) v[r] = src[r] ? k_unpack(type, src[r], g) : _mm256_setzero_si256();
            transpose8_epi32(v);
            for (int k = 0; k < 8; k++) _mm256_store_si256((__m256i *)(pb + KPANEL_VALUES + 32 * (8 * g + k)), v[k]);
        }
    }
}

static inline __attribute__((always_inline)) void
kpanel_tile(int type, int NT, const uint8_t *panel, ptrdiff_t nb, ptrdiff_t b0, const uint8_t *act, act_layout l,
            float *acc_io, ptrdiff_t ld_acc) {
    const int k16 = kpanel_k16(type);
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_loadu_ps(acc_io + ld_acc * t);
    for (ptrdiff_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + b * KPANEL_BLOCK_BYTES;
        const ptrdiff_t bb = b0 + b;
        __m256i isum[4];
        for (int t = 0; t < NT; t++) isum[t] = _mm256_setzero_si256();
#pragma clang loop unroll(full)
        for (int g = 0; g < 8; g++) {
            // part: the AVX2 build sums maddubs results in int16 over kpanel_k16 k steps, then applies the scale with
            // one madd; the VNNI build sums Σ u·x per 4 elements straight into int32 (vpdpbusd) over a scale run (4
            // k steps for the per-16 types, 8 for Q4_K/Q5_K) and multiplies by the scale once: a lane's partial sum
            // is at most 16·63·128 (Q6_K), its product with a scale below 2^24, so S is the same exact integer.
            const int run = GLM_QDOT_VNNI ? (k_per16(type) ? 4 : 8) : k16;
            __m256i part[4];
            for (int t = 0; t < NT; t++) part[t] = _mm256_setzero_si256();
#pragma clang loop unroll(full)
            for (int k = 0; k < 8; k++) {
                __m256i wv = _mm256_load_si256((const __m256i *)(pb + KPANEL_VALUES + 32 * (8 * g + k)));
                for (int t = 0; t < NT; t++) {
                    int32_t xi;
                    memcpy(&xi, act + t * l.row_bytes + bb * QK_K + 32 * g + 4 * k, 4);
#if GLM_QDOT_VNNI
                    part[t] = _mm256_dpbusd_epi32(part[t], wv, _mm256_set1_epi32(xi));
#else
                    part[t] = _mm256_add_epi16(part[t], _mm256_maddubs_epi16(wv, _mm256_set1_epi32(xi)));
#endif
                }
                // The sums pinned to registers after each k: without this clang evaluates the 4-token tile token by
                // token, spilling the 8 weight vectors of a group to the stack and reloading one per maddubs (two
                // loads per maddubs instead of 1.25). Measured on one tile over an L1-resident panel, 64 tokens
                // (Zen 3): Q4_K 1.2×, Q8_0 (panel_tile) 1.3× faster; Q4_0, Q6_K unchanged.
                if (NT == 4) __asm__("" : "+x"(part[0]), "+x"(part[1]), "+x"(part[2]), "+x"(part[3]));
                if ((k + 1) % run == 0) {
                    // Lane r: row r's scale as the int16 pair (scale, scale).
                    __m256i scale = _mm256_load_si256((const __m256i *)(pb + KPANEL_SCALES + 32 * (2 * g + k / 4)));
#if GLM_QDOT_VNNI
                    scale = _mm256_srai_epi32(scale, 16);   // the scale as int32
#endif
                    for (int t = 0; t < NT; t++) {
#if GLM_QDOT_VNNI
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(part[t], scale));
#else
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(part[t], scale));
#endif
                        part[t] = _mm256_setzero_si256();
                    }
                }
            }
        }
        __m256 dw = _mm256_load_ps((const float *)pb);
        for (int t = 0; t < NT; t++) {
            const uint8_t *row = act + t * l.row_bytes;
            const int32_t *bsum_pairs = (const int32_t *)(row + l.s_offset + 32 * bb);
            __m256i m = _mm256_setzero_si256();
            for (int p = 0; p < 8; p++)
                m = _mm256_add_epi32(m, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(pb + KPANEL_CORR + 32 * p)),
                                                          _mm256_set1_epi32(bsum_pairs[p])));
            __m256 dx = _mm256_set1_ps(((const float *)(row + l.d_offset))[bb]);
            __m256 value;
            if (k_has_min(type)) {
                value = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum[t]));
                value = _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_load_ps((const float *)(pb + 32)), dx),
                                         _mm256_cvtepi32_ps(m), value);
            } else {
                value = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[t], m)));
            }
            acc[t] = _mm256_add_ps(acc[t], value);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(acc_io + ld_acc * t, acc[t]);
}

#if GLM_QDOT_VNNI
// The K-quants' panels with 16 rows in the VNNI build, as panel_tile16 for the 32-element types: every 32-byte unit
// of kpanel's layout doubled (offsets × 2, the second 8 rows in the upper half), the same per-lane operations, the
// same bits. Half the K range (4 blocks, 23 KiB).
enum { KPANEL16_BLOCK_BYTES = 2 * KPANEL_BLOCK_BYTES };

// A 16-row panel of either family (is_k: the K-quants'): per block, the two 8-row halves packed as the 8-row
// panels are, then interleaved unit by unit (every 32-byte unit of the 8-row block becomes 64 bytes, the halves'
// units side by side).
static inline __attribute__((always_inline)) void
panel_pack16(int is_k, int type, const uint8_t *w, ptrdiff_t row_bytes, int bytes, int nrows, ptrdiff_t b0,
             ptrdiff_t nb, uint8_t *panel) {
    const int half_bytes = is_k ? KPANEL_BLOCK_BYTES : PANEL_BLOCK_BYTES;
    _Alignas(32) uint8_t half[2][KPANEL_BLOCK_BYTES > PANEL_BLOCK_BYTES ? KPANEL_BLOCK_BYTES : PANEL_BLOCK_BYTES];
    for (ptrdiff_t b = 0; b < nb; b++) {
        for (int h = 0; h < 2; h++) {
            const int n = nrows - 8 * h < 0 ? 0 : nrows - 8 * h > 8 ? 8 : nrows - 8 * h;
            if (is_k) kpanel_pack(type, w + 8 * h * row_bytes, row_bytes, bytes, n, b0 + b, 1, half[h]);
            else panel_pack(type, w + 8 * h * row_bytes, row_bytes, bytes, n, b0 + b, 1, half[h]);
        }
        uint8_t *dst = panel + b * 2 * half_bytes;
        for (int u = 0; u < half_bytes / 32; u++) {
            memcpy(dst + 64 * u, half[0] + 32 * u, 32);
            memcpy(dst + 64 * u + 32, half[1] + 32 * u, 32);
        }
    }
}

static inline __attribute__((always_inline)) void
kpanel_tile16(int type, int NT, const uint8_t *panel, ptrdiff_t nb, ptrdiff_t b0, const uint8_t *act, act_layout l,
              float *acc_io, ptrdiff_t ld_acc) {
    __m512 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_loadu_ps(acc_io + ld_acc * t);
    for (ptrdiff_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + b * KPANEL16_BLOCK_BYTES;
        const ptrdiff_t bb = b0 + b;
        __m512i isum[4];
        for (int t = 0; t < NT; t++) isum[t] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int g = 0; g < 8; g++) {
            const int run = k_per16(type) ? 4 : 8;
            __m512i part[4];
            for (int t = 0; t < NT; t++) part[t] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
            for (int k = 0; k < 8; k++) {
                const __m512i wv = _mm512_load_si512((const void *)(pb + 2 * KPANEL_VALUES + 64 * (8 * g + k)));
                for (int t = 0; t < NT; t++) {
                    int32_t xi;
                    memcpy(&xi, act + t * l.row_bytes + bb * QK_K + 32 * g + 4 * k, 4);
                    part[t] = _mm512_dpbusd_epi32(part[t], wv, _mm512_set1_epi32(xi));
                }
                if (NT == 4) __asm__("" : "+v"(part[0]), "+v"(part[1]), "+v"(part[2]), "+v"(part[3]));
                if ((k + 1) % run == 0) {
                    const __m512i scale = _mm512_srai_epi32(
                        _mm512_load_si512((const void *)(pb + 2 * KPANEL_SCALES + 64 * (2 * g + k / 4))), 16);
                    for (int t = 0; t < NT; t++) {
                        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(part[t], scale));
                        part[t] = _mm512_setzero_si512();
                    }
                }
            }
        }
        const __m512 dw = _mm512_load_ps((const float *)pb);
        for (int t = 0; t < NT; t++) {
            const uint8_t *row = act + t * l.row_bytes;
            const int32_t *bsum_pairs = (const int32_t *)(row + l.s_offset + 32 * bb);
            __m512i m = _mm512_setzero_si512();
            for (int p = 0; p < 8; p++)
                m = _mm512_add_epi32(m, _mm512_madd_epi16(_mm512_load_si512((const void *)(pb + 2 * KPANEL_CORR + 64 * p)),
                                                          _mm512_set1_epi32(bsum_pairs[p])));
            const __m512 dx = _mm512_set1_ps(((const float *)(row + l.d_offset))[bb]);
            __m512 value;
            if (k_has_min(type)) {
                value = _mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum[t]));
                value = _mm512_fnmadd_ps(_mm512_mul_ps(_mm512_load_ps((const float *)(pb + 64)), dx),
                                         _mm512_cvtepi32_ps(m), value);
            } else {
                value = _mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(_mm512_sub_epi32(isum[t], m)));
            }
            acc[t] = _mm512_add_ps(acc[t], value);
        }
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(acc_io + ld_acc * t, acc[t]);
}
#endif

// The panel driver, for both families (is_k: the K-quant panel). Loop order: token block (64 rows of activations),
// then K range, then groups of 8 weight rows: one K range of the token block's activations (64 × 2048 bytes plus
// scales, ~130 KB) stays in L2 while every row group's panel is packed and multiplied against it, and the
// accumulators live in y (zeroed first; 8 rows × 64 tokens = 2 KB per tile pass). Rows go first in the earlier
// order (all K ranges of one row group, then the next), which streamed the whole token block's activations (~370 KB
// for 5120 columns, ~890 KB for 12288) through the cache once per 8 rows. Each output still sums its blocks in
// order from 0, so the bits are those of any other loop order. A last group of fewer than 8 rows accumulates in a
// local 8-wide buffer (the tile always writes 8 lanes).
#if GLM_QDOT_VNNI
#define PANEL_PACK16 panel_pack16
#define PANEL_TILE16 panel_tile16
#define KPANEL_TILE16 kpanel_tile16
#else   // `wide` is 0 in the AVX2 build: these never run there
#define PANEL_PACK16(...) ((void)0)
#define PANEL_TILE16(...) ((void)0)
#define KPANEL_TILE16(...) ((void)0)
#endif

static inline __attribute__((always_inline)) void
panel_driver(int is_k, int type, const uint8_t *w, ptrdiff_t row_bytes, int bytes, ptrdiff_t rows, ptrdiff_t blocks,
             const uint8_t *act, act_layout l, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    enum { PANEL_BYTES = PANEL_BLOCKS * PANEL_BLOCK_BYTES > KPANEL_BLOCKS * KPANEL_BLOCK_BYTES
                         ? PANEL_BLOCKS * PANEL_BLOCK_BYTES : KPANEL_BLOCKS * KPANEL_BLOCK_BYTES };
    _Alignas(64) uint8_t panel[PANEL_BYTES];   // 18–23 KiB: stays in L1 with the activations it meets
    // Rows per panel: 16 in the VNNI build (panel_tile16, kpanel_tile16; half the K range), else 8.
    const int wide = GLM_QDOT_VNNI;
    const int panel_rows = wide ? 16 : PANEL_ROWS;
    _Alignas(64) float tail[GEMM_TOKEN_BLOCK * 16];
    const ptrdiff_t range = (is_k ? KPANEL_BLOCKS : PANEL_BLOCKS) / (wide ? 2 : 1);
    const ptrdiff_t full_rows = rows / panel_rows * panel_rows;
    for (ptrdiff_t t0 = 0; t0 < tokens; t0 += GEMM_TOKEN_BLOCK) {
        const ptrdiff_t nt = tokens - t0 < GEMM_TOKEN_BLOCK ? tokens - t0 : GEMM_TOKEN_BLOCK;
        const uint8_t *a0 = act + t0 * l.row_bytes;
        float *y0 = y + t0 * ldy;
        for (ptrdiff_t t = 0; t < nt; t++) memset(y0 + t * ldy, 0, sizeof(float) * (size_t)rows);
        if (full_rows < rows) memset(tail, 0, sizeof tail);
        for (ptrdiff_t b0 = 0; b0 < blocks; b0 += range) {
            const ptrdiff_t nb = blocks - b0 < range ? blocks - b0 : range;
            for (ptrdiff_t r0 = 0; r0 < rows; r0 += panel_rows) {
                const int nr = rows - r0 < panel_rows ? (int)(rows - r0) : panel_rows;
                float *acc = nr == panel_rows ? y0 + r0 : tail;
                const ptrdiff_t ld_acc = nr == panel_rows ? ldy : panel_rows;
                if (wide) PANEL_PACK16(is_k, type, w + r0 * row_bytes, row_bytes, bytes, nr, b0, nb, panel);
                else if (is_k) kpanel_pack(type, w + r0 * row_bytes, row_bytes, bytes, nr, b0, nb, panel);
                else panel_pack(type, w + r0 * row_bytes, row_bytes, bytes, nr, b0, nb, panel);
#define PANEL_ARGS(NT) type, NT, panel, nb, b0, a0 + t * l.row_bytes, l, acc + t * ld_acc, ld_acc
#define PANEL_TILE(NT) (is_k ? (wide ? KPANEL_TILE16(PANEL_ARGS(NT)) : kpanel_tile(PANEL_ARGS(NT))) \
                             : (wide ? PANEL_TILE16(PANEL_ARGS(NT)) : panel_tile(PANEL_ARGS(NT))))
                ptrdiff_t t = 0;
                for (; t + 4 <= nt; t += 4) PANEL_TILE(4);
                switch (nt - t) {
                case 3: PANEL_TILE(3); break;
                case 2: PANEL_TILE(2); break;
                case 1: PANEL_TILE(1); break;
                default: break;
                }
#undef PANEL_TILE
#undef PANEL_ARGS
            }
        }
        for (ptrdiff_t t = 0; t < nt; t++)
            for (ptrdiff_t r = full_rows; r < rows; r++) y0[t * ldy + r] = tail[panel_rows * t + r - full_rows];
    }
}

// The panel kernel for every type that has one (panel_type, kpanel_type), the block size a constant per case.
static void panel_gemm(int type, const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t blocks,
                       const uint8_t *act, act_layout l, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
#define PANEL_CASE(is_k, t, bytes) \
    case t: panel_driver(is_k, t, w, row_bytes, bytes, rows, blocks, act, l, tokens, y, ldy); break;
    switch (type) {
    PANEL_CASE(0, GLM_GGML_Q8_0, 34)
    PANEL_CASE(0, GLM_GGML_Q4_0, 18)
    PANEL_CASE(0, GLM_GGML_Q5_0, 22)
    PANEL_CASE(0, GLM_GGML_IQ4_NL, 18)
    PANEL_CASE(1, GLM_GGML_Q2_K, 84)
    PANEL_CASE(1, GLM_GGML_Q3_K, 110)
    PANEL_CASE(1, GLM_GGML_Q4_K, 144)
    PANEL_CASE(1, GLM_GGML_Q5_K, 176)
    PANEL_CASE(1, GLM_GGML_Q6_K, 210)
    default: break;
    }
#undef PANEL_CASE
}

static int q8act_pre(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                     const void *act, ptrdiff_t tokens, float *y, ptrdiff_t ldy, int use_panel) {
    int block, bytes, actkind;
    if (!weight_layout(type, &block, &bytes, &actkind) || columns <= 0 || columns % block != 0 ||
        columns / block * bytes > row_bytes)
        return -1;
    act_layout l = activation_layout(actkind, columns);
    ptrdiff_t blocks = columns / block;
    const uint8_t *base = (const uint8_t *)w, *a = (const uint8_t *)act;
    int k = actkind == ACT_Q8_K;
    tile_fn row1 = k ? k_1x1 : q8_1x1;
    if (use_panel) {
        panel_gemm(type, base, row_bytes, rows, blocks, a, l, tokens, y, ldy);
        return 0;
    }
    if (tokens < 4) {
        for (ptrdiff_t t = 0; t < tokens; t++) {
            const uint8_t *at = a + t * l.row_bytes;
            for (ptrdiff_t r = 0; r < rows; r++)
                row1(type, base + r * row_bytes, row_bytes, bytes, blocks, at, l, y + t * ldy + r, ldy);
        }
        return 0;
    }
    const int nt = 4;
    int nr = k ? 2 : 1;
    tile_fn main = k ? k_2x4 : q8_1x4, rows_tail = k ? k_1x4 : q8_1x4, tokens_tail = k ? k_2x1 : q8_1x1;
    for (ptrdiff_t t0 = 0; t0 < tokens; t0 += GEMM_TOKEN_BLOCK) {
        ptrdiff_t t1 = tokens - t0 < GEMM_TOKEN_BLOCK ? tokens : t0 + GEMM_TOKEN_BLOCK;
        ptrdiff_t r = 0;
        for (; r + nr <= rows; r += nr) {
            const uint8_t *wr = base + r * row_bytes;
            ptrdiff_t t = t0;
            for (; t + nt <= t1; t += nt) main(type, wr, row_bytes, bytes, blocks, a + t * l.row_bytes, l, y + t * ldy + r, ldy);
            for (; t < t1; t++) tokens_tail(type, wr, row_bytes, bytes, blocks, a + t * l.row_bytes, l, y + t * ldy + r, ldy);
        }
        for (; r < rows; r++) {
            const uint8_t *wr = base + r * row_bytes;
            ptrdiff_t t = t0;
            for (; t + nt <= t1; t += nt) rows_tail(type, wr, row_bytes, bytes, blocks, a + t * l.row_bytes, l, y + t * ldy + r, ldy);
            for (; t < t1; t++) row1(type, wr, row_bytes, bytes, blocks, a + t * l.row_bytes, l, y + t * ldy + r, ldy);
        }
    }
    return 0;
}

// q8act_pre of the VNNI build (quantdot_vnni.c) and of the AVX-VNNI build (quantdot_avxvnni.c); internal to libglm.
__attribute__((visibility("hidden")))
int qdot_pre_vnni(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns, const void *act,
                  ptrdiff_t tokens, float *y, ptrdiff_t ldy, int use_panel);
__attribute__((visibility("hidden")))
int qdot_pre_avxvnni(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                     const void *act, ptrdiff_t tokens, float *y, ptrdiff_t ldy, int use_panel);

#if GLM_QDOT_VNNI

int qdot_pre_vnni(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns, const void *act,
                  ptrdiff_t tokens, float *y, ptrdiff_t ldy, int use_panel) {
    return q8act_pre(type, w, row_bytes, rows, columns, act, tokens, y, ldy, use_panel);
}

#elif GLM_QDOT_AVXVNNI

int qdot_pre_avxvnni(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                     const void *act, ptrdiff_t tokens, float *y, ptrdiff_t ldy, int use_panel) {
    return q8act_pre(type, w, row_bytes, rows, columns, act, tokens, y, ldy, use_panel);
}

#else   // the entry points, in quantdot.c's own build only

// The VNNI build needs AVX-512 VNNI for vpdpbusd on 256-bit vectors (AVX512VL) and AVX-512F for the rest of that
// build (quantdot_vnni.c's target). -1: not yet checked (a benign race: every thread stores the same).
static int cpu_has_vnni = -1;

static int vnni_allowed(int avx512) {
    if (!avx512) return 0;
    if (cpu_has_vnni < 0) {
        __builtin_cpu_init();
        cpu_has_vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
    }
    return cpu_has_vnni;
}

int glm_q8act_vnni_available(void) { return vnni_allowed(1); }

static int cpu_has_avxvnni = -1;

int glm_q8act_avxvnni_available(void) {
    if (cpu_has_avxvnni < 0) {
        __builtin_cpu_init();
        cpu_has_avxvnni = __builtin_cpu_supports("avxvnni");
    }
    return cpu_has_avxvnni;
}

// Where avx512 is asked for and the CPU has AVX-512 VNNI, the VNNI build runs the panels of every type and the row
// kernel and row × token tiles of the Q8_0-activation types; there vpdpbusd replaces two to four AVX2 instructions
// per 4 elements. Measured on Zen 4, one thread, VNNI build / AVX2 build: panels (1536 × 5120 × 64 tokens) Q8_0 and
// IQ4_NL 1.9–2.0×, Q4_0/Q5_0 1.29×, Q2_K/Q4_K 1.11×, Q5_K 1.24×, Q6_K 1.05×, Q3_K 0.97×; decode (24576 × 5120,
// matrices larger than the L3) Q4_0, Q5_0, IQ4_NL 1.10–1.11×, Q8_0 1.03×; 4 tokens (speculative verification)
// Q8_0 1.22×, the others 1.10–1.19×. The K-quants' row × token tiles stay on the AVX2 build (compiled for VNNI,
// clang fuses their madd + add into vpdpwssd, a 4–5-cycle latency on each accumulator chain; the asm in
// tile_q8_kact blocks it). Their one-row kernel (decode, and 2–3 tokens) takes the VNNI build's 512-bit
// row_q8_kact512: Zen 5, 24576 × 5120, VNNI / AVX2 build 1.1–1.3× for every K type. (Q4_K and Q5_K ran 1.4–2×
// slower in the VNNI build until k4_scales_mins stopped building their scales through general-purpose registers.)
//
// Otherwise (the avx2 path, or the K-quant tiles above) the Q8_0-activation types run the AVX-VNNI build where the
// CPU has AVX-VNNI, unless the caller forces the plain AVX2 build (avx512 = 2: the tests): vpdpbusd where
// this build's dot_u8s8 takes maddubs + madd + add. Zen 5's avx2 path, one thread, AVX-VNNI / AVX2 build: prefill
// panels (1536 × 5120 × 64 tokens) Q8_0 and IQ4_NL 1.4× faster, Q4_0/Q5_0/Q4_1/Q5_1 equal; decode (12288 × 5120)
// Q5_0, Q5_1, IQ4_NL 1.04–1.08×, the rest equal. The K-quants stay on the AVX2 build: nothing of theirs changes in
// the AVX-VNNI build but the compiler's choices, and Q6_K's panels measured 1.13× slower there.
static int q8act_run(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns, const void *act,
                     ptrdiff_t tokens, float *y, ptrdiff_t ldy, int use_panel, int avx512) {
    const int k_row = tokens < 4;
    const int vnni = avx512 == 1 && vnni_allowed(1) && (use_panel || glm_q8act_kind(type) == ACT_Q8_0 || k_row);
    if (vnni) return qdot_pre_vnni(type, w, row_bytes, rows, columns, act, tokens, y, ldy, use_panel);
    if (avx512 != 2 && glm_q8act_kind(type) == ACT_Q8_0 && glm_q8act_avxvnni_available())
        return qdot_pre_avxvnni(type, w, row_bytes, rows, columns, act, tokens, y, ldy, use_panel);
    return q8act_pre(type, w, row_bytes, rows, columns, act, tokens, y, ldy, use_panel);
}

// Benchmarks only (glm-bench quant's GLM_BENCH_NO_PANEL): 0 sends prefill to the row × token tiles instead.
static int panel_enabled = 1;

void glm_q8act_set_panel(int enabled) { panel_enabled = enabled != 0; }

// Where the panel starts to pay for its packing: one expert's up projection (1536 × 5120), panel forced against the
// row × token tiles at 4, 5, 6 and 8 tokens, thread CPU time, after the k-major fix in the tiles (2026-12-07, Zen 3):
// Q4_0, Q5_0, IQ4_NL are 1.4–2.2× faster on the panel already at 4 tokens, Q4_K, Q5_K, Q8_0 1.1–1.3× at 5,
// Q2_K and Q3_K from 6 (1.15–1.2×), Q6_K from 8 (1.15×; even at 6). The floor is 5 for every type: decode and
// speculative verification of up to 3 drafts (4 tokens, so at most 4 tokens per expert) stay on the row kernel and
// keep its bits, which is what makes verification agree with plain decoding bit for bit.
int glm_q8act_panel_min_tokens(int type) {
    if (!panel_enabled || !(panel_type(type) || kpanel_type(type))) return 0;
    switch (type) {
    case GLM_GGML_Q2_K: case GLM_GGML_Q3_K: return 6;
    case GLM_GGML_Q6_K: return 8;
    default: return PANEL_MIN_TOKENS;
    }
}



int glm_matmul_rows_q8act_pre(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                              const void *act, ptrdiff_t tokens, float *y, ptrdiff_t ldy, int avx512) {
    int panel_from = glm_q8act_panel_min_tokens(type);
    return q8act_run(type, w, row_bytes, rows, columns, act, tokens, y, ldy, panel_from && tokens >= panel_from, avx512);
}

#define QDOT_STACK_BYTES 65536

int glm_matmul_rows_q8act(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                          const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, int avx512) {
    int block, bytes, actkind;
    if (!weight_layout(type, &block, &bytes, &actkind) || columns <= 0 || columns % block != 0 ||
        columns / block * bytes > row_bytes)
        return -1;
    ptrdiff_t act_bytes = activation_layout(actkind, columns).row_bytes;
    if (act_bytes > QDOT_STACK_BYTES) return -1;
    _Alignas(32) uint8_t act[QDOT_STACK_BYTES];
    ptrdiff_t group = QDOT_STACK_BYTES / act_bytes;
    // The kernel is chosen for the whole call, so that the token groups give the bits of one pass over all tokens.
    int panel_from = glm_q8act_panel_min_tokens(type), use_panel = panel_from && tokens >= panel_from;
    for (ptrdiff_t t0 = 0; t0 < tokens; t0 += group) {
        ptrdiff_t nt = tokens - t0 < group ? tokens - t0 : group;
        glm_q8act_quantize(type, x + t0 * ldx, ldx, columns, nt, act);
        q8act_run(type, w, row_bytes, rows, columns, act, nt, y + t0 * ldy, ldy, use_panel, avx512);
    }
    return 0;
}

#endif   // GLM_QDOT_VNNI, GLM_QDOT_AVXVNNI
