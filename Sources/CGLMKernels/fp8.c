// FP8 E4M3FN weights (the official GLM-4.x FP8 checkpoints, docs/MODEL.md §4) read in place from the file's map and
// converted in registers; f32 scales per output channel, per rectangular block, or per tensor (glm_fp8_scales).
//
// E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is subnormal (m/8 · 2⁻⁶); no infinities;
// S.1111.111 (0x7F, 0xFF) is NaN; the largest finite value is 448.
//
// The conversion goes through IEEE half precision, which F16C converts to f32 in hardware: the byte's 7 magnitude
// bits placed at bits 13..7 of a half (sign at bit 15) give a half whose exponent field is E4M3's and whose mantissa
// starts with E4M3's 3 bits. Half's bias is 15, not 7, and its subnormals are m/1024 · 2⁻¹⁴ = m/8 · 2⁻¹⁴, so for every
// finite code (normal or subnormal) half(code) = fp8(code) · 2⁻⁸ exactly. The 2⁸ is folded into the scale
// (scale · 256 is exact: a power of two), so value = half(code) · (256 · scale) is the exact product fp8 · scale
// rounded once, bit-identical to PyTorch's float8_e4m3fn → float32 conversion followed by `* scale` in f32.
// The NaN codes would read as half 1.875 (fp8 480); they are made NaN explicitly.
//
// The decode row kernel is compiled a second time for AVX-512 (fp8_avx512.c, GLM_FP8_WIDE): there its 32-code step
// converts the codes into two 512-bit vectors instead of four 256-bit ones and runs two 512-bit FMAs whose halves are
// the AVX2 build's two accumulators, each lane in the same order: the two builds give the same bits.
#include "glm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#ifndef GLM_FP8_WIDE
#define GLM_FP8_WIDE 0
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

// MARK: conversions

// The half whose value is fp8(code) · 2⁻⁸ (NaN for the NaN codes), as the low 16 bits of the result.
ALWAYS_INLINE uint16_t e4m3_to_half_bits(uint8_t code) {
    uint16_t h = (uint16_t)(((code & 0x80u) << 8) | ((code & 0x7Fu) << 7));
    if ((code & 0x7Fu) == 0x7Fu) h |= 0x7C00u;   // exponent all ones, mantissa non-zero: NaN, sign kept
    return h;
}

ALWAYS_INLINE float e4m3_scaled(uint8_t code, float scale256) {
    return _cvtsh_ss(e4m3_to_half_bits(code)) * scale256;
}

// Eight codes → the eight halves (fp8 · 2⁻⁸), NaN codes made NaN: sign-extend each byte to 16 bits and shift left by
// 7, which puts the sign at bit 15, a copy of it at bit 14 (cleared) and the magnitude at bits 13..7.
ALWAYS_INLINE __m128i e4m3x8_to_halves(__m128i bytes8) {
    const __m128i h = _mm_slli_epi16(_mm_cvtepi8_epi16(bytes8), 7);
    const __m128i magnitude = _mm_and_si128(h, _mm_set1_epi16(0x3F80));
    const __m128i nan = _mm_cmpeq_epi16(magnitude, _mm_set1_epi16(0x3F80));
    return _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16((short)0xBF80)), _mm_and_si128(nan, _mm_set1_epi16(0x7C00)));
}

// Eight codes at p → eight f32 values fp8 · 2⁻⁸ (exact).
ALWAYS_INLINE __m256 load8_e4m3(const uint8_t *p) {
    return _mm256_cvtph_ps(e4m3x8_to_halves(_mm_loadl_epi64((const __m128i *)p)));
}

