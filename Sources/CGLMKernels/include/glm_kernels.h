// Hot loops of the forward pass, written with AVX2/FMA/F16C intrinsics and compiled with -O3 even in debug
// builds (see Package.swift), so that the Swift side stays readable and the machine code is known.
//
// Conventions: every length is a count of elements; matrices are row-major with an explicit leading dimension
// (elements between consecutive rows); weights are [out, in] as on disk, so a projection is a set of dot
// products of weight rows with input rows. bf16 is the top half of an IEEE f32; f16 is IEEE half.
#ifndef GLM_KERNELS_H
#define GLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// y[t*ldy + r] = dot(w[r*ldw ...], x[t*ldx ...]) over `columns`, for r < rows, t < tokens.
// The weight row is read from memory once per group of tokens and converted to f32 in registers.
void glm_matmul_rows_f32(const float *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                         const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy);
void glm_matmul_rows_bf16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                          const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy);
void glm_matmul_rows_f16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                         const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy);

// The same product for many input rows (prefill): a packed, register-blocked GEMM. Weight panels are converted
// to f32 while packing, so bf16/f16 weights never exist as f32 outside a small cache-resident block.
// `scratch` must hold glm_gemm_scratch_floats() floats; rows <= GLM_GEMM_MAX_ROWS per call (callers tile).
// `avx512` != 0 runs the 12×32 AVX-512 micro-kernel (if the CPU has AVX-512F; else AVX2), 0 the 6×16 AVX2 one;
// both sum in the same order, so results are bit-identical.
#define GLM_GEMM_MAX_ROWS 256
ptrdiff_t glm_gemm_scratch_floats(void);
void glm_gemm_f32(const float *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                  const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, float *scratch,
                  int avx512);
void glm_gemm_bf16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                   const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, float *scratch,
                  int avx512);
void glm_gemm_f16(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns,
                  const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, float *scratch,
                  int avx512);

// y[t*ldy + n] = Σ_k x[t*ldx + k] · w[k*ldw + n] for n < columns_out (<= GLM_GEMM_MAX_ROWS), k < depth: the same
// GEMM with the right-hand matrix stored [K][N] (attention: probabilities × values).
void glm_gemm_f32_kn(const float *w, ptrdiff_t ldw, ptrdiff_t columns_out, ptrdiff_t depth,
                     const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, float *scratch,
                  int avx512);

// dst[i] = f32(src[i]).
void glm_convert_bf16_to_f32(const uint16_t *src, float *dst, ptrdiff_t count);
void glm_convert_f16_to_f32(const uint16_t *src, float *dst, ptrdiff_t count);

// y = w ⊙ x / sqrt(mean(x²) + eps); y may alias x. Statistics in f32.
void glm_rms_norm(const float *x, const float *w, float *y, ptrdiff_t count, float eps);

// out[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + exp(-z)). out may alias gate or up.
void glm_silu_mul(const float *gate, const float *up, float *out, ptrdiff_t count);

// In-place softmax over x[0..count): exp(x - max) / sum. Entries equal to -INFINITY get probability 0.
void glm_softmax(float *x, ptrdiff_t count);

// One step of an online softmax (attention over key tiles, docs/MODEL.md §3.3): x[0..count) are the raw scores
// q·k of one query row against one tile of keys, of which the first `valid` are visible (causal mask). With
// scores z = x·scale, the row's running maximum m and running sum l (of exp(z − m) over earlier tiles):
//   m' = max(m, max_j<valid z_j);  x[j] = exp(z_j − m') for j < valid, 0 for valid <= j < count;
//   l' = l·exp(m − m') + Σ_j x[j];  returns exp(m − m'), the factor the row's accumulated P·V must be scaled by.
// valid == 0 leaves m and l and returns 1 (the tile is all masked). Start a row with m = -INFINITY, l = 0.
float glm_softmax_online(float *x, ptrdiff_t valid, ptrdiff_t count, float scale, float *running_max,
                         float *running_sum);

