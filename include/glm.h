/*
 * glm.h: the C interface of libglm, an embeddable inference library for Z.ai's GLM-4.x MoE models
 * (GLM-4.7, GLM-4.6, GLM-4.5, GLM-4.5-Air: HF architecture Glm4MoeForCausalLM).
 *
 * This header is the contract. Every function below is implemented in Swift with `@c @implementation`, so the
 * compiler rejects an implementation whose signature drifts from this file, and libglm.so exports exactly the
 * glm_* symbols.
 *
 * Conventions, for every function unless its comment says otherwise:
 *  - Status: fallible calls return glm_status; GLM_OK (0) is success. On failure glm_last_error() returns a
 *    message naming what was wrong, and every out-parameter is left untouched.
 *  - Strings in are NUL-terminated UTF-8; invalid UTF-8 is GLM_ERR_INVALID_ARGUMENT. A NULL pointer where a
 *    value is required is GLM_ERR_INVALID_ARGUMENT, never a crash.
 *  - Ownership: the caller owns every pointer it passes; the library never keeps one after the call returns.
 *    Strings the library returns through `char **` are the caller's and are freed with glm_string_free();
 *    arrays returned through other pointer-to-pointer parameters are freed with glm_free(). Handles are freed
 *    with their own *_free function; passing NULL to any free function is a no-op.
 *  - Structured data (messages, tools, options, parse results, events) crosses as UTF-8 JSON in the OpenAI
 *    chat-completions shape; token ids and logits cross as plain arrays.
 *  - Threads: functions without a handle are safe to call from any thread. A handle's comment says whether it
 *    may be shared between threads.
 */
#ifndef GLM_H
#define GLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. glm_api_version() returns the version of the loaded library; a
 * caller built against a different GLM_API_VERSION should refuse to run. */
#define GLM_API_VERSION 1

/* ------------------------------------------------------------------------------------------------ */
/* Status codes and errors                                                                          */
/* ------------------------------------------------------------------------------------------------ */

typedef enum glm_status {
    GLM_OK = 0,
    GLM_ERR_INVALID_ARGUMENT = 1, /* a NULL, out-of-range or malformed argument (bad JSON, bad token id) */
    GLM_ERR_IO = 2,               /* a file could not be opened, read or mapped */
    GLM_ERR_FORMAT = 3,           /* a file or document is malformed (truncated, corrupt header, bad JSON) */
    GLM_ERR_UNSUPPORTED = 4,      /* well-formed but not supported (another architecture, an unknown dtype) */
    GLM_ERR_OUT_OF_MEMORY = 5,    /* an allocation the call needed failed */
    GLM_ERR_CANCELLED = 6,        /* a callback returned false */
    GLM_ERR_CONTEXT_FULL = 7,     /* the tokens do not fit in the session's context */
    GLM_ERR_TEMPLATE = 8,         /* a chat template failed to parse or render (the message has line/column) */
    GLM_ERR_LIMIT_EXCEEDED = 9,   /* an input exceeded a safety bound (nesting depth, output size, loop count) */
    GLM_ERR_INTERNAL = 10         /* a bug in libglm: please report it with the message */
} glm_status;

/* The message of the last failed call on the calling thread, or "" if none failed yet. The pointer stays
 * valid until the next libglm call on the same thread; do not free it. Never NULL. */
const char *glm_last_error(void);

/* A static, human-readable name for a status ("GLM_ERR_IO", ...); "GLM_UNKNOWN_STATUS" for other values. */
const char *glm_status_name(glm_status status);

/* ------------------------------------------------------------------------------------------------ */
/* Version and memory                                                                               */
/* ------------------------------------------------------------------------------------------------ */

/* The library version as "MAJOR.MINOR.PATCH". Static storage; do not free. */
const char *glm_version(void);

/* GLM_API_VERSION of the loaded library. */
int32_t glm_api_version(void);

/* Frees a string returned by libglm through a `char **` parameter. NULL is a no-op. */
void glm_string_free(char *string);

/* Frees an array returned by libglm (token ids, logits). NULL is a no-op. */
void glm_free(void *pointer);

/* ------------------------------------------------------------------------------------------------ */
/* Threads                                                                                          */
/* ------------------------------------------------------------------------------------------------ */

/* The number of threads used where a params struct leaves `threads` at 0: initially the number of online
 * CPUs. libglm runs its own small pthread pool (safe across fork(): a forked child starts fresh workers on
 * first use) and sets OpenBLAS's thread count explicitly so the two never compete.
 * `threads` must be 1..1024. */
glm_status glm_set_default_threads(int32_t threads);
int32_t glm_default_threads(void);

