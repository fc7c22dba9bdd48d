// Dequantisation of ggml block formats (GGUF tensors) to f32.
//
// The numbers must equal ggml's reference dequantisers (as gguf-py's quants.py computes them) bit for bit, so
// every value is formed with exactly the same f32 operations in the same order: a scale is converted from f16, multiplied
// by the integer sub-block scale (one rounding), then by the quant (a second rounding), and a min is subtracted or added
// (a third). Contraction to FMA would merge two of those roundings, hence the pragma (this file is built with FMA
// available, -march=x86-64-v3). The f16 → f32 conversion is done on the bits (exact, NaN payloads kept) rather
// than with F16C, which would quiet a signalling NaN before the multiply does.
//
// Layouts are ggml's (ggml-common.h block_* structs, little-endian, packed); see docs/MODEL.md §2.6.
#include "glm_kernels.h"

#include <string.h>

#pragma clang fp contract(off)

static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline float f16_bits_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);          // Inf / NaN (payload kept)
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13); // normal: rebias 15 → 127
    } else if (man == 0) {
        bits = sign;                                      // ±0
    } else {                                              // subnormal half: normalise
        int shift = 0;
        while ((man & 0x400u) == 0) { man <<= 1; shift++; }
        man &= 0x3FFu;
        bits = sign | ((uint32_t)(113 - shift) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float load_f16(const uint8_t *p) { return f16_bits_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static inline float bits_to_f32(uint32_t bits) { float f; memcpy(&f, &bits, 4); return f; }

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = load_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((int)(qs[j] & 0x0F) - 8);
        y[j + 16] = d * (float)((int)(qs[j] >> 4) - 8);
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    float d = load_f16(b), m = load_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(qs[j] & 0x0F) + m;
        y[j + 16] = d * (float)(qs[j] >> 4) + m;
    }
}

static void dq_q5_0(const uint8_t *b, float *y) {
    float d = load_f16(b);
    uint32_t qh = (uint32_t)b[2] | ((uint32_t)b[3] << 8) | ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 24);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

static void dq_q5_1(const uint8_t *b, float *y) {
    float d = load_f16(b), m = load_f16(b + 2);
    uint32_t qh = (uint32_t)b[4] | ((uint32_t)b[5] << 8) | ((uint32_t)b[6] << 16) | ((uint32_t)b[7] << 24);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = d * (float)lo + m;
        y[j + 16] = d * (float)hi + m;
    }
}

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = load_f16(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

// K-quants: 256 elements per super-block.
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *scales = b, *qs = b + 16;
    float d = load_f16(b + 80), dmin = load_f16(b + 82);
    for (int e = 0; e < 256; e++) {
        int sub = e / 16;
        float dl = d * (float)(scales[sub] & 0x0F);
        float ml = dmin * (float)(scales[sub] >> 4);
        int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
        int q = (qs[half * 32 + l] >> shift) & 3;
        y[e] = dl * (float)q - ml;
    }
}

static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    float d = load_f16(b + 108);
    float dl[16];
    for (int i = 0; i < 16; i++) {
        int low = (i < 8 ? sc[i] : sc[i - 8] >> 4) & 0x0F;
        int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        int s = (int)(int8_t)(uint8_t)(low | (high << 4)) - 32;
        dl[i] = d * (float)s;
    }
    for (int e = 0; e < 256; e++) {
        int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
        int ql = (qs[half * 32 + l] >> shift) & 3;
        int qh = ((hmask[l] >> (e / 32)) & 1) ^ 1;
        y[e] = dl[e / 16] * (float)(ql - (qh << 2));
    }
}

// The 6-bit scales and mins of Q4_K / Q5_K, packed in 12 bytes.
static void k_scale_min(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 0x3F;
        mn[j] = s[4 + j] & 0x3F;
        sc[j + 4] = (uint8_t)((s[8 + j] & 0x0F) | ((s[j] >> 2) & 0x30));
        mn[j + 4] = (uint8_t)((s[8 + j] >> 4) | ((s[4 + j] >> 2) & 0x30));
    }
}

