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

int main(void) {
    core();
    parsers();
    if (failures) {
        fprintf(stderr, "%d misuse checks failed\n", failures);
        return 1;
    }
    printf("all misuse checks passed\n");
    return 0;
}
