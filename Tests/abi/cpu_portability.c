/* What runs on which CPU. Built by test_cpu_portability.py and run natively and under qemu-user presenting
 * older processors:
 *   cpu_portability MODEL_DIR TOKENIZER_PATH
 * Prints one JSON line: what glm_system_info reports, whether the tokenizer, template and parser worked, the
 * status and message of glm_model_load, and (when the model loaded) the kernel path and the last token's
 * logits of a short prompt, printed exactly (%a), so runs on different CPUs can be compared bit for bit. */
#include <glm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: cpu_portability MODEL_DIR TOKENIZER\n"); return 2; }
    char *system = NULL;
    if (glm_system_info(&system) != GLM_OK) { fprintf(stderr, "glm_system_info: %s\n", glm_last_error()); return 1; }
    printf("{\"system\": %s", system);
    glm_free(system);

    /* Nothing below needs a vector unit. */
    glm_tokenizer *tokenizer = NULL;
    int32_t *ids = NULL;
    size_t count = 0;
    const char *text = "Hello, world! 你好 🎉";
    int tokenized = glm_tokenizer_load(argv[2], &tokenizer) == GLM_OK &&
                    glm_tokenize(tokenizer, text, strlen(text), false, &ids, &count) == GLM_OK && count > 0;
    printf(", \"tokens\": %zu", tokenized ? count : 0);
    glm_free(ids);
    glm_tokenizer_free(tokenizer);

    char *prompt = NULL;
    int rendered = glm_chat_render(NULL, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}", &prompt) == GLM_OK;
    printf(", \"rendered\": %s", rendered && strstr(prompt, "<|user|>Hi<|assistant|>") ? "true" : "false");
    glm_free(prompt);

    char *message = NULL;
    int parsed = glm_parse_output("why</think>answer", NULL, &message) == GLM_OK;
    printf(", \"parsed\": %s", parsed && strstr(message, "\"content\":\"answer\"") ? "true" : "false");
    glm_free(message);

    /* The forward pass: refused with a message on a CPU without AVX2/FMA/F16C, computed elsewhere. */
    glm_model *model = NULL;
    glm_status status = glm_model_load(argv[1], NULL, &model);
    printf(", \"load_status\": ");
    json_string(glm_status_name(status));
    printf(", \"load_message\": ");
    json_string(status == GLM_OK ? "" : glm_last_error());
    if (status == GLM_OK) {
        char *info = NULL;
        glm_model_info(model, &info);
        printf(", \"model\": %s", info);
        glm_free(info);
        int32_t vocab = 0;
        glm_model_vocab_size(model, &vocab);
        glm_session *session = NULL;
        float *logits = calloc((size_t)vocab, sizeof(float));
        /* 12 tokens: more than the 8 rows from which projections go through the packed GEMM. */
        const int32_t prompt_ids[12] = {1, 5, 9, 2, 7, 3, 8, 4, 6, 10, 11, 12};
        status = logits ? glm_session_new(model, NULL, &session) : GLM_ERR_OUT_OF_MEMORY;
        if (status == GLM_OK) status = glm_session_eval(session, prompt_ids, 12, GLM_LOGITS_LAST, logits, (size_t)vocab);
        printf(", \"eval_status\": ");
        json_string(glm_status_name(status));
        printf(", \"logits\": [");
        for (int32_t i = 0; status == GLM_OK && i < vocab; i++) printf("%s\"%a\"", i ? ", " : "", logits[i]);
        printf("]");
        free(logits);
        glm_session_free(session);
        glm_model_free(model);
    }
    printf("}\n");
    return 0;
}
