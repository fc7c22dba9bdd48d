// The KV cache's element types and the attention loops that read them (kv_cache.c). A cache row is one position
// of one layer: `heads` KV heads of `head_dim` values each, head after head. Keys and values are written once,
// when their token is evaluated, and converted to f32 in registers every time attention reads them.
#ifndef GLM_KV_CACHE_H
#define GLM_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Element kinds; the values are glm.h's glm_kv_type.
enum {
    GLM_KV_KIND_F16 = 0,  // IEEE half, round to nearest even
    GLM_KV_KIND_BF16 = 1, // top half of an f32, round to nearest even (NaN stays NaN)
    GLM_KV_KIND_F32 = 2,
    GLM_KV_KIND_Q8_0 = 3  // ggml's Q8_0: blocks of 32 values, an f16 scale d = amax/127 and 32 int8 (34 bytes)
};

// Q8_0 blocks restart at every head: a head holds ceil(head_dim/32) blocks, the last one zero-padded when
// head_dim is not a multiple of 32 (then it is a short block; with head_dim % 32 == 0 this is ggml's layout).
#define GLM_KV_Q8_0_BLOCK 32
#define GLM_KV_Q8_0_BLOCK_BYTES 34
// Largest head_dim the converting loops take (they convert one head row into a stack buffer of this size).
#define GLM_KV_MAX_HEAD_DIM 1024

// Bytes of one head of one position.
size_t glm_kv_head_bytes(int kind, ptrdiff_t head_dim);

// Converts `heads` heads of `head_dim` f32 values (src, contiguous) into one cache row at dst.
void glm_kv_store(int kind, const float *src, void *dst, ptrdiff_t heads, ptrdiff_t head_dim);

// Converts one head (head_dim values at src) back to f32.
void glm_kv_load(int kind, const void *src, float *dst, ptrdiff_t head_dim);

// Attention scores over cached keys for `rows` query rows of one head, causal: row i sees positions
// 0 ..< seen0 + i. scores[i*ldc + s] = dot(q[i*ldq ...], key(s)) for those s (other entries are not written);
// key(s) is the head at k + s*k_stride (bytes). Each key is converted once and used by every row that sees it;
// a row's sum runs in the same order whatever `rows` is, so a token's scores do not depend on its batch.
void glm_kv_scores(int kind, const float *q, ptrdiff_t ldq, ptrdiff_t rows, const void *k, ptrdiff_t k_stride,
                   ptrdiff_t seen0, ptrdiff_t head_dim, float *scores, ptrdiff_t ldc);

// out[i*ldo ...] = sum over s < seen0 + i of p[i*ldp + s] * value(s), value(s) at v + s*v_stride (bytes),
// summed in ascending s for every row (batch-invariant as above).
void glm_kv_weighted_sum(int kind, const float *p, ptrdiff_t ldp, ptrdiff_t rows, const void *v, ptrdiff_t v_stride,
                         ptrdiff_t seen0, ptrdiff_t head_dim, float *out, ptrdiff_t ldo);

#ifdef __cplusplus
}
#endif

#endif
