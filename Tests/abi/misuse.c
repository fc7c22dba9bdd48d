/* Calls every glm_* function with NULL, malformed or out-of-range arguments and checks that each returns the
 * documented status with a message instead of crashing. Built and run by test_misuse.py. */
#include <glm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void core(void) {
    EXPECT_STATUS(glm_set_default_threads(0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_set_default_threads(-5), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_set_default_threads(100000), GLM_ERR_INVALID_ARGUMENT);
    if (strcmp(glm_status_name((glm_status)12345), "GLM_UNKNOWN_STATUS") != 0) failures++;
    glm_string_free(NULL);
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
    glm_string_free(events);
    EXPECT_STATUS(glm_stream_parser_finish(parser, NULL, NULL), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_stream_parser_finish(parser, NULL, &out), GLM_OK);
    if (!out || strstr(out, "\"content\":\"fine\"") == NULL) { fprintf(stderr, "FAIL parser result %s\n", out); failures++; }
    glm_string_free(out);
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
    EXPECT_STATUS(glm_model_info(NULL, &out), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_new(NULL, NULL, &session), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_model_load("Tests/Fixtures/models/glm47", NULL, &model), GLM_OK);
    glm_session_params params = glm_session_default_params();
    params.context_length = -4;
    EXPECT_STATUS(glm_session_new(model, &params, &session), GLM_ERR_INVALID_ARGUMENT);
    params.context_length = 2;
    EXPECT_STATUS(glm_session_new(model, &params, &session), GLM_OK);
    EXPECT_STATUS(glm_session_eval(session, tokens, 3, NULL, 0), GLM_ERR_CONTEXT_FULL);
    EXPECT_STATUS(glm_session_eval(session, tokens, 1, logits, 8), GLM_ERR_INVALID_ARGUMENT);
    int32_t out_of_range = 1 << 30;
    EXPECT_STATUS(glm_session_eval(session, &out_of_range, 1, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_eval(session, NULL, 1, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_truncate(session, 5), GLM_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(glm_session_mtp_logits(session, tokens, 1, NULL, 0), GLM_ERR_INVALID_ARGUMENT);
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
    glm_string_free(out);
    glm_chat_free(chat);
    glm_model_free(model);
}

int main(void) {
    core();
    parsers();
    templates();
    tokenizers();
    models();
    if (failures) {
        fprintf(stderr, "%d misuse checks failed\n", failures);
        return 1;
    }
    printf("all misuse checks passed\n");
    return 0;
}
