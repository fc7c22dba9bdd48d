/* cc answer.c $(pkg-config --cflags --libs glm) -o answer && ./answer MODEL_DIR */
#include <glm.h>
#include <stdio.h>

int main(int argc, char **argv) {
    glm_model *model = NULL;
    glm_chat *chat = NULL;
    char *response = NULL;
    glm_status status = glm_model_load(argc > 1 ? argv[1] : NULL, NULL, &model);
    if (status == GLM_OK) status = glm_chat_new(model, NULL, &chat);
    if (status == GLM_OK)
        status = glm_chat_complete(chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}],"
                                         " \"temperature\": 0}", NULL, NULL, &response);
    if (status == GLM_OK) puts(response); /* an OpenAI chat.completion object */
    else fprintf(stderr, "%s: %s\n", glm_status_name(status), glm_last_error());
    glm_free(response);
    glm_chat_free(chat);
    glm_model_free(model);
    return status == GLM_OK ? 0 : 1;
}