// Attention of a few stacked query rows (decode, speculative verification) over cache positions [first, end) of one
// KV head, keys and values read once for all rows (attention.c). Stacked row i is query token i / group, head i % group
// of the KV head; it sees positions below first_limit + i / group. Keys and values: position 0 of the head in a
// cache of kind GLM_KV_KIND_*, key_stride / value_stride bytes apart. Per row, with z_s = q · k_s · scale:
//   partial == 0: output = Σ_s exp(z_s − m) · v_s / Σ_s exp(z_s − m)   (m: the running maximum)
//   partial != 0: output[0..head_dim) = Σ_s exp(z_s − m) · v_s, output[head_dim] = m, output[head_dim + 1] = Σ exp
// Each row's sums run in one order whatever the other rows and the kernel path: results are bit-identical for any
// row count and for avx512 != 0 (AVX-512 F, where the CPU has it) or 0, for finite cache values (a key past a row's
// position still adds 0 · v to its sums: an infinite or NaN v there would reach it). Positions are below 2^31.
struct glm_attend_rows_args {
    int key_kind, value_kind;
    const void *keys, *values;
    ptrdiff_t key_stride, value_stride;
    ptrdiff_t key_head_bytes, value_head_bytes;   // bytes of one head in the cache (glm_kv_head_bytes)
    ptrdiff_t head_dim, rows, group;
    const float *query;
    ptrdiff_t query_token_stride, query_head_stride;
    ptrdiff_t first_limit, first, end;
    float scale;
    float *output;
    ptrdiff_t output_token_stride, output_head_stride;
    int partial;
};
// Floats of scratch glm_attend_rows needs for head_dim and rows (per call; 64-byte alignment not required).
size_t glm_attend_rows_scratch_floats(ptrdiff_t head_dim, ptrdiff_t rows);
void glm_attend_rows(const struct glm_attend_rows_args *args, float *scratch, int avx512);

// Partial NeoX rotary embedding of one head vector: for i < half, with c = cos_sin[2i], s = cos_sin[2i+1],
//   (x[i], x[i+half]) <- (x[i]·c − x[i+half]·s, x[i+half]·c + x[i]·s). Entries from 2·half on are untouched.
void glm_rope_neox(float *x, const float *cos_sin, ptrdiff_t half);

// y[i] += a * x[i];  y[i] += x[i].
void glm_axpy(float a, const float *x, float *y, ptrdiff_t count);
void glm_add(const float *x, float *y, ptrdiff_t count);
// x[i] *= a;  y[i] = a * y[i] + x[i] (attention's accumulator: rescale, then add a tile's P·V).
void glm_scale(float *x, float a, ptrdiff_t count);
void glm_scale_add(float a, float *y, const float *x, ptrdiff_t count);

// ggml tensor types (ids from ggml.h, as GGUF files store them).
enum {
    GLM_GGML_F32 = 0, GLM_GGML_F16 = 1, GLM_GGML_Q4_0 = 2, GLM_GGML_Q4_1 = 3, GLM_GGML_Q5_0 = 6, GLM_GGML_Q5_1 = 7,
    GLM_GGML_Q8_0 = 8, GLM_GGML_Q2_K = 10, GLM_GGML_Q3_K = 11, GLM_GGML_Q4_K = 12, GLM_GGML_Q5_K = 13,
    GLM_GGML_Q6_K = 14, GLM_GGML_IQ4_NL = 20, GLM_GGML_IQ4_XS = 23, GLM_GGML_BF16 = 30,
};

// 1 if glm_dequantize handles `type` (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS).
int glm_ggml_dequantizable(int type);

// dst[0..count) = the `count` elements stored at `src` in ggml type `type`, bit-identical to ggml's reference
// dequantisers (gguf-py quants.py). `count` must be a multiple of the type's block size. Returns 0, or -1 for an
// unsupported type or a count that is not a whole number of blocks (dst untouched).
int glm_dequantize(int type, const void *src, float *dst, ptrdiff_t count);

// y[t*ldy + r] = dot(row r of w, x[t*ldx ...]) for block-quantised `w` (rows `row_bytes` apart): each row is
// dequantised with glm_dequantize in chunks into a stack buffer and multiplied with the f32 row kernel. Returns -1
// (nothing written) for a type glm_dequantize does not handle or a row that is not whole blocks.
int glm_matmul_rows_ggml(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                         const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy);
// dst[r*columns ...] = row r of w dequantised, r < rows.
int glm_dequantize_rows(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                        float *dst);

