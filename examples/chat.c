/* chat: a streamed, thinking, tool-calling conversation from C.
 *
 *   build/bin/chat MODEL_DIR ["question"]
 *
 * Streams the model's reasoning and answer as they are generated. When the model calls the get_weather tool,
 * the program runs it, sends the result back as a "tool" message and continues, until the model answers.
 * `make demo` runs it on the tiny GLM-4 MoE model committed under Tests/Fixtures/models/glm-tiny-chat, which
 * was trained to call get_weather for a weather question. */
#include <glm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *TOOLS =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
    " \"description\": \"Get the current weather in a city\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},"
    " \"required\": [\"city\"]}}}]";

/* A growable string. */
typedef struct { char *data; size_t length, capacity; } buffer;

static void append(buffer *b, const char *text, size_t n) {
    if (b->length + n + 1 > b->capacity) {
        b->capacity = (b->length + n + 1) * 2;
        b->data = realloc(b->data, b->capacity);
        if (!b->data) { perror("realloc"); exit(1); }
    }
    memcpy(b->data + b->length, text, n);
    b->length += n;
    b->data[b->length] = '\0';
}

static void append_str(buffer *b, const char *text) { append(b, text, strlen(text)); }

/* Appends `text` as a JSON string literal. */
static void append_json_string(buffer *b, const char *text) {
    append_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char escaped[8];
        if (*p == '"' || *p == '\\') { escaped[0] = '\\'; escaped[1] = (char)*p; append(b, escaped, 2); }
        else if (*p < 0x20) { snprintf(escaped, sizeof escaped, "\\u%04x", *p); append_str(b, escaped); }
        else append(b, (const char *)p, 1);
    }
    append_str(b, "\"");
}

/* The JSON value that follows `"key":` in `json` (first occurrence), as a new string; NULL if absent.
 * Enough for the compact JSON libglm writes: it skips strings while matching brackets. */
static char *json_value(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *start = strstr(json, pattern);
    if (!start) return NULL;
    start += strlen(pattern);
    const char *p = start;
    int depth = 0;
    do {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) if (*p == '\\' && p[1]) p++;
        } else if (*p == '{' || *p == '[') depth++;
        else if (*p == '}' || *p == ']') depth--;
        if (!*p) return NULL;
        p++;
    } while (depth > 0 || (p[-1] != '"' && p[-1] != '}' && p[-1] != ']' && *p != ',' && *p != '}' && *p != ']'));
    char *value = malloc((size_t)(p - start) + 1);
    if (!value) return NULL;
    memcpy(value, start, (size_t)(p - start));
    value[p - start] = '\0';
    return value;
}

/* Prints a JSON string literal's text (handles the escapes libglm writes). */
static void print_json_string(const char *literal) {
    if (!literal || *literal != '"') return;
    for (const char *p = literal + 1; *p && *p != '"'; p++) {
        if (*p != '\\') { putchar(*p); continue; }
        p++;
        switch (*p) {
        case 'n': putchar('\n'); break;
        case 't': putchar('\t'); break;
        case 'u': { unsigned code = 0; sscanf(p + 1, "%4x", &code); p += 4; if (code < 0x80) putchar((int)code); break; }
        default: putchar(*p);
        }
    }
}

/* Streams deltas: reasoning dimmed, content plain, tool calls announced. */
static bool on_event(const glm_event *event, void *user_data) {
    int *section = user_data; /* 0 none yet, 1 reasoning, 2 content */
    if (event->kind != GLM_EVENT_DELTA) return true;
    char *text;
    if ((text = json_value(event->delta_json, "reasoning_content"))) {
        if (*section != 1) { printf("\n\x1b[2m[thinking] "); *section = 1; }
        print_json_string(text);
    } else if ((text = json_value(event->delta_json, "content"))) {
        if (*section != 2) { printf("\x1b[0m\n[answer] "); *section = 2; }
        print_json_string(text);
    } else if ((text = json_value(event->delta_json, "name"))) {
        printf("\x1b[0m\n[tool call] ");
        print_json_string(text);
        printf(" ");
        *section = 0;
    } else if ((text = json_value(event->delta_json, "arguments"))) {
        print_json_string(text);
    }
    free(text);
    fflush(stdout);
    return true;
}

/* The tool: a canned weather service. */
static const char *get_weather(const char *arguments) {
    if (strstr(arguments, "Paris")) return "{\"city\": \"Paris\", \"temperature\": 18, \"condition\": \"sunny\"}";
    return "{\"error\": \"unknown city\"}";
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [question]\n", argv[0]);
        return 2;
    }
    const char *question = argc > 2 ? argv[2] : "What is the weather in Paris?";
    glm_model *model = NULL;
    glm_chat *chat = NULL;
    glm_status status = glm_model_load(argv[1], NULL, &model);
    if (status == GLM_OK) status = glm_chat_new(model, NULL, &chat);
    if (status != GLM_OK) {
        fprintf(stderr, "cannot start: %s: %s\n", glm_status_name(status), glm_last_error());
        glm_model_free(model);
        return 1;
    }

    buffer messages = {0};
    append_str(&messages, "[{\"role\": \"user\", \"content\": ");
    append_json_string(&messages, question);
    append_str(&messages, "}");
    printf("[user] %s", question);

    int exit_code = 1;
    for (int turn = 0; turn < 4; turn++) {
        buffer request = {0};
        append_str(&request, "{\"messages\": ");
        append(&request, messages.data, messages.length);
        append_str(&request, "], \"tools\": ");
        append_str(&request, TOOLS);
        append_str(&request, ", \"temperature\": 0, \"max_tokens\": 256}");
        int section = 0;
        char *response = NULL;
        status = glm_chat_complete(chat, request.data, on_event, &section, &response);
        free(request.data);
        printf("\x1b[0m\n");
        if (status != GLM_OK) {
            fprintf(stderr, "chat failed: %s: %s\n", glm_status_name(status), glm_last_error());
            glm_free(response);
            break;
        }
        char *finish = json_value(response, "finish_reason");
        char *usage = json_value(response, "usage");
        printf("[finish %s, usage %s]\n", finish ? finish : "?", usage ? usage : "?");
        int called_tool = finish && strcmp(finish, "\"tool_calls\"") == 0;
        if (called_tool) {
            /* Send the assistant message back as it came, then the tool's result. */
            char *message = json_value(response, "message");
            char *id = message ? json_value(message, "id") : NULL;
            char *arguments = message ? json_value(message, "arguments") : NULL;
            const char *result = get_weather(arguments ? arguments : "");
            printf("[tool result] %s", result);
            append_str(&messages, ", ");
            append_str(&messages, message ? message : "{}");
            append_str(&messages, ", {\"role\": \"tool\", \"tool_call_id\": ");
            append_str(&messages, id ? id : "\"\"");
            append_str(&messages, ", \"content\": ");
            append_json_string(&messages, result);
            append_str(&messages, "}");
            free(message);
            free(id);
            free(arguments);
        }
        free(finish);
        free(usage);
        glm_free(response);
        if (!called_tool) { exit_code = 0; break; }
    }
    free(messages.data);
    glm_chat_free(chat);
    glm_model_free(model);
    return exit_code;
}