// The row kernel's conversion, three integer operations per eight codes and no F16C (which costs two operations per
// eight on AMD Zen and was the row kernel's bottleneck): the code's bits placed in an f32 with sign at bit 31 and the
// 7 magnitude bits at bits 26..20, so the f32's exponent field is E4M3's exponent e and its mantissa starts with
// E4M3's 3 bits. That f32 is fp8 · 2⁻¹²⁰ exactly: 2^(e−127)·(1 + m/8) for e ≥ 1, and for e = 0 the f32 subnormal
// m/8 · 2⁻¹²⁶. Products with such tiny values would underflow, so the inputs are multiplied by 2⁶⁴ first (exact; it
// keeps every product normal for |x| ≥ 2⁻⁶¹ and finite for |x| < 2⁶⁴) and the sums by 2⁵⁶ · scale at the end. The
// subnormal codes need the CPU to honour subnormal inputs: glm_matmul_rows_fp8 clears MXCSR.DAZ for its duration in
// case the host process set it. No NaN handling here: the caller finds NaN codes with one byte max per 16 codes.
ALWAYS_INLINE __m256 load8_e4m3_tiny(const uint8_t *p) {
    const __m256i d = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(d, 20), _mm256_set1_epi32((int)0x87F00000u)));
}

// 32 codes (one 32-byte load) → four vectors of eight f32 values fp8 · 2⁻¹²⁰ (exact, as load8_e4m3_tiny), in
// phases: f[p] lane i is code 4i + p. Each 16-bit lane holds two codes; an arithmetic shift by 4 puts the high code's
// sign at bit 15 (and copies of it at 14..11) and its 7 magnitude bits at 10..4, which for the upper 16-bit lane of a
// 32-bit lane are bits 31 and 26..20: one AND with 0x87F00000 makes it the f32, and a 32-bit shift by 16 first does
// the same for the lower 16-bit lane's. The low codes take a 16-bit shift by 8 first. 9 integer operations per 32
// codes, 5 of them shifts, where load8_e4m3_tiny takes 12 with 4 shuffles (the decode kernel's bottleneck on Zen 3:
// 1.35× in cache, 1.5× from memory on one core, 12288 × 5120); the inputs must be in the same phases.
ALWAYS_INLINE void e4m3x32_phases(__m256i codes, __m256 f[4]) {
    const __m256i mask = _mm256_set1_epi32((int)0x87F00000u);
    const __m256i high = _mm256_srai_epi16(codes, 4);                           // codes 4i + 1, 4i + 3
    const __m256i low = _mm256_srai_epi16(_mm256_slli_epi16(codes, 8), 4);      // codes 4i, 4i + 2
    f[0] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(low, 16), mask));
    f[1] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(high, 16), mask));
    f[2] = _mm256_castsi256_ps(_mm256_and_si256(low, mask));
    f[3] = _mm256_castsi256_ps(_mm256_and_si256(high, mask));
}

#if !GLM_FP8_WIDE   // fp8_avx512.c's copy has only the decode row kernel
void glm_fp8_e4m3_to_f32(const uint8_t *src, float *dst, ptrdiff_t count) {
    const __m256 two8 = _mm256_set1_ps(256.0f);
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, _mm256_mul_ps(load8_e4m3(src + i), two8));
    for (; i < count; i++) dst[i] = e4m3_scaled(src[i], 256.0f);
}

// MARK: scales

int glm_fp8_scales_valid(glm_fp8_scales s, ptrdiff_t rows, ptrdiff_t columns, ptrdiff_t scale_count) {
    if (!s.scales || s.block_rows <= 0 || s.block_columns <= 0 || s.scale_stride < 0 || rows < 0 || columns < 0) return 0;
    if (rows == 0 || columns == 0) return 1;
    const ptrdiff_t row_blocks = (rows + s.block_rows - 1) / s.block_rows;
    const ptrdiff_t column_blocks = (columns + s.block_columns - 1) / s.block_columns;
    if (s.scale_stride < column_blocks) return 0;
    return (row_blocks - 1) * s.scale_stride + column_blocks <= scale_count;
}

// MARK: dequantisation (embedding rows, GEMM panels, the quantize tool)