// ggml-style integer products for block-quantised weights (quantdot.c, every block type of glm_dequantize): each
// input row is quantised once to the activation type ggml pairs with the weight type (Q8_0 for Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, IQ4_NL; Q8_K for Q2_K..Q6_K and IQ4_XS, with ggml's reference quantisers), block products are summed
// exactly in int32 (AVX2, or AVX-512 VNNI) and scaled by the weight and activation scales in f32. y[t*ldy + r] as in
// glm_matmul_rows_ggml. Returns -1 (nothing written) for another type, columns not whole blocks, or rows wider than
// the 64 KiB stack buffer holding one quantised input row (about 60,000 columns).
// avx512 = 1 (the model's avx512 kernel path) runs the prefill panels and the Q8_0-activation row kernels from their
// AVX-512 VNNI build (quantdot_vnni.c) where the CPU has AVX512F, VL, BW and VNNI; otherwise, and with avx512 = 0
// (the avx2 path), the Q8_0-activation types run the AVX-VNNI build (quantdot_avxvnni.c) where the CPU has AVX-VNNI,
// and everything else the AVX2 build; avx512 = 2 forces the AVX2 build (the tests compare every build). The results
// are the same bits on every build.
int glm_matmul_rows_q8act(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                          const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy, int avx512);
// The same in two steps, so that an input quantised once serves every tile of weight rows: glm_q8act_row_bytes is
// the size of one quantised input row for weight type `type` (-1: type or columns unsupported; rows are stored that
// many bytes apart, 32-byte aligned if `act` is), glm_q8act_quantize writes `tokens` of them, and
// glm_matmul_rows_q8act_pre multiplies. Both return 0, or -1 (nothing written) as glm_matmul_rows_q8act. The
// results are bit-identical to glm_matmul_rows_q8act's, for every number of rows and tokens.
ptrdiff_t glm_q8act_row_bytes(int type, ptrdiff_t columns);
// Which activation format `type` multiplies with: 0 Q8_0, 1 Q8_K, -1 none. Types of the same kind can share one
// quantised input.
int glm_q8act_kind(int type);
int glm_q8act_quantize(int type, const float *x, ptrdiff_t ldx, ptrdiff_t columns, ptrdiff_t tokens, void *act);
int glm_matmul_rows_q8act_pre(int type, const void *w, ptrdiff_t row_bytes, ptrdiff_t rows, ptrdiff_t columns,
                              const void *act, ptrdiff_t tokens, float *y, ptrdiff_t ldy, int avx512);
// 1 where avx512 = 1 selects the VNNI kernels (the CPU has AVX512F, VL, BW and VNNI), else 0.
int glm_q8act_vnni_available(void);
// 1 where the CPU has AVX-VNNI (avx512 = 0 then runs the AVX-VNNI build), else 0.
int glm_q8act_avxvnni_available(void);
// From how many tokens on glm_matmul_rows_q8act(_pre) multiplies `type` with the prefill panel kernel (8 rows
// repacked per K range, lanes = rows; quantdot.c says how its float order differs from the row kernel's), 0 where
// the type has none: fewer tokens run the row kernel, whose results equal one row times one token bit for bit.
int glm_q8act_panel_min_tokens(int type);
// Benchmarks only: 0 turns the panel kernel off (prefill then runs the row × token tiles), 1 back on. Not
// thread-safe against running products.
void glm_q8act_set_panel(int enabled);
// bf16 weights times bf16-rounded inputs, ggml's way for a BF16 tensor (bf16dot.c): each input row is rounded once
// to bf16 (nearest even; NaN stays NaN; subnormals become zero), then the products, exact in f32, are summed in f32.
// native = 1: rows of ((columns + 31) / 32) * 32 bf16 values, zero-padded, for glm_matmul_rows_bf16act (vdpbf16ps,
// AVX-512 BF16); native = 0: rows of `columns` f32 values holding the rounded inputs, for the f32-input kernels
// (glm_matmul_rows_bf16, glm_gemm_bf16) on CPUs without AVX-512 BF16. glm_bf16act_row_bytes gives the bytes between
// rows (0 for columns <= 0).
ptrdiff_t glm_bf16act_row_bytes(ptrdiff_t columns, int native);
void glm_bf16act_round(const float *x, ptrdiff_t ldx, ptrdiff_t columns, ptrdiff_t tokens, void *act, int native);
// y[t*ldy + r] = Σ_c w[r*ldw + c] · act_t[c] with native rows from glm_bf16act_round, by vdpbf16ps: one order of
// summation per output whatever the number of rows and tokens (decode's bits equal prefill's). Returns -1 (nothing
// written) where the CPU lacks AVX-512 F/BW/VL/BF16 (glm_bf16act_native_available() = 0) or columns <= 0.
int glm_matmul_rows_bf16act(const uint16_t *w, ptrdiff_t ldw, ptrdiff_t rows, ptrdiff_t columns, const void *act,
                            ptrdiff_t tokens, float *y, ptrdiff_t ldy);
