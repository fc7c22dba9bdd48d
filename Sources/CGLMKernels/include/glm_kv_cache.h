// The KV cache's element types and their conversions (kv_cache.c). A cache row is one position
// of one layer: `heads` KV heads of `head_dim` values each, head after head. Keys and values are written once,
// when their token is evaluated; attention converts a tile of them to f32 (glm_kv_load_rows) each time it reads it.
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
// Bytes of one head of one position.
size_t glm_kv_head_bytes(int kind, ptrdiff_t head_dim);

// Converts `heads` heads of `head_dim` f32 values (src, contiguous) into one cache row at dst.
void glm_kv_store(int kind, const float *src, void *dst, ptrdiff_t heads, ptrdiff_t head_dim);

// Converts one head (head_dim values at src) back to f32.
void glm_kv_load(int kind, const void *src, float *dst, ptrdiff_t head_dim);

// Converts one head of `count` consecutive positions to f32 rows: dst[s*ldd ...] = head(s), head(s) at
// src + s*stride (bytes). Attention converts a tile of keys or values once and multiplies the f32 tile.
void glm_kv_load_rows(int kind, const void *src, ptrdiff_t stride, ptrdiff_t count, float *dst, ptrdiff_t ldd,
                      ptrdiff_t head_dim);

#ifdef __cplusplus
}
#endif

#endif