// dst[r · ld_dst + c] = fp8(w[(row_begin + r) · ldw + column_begin + c]) · scale(row_begin + r, column_begin + c)
// for r < rows, c < columns.
static void dequantize_block(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows,
                             ptrdiff_t column_begin, ptrdiff_t columns, const glm_fp8_scales *s, float *dst,
                             ptrdiff_t ld_dst) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const ptrdiff_t row = row_begin + r;
        const uint8_t *src = w + row * ldw;
        float *out = dst + r * ld_dst - column_begin;
        ptrdiff_t c = column_begin;
        const ptrdiff_t end = column_begin + columns;
        const float *row_scales = s->scales + (row / s->block_rows) * s->scale_stride;
        for (ptrdiff_t column_block = c / s->block_columns; c < end; column_block++) {
            // One scale per stretch of columns up to the next column-block boundary.
            const ptrdiff_t block_end = (column_block + 1) * s->block_columns;
            const ptrdiff_t stretch_end = block_end < end ? block_end : end;
            const float scale256 = row_scales[column_block] * 256.0f;
            const __m256 sv = _mm256_set1_ps(scale256);
            for (; c + 8 <= stretch_end; c += 8) _mm256_storeu_ps(out + c, _mm256_mul_ps(load8_e4m3(src + c), sv));
            for (; c < stretch_end; c++) out[c] = e4m3_scaled(src[c], scale256);
        }
    }
}

void glm_dequantize_fp8_rows(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows, ptrdiff_t columns,
                             glm_fp8_scales scales, float *dst) {
    dequantize_block(w, ldw, row_begin, rows, 0, columns, &scales, dst, columns);
}

#endif   // !GLM_FP8_WIDE

// MARK: row kernel (decode and a few tokens)

