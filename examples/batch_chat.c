/* Answers chat requests in a batch: one OpenAI chat request (JSON) per line of stdin, one chat.completion object
 * per line of stdout, in order, all on one chat session (so a prompt that starts like the previous one reuses its
 * KV cache). A line the library refuses gets {"error": {"status": ..., "message": ...}} and the batch goes on.
 *
 *     cc batch_chat.c $(pkg-config --cflags --libs glm) -o batch_chat
 *     ./batch_chat MODEL_DIR [K] < requests.jsonl > responses.jsonl
 *
 * K (0-3, default 0): MTP speculative decoding, drafts per step, for requests without "speculative_config";
 * the responses' usage.completion_tokens_details then counts the accepted and rejected drafts. */
#include <glm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line of any length from `in` (without the newline), or NULL at the end; the caller frees it. */
static char *read_line(FILE *in) {
    size_t size = 4096, length = 0;
    char *line = malloc(size);
    if (line == NULL) return NULL;
    int c;
    while ((c = fgetc(in)) != EOF && c != '\n') {
        if (length + 1 == size) {
            char *bigger = realloc(line, size *= 2);
            if (bigger == NULL) {
                free(line);
                return NULL;
            }
            line = bigger;
        }
        line[length++] = (char)c;
    }
    if (c == EOF && length == 0) {
        free(line);
        return NULL;
    }
    line[length] = '\0';
    return line;
}

/* The error message as a JSON string body: quotes, backslashes and control characters escaped. */
static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [K] < requests.jsonl\n", argv[0]);
        return 2;
    }
    glm_model *model = NULL;
    glm_chat *chat = NULL;
    glm_chat_params params = glm_chat_default_params();
    params.num_speculative_tokens = argc > 2 ? atoi(argv[2]) : 0;
    glm_status status = glm_model_load(argv[1], NULL, &model);
    if (status == GLM_OK) status = glm_chat_new(model, &params, &chat);
    if (status != GLM_OK) {
        fprintf(stderr, "%s: %s\n", glm_status_name(status), glm_last_error());
        glm_model_free(model);
        return 1;
    }
    char *line;
    while ((line = read_line(stdin)) != NULL) {
        if (line[0] != '\0') {
            char *response = NULL;
            glm_status s = glm_chat_complete(chat, line, NULL, NULL, &response);
            if (s == GLM_OK) {
                puts(response);
            } else {
                printf("{\"error\": {\"status\": \"%s\", \"message\": ", glm_status_name(s));
                print_json_string(glm_last_error());
                puts("}}");
            }
            glm_free(response);
            fflush(stdout);
        }
        free(line);
    }
    glm_chat_free(chat);
    glm_model_free(model);
    return 0;
}
