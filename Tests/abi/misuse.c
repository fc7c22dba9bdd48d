/* Calls every glm_* function with NULL, malformed or out-of-range arguments and checks that each returns the
 * documented status with a message instead of crashing; then misuses handles (re-entrant calls from a callback,
 * two threads on one handle, a free from a callback) and non-regular files. Built and run by test_misuse.py. */
#define _DEFAULT_SOURCE /* mkdtemp, mkfifo, mmap, alarm under -std=c11 */
#include <glm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures = 0;

#define EXPECT_STATUS(call, expected)                                                                   \
    do {                                                                                                \
        glm_status s_ = (call);                                                                         \
        if (s_ != (expected)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, #call,  \
                    glm_status_name(s_), glm_status_name(expected), glm_last_error());                  \
            failures++;                                                                                 \
        } else if ((expected) != GLM_OK && glm_last_error()[0] == '\0') {                                \
            fprintf(stderr, "FAIL %s:%d: %s gave no message\n", __FILE__, __LINE__, #call);              \
            failures++;                                                                                 \
        }                                                                                               \
    } while (0)

/* A failed check of a condition, with a message. */
#define EXPECT(condition, ...)                                                                          \
    do {                                                                                                \
        if (!(condition)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #condition);                       \
            fprintf(stderr, __VA_ARGS__);                                                               \
            fputc('\n', stderr);                                                                        \
            failures++;                                                                                 \
        }                                                                                               \
    } while (0)

static const char *const CHAT_MODEL = "Tests/Fixtures/models/glm-tiny-chat";
static const char *const HI = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 3,"
                              " \"seed\": 7}";