static float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// R weight rows (from `row`) × T input rows (from x, ldx apart): y[t · ldy + i] = Σ_c W[row + i, c] · x[t, c].
// Columns go in stretches of one scale each (the whole row for channel/tensor scales, one column block otherwise);
// inside a stretch, 32 codes per step when `phased` (one token, inputs in phases: decode), then 16 at a time to the
// last multiple of 16, are converted once and serve all T input rows, with two accumulators per output (eight FMA
// chains for four rows of decode). Without phases the chains are the same for every T, so an output's bits do not
// depend on how many tokens share the call (with phases glm_matmul_rows_fp8 runs tokens one at a time). A stretch's
// sum enters the row total multiplied by its scale. NaN codes: a byte max over the codes finds them; such a row's
// outputs are NaN, as the product with a NaN weight is.
ALWAYS_INLINE void fp8_block(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row, const int R, ptrdiff_t columns,
                             const glm_fp8_scales *s, const float *x, const float *x_scaled, const int phased,
                             ptrdiff_t ldx, const int T, float *y, ptrdiff_t ldy) {
    // phased (T = 1 only, with x_scaled) is a compile-time constant at every call site.
    const uint8_t *wr[4];
    const float *row_scales[4];   // the scales of each row's row block: one division per row, none per stretch
    __m256 total[4][4];
    float tail[4][4];
    __m128i magnitude_max[4];
    const __m128i magnitude_mask = _mm_set1_epi8(0x7F);
    const __m256 two64 = _mm256_set1_ps(0x1p64f);
    for (int i = 0; i < R; i++) {
        wr[i] = w + (row + i) * ldw;
        row_scales[i] = s->scales + ((row + i) / s->block_rows) * s->scale_stride;
        magnitude_max[i] = _mm_setzero_si128();
        for (int j = 0; j < T; j++) { total[i][j] = _mm256_setzero_ps(); tail[i][j] = 0.0f; }
    }
    ptrdiff_t c = 0;
    for (ptrdiff_t column_block = 0; c < columns; column_block++) {
        const ptrdiff_t block_end = c + s->block_columns;
        const ptrdiff_t stretch_end = block_end < columns ? block_end : columns;
        const ptrdiff_t vector_end = c + ((stretch_end - c) & ~(ptrdiff_t)15);
        __m256 a0[4][4], a1[4][4];
        for (int i = 0; i < R; i++)
            for (int j = 0; j < T; j++) { a0[i][j] = _mm256_setzero_ps(); a1[i][j] = _mm256_setzero_ps(); }
        if (phased) {
            // Decode: 32 codes per row and step, one 32-byte load, converted in four phases (e4m3x32_phases) against
            // inputs × 2⁶⁴ in the same phases (x_scaled, built by glm_matmul_rows_fp8), so the FMAs read them from
            // memory and 15 vector registers suffice. NaN codes: (b | 0x80) == 0xFF exactly for them; one byte max
            // per 32 codes over all R rows finds out whether the stretch has any, and only then (never, in a real
            // checkpoint) are the rows scanned one by one.
            const ptrdiff_t end32 = c + ((vector_end - c) & ~(ptrdiff_t)31);
            const ptrdiff_t begin32 = c;
            const __m256i high_bit = _mm256_set1_epi8((char)0x80);
            __m256i any_max = _mm256_setzero_si256();
#if GLM_FP8_WIDE
            // The 32 codes in both halves of a 512-bit vector; a 16-bit shift left by 8 in the lower half only,
            // then the arithmetic shift by 4, leaves the low codes (4i, 4i + 2) in the lower half and the high ones
            // (4i + 1, 4i + 3) in the upper: the two ANDs below give [f[0] | f[1]] and [f[2] | f[3]] of
            // e4m3x32_phases, against inputs [x0 | x1] and [x2 | x3], so each half of `pair` is the AVX2 build's a0
            // or a1 with the same FMAs in the same order.
            const __m512i lower_by_8 = _mm512_inserti64x4(_mm512_set1_epi16(8), _mm256_setzero_si256(), 1);
            const __m512i mask512 = _mm512_set1_epi32((int)0x87F00000u);
            __m512 pair[4];
            for (int i = 0; i < R; i++) pair[i] = _mm512_setzero_ps();
            for (; c < end32; c += 32) {
                const float *xc = x_scaled + c;
                const __m512 x01 = _mm512_loadu_ps(xc), x23 = _mm512_loadu_ps(xc + 16);
                for (int i = 0; i < R; i++) {
                    const uint8_t *p = wr[i] + c;
                    if ((c & 63) == 0) _mm_prefetch((const char *)(p + R * ldw), _MM_HINT_T0);
                    const __m256i codes = _mm256_loadu_si256((const __m256i *)p);
                    const __m512i t = _mm512_srai_epi16(
                        _mm512_sllv_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(codes), codes, 1), lower_by_8), 4);
                    pair[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(t, 16), mask512)),
                                              x01, pair[i]);
                    pair[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(t, mask512)), x23, pair[i]);
                    any_max = _mm256_max_epu8(any_max, _mm256_or_si256(codes, high_bit));
                }
            }
            for (int i = 0; i < R; i++) {
                a0[i][0] = _mm512_castps512_ps256(pair[i]);
                a1[i][0] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(pair[i]), 1));
            }
#else
            for (; c < end32; c += 32) {
                const float *xc = x_scaled + c;
                for (int i = 0; i < R; i++) {
                    const uint8_t *p = wr[i] + c;
                    // The same columns of the next R rows, which the next call reads: a row is only a few KB of
                    // codes, too short a stream for the hardware prefetcher to reach full speed on its own.
                    if ((c & 63) == 0) _mm_prefetch((const char *)(p + R * ldw), _MM_HINT_T0);
                    const __m256i codes = _mm256_loadu_si256((const __m256i *)p);
                    __m256 f[4];
                    e4m3x32_phases(codes, f);
                    a0[i][0] = _mm256_fmadd_ps(f[0], _mm256_loadu_ps(xc), a0[i][0]);
                    a1[i][0] = _mm256_fmadd_ps(f[1], _mm256_loadu_ps(xc + 8), a1[i][0]);
                    a0[i][0] = _mm256_fmadd_ps(f[2], _mm256_loadu_ps(xc + 16), a0[i][0]);
                    a1[i][0] = _mm256_fmadd_ps(f[3], _mm256_loadu_ps(xc + 24), a1[i][0]);
                    any_max = _mm256_max_epu8(any_max, _mm256_or_si256(codes, high_bit));
                }
            }