static void dq_q4_k(const uint8_t *b, float *y) {
    float d = load_f16(b), dmin = load_f16(b + 2);
    uint8_t sc[8], mn[8];
    k_scale_min(b + 4, sc, mn);
    const uint8_t *qs = b + 16;
    for (int sub = 0; sub < 8; sub++) {
        float ds = d * (float)sc[sub], dm = dmin * (float)mn[sub];
        const uint8_t *q = qs + (sub / 2) * 32;
        int shift = 4 * (sub % 2);
        for (int l = 0; l < 32; l++) y[sub * 32 + l] = ds * (float)((q[l] >> shift) & 0x0F) - dm;
    }
}

static void dq_q5_k(const uint8_t *b, float *y) {
    float d = load_f16(b), dmin = load_f16(b + 2);
    uint8_t sc[8], mn[8];
    k_scale_min(b + 4, sc, mn);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int sub = 0; sub < 8; sub++) {
        float ds = d * (float)sc[sub], dm = dmin * (float)mn[sub];
        const uint8_t *q = qs + (sub / 2) * 32;
        int shift = 4 * (sub % 2);
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> shift) & 0x0F) | (((qh[l] >> sub) & 1) << 4);
            y[sub * 32 + l] = ds * (float)v - dm;
        }
    }
}

static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = (const int8_t *)(b + 192);
    float d = load_f16(b + 208);
    for (int e = 0; e < 256; e++) {
        int half = e / 128, within = e % 128;
        int low = (ql[half * 64 + within % 64] >> (4 * (within / 64))) & 0x0F;
        int high = (qh[half * 32 + within % 32] >> (2 * (within / 32))) & 0x03;
        float ds = d * (float)scales[e / 16];
        y[e] = ds * (float)((low | (high << 4)) - 32);
    }
}

static void dq_iq4_nl(const uint8_t *b, float *y) {
    float d = load_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)kvalues_iq4nl[qs[j] & 0x0F];
        y[j + 16] = d * (float)kvalues_iq4nl[qs[j] >> 4];
    }
}

static void dq_iq4_xs(const uint8_t *b, float *y) {
    float d = load_f16(b);
    uint16_t scales_h = (uint16_t)(b[2] | (b[3] << 8));
    const uint8_t *scales_l = b + 4, *qs = b + 8;
    for (int sub = 0; sub < 8; sub++) {
        int low = (scales_l[sub / 2] >> (4 * (sub % 2))) & 0x0F;
        int high = (scales_h >> (2 * sub)) & 0x03;
        float dl = d * (float)((low | (high << 4)) - 32);
        for (int l = 0; l < 16; l++) {
            uint8_t q = qs[sub * 16 + l];
            y[sub * 32 + l] = dl * (float)kvalues_iq4nl[q & 0x0F];
            y[sub * 32 + 16 + l] = dl * (float)kvalues_iq4nl[q >> 4];
        }
    }
}

typedef void (*dq_block_fn)(const uint8_t *, float *);

static int type_layout(int type, int *block, int *bytes, dq_block_fn *fn) {
    switch (type) {
    case GLM_GGML_Q4_0: *block = 32; *bytes = 18; *fn = dq_q4_0; return 1;
    case GLM_GGML_Q4_1: *block = 32; *bytes = 20; *fn = dq_q4_1; return 1;
    case GLM_GGML_Q5_0: *block = 32; *bytes = 22; *fn = dq_q5_0; return 1;
    case GLM_GGML_Q5_1: *block = 32; *bytes = 24; *fn = dq_q5_1; return 1;
    case GLM_GGML_Q8_0: *block = 32; *bytes = 34; *fn = dq_q8_0; return 1;
    case GLM_GGML_Q2_K: *block = 256; *bytes = 84; *fn = dq_q2_k; return 1;
    case GLM_GGML_Q3_K: *block = 256; *bytes = 110; *fn = dq_q3_k; return 1;
    case GLM_GGML_Q4_K: *block = 256; *bytes = 144; *fn = dq_q4_k; return 1;
    case GLM_GGML_Q5_K: *block = 256; *bytes = 176; *fn = dq_q5_k; return 1;
    case GLM_GGML_Q6_K: *block = 256; *bytes = 210; *fn = dq_q6_k; return 1;
    case GLM_GGML_IQ4_NL: *block = 32; *bytes = 18; *fn = dq_iq4_nl; return 1;
    case GLM_GGML_IQ4_XS: *block = 256; *bytes = 136; *fn = dq_iq4_xs; return 1;
    default: return 0;
    }
}

