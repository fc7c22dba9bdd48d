/* hello: libglm without weights. Prints the version, renders a GLM-4.7 prompt with the built-in chat template,
 * parses a model output into reasoning, content and a tool call, and shows how errors are reported. */
#include <glm.h>
#include <stdio.h>

static int fail(const char *what, glm_status status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, glm_status_name(status), glm_last_error());
    return 1;
}

int main(void) {
    printf("libglm %s (API %d)\n", glm_version(), glm_api_version());
    if (glm_api_version() != GLM_API_VERSION) {
        fprintf(stderr, "header/library API mismatch\n");
        return 1;
    }

    const char *request =
        "{\"messages\": [{\"role\": \"system\", \"content\": \"You are terse.\"},"
        "                {\"role\": \"user\", \"content\": \"Weather in Paris?\"}],"
        " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
        "   \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}]}";
    char *prompt = NULL;
    glm_status status = glm_chat_render(NULL, request, &prompt);
    if (status != GLM_OK) return fail("glm_chat_render", status);
    printf("\nprompt:\n%s\n", prompt);
    glm_free(prompt);

    const char *output = "The user wants the weather.</think>Checking.<tool_call>get_weather"
                         "<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>";
    const char *options = "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
                          " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}],"
                          " \"tool_call_id_seed\": 1}";
    char *message = NULL;
    status = glm_parse_output(output, options, &message);
    if (status != GLM_OK) return fail("glm_parse_output", status);
    printf("\nparsed output:\n%s\n", message);
    glm_free(message);

    /* Every failure is a status plus a message; nothing a caller passes can crash the process. */
    status = glm_set_default_threads(0);
    printf("\nglm_set_default_threads(0) -> %s: %s\n", glm_status_name(status), glm_last_error());
    return status == GLM_ERR_INVALID_ARGUMENT ? 0 : 1;
}