#endif
            if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(any_max, _mm256_set1_epi8((char)0xFF)))) {
                for (int i = 0; i < R; i++) {
                    for (ptrdiff_t k = begin32; k < end32; k++) {
                        if ((wr[i][k] & 0x7F) == 0x7F) magnitude_max[i] = magnitude_mask;
                    }
                }
            }
        }
        for (; c < vector_end; c += 16) {
            __m256 x0[4], x1[4];
            for (int j = 0; j < T; j++) {
                x0[j] = _mm256_mul_ps(_mm256_loadu_ps(x + j * ldx + c), two64);
                x1[j] = _mm256_mul_ps(_mm256_loadu_ps(x + j * ldx + c + 8), two64);
            }
            for (int i = 0; i < R; i++) {
                const __m256 lo = load8_e4m3_tiny(wr[i] + c), hi = load8_e4m3_tiny(wr[i] + c + 8);
                const __m128i raw = _mm_loadu_si128((const __m128i *)(wr[i] + c));
                magnitude_max[i] = _mm_max_epu8(magnitude_max[i], _mm_and_si128(raw, magnitude_mask));
                for (int j = 0; j < T; j++) {   // the same chains for every T: bits independent of T
                    a0[i][j] = _mm256_fmadd_ps(lo, x0[j], a0[i][j]);
                    a1[i][j] = _mm256_fmadd_ps(hi, x1[j], a1[i][j]);
                }
            }
        }
        for (int i = 0; i < R; i++) {
            const float scale256 = row_scales[i][column_block] * 256.0f;
            const __m256 sv = _mm256_set1_ps(scale256 * 0x1p48f);   // 2⁵⁶ · scale: the vector sums' unit
            for (int j = 0; j < T; j++) {
                total[i][j] = _mm256_fmadd_ps(_mm256_add_ps(a0[i][j], a1[i][j]), sv, total[i][j]);
                float partial = 0.0f;
                for (ptrdiff_t k = vector_end; k < stretch_end; k++) {
                    partial += _cvtsh_ss(e4m3_to_half_bits(wr[i][k])) * x[j * ldx + k];
                }
                tail[i][j] += partial * scale256;
            }
        }
        c = stretch_end;
    }
    for (int i = 0; i < R; i++) {
        const int has_nan = _mm_movemask_epi8(_mm_cmpeq_epi8(magnitude_max[i], magnitude_mask)) != 0;
        for (int j = 0; j < T; j++) {
            const float v = horizontal_sum(total[i][j]) + tail[i][j];
            y[j * ldy + i] = has_nan ? NAN : v;
        }
    }
}

ALWAYS_INLINE void fp8_row_group(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row, const int R, ptrdiff_t columns,
                                 const glm_fp8_scales *s, const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y,
                                 ptrdiff_t ldy) {
    for (ptrdiff_t t = 0; t < tokens;) {
        const ptrdiff_t left = tokens - t;
        const float *xt = x + t * ldx;
        float *yt = y + t * ldy;
        if (R == 1 && left >= 4) { fp8_block(w, ldw, row, 1, columns, s, xt, NULL, 0, ldx, 4, yt, ldy); t += 4; }
        else if (R == 1 && left == 3) { fp8_block(w, ldw, row, 1, columns, s, xt, NULL, 0, ldx, 3, yt, ldy); t += 3; }
        else if (left >= 2) { fp8_block(w, ldw, row, R, columns, s, xt, NULL, 0, ldx, 2, yt, ldy); t += 2; }
        else { fp8_block(w, ldw, row, R, columns, s, xt, NULL, 0, ldx, 1, yt, ldy); t += 1; }
    }
}

