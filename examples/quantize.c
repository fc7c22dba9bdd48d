/* quantize: writes a GGUF model in a llama.cpp file type, with a progress bar (glm_quantize).
 *
 *     build/bin/quantize SRC.gguf DST.gguf TYPE [--threads N] [--allow-requantize]
 *
 * TYPE is a llama-quantize file type: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S,
 * Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, F16, BF16, F32. SRC may be any part of a split model. Without an importance
 * matrix the output's bytes equal `llama-quantize SRC DST TYPE`'s. */
#define _POSIX_C_SOURCE 200809L /* isatty */
#include <glm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 40

typedef struct bar {
    int last_permille;
    int tty;
} bar;

/* Redrawn when the tenth of a percent changes, so a large model does not flood a log file. */
static bool on_progress(uint64_t done, uint64_t total, const char *tensor, void *user_data) {
    bar *b = (bar *)user_data;
    int permille = total ? (int)(done * 1000 / total) : 1000;
    if (permille == b->last_permille) return true;
    b->last_permille = permille;
    int filled = permille * BAR_WIDTH / 1000;
    char line[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++) line[i] = i < filled ? '#' : '.';
    line[BAR_WIDTH] = '\0';
    fprintf(stderr, "%s[%s] %5.1f%%  %-40.40s%s", b->tty ? "\r" : "", line, permille / 10.0, tensor,
            b->tty ? "" : "\n");
    return true;
}

static int usage(void) {
    fprintf(stderr, "usage: quantize SRC.gguf DST.gguf TYPE [--threads N] [--allow-requantize]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 4) return usage();
    glm_quantize_params params = glm_quantize_default_params();
    params.type = argv[3];
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (*end != '\0' || n < 0 || n > 1024) return usage();
            params.threads = (int32_t)n;
        } else if (strcmp(argv[i], "--allow-requantize") == 0) {
            params.allow_requantize = true;
        } else {
            return usage();
        }
    }
    bar b = {-1, isatty(2)};
    params.progress = on_progress;
    params.user_data = &b;
    glm_status status = glm_quantize(argv[1], argv[2], &params);
    if (b.tty) fputc('\n', stderr);
    if (status != GLM_OK) {
        fprintf(stderr, "quantize failed: %s: %s\n", glm_status_name(status), glm_last_error());
        return 1;
    }
    fprintf(stderr, "wrote %s (%s)\n", argv[2], argv[3]);
    return 0;
}