static void core(void) {
    EXPECT_STATUS(glm_set_default_threads(0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_set_default_threads(-5), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_set_default_threads(100000), GLM_ERR_INVALID_ARGUMENT);
    if (strcmp(glm_status_name((glm_status)12345), "GLM_UNKNOWN_STATUS") != 0) failures++;
    glm_free(NULL);
    glm_free(NULL);
}

static void parsers(void) {
    char *out = NULL;
    char *events = NULL;
    glm_stream_parser *parser = NULL;
    EXPECT_STATUS(glm_parse_output(NULL, NULL, &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_parse_output("x", NULL, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_parse_output("x", "{not json", &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_parse_output("x", "{\"tools\": 5}", &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_parse_output("x", "{\"thinking\": \"yes\"}", &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_parse_output("\xff\xfe", NULL, &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_new("[1]", &parser), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_new(NULL, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_feed(NULL, "x", &events), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_finish(NULL, &events, &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_new(NULL, &parser), GLM_OK);
    EXPECT_STATUS(glm_stream_parser_feed(parser, NULL, &events), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_feed(parser, "ok</think>fine", NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_feed(parser, "ok</think>fine", &events), GLM_OK);
    glm_free(events);
    EXPECT_STATUS(glm_stream_parser_finish(parser, NULL, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_finish(parser, NULL, &out), GLM_OK);
    if (!out || strstr(out, "\"content\":\"fine\"") == NULL) { fprintf(stderr, "FAIL parser result %s\n", out); failures++; }
    glm_free(out);
    glm_stream_parser_free(parser);
    glm_stream_parser_free(NULL);
}

static void templates(void) {
    char *out = NULL;
    glm_chat_template *t = NULL;
    EXPECT_STATUS(glm_chat_render(NULL, NULL, &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_render(NULL, "{\"messages\": []}", NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_render(NULL, "{\"messages\": []}", &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_render(NULL, "{\"messages\": 7}", &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_render(NULL, "[", &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_template_new("{% for %}", NULL, &t), GLM_ERR_TEMPLATE);
    EXPECT_STATUS(glm_chat_template_new(NULL, "[1]", &t), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_template_new(NULL, NULL, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_template_load("/nonexistent/dir", NULL, &t), GLM_ERR_IO);
    EXPECT_STATUS(glm_chat_template_load(NULL, NULL, &t), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_template_new("{{ raise_exception('no') }}", NULL, &t), GLM_OK);
    EXPECT_STATUS(glm_chat_render(t, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", &out),
                  GLM_ERR_TEMPLATE);
    glm_chat_template_free(t);
    glm_chat_template_free(NULL);
}

static void tokenizers(void) {
    glm_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    int32_t id = 0, size = 0;
    bool special = false;
    EXPECT_STATUS(glm_tokenizer_load(NULL, &tok), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenizer_load("/nonexistent/tokenizer.json", &tok), GLM_ERR_IO);
    EXPECT_STATUS(glm_tokenizer_load("Tests/abi/misuse.c", &tok), GLM_ERR_FORMAT);
    EXPECT_STATUS(glm_tokenize(NULL, "x", 1, false, &ids, &n), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenizer_load("Tests/Fixtures/tokenizers/glm-tiny", &tok), GLM_OK);
    EXPECT_STATUS(glm_tokenize(tok, NULL, 3, false, &ids, &n), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenize(tok, "\xc3", 1, false, &ids, &n), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenize(tok, "x", 1, false, NULL, &n), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenize(tok, "", 0, false, &ids, &n), GLM_OK);
    glm_free(ids);
    int32_t bad[2] = {1, 1 << 30};
    EXPECT_STATUS(glm_detokenize(tok, bad, 2, false, &text, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_detokenize(tok, NULL, 2, false, &text, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_token_to_piece(tok, -1, &text, &n), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenizer_is_special(tok, 1 << 30, &special), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenizer_token_to_id(tok, NULL, &id), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenizer_vocab_size(tok, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenizer_vocab_size(tok, &size), GLM_OK);
    glm_tokenizer_free(tok);
}

/* ---- constrained decoding ---- */

struct mask_hammer {
    glm_grammar_matcher *matcher;
    int calls, ran, refused, other;
};

static void *fill_many(void *argument) {
    struct mask_hammer *h = argument;
    uint32_t words[256];
    for (int i = 0; i < h->calls; i++) {
        glm_status s = glm_grammar_matcher_fill_mask(h->matcher, words, 256);
        if (s == GLM_OK) h->ran++;
        else if (s == GLM_ERR_INVALID_ARGUMENT && strstr(glm_last_error(), "in use")) h->refused++;
        else h->other++;
    }
    return NULL;
}

static void grammars(void) {
    glm_tokenizer *tok = NULL;
    glm_grammar *g = NULL;
    glm_grammar_matcher *m = NULL;
    char *info = NULL;
    uint32_t words[256];
    bool can_end = false, ended = false;
    EXPECT_STATUS(glm_grammar_compile(NULL, GLM_GRAMMAR_REGEX, "a", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_tokenizer_load("Tests/Fixtures/tokenizers/glm-tiny", &tok), GLM_OK);
    if (!tok) return;
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_REGEX, NULL, NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_REGEX, "a", NULL, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, (glm_grammar_kind)77, "a", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_REGEX, "(a", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_REGEX, "(a)\\1", NULL, &g), GLM_ERR_UNSUPPORTED);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_REGEX, "a{99999}", NULL, &g), GLM_ERR_LIMIT_EXCEEDED);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_REGEX, "\xff", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_SCHEMA, "{not json", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_SCHEMA, "5", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_SCHEMA, "false", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_SCHEMA, "{\"$ref\": \"#/nowhere\"}", NULL, &g),
                  GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_SCHEMA, "{\"uniqueItems\": true}", "{\"strict\": true}", &g),
                  GLM_ERR_UNSUPPORTED);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_SCHEMA, "{}", "{\"max_whitespace\": -1}", &g),
                  GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_SCHEMA, "{}", "{\"end_token_ids\": [99999999]}", &g),
                  GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_JSON_OBJECT, "{}", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_TOOL_CALLS, "{}", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_TOOL_CALLS, "[]", NULL, &g), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_TOOL_CALLS, "[{\"function\": {\"name\": \"f\"}}]",
                                      "{\"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"g\"}}}", &g),
                  GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_info(NULL, &info), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_new(NULL, &m), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_fill_mask(NULL, words, 256), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_accept(NULL, 1), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_accept_text(NULL, "x", 1), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_status(NULL, &can_end, &ended), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_rollback(NULL, 1), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_reset(NULL), GLM_ERR_INVALID_ARGUMENT);
    glm_grammar_free(NULL);
    glm_grammar_matcher_free(NULL);

    EXPECT_STATUS(glm_grammar_compile(tok, GLM_GRAMMAR_REGEX, "ab", NULL, &g), GLM_OK);
    if (!g) {
        glm_tokenizer_free(tok);
        return;
    }
    EXPECT_STATUS(glm_grammar_info(g, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_info(g, &info), GLM_OK);
    glm_free(info);
    EXPECT_STATUS(glm_grammar_matcher_new(g, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_new(g, &m), GLM_OK);
    EXPECT_STATUS(glm_grammar_matcher_fill_mask(m, NULL, 256), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_fill_mask(m, words, 1), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_fill_mask(m, words, 256), GLM_OK);
    EXPECT_STATUS(glm_grammar_matcher_accept(m, -1), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_accept(m, 1 << 30), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_accept_text(m, NULL, 3), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_accept_text(m, "b", 1), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_accept_text(m, "a", 1), GLM_OK);
    EXPECT_STATUS(glm_grammar_matcher_status(m, &can_end, &ended), GLM_OK);
    EXPECT(!can_end && !ended, "after \"a\" of \"ab\": can_end %d ended %d", can_end, ended);
    EXPECT_STATUS(glm_grammar_matcher_rollback(m, 2), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_grammar_matcher_rollback(m, 1), GLM_OK);
    EXPECT_STATUS(glm_grammar_matcher_status(m, NULL, NULL), GLM_OK);
    EXPECT_STATUS(glm_grammar_matcher_reset(m), GLM_OK);
    /* Two threads on one matcher: each call runs or is refused as "in use", never anything else. */
    pthread_t threads[2];
    struct mask_hammer h[2] = {{.matcher = m, .calls = 300}, {.matcher = m, .calls = 300}};
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, fill_many, &h[i]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 2; i++) EXPECT(h[i].other == 0 && h[i].ran > 0, "ran %d, other %d", h[i].ran, h[i].other);
    glm_grammar_matcher_free(m);
    glm_grammar_free(g);
    glm_tokenizer_free(tok);
}

static void models(void) {
    glm_model *model = NULL;
    glm_session *session = NULL;
    glm_chat *chat = NULL;
    char *out = NULL;
    float logits[8];
    size_t position = 0;
    int32_t tokens[3] = {1, 2, 3};
    glm_model_params bad_model = glm_model_default_params();
    bad_model.threads = -1;
    EXPECT_STATUS(glm_model_load(NULL, NULL, &model), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_model_load("/nonexistent", NULL, &model), GLM_ERR_IO);
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm47", &bad_model, &model), GLM_ERR_INVALID_ARGUMENT);
    bad_model = glm_model_default_params();
    bad_model.populate = 2;
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm47", &bad_model, &model), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_model_info(NULL, &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_new(NULL, NULL, &session), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm47", NULL, &model), GLM_OK);
    glm_session_params params = glm_session_default_params();
    params.context_length = -4;
    EXPECT_STATUS(glm_session_new(model, &params, &session), GLM_ERR_INVALID_ARGUMENT);
    params.context_length = 2;
    EXPECT_STATUS(glm_session_new(model, &params, &session), GLM_OK);
    EXPECT_STATUS(glm_session_eval(session, tokens, 3, GLM_LOGITS_NONE, NULL, 0), GLM_ERR_CONTEXT_FULL);
    {
        /* A count far beyond the caller's array is refused before any id is read: the 3 ids end exactly where
         * an inaccessible page begins, so reading a 4th would crash. */
        long page = sysconf(_SC_PAGESIZE);
        char *pages = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        EXPECT(pages != MAP_FAILED, "mmap failed");
        if (pages != MAP_FAILED && mprotect(pages + page, (size_t)page, PROT_NONE) == 0) {
            int32_t *edge = (int32_t *)(pages + page) - 3;
            memcpy(edge, tokens, sizeof tokens);
            EXPECT_STATUS(glm_session_eval(session, edge, (size_t)1 << 62, GLM_LOGITS_NONE, NULL, 0), GLM_ERR_CONTEXT_FULL);
            EXPECT_STATUS(glm_session_eval(session, edge, 3, GLM_LOGITS_NONE, NULL, 0), GLM_ERR_CONTEXT_FULL);
            EXPECT_STATUS(glm_session_mtp_logits(session, edge, (size_t)1 << 62, GLM_LOGITS_NONE, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
        }
        if (pages != MAP_FAILED) munmap(pages, (size_t)page * 2);
    }
    EXPECT_STATUS(glm_session_eval(session, tokens, 1, GLM_LOGITS_LAST, logits, 8), GLM_ERR_INVALID_ARGUMENT);
    /* The logits a call computes are said, never guessed from the buffer's size. */
    EXPECT_STATUS(glm_session_eval(session, tokens, 1, GLM_LOGITS_NONE, logits, 8), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_eval(session, tokens, 1, GLM_LOGITS_LAST, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_eval(session, tokens, 1, GLM_LOGITS_ALL, NULL, 512), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_eval(session, tokens, 1, (glm_logits)7, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_mtp_logits(session, tokens, 1, (glm_logits)-1, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
    bad_model = glm_model_default_params();
    bad_model.gemm = (glm_gemm_backend)9;
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm47", &bad_model, &model), GLM_ERR_INVALID_ARGUMENT);
    bad_model = glm_model_default_params();
    bad_model.kernels = (glm_kernels)9;
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm47", &bad_model, &model), GLM_ERR_INVALID_ARGUMENT);
    bad_model = glm_model_default_params();
    bad_model.bf16_inputs = (glm_bf16_inputs)3;
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm47", &bad_model, &model), GLM_ERR_INVALID_ARGUMENT);
    int32_t out_of_range = 1 << 30;
    EXPECT_STATUS(glm_session_eval(session, &out_of_range, 1, GLM_LOGITS_NONE, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_eval(session, NULL, 1, GLM_LOGITS_NONE, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_truncate(session, 5), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_mtp_logits(session, tokens, 1, GLM_LOGITS_NONE, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_position(session, &position), GLM_OK);
    if (position != 0) { fprintf(stderr, "FAIL: failed calls changed the session\n"); failures++; }
    EXPECT_STATUS(glm_chat_new(model, NULL, &chat), GLM_ERR_IO); /* glm47 has no tokenizer.json */
    EXPECT_STATUS(glm_chat_complete(NULL, "{}", NULL, NULL, &out), GLM_ERR_INVALID_ARGUMENT);
    glm_session_free(session);
    glm_model_free(model);
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm-tiny-chat", NULL, &model), GLM_OK);
    EXPECT_STATUS(glm_chat_new(model, NULL, &chat), GLM_OK);
    EXPECT_STATUS(glm_chat_complete(chat, "{\"messages\": \"hi\"}", NULL, NULL, &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_complete(chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}],"
                                          " \"top_p\": 7}", NULL, NULL, &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_chat_complete(chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}],"
                                          " \"max_tokens\": 2}", NULL, NULL, &out), GLM_OK);
    glm_free(out);
    glm_chat_free(chat);
    glm_model_free(model);
}

/* ---- one call at a time per chat, session and stream parser ---- */

static int has_in_use_message(const char *message) { return strstr(message, "in use") != NULL; }

struct reentry {
    glm_chat *chat;
    int events;
    glm_status complete_status, reset_status;
    char complete_message[512];
};

/* On the first event, calls glm_chat_complete and glm_chat_reset on the chat that is running this callback. */
static bool reenter(const glm_event *event, void *user_data) {
    (void)event;
    struct reentry *r = user_data;
    if (r->events++ == 0) {
        char *out = NULL;
        r->complete_status = glm_chat_complete(r->chat, HI, NULL, NULL, &out);
        snprintf(r->complete_message, sizeof r->complete_message, "%s", glm_last_error());
        glm_free(out);
        r->reset_status = glm_chat_reset(r->chat);
    }
    return true;
}

struct race {
    glm_chat *chat;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int first_inside, second_done;
    glm_status second_status;
    char second_message[512];
};

/* The first call's callback: signals that the call is running, then waits until the second thread tried. */
static bool hold_the_chat(const glm_event *event, void *user_data) {
    (void)event;
    struct race *r = user_data;
    pthread_mutex_lock(&r->lock);
    r->first_inside = 1;
    pthread_cond_broadcast(&r->changed);
    while (!r->second_done) pthread_cond_wait(&r->changed, &r->lock);
    pthread_mutex_unlock(&r->lock);
    return true;
}

static void *second_caller(void *arg) {
    struct race *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->first_inside) pthread_cond_wait(&r->changed, &r->lock);
    pthread_mutex_unlock(&r->lock);
    char *out = NULL;
    glm_status status = glm_chat_complete(r->chat, HI, NULL, NULL, &out);
    glm_free(out);
    pthread_mutex_lock(&r->lock);
    r->second_status = status;
    snprintf(r->second_message, sizeof r->second_message, "%s", glm_last_error());
    r->second_done = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct free_in_callback {
    glm_chat *chat;
    int events_after_free;
};

static bool free_the_chat(const glm_event *event, void *user_data) {
    (void)event;
    struct free_in_callback *f = user_data;
    if (f->chat) {
        glm_chat_free(f->chat);
        f->chat = NULL;
    } else {
        f->events_after_free++;
    }
    return true;
}

static void chats_in_use(void) {
    glm_model *model = NULL;
    glm_chat *chat = NULL;
    char *out = NULL;
    EXPECT_STATUS(glm_model_load(CHAT_MODEL, NULL, &model), GLM_OK);
    EXPECT_STATUS(glm_chat_new(model, NULL, &chat), GLM_OK);
    if (!chat) return;

    /* Re-entrant calls from the chat's own callback are refused; the outer call completes normally. */
    struct reentry r = {.chat = chat, .complete_status = GLM_OK, .reset_status = GLM_OK};
    EXPECT_STATUS(glm_chat_complete(chat, HI, reenter, &r, &out), GLM_OK);
    EXPECT(r.events > 1, "the callback saw %d events", r.events);
    EXPECT(r.complete_status == GLM_ERR_INVALID_ARGUMENT && has_in_use_message(r.complete_message),
           "re-entrant glm_chat_complete returned %s (%s)", glm_status_name(r.complete_status), r.complete_message);
    EXPECT(r.reset_status == GLM_ERR_INVALID_ARGUMENT, "re-entrant glm_chat_reset returned %s",
           glm_status_name(r.reset_status));
    EXPECT(out && strstr(out, "\"completion_tokens\":3") != NULL, "outer response: %s", out ? out : "(null)");
    glm_free(out);
    out = NULL;

    /* A second thread calling while the first call runs (held inside its callback) is refused. */
    struct race race = {.chat = chat, .second_status = GLM_OK};
    pthread_mutex_init(&race.lock, NULL);
    pthread_cond_init(&race.changed, NULL);
    pthread_t thread;
    EXPECT(pthread_create(&thread, NULL, second_caller, &race) == 0, "pthread_create failed");
    EXPECT_STATUS(glm_chat_complete(chat, HI, hold_the_chat, &race, &out), GLM_OK);
    pthread_join(thread, NULL);
    EXPECT(race.second_status == GLM_ERR_INVALID_ARGUMENT && has_in_use_message(race.second_message),
           "a second thread's glm_chat_complete returned %s (%s)", glm_status_name(race.second_status),
           race.second_message);
    glm_free(out);
    out = NULL;
    pthread_cond_destroy(&race.changed);
    pthread_mutex_destroy(&race.lock);

    /* The chat is usable again once the running call returned. */
    EXPECT_STATUS(glm_chat_complete(chat, HI, NULL, NULL, &out), GLM_OK);
    glm_free(out);
    out = NULL;

    /* Freeing the chat from its own callback cancels the request; the release waits until the call returns. */
    struct free_in_callback f = {.chat = chat};
    EXPECT_STATUS(glm_chat_complete(chat, HI, free_the_chat, &f, &out), GLM_ERR_CANCELLED);
    EXPECT(f.chat == NULL && f.events_after_free == 0, "%d events after the free", f.events_after_free);
    EXPECT(out && strstr(out, "\"finish_reason\":\"cancelled\"") != NULL, "response: %s", out ? out : "(null)");
    glm_free(out);
    glm_model_free(model);
}

/* Statuses of many calls made by several threads on one session or parser: each call either ran or was
 * refused as "in use"; nothing else may happen, whatever the interleaving. */
struct hammer {
    glm_session *session;
    glm_stream_parser *parser;
    int calls;
    int ran, refused, other;
    char other_message[512];
};

static void count_status(struct hammer *h, glm_status status, glm_status also_fine) {
    if (status == GLM_OK) {
        h->ran++;
    } else if (status == GLM_ERR_INVALID_ARGUMENT && has_in_use_message(glm_last_error())) {
        h->refused++;
    } else if (status != also_fine) {
        h->other++;
        snprintf(h->other_message, sizeof h->other_message, "%s: %s", glm_status_name(status), glm_last_error());
    }
}

static void *eval_many(void *arg) {
    struct hammer *h = arg;
    int32_t token = 5;
    float logits[512];
    for (int i = 0; i < h->calls; i++) count_status(h, glm_session_eval(h->session, &token, 1, GLM_LOGITS_LAST, logits, 512), GLM_OK);
    return NULL;
}

static void *draft_many(void *arg) {
    struct hammer *h = arg;
    int32_t token = 5;
    size_t position = 0;
    for (int i = 0; i < h->calls; i++) {
        /* Drafting past the evaluated positions is an invalid argument of its own: counted as neither. */
        glm_status s = glm_session_mtp_logits(h->session, &token, 1, GLM_LOGITS_NONE, NULL, 0);
        if (s == GLM_ERR_INVALID_ARGUMENT && !has_in_use_message(glm_last_error())) s = GLM_OK;
        count_status(h, s, GLM_OK);
        count_status(h, glm_session_position(h->session, &position), GLM_OK);
        count_status(h, glm_session_truncate(h->session, 0), GLM_OK);
    }
    return NULL;
}

static void *feed_many(void *arg) {
    struct hammer *h = arg;
    for (int i = 0; i < h->calls; i++) {
        char *events = NULL;
        count_status(h, glm_stream_parser_feed(h->parser, "x", &events), GLM_OK);
        glm_free(events);
    }
    return NULL;
}

static void sessions_and_parsers_in_use(void) {
    glm_model *model = NULL;
    glm_session *session = NULL;
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm47", NULL, &model), GLM_OK);
    glm_session_params params = glm_session_default_params();
    params.context_length = 1024;
    params.threads = 1;
    EXPECT_STATUS(glm_session_new(model, &params, &session), GLM_OK);
    if (!session) return;
    struct hammer evals[2] = {{.session = session, .calls = 300}, {.session = session, .calls = 300}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, eval_many, &evals[i]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    size_t position = 0;
    EXPECT_STATUS(glm_session_position(session, &position), GLM_OK);
    int ran = evals[0].ran + evals[1].ran;
    EXPECT(ran > 0 && position == (size_t)ran, "%d evaluations succeeded but the session holds %zu positions",
           ran, position);
    for (int i = 0; i < 2; i++) {
        EXPECT(evals[i].other == 0, "%d other statuses, e.g. %s", evals[i].other, evals[i].other_message);
    }

    /* Evaluation, drafting, position and truncation racing each other. */
    struct hammer mixed[2] = {{.session = session, .calls = 200}, {.session = session, .calls = 200}};
    pthread_create(&threads[0], NULL, eval_many, &mixed[0]);
    pthread_create(&threads[1], NULL, draft_many, &mixed[1]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 2; i++) {
        EXPECT(mixed[i].other == 0, "%d other statuses, e.g. %s", mixed[i].other, mixed[i].other_message);
    }
    glm_session_free(session);
    glm_model_free(model);

    glm_stream_parser *parser = NULL;
    EXPECT_STATUS(glm_stream_parser_new("{\"thinking\": false}", &parser), GLM_OK);
    if (!parser) return;
    struct hammer feeds[2] = {{.parser = parser, .calls = 2000}, {.parser = parser, .calls = 2000}};
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, feed_many, &feeds[i]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    char *message = NULL;
    EXPECT_STATUS(glm_stream_parser_finish(parser, NULL, &message), GLM_OK);
    int fed = feeds[0].ran + feeds[1].ran;
    /* Every accepted chunk is one "x" of the content. */
    const char *content = message ? strstr(message, "\"content\":\"") : NULL;
    size_t xs = content ? strspn(content + strlen("\"content\":\""), "x") : 0;
    EXPECT(fed > 0 && xs == (size_t)fed, "%d feeds succeeded but the content has %zu characters", fed, xs);
    for (int i = 0; i < 2; i++) {
        EXPECT(feeds[i].other == 0, "%d other statuses, e.g. %s", feeds[i].other, feeds[i].other_message);
    }
    glm_free(message);
    glm_stream_parser_free(parser);
}

/* ---- files that are not regular files ---- */

static void non_regular_files(void) {
    char directory[] = "/tmp/glm-misuse-XXXXXX";
    if (!mkdtemp(directory)) {
        EXPECT(0, "mkdtemp failed");
        return;
    }
    char fifo[256], config[256];
    snprintf(fifo, sizeof fifo, "%s/tokenizer.json", directory);
    snprintf(config, sizeof config, "%s/config.json", directory);
    EXPECT(mkfifo(fifo, 0600) == 0 && mkfifo(config, 0600) == 0, "mkfifo failed");
    /* Nobody writes to these FIFOs: opening one to read would wait forever. A hang ends the test here. */
    alarm(120);
    glm_tokenizer *tok = NULL;
    glm_chat_template *t = NULL;
    glm_model *model = NULL;
    EXPECT_STATUS(glm_tokenizer_load(fifo, &tok), GLM_ERR_IO);
    EXPECT(strstr(glm_last_error(), "not a regular file") != NULL, "message: %s", glm_last_error());
    EXPECT_STATUS(glm_tokenizer_load(directory, &tok), GLM_ERR_IO);
    EXPECT_STATUS(glm_chat_template_load(fifo, NULL, &t), GLM_ERR_IO);
    EXPECT_STATUS(glm_model_load(directory, NULL, &model), GLM_ERR_IO);
    EXPECT(strstr(glm_last_error(), "not a regular file") != NULL, "message: %s", glm_last_error());
    EXPECT_STATUS(glm_tokenizer_load("/dev/null", &tok), GLM_ERR_IO);
    alarm(0);
    unlink(fifo);
    unlink(config);
    rmdir(directory);
}

int main(void) {
    core();
    parsers();
    templates();
    tokenizers();
    grammars();
    models();
    chats_in_use();
    sessions_and_parsers_in_use();
    non_regular_files();
    if (failures) {
        fprintf(stderr, "%d misuse checks failed\n", failures);
        return 1;
    }
    printf("all misuse checks passed\n");
    return 0;
}