// Decode inputs up to this width are multiplied by 2⁶⁴ once per call into a stack buffer (64 KiB); wider rows
// multiply in the loop.
enum { FP8_SCALED_INPUT_MAX = 16384 };

// The AVX-512 build's entry point, internal to libglm (it runs only on a CPU with AVX-512 F/BW).
__attribute__((visibility("hidden")))
void glm_matmul_rows_fp8_avx512(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows,
                                ptrdiff_t columns, glm_fp8_scales scales, const float *x, ptrdiff_t ldx,
                                ptrdiff_t tokens, float *y, ptrdiff_t ldy);

#if GLM_FP8_WIDE
#define FP8_ROWS_FN glm_matmul_rows_fp8_avx512
#else
#define FP8_ROWS_FN fp8_rows_avx2
static
#endif
void FP8_ROWS_FN(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows, ptrdiff_t columns,
                 glm_fp8_scales scales, const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy) {
    // Subnormal codes are subnormal f32 inputs in the vector loop (load8_e4m3_tiny): they must not read as zero.
    const unsigned int csr = _mm_getcsr();
    if (csr & 0x0040u) _mm_setcsr(csr & ~0x0040u);
    // The 32-code phases need every scale stretch to start at a multiple of 32 (the loop steps from its start);
    // the width limit keeps one token's phased inputs on the stack. Both hold for every real checkpoint (channel,
    // tensor or 128-wide block scales). Then every token runs the one-token kernel on its own, 2–7 tokens
    // (speculative verification) one after the other over the call's rows (a 32-row tile's codes stay in L2 for
    // the next token): their bits equal one-token decode's by construction, and the phases' transposition of the
    // inputs is paid once per token and call, not per row group. Otherwise 2-7 tokens share 16-code steps in row
    // × token blocks with the same two chains per output as one token alone.
    const int phased = columns <= FP8_SCALED_INPUT_MAX
        && (scales.block_columns % 32 == 0 || scales.block_columns >= columns);
    if (phased) {
        // The inputs × 2⁶⁴ in e4m3x32_phases' order: per 32 columns from c, scaled[c + 8p + i] = x[c + 4i + p].
        float scaled[columns] __attribute__((aligned(32)));
        for (ptrdiff_t t = 0; t < tokens; t++) {
            const float *xt = x + t * ldx;
            float *yt = y + t * ldy;
            // A gather once per token (columns floats) next to rows × columns codes: not worth vectorising.
            ptrdiff_t c = 0;
            for (; c + 32 <= columns; c += 32) {
                for (int p = 0; p < 4; p++)
                    for (int i = 0; i < 8; i++) scaled[c + 8 * p + i] = xt[c + 4 * i + p] * 0x1p64f;
            }
            for (; c < columns; c++) scaled[c] = xt[c] * 0x1p64f;
            // Four rows share each x load: eight independent FMA chains, four weight streams.
            ptrdiff_t r = 0;
            for (; r + 4 <= rows; r += 4)
                fp8_block(w, ldw, row_begin + r, 4, columns, &scales, xt, scaled, 1, ldx, 1, yt + r, ldy);
            for (; r < rows; r++) fp8_block(w, ldw, row_begin + r, 1, columns, &scales, xt, scaled, 1, ldx, 1, yt + r, ldy);
        }
    } else if (tokens == 1) {
        ptrdiff_t r = 0;
        for (; r + 4 <= rows; r += 4) fp8_block(w, ldw, row_begin + r, 4, columns, &scales, x, NULL, 0, ldx, 1, y + r, ldy);
        for (; r < rows; r++) fp8_block(w, ldw, row_begin + r, 1, columns, &scales, x, NULL, 0, ldx, 1, y + r, ldy);
    } else {
        ptrdiff_t r = 0;
        if (tokens == 2)
            for (; r + 2 <= rows; r += 2) fp8_row_group(w, ldw, row_begin + r, 2, columns, &scales, x, ldx, tokens, y + r, ldy);
        for (; r < rows; r++) fp8_row_group(w, ldw, row_begin + r, 1, columns, &scales, x, ldx, tokens, y + r, ldy);
    }
    if (csr & 0x0040u) _mm_setcsr(csr);
}