int glm_ggml_dequantizable(int type) {
    int block, bytes;
    dq_block_fn fn;
    return type == GLM_GGML_F32 || type == GLM_GGML_F16 || type == GLM_GGML_BF16
        || type_layout(type, &block, &bytes, &fn);
}

int glm_dequantize(int type, const void *src, float *dst, ptrdiff_t count) {
    const uint8_t *p = (const uint8_t *)src;
    switch (type) {
    case GLM_GGML_F32:
        memcpy(dst, src, (size_t)count * 4);
        return 0;
    case GLM_GGML_F16:
        for (ptrdiff_t i = 0; i < count; i++) dst[i] = load_f16(p + 2 * i);
        return 0;
    case GLM_GGML_BF16:
        for (ptrdiff_t i = 0; i < count; i++) dst[i] = bits_to_f32((uint32_t)(p[2 * i] | (p[2 * i + 1] << 8)) << 16);
        return 0;
    default: break;
    }
    int block, bytes;
    dq_block_fn fn;
    if (!type_layout(type, &block, &bytes, &fn) || count % block != 0) return -1;
    for (ptrdiff_t i = 0; i < count / block; i++) fn(p + i * bytes, dst + i * block);
    return 0;
}

// A first, simple product over block-quantised weights: each weight row is dequantised (exactly as above) into a
// stack buffer, a chunk of at most GLM_DQ_CHUNK elements at a time, and multiplied by the f32 row kernel, so the
// weights stay in the file's map and no f32 copy of the matrix ever exists. The chunk's partial sums are added in
// order. ggml's way (activations quantised to Q8_0/Q8_K, integer dot products) is the faster later step.
#define GLM_DQ_CHUNK 8192

int glm_matmul_rows_ggml(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                         const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    int block, bytes;
    dq_block_fn fn;
    if (!type_layout(type, &block, &bytes, &fn) || columns % block != 0 || columns / block * bytes > row_bytes)
        return -1;
    float tmp[GLM_DQ_CHUNK];
    float part[64];
    const uint8_t *base = (const uint8_t *)w;
    for (ptrdiff_t r = 0; r < rows; r++) {
        const uint8_t *row = base + r * row_bytes;
        for (ptrdiff_t c0 = 0; c0 < columns; c0 += GLM_DQ_CHUNK) {
            ptrdiff_t n = columns - c0 < GLM_DQ_CHUNK ? columns - c0 : GLM_DQ_CHUNK;
            for (ptrdiff_t b = 0; b < n / block; b++) fn(row + (c0 / block + b) * bytes, tmp + b * block);
            for (ptrdiff_t t0 = 0; t0 < tokens; t0 += 64) {
                ptrdiff_t nt = tokens - t0 < 64 ? tokens - t0 : 64;
                if (c0 == 0) {
                    glm_matmul_rows_f32(tmp, n, 1, n, x + t0 * ldx, ldx, nt, y + t0 * ldy + r, ldy);
                } else {
                    glm_matmul_rows_f32(tmp, n, 1, n, x + t0 * ldx + c0, ldx, nt, part, 1);
                    for (ptrdiff_t t = 0; t < nt; t++) y[(t0 + t) * ldy + r] += part[t];
                }
            }
        }
    }
    return 0;
}

int glm_dequantize_rows(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                        float *dst) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        if (glm_dequantize(type, (const uint8_t *)w + r * row_bytes, dst + r * columns, columns) != 0) return -1;
    }
    return 0;
}