int glm_bf16act_native_available(void);
// count (a multiple of 32) floats → count/32 Q8_0 blocks of 34 bytes, as ggml's quantize_row_q8_0_ref.
void glm_quantize_row_q8_0(const float *x, void *y, ptrdiff_t count);
// count (a multiple of 256) floats → count/256 Q8_K blocks of 292 bytes (f32 d, int8 q[256], int16 bsums[16]), as
// ggml's quantize_row_q8_K_ref. Returns -1 for another count. (A block with a NaN/Inf element gets d = NaN.)
int glm_quantize_row_q8_k(const float *x, void *y, ptrdiff_t count);

// Memory-bandwidth probes for the benchmark: a streaming read (returns a sum so it cannot be elided) and the
// STREAM triad a[i] = b[i] + s·c[i].
float glm_stream_read(const float *x, ptrdiff_t count);
void glm_stream_triad(float *a, const float *b, const float *c, float s, ptrdiff_t count);

// Quantisation to ggml block formats (quantize.c), byte-identical to llama-quantize without an importance matrix
// (ggml_quantize_chunk with imatrix NULL: ggml's quantize_row_*_ref paths). 1 if glm_quantize_blocks handles `type`
// (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K).
int glm_ggml_quantizable(int type);
// dst = the `count` floats of src in ggml type `type` (count / block size blocks, back to back; rows of a matrix are
// independent, so any split of whole rows gives the same bytes). Returns 0, or -1 for an unsupported type or a
// count that is not a whole number of blocks (dst untouched).
int glm_quantize_blocks(int type, const float *src, void *dst, ptrdiff_t count);

// FP8 E4M3FN weights with f32 scales (fp8.c; the official GLM-4.x FP8 checkpoints, docs/MODEL.md §4). `w` points at
// row 0 of the matrix (rows `ldw` bytes apart, one byte per element); functions take the absolute index of their
// first row, `row_begin`, because block scales depend on it. Element (r, c) is fp8(w[r·ldw + c]) · scale(r, c) with
//   scale(r, c) = scales[(r / block_rows) · scale_stride + c / block_columns]
// per channel: block_rows 1, block_columns >= columns, scale_stride 1; per tensor: block_rows >= rows too; per block
// (compressed-tensors `block`, DeepSeek-style `weight_scale_inv`): the block shape, scale_stride = ceil(columns /
// block_columns). Edge blocks may be partial. Conversion is exact (bit-identical to PyTorch's float8_e4m3fn →
// float32, then `* scale` in f32): 0x7F/0xFF are NaN, subnormals are exact.
typedef struct {
    const float *scales;
    ptrdiff_t block_rows;
    ptrdiff_t block_columns;
    ptrdiff_t scale_stride;
} glm_fp8_scales;

// 1 if every scale(r, c), r < rows, c < columns, lies within scales[0 ..< scale_count] and the block sizes are
// positive; 0 otherwise (callers check once at load, the kernels do not).
int glm_fp8_scales_valid(glm_fp8_scales scales, ptrdiff_t rows, ptrdiff_t columns, ptrdiff_t scale_count);
// dst[i] = the E4M3FN value of src[i], exactly (no scale).
void glm_fp8_e4m3_to_f32(const uint8_t *src, float *dst, ptrdiff_t count);
// dst[r·columns + c] = element (row_begin + r, c), r < rows, c < columns: dequantised rows in f32 (embedding rows,
// the FP8 → GGUF path of the quantize tool).
void glm_dequantize_fp8_rows(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows, ptrdiff_t columns,
                             glm_fp8_scales scales, float *dst);
// y[t·ldy + r] = Σ_c element(row_begin + r, c) · x[t·ldx + c] for r < rows, t < tokens, converting in registers
// (decode and a few tokens; each stretch of one scale is summed, then multiplied by its scale). avx512 != 0: the
// AVX-512 build of the decode step where the CPU has AVX-512 F/BW (fp8_avx512.c); the same bits either way.
void glm_matmul_rows_fp8(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows, ptrdiff_t columns,
                         glm_fp8_scales scales, const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y,
                         ptrdiff_t ldy, int avx512);
// The same product for many tokens (prefill): panels of 256 columns dequantised to f32 and multiplied by the packed
// f32 GEMM (`avx512` as there). rows <= GLM_GEMM_MAX_ROWS; `scratch` holds glm_gemm_fp8_scratch_floats() floats.
ptrdiff_t glm_gemm_fp8_scratch_floats(void);
void glm_gemm_fp8(const uint8_t *w, ptrdiff_t ldw, ptrdiff_t row_begin, ptrdiff_t rows, ptrdiff_t columns,
                  glm_fp8_scales scales, const float *x, ptrdiff_t ldx, ptrdiff_t tokens, float *y, ptrdiff_t ldy,
                  float *scratch, int avx512);

#ifdef __cplusplus
}
#endif

#endif
