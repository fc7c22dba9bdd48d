/* glm_quantize from a C host: argv[1] = source GGUF, argv[2] = destination, argv[3] = type. Prints one line per
 * check ("progress calls=N last=DONE/TOTAL", "status NAME: message") so the Python side can assert on them. */
#define _POSIX_C_SOURCE 200809L
#include <glm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

typedef struct counter {
    unsigned calls;
    uint64_t last_done, last_total;
    int monotone;
    unsigned cancel_after; /* 0 = never */
} counter;

static bool on_progress(uint64_t done, uint64_t total, const char *tensor, void *user_data) {
    counter *c = (counter *)user_data;
    if (done < c->last_done || tensor == NULL || tensor[0] == '\0') c->monotone = 0;
    c->calls++;
    c->last_done = done;
    c->last_total = total;
    return c->cancel_after == 0 || c->calls < c->cancel_after;
}

static void report(const char *what, glm_status s) {
    printf("%s %s: %s\n", what, glm_status_name(s), s == GLM_OK ? "" : glm_last_error());
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    glm_quantize_params p = glm_quantize_default_params();
    if (p.size != sizeof(glm_quantize_params) || p.type != NULL || p.threads != 0 || p.progress != NULL) return 3;

    counter c = {0, 0, 0, 1, 0};
    p.type = argv[3];
    p.threads = 2;
    p.progress = on_progress;
    p.user_data = &c;
    report("quantize", glm_quantize(argv[1], argv[2], &p));
    printf("progress calls=%u last=%llu/%llu monotone=%d\n", c.calls, (unsigned long long)c.last_done,
           (unsigned long long)c.last_total, c.monotone);

    counter cancel = {0, 0, 0, 1, 2};
    glm_quantize_params q = p;
    q.user_data = &cancel;
    char cancelled_path[4096];
    snprintf(cancelled_path, sizeof cancelled_path, "%s.cancelled", argv[2]);
    report("cancel", glm_quantize(argv[1], cancelled_path, &q));
    FILE *f = fopen(cancelled_path, "rb");
    printf("cancelled file exists=%d\n", f != NULL);
    if (f) fclose(f);

    glm_quantize_params bad = p;
    bad.type = "Q9_X";
    report("bad type", glm_quantize(argv[1], cancelled_path, &bad));
    bad = p;
    bad.type = NULL;
    report("null type", glm_quantize(argv[1], cancelled_path, &bad));
    bad = p;
    bad.size = 8;
    report("short size", glm_quantize(argv[1], cancelled_path, &bad));
    bad = p;
    bad.threads = -1;
    report("bad threads", glm_quantize(argv[1], cancelled_path, &bad));
    report("null params", glm_quantize(argv[1], cancelled_path, NULL));
    report("null src", glm_quantize(NULL, cancelled_path, &p));
    report("missing src", glm_quantize("/nonexistent/model.gguf", cancelled_path, &p));
    report("bad dst", glm_quantize(argv[1], "/nonexistent/dir/out.gguf", &p));
    report("dst is src", glm_quantize(argv[1], argv[1], &p));
    report("dst is a device", glm_quantize(argv[1], "/dev/null", &p));

    /* A write that fails half way (here a file size limit, as a full disk would): an I/O error, no partial file. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {100000, 100000};
    setrlimit(RLIMIT_FSIZE, &limit);
    report("write fails", glm_quantize(argv[1], cancelled_path, &p));
    f = fopen(cancelled_path, "rb");
    printf("partial file exists=%d\n", f != NULL);
    if (f) fclose(f);
    return 0;
}
