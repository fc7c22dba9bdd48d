/* Counts heap allocations while decoding: after warm-up, glm_session_eval of one token must not allocate
 * (every buffer is sized when the session is created). malloc & co. are interposed by defining them here: the
 * executable's definitions take precedence over libc's for the whole process, libglm.so included. */
#define _GNU_SOURCE
#include <glm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static volatile long allocations = 0;

void *malloc(size_t n) { allocations++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { allocations++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { allocations++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
int posix_memalign(void **out, size_t align, size_t n) {
    allocations++;
    void *p = __libc_memalign(align, n);
    if (!p) return 12;
    *out = p;
    return 0;
}
void *aligned_alloc(size_t align, size_t n) { allocations++; return __libc_memalign(align, n); }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]); return 2; }
    glm_model *model = NULL;
    glm_session *session = NULL;
    glm_session_params params = glm_session_default_params();
    params.context_length = 64;
    params.threads = 2;
    if (glm_model_load(argv[1], NULL, &model) != GLM_OK || glm_session_new(model, &params, &session) != GLM_OK) {
        fprintf(stderr, "setup failed: %s\n", glm_last_error());
        return 1;
    }
    int32_t vocab = 0;
    glm_model_vocab_size(model, &vocab);
    float *logits = __libc_malloc(sizeof(float) * (size_t)vocab);
    int32_t prompt[4] = {1, 2, 3, 4};
    if (glm_session_eval(session, prompt, 4, GLM_LOGITS_LAST, logits, (size_t)vocab) != GLM_OK) return 1;
    for (int warm = 0; warm < 3; warm++) {
        int32_t token = 5 + warm;
        if (glm_session_eval(session, &token, 1, GLM_LOGITS_LAST, logits, (size_t)vocab) != GLM_OK) return 1;
    }
    long before = allocations;
    for (int i = 0; i < 16; i++) {
        int32_t token = 10 + i;
        if (glm_session_eval(session, &token, 1, GLM_LOGITS_LAST, logits, (size_t)vocab) != GLM_OK) {
            fprintf(stderr, "decode failed: %s\n", glm_last_error());
            return 1;
        }
    }
    long during = allocations - before;
    printf("allocations during 16 decoded tokens: %ld\n", during);
    glm_session_free(session);
    glm_model_free(model);
    __libc_free(logits);
    return during == 0 ? 0 : 1;
}
