/* demo: the first program to run. Prints the library version and shows how errors are reported. */
#include <glm.h>
#include <stdio.h>

int main(void) {
    printf("libglm %s (API %d)\n", glm_version(), glm_api_version());
    if (glm_api_version() != GLM_API_VERSION) {
        fprintf(stderr, "header/library API mismatch\n");
        return 1;
    }
    /* Every failure is a status plus a message; nothing a caller passes can crash the process. */
    glm_status status = glm_set_default_threads(0);
    printf("glm_set_default_threads(0) -> %s: %s\n", glm_status_name(status), glm_last_error());
    printf("default threads: %d\n", glm_default_threads());
    return status == GLM_ERR_INVALID_ARGUMENT ? 0 : 1;
}