#if !GLM_FP8_WIDE
static int fp8_cpu_wide = -1;   // -1: not yet checked

void glm_matmul_rows_fp8(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows, ptrdiff_t columns,
                         glm_fp8_scales scales, const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y,
                         ptrdiff_t ldy, int avx512) {
    if (avx512 && fp8_cpu_wide < 0) {
        __builtin_cpu_init();
        fp8_cpu_wide = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    }
    if (avx512 && fp8_cpu_wide == 1)
        glm_matmul_rows_fp8_avx512(w, ldw, row_begin, rows, columns, scales, x, ldx, tokens, y, ldy);
    else
        fp8_rows_avx2(w, ldw, row_begin, rows, columns, scales, x, ldx, tokens, y, ldy);
}

// MARK: packed GEMM (prefill)
//
// The weights are converted panel by panel: GEMM_KC columns of the call's rows are dequantised into an f32 panel
// (rows × KC, a few hundred KB that stay in L2) and multiplied by the f32 packed GEMM of kernels.c (which packs and
// runs the AVX2 or AVX-512 micro-kernel); partial products of later panels are added. Tokens go in chunks so the
// partial product fits beside the panel. Converting is cheap next to the GEMM's FLOPs per weight (one per token).

enum { FP8_GEMM_KC = 256, FP8_GEMM_TOKENS = 96 };

ptrdiff_t glm_gemm_fp8_scratch_floats(void) {
    return glm_gemm_scratch_floats() + (ptrdiff_t)FP8_GEMM_KC * GLM_GEMM_MAX_ROWS
        + (ptrdiff_t)FP8_GEMM_TOKENS * GLM_GEMM_MAX_ROWS;
}

void glm_gemm_fp8(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows, ptrdiff_t columns,
                  glm_fp8_scales scales, const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy,
                  float *scratch, int avx512) {
    if (rows > GLM_GEMM_MAX_ROWS) rows = GLM_GEMM_MAX_ROWS;   // contract: callers tile
    float *gemm_scratch = scratch;
    float *panel = scratch + glm_gemm_scratch_floats();                 // [rows][KC]
    float *partial = panel + (ptrdiff_t)FP8_GEMM_KC * GLM_GEMM_MAX_ROWS;  // [FP8_GEMM_TOKENS][rows]
    for (ptrdiff_t t0 = 0; t0 < tokens; t0 += FP8_GEMM_TOKENS) {
        const ptrdiff_t tc = tokens - t0 < FP8_GEMM_TOKENS ? tokens - t0 : FP8_GEMM_TOKENS;
        for (ptrdiff_t k0 = 0; k0 < columns; k0 += FP8_GEMM_KC) {
            const ptrdiff_t kc = columns - k0 < FP8_GEMM_KC ? columns - k0 : FP8_GEMM_KC;
            dequantize_block(w, ldw, row_begin, rows, k0, kc, &scales, panel, kc);
            if (k0 == 0) {
                glm_gemm_f32(panel, kc, rows, kc, x + t0 * ldx, ldx, tc, y + t0 * ldy, ldy, gemm_scratch, avx512);
                continue;
            }
            glm_gemm_f32(panel, kc, rows, kc, x + t0 * ldx + k0, ldx, tc, partial, rows, gemm_scratch, avx512);
            for (ptrdiff_t t = 0; t < tc; t++) {
                float *out = y + (t0 + t) * ldy;
                const float *in = partial + t * rows;
                ptrdiff_t r = 0;
                for (; r + 8 <= rows; r += 8) {
                    _mm256_storeu_ps(out + r, _mm256_add_ps(_mm256_loadu_ps(out + r), _mm256_loadu_ps(in + r)));
                }
                for (; r < rows; r++) out[r] += in[r];
            }
        }
    }
}
#endif   // !GLM_FP8_WIDE