/* ------------------------------------------------------------------------------------------------ */
/* Output parsing: GLM-4.7 reasoning and tool calls                                                 */
/* ------------------------------------------------------------------------------------------------ */
/*
 * What vLLM's `--reasoning-parser glm45 --tool-call-parser glm47` (0.33) return, with the deliberate differences
 * documented in Sources/GLMParsers/OutputParser.swift (tags are matched as text wherever a chunk was cut; batch
 * and streaming always agree; streamed arguments are always valid JSON).
 *
 * options_json (NULL or "" for the defaults) is an object with the keys:
 *   "tools"                 the request's OpenAI tools array (or null): declares the callable names and the JSON
 *                           schemas that type each argument value
 *   "tool_choice"           "auto" (default) or "none" (no tool calls are parsed)
 *   "thinking"              true (default) when the prompt ended in <think>: the output starts in reasoning
 *   "keep_undeclared_tools" false (default): calls to tools the request did not declare are dropped
 *   "tool_call_id_seed"     an integer: makes the generated call ids ("call_" + 24 hex digits) reproducible
 *
 * A message is the OpenAI assistant message {"role": "assistant", "content": string|null,
 * "reasoning_content": string|null, "tool_calls": [{"id", "type": "function", "function": {"name", "arguments"}}]}
 * where "arguments" is a JSON text. An event is an OpenAI chat-completion chunk's "delta":
 * {"reasoning_content": "..."}, {"content": "..."}, {"tool_calls": [{"index", "id", "type", "function": {"name"}}]}
 * when a call starts, {"tool_calls": [{"index", "function": {"arguments": "..."}}]} for argument text.
 */

/* Parses a whole model output (the text generated after the prompt) into a message (JSON, glm_string_free). */
glm_status glm_parse_output(const char *text, const char *options_json, char **out_message_json);

/* An incremental parser for one response. Not thread-safe: one thread at a time. */
typedef struct glm_stream_parser glm_stream_parser;

/* Creates a parser; free it with glm_stream_parser_free(). */
glm_status glm_stream_parser_new(const char *options_json, glm_stream_parser **out_parser);

/* Feeds the next chunk of output text (any split, even inside a tag). *out_events_json receives a JSON array of
 * the events this chunk completes (often []); text that could still be the start of a tag is withheld. */
glm_status glm_stream_parser_feed(glm_stream_parser *parser, const char *chunk, char **out_events_json);

/* Ends the response: *out_events_json receives the events for withheld text (may be NULL if not wanted) and
 * *out_message_json the final message, equal to glm_parse_output() of everything fed. Feeding after finish is
 * ignored; finishing again returns the same message. */
glm_status glm_stream_parser_finish(glm_stream_parser *parser, char **out_events_json, char **out_message_json);

void glm_stream_parser_free(glm_stream_parser *parser);

/* ------------------------------------------------------------------------------------------------ */
/* Tokenizer                                                                                        */
/* ------------------------------------------------------------------------------------------------ */
/*
 * Byte-level BPE as HF `tokenizers` runs it (ids identical), loaded from a tokenizer.json (with its
 * tokenizer_config.json beside it), a model directory holding one, or a GGUF file's tokenizer metadata. Added
 * tokens (special or not, e.g. <think>, <tool_call>) always match as single tokens. Nothing GLM-specific is
 * built in: every id comes from the file.
 */

/* Immutable after load: one tokenizer may be used from many threads at once. */
typedef struct glm_tokenizer glm_tokenizer;

/* Loads a tokenizer from `path`: a tokenizer.json, a directory holding tokenizer.json, or a .gguf file. */
glm_status glm_tokenizer_load(const char *path, glm_tokenizer **out_tokenizer);

void glm_tokenizer_free(glm_tokenizer *tokenizer);

/* Encodes `length` bytes of UTF-8 `text` (need not be NUL-terminated; may contain NUL). With
 * `add_special_tokens` the post-processor's tokens (a BOS, for tokenizers that add one) are added; GLM's adds
 * none. *out_ids receives `*out_count` ids (free with glm_free; a valid pointer even when the count is 0). */
glm_status glm_tokenize(const glm_tokenizer *tokenizer, const char *text, size_t length, bool add_special_tokens,
                        int32_t **out_ids, size_t *out_count);

/* Decodes `count` ids to UTF-8 text (*out_text NUL-terminated, free with glm_string_free; *out_length is its
 * length in bytes without the NUL, and may be NULL). Invalid UTF-8 becomes U+FFFD; `skip_special_tokens` leaves
 * out the added tokens marked special. An id outside the vocabulary is GLM_ERR_INVALID_ARGUMENT. */
glm_status glm_detokenize(const glm_tokenizer *tokenizer, const int32_t *ids, size_t count, bool skip_special_tokens,
                          char **out_text, size_t *out_length);

/* The raw bytes token `id` stands for (may be part of a UTF-8 character), NUL-terminated for convenience;
 * *out_length is the byte count. Free with glm_string_free. */
glm_status glm_token_to_piece(const glm_tokenizer *tokenizer, int32_t id, char **out_piece, size_t *out_length);

/* The number of ids (BPE vocabulary and added tokens). */
glm_status glm_tokenizer_vocab_size(const glm_tokenizer *tokenizer, int32_t *out_size);

/* The id of a vocabulary entry written as in tokenizer.json ("<think>", "Ġthe"); -1 if there is none. */
glm_status glm_tokenizer_token_to_id(const glm_tokenizer *tokenizer, const char *token, int32_t *out_id);

/* Whether `id` is an added token marked special (what skip_special_tokens removes). */
glm_status glm_tokenizer_is_special(const glm_tokenizer *tokenizer, int32_t id, bool *out_is_special);

#ifdef __cplusplus
}
#endif

#endif /* GLM_H */
