/* Constrained decoding from C, driven by test_structured_output.py (which writes the inputs and checks the output
 * with jsonschema):
 *   structured_output MODEL_DIR REQUESTS SCHEMAS
 * REQUESTS: one chat request (JSON) per line, run with glm_chat_complete; every streamed delta is printed as
 * "DELTA <delta_json>", then "RESPONSE <response_json>".
 * SCHEMAS: one JSON schema per line, compiled with glm_grammar_compile against the model's tokenizer; each is
 * walked by a seeded random choice among the ids of glm_grammar_matcher_fill_mask's mask (the end id once past
 * 200 tokens, when allowed), and the text is printed as "WALK <index> <hex bytes>" ("WALK <index> -" when it did
 * not end within 600 tokens). */
#include <glm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                          \
    do {                                                                                     \
        glm_status s_ = (call);                                                              \
        if (s_ != GLM_OK) {                                                                  \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, glm_last_error()); \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static bool print_delta(const glm_event *event, void *user_data) {
    (void)user_data;
    if (event->kind == GLM_EVENT_DELTA) printf("DELTA %s\n", event->delta_json);
    return true;
}

/* Reads a whole line (any length); NULL at the end of the file. */
static char *read_line(FILE *f) {
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    int c;
    while ((c = fgetc(f)) != EOF && c != '\n') {
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
        buf[n++] = (char)c;
    }
    if (c == EOF && n == 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static uint64_t next_random(uint64_t *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

static void walk(const glm_tokenizer *tok, const char *schema, int index, int32_t end_id) {
    glm_grammar *grammar = NULL;
    glm_grammar_matcher *matcher = NULL;
    char options[128];
    snprintf(options, sizeof options, "{\"end_token_ids\": [%d], \"max_whitespace\": 2, \"strict\": true}", end_id);
    CHECK(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_SCHEMA, schema, options, &grammar));
    CHECK(glm_grammar_matcher_new(grammar, &matcher));
    int32_t vocab = 0;
    CHECK(glm_tokenizer_vocab_size(tok, &vocab));
    size_t words = ((size_t)vocab + 31) / 32;
    uint32_t *mask = calloc(words, sizeof *mask);
    int32_t *allowed = malloc(sizeof *allowed * (size_t)vocab);
    unsigned char *text = malloc(1 << 16);
    size_t length = 0;
    uint64_t state = 1000 + (uint64_t)index;
    bool ended = false;
    for (int step = 0; step < 600 && !ended; step++) {
        CHECK(glm_grammar_matcher_fill_mask(matcher, mask, words));
        int32_t count = 0;
        bool end_allowed = false;
        for (int32_t id = 0; id < vocab; id++) {
            if ((mask[id / 32] >> (id % 32)) & 1) {
                allowed[count++] = id;
                if (id == end_id) end_allowed = true;
            }
        }
        if (count == 0) {
            fprintf(stderr, "schema %d: empty mask after %zu bytes\n", index, length);
            exit(1);
        }
        int32_t token = step > 200 && end_allowed ? end_id : allowed[next_random(&state) % (uint64_t)count];
        CHECK(glm_grammar_matcher_accept(matcher, token));
        if (token == end_id) {
            bool can_end = false;
            CHECK(glm_grammar_matcher_status(matcher, &can_end, &ended));
            if (!ended) {
                fprintf(stderr, "schema %d: the end id did not end the output\n", index);
                exit(1);
            }
            break;
        }
        char *piece = NULL;
        size_t piece_length = 0;
        CHECK(glm_token_to_piece(tok, token, &piece, &piece_length));
        if (length + piece_length < (1 << 16)) {
            memcpy(text + length, piece, piece_length);
            length += piece_length;
        }
        glm_free(piece);
    }
    printf("WALK %d ", index);
    if (ended) {
        for (size_t i = 0; i < length; i++) printf("%02x", text[i]);
    } else {
        printf("-");
    }
    printf("\n");
    free(text);
    free(allowed);
    free(mask);
    glm_grammar_matcher_free(matcher);
    glm_grammar_free(grammar);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL_DIR REQUESTS SCHEMAS\n", argv[0]);
        return 2;
    }
    glm_model *model = NULL;
    glm_chat *chat = NULL;
    glm_model_params mp = glm_model_default_params();
    mp.threads = 1;
    CHECK(glm_model_load(argv[1], &mp, &model));
    glm_chat_params cp = glm_chat_default_params();
    CHECK(glm_chat_new(model, &cp, &chat));
    FILE *requests = fopen(argv[2], "r");
    if (!requests) return 1;
    char *line;
    while ((line = read_line(requests)) != NULL) {
        char *response = NULL;
        CHECK(glm_chat_complete(chat, line, print_delta, NULL, &response));
        printf("RESPONSE %s\n", response);
        glm_free(response);
        free(line);
    }
    fclose(requests);
    glm_chat_free(chat);
    glm_model_free(model);

    glm_tokenizer *tok = NULL;
    CHECK(glm_tokenizer_load(argv[1], &tok));
    int32_t end_id = -1;
    CHECK(glm_tokenizer_token_to_id(tok, "<|endoftext|>", &end_id));
    FILE *schemas = fopen(argv[3], "r");
    if (!schemas) return 1;
    int index = 0;
    while ((line = read_line(schemas)) != NULL) {
        walk(tok, line, index++, end_id);
        free(line);
    }
    fclose(schemas);
    glm_tokenizer_free(tok);
    printf("done\n");
    return 0;
}
