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
 *    Strings and arrays the library returns through pointer-to-pointer parameters are the caller's and are
 *    freed with glm_free(). Handles are freed with their own *_free function; passing NULL to any free
 *    function is a no-op.
 *  - Structured data (messages, tools, options, parse results, events) crosses as UTF-8 JSON in the OpenAI
 *    chat-completions shape; token ids and logits cross as plain arrays.
 *  - Threads: functions without a handle are safe to call from any thread. A handle's comment says whether it
 *    may be shared between threads. Handles that hold the state of one sequence (glm_chat, glm_session,
 *    glm_stream_parser) run one call at a time: a call on such a handle while another call on it runs, from
 *    another thread or re-entered from the running call's own callback, returns GLM_ERR_INVALID_ARGUMENT ("...
 *    is in use by another call") and changes nothing. This is a check, not a lock: calls are refused, never
 *    queued, so a caller that shares such a handle between threads must serialise its calls itself. Freeing
 *    such a handle while a call on it runs (from its callback, or from another thread) is deferred: the handle
 *    is released when that call returns (see glm_chat_free). Using any handle after its free function returned
 *    is the caller's error and cannot be detected, nor can a freed, forged or foreign pointer passed as a handle.
 *  - Files: every file libglm opens must be a regular file; a directory, FIFO, device or socket in its place is
 *    GLM_ERR_IO (a FIFO is never waited on).
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
/* 2 (one release after 1): glm_model_params.kernels, glm_system_info(); GLM_GEMM_AUTO (the enum's values moved);
 *    glm_session_eval and glm_session_mtp_logits take an explicit glm_logits; glm_string_free removed (glm_free
 *    frees everything); constrained decoding (glm_grammar_*, glm_grammar_matcher_*); chat requests accept
 *    "prompt", response_format json_object/json_schema and tool_choice "required" or a named function;
 *    MTP speculative decoding: glm_chat_params.num_speculative_tokens, the request field "speculative_config"
 *    and usage.completion_tokens_details.{accepted,rejected}_prediction_tokens;
 *    KV cache element types (glm_kv_type; f16 by default): glm_session_params/glm_chat_params .type_k, .type_v
 *    and .memory_limit (fields added at the end), glm_session_memory() (what a session will allocate),
 *    glm_session_info(), glm_model_info's "kv_bytes_per_token"; glm_session_new/glm_chat_new refuse a session
 *    that does not fit in memory with GLM_ERR_OUT_OF_MEMORY. */
#define GLM_API_VERSION 2

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
    GLM_ERR_LIMIT_EXCEEDED = 9,   /* an input exceeded a safety bound (nesting depth, output size, loop count,
                                     a template's work or value-size budget, the tokenizer's per-call step
                                     budget); the message names the limit */
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

/* Frees anything libglm returned through a pointer-to-pointer parameter: strings (`char **`) and arrays (token
 * ids). One function for both because both are plain malloc blocks; NULL is a no-op. */
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
/* System                                                                                           */
/* ------------------------------------------------------------------------------------------------ */

/* What this machine and this build can run, as JSON (in the spirit of llama_print_system_info):
 *   {"version", "api_version", "cpu": {"vendor", "brand", "features": ["avx", "avx2", ...]},
 *    "kernels": {"supported": bool, "missing": [...features the kernels need and the CPU lacks...],
 *                "available": ["avx2", "avx512"], "default": "avx512" or "avx2" or null,
 *                "environment": GLM_KERNELS's value or null},
 *    "gemm": {"environment": GLM_GEMM's value or null}, "openblas": {"core": "..."}, "default_threads": N}
 * "default" is the path a model loaded with GLM_KERNELS_AUTO would run (GLM_KERNELS applied; null when the CPU
 * cannot run the kernels or GLM_KERNELS is invalid). Works on any x86-64 CPU, also one without AVX: only the
 * forward pass needs AVX2/FMA/F16C; tokenizer, templates and parsers run anywhere. */
glm_status glm_system_info(char **out_info_json);

/* ------------------------------------------------------------------------------------------------ */
/* Chat templates                                                                                   */
/* ------------------------------------------------------------------------------------------------ */
/*
 * A Jinja2 engine that renders Hugging Face chat templates exactly as transformers' apply_chat_template does
 * (trim_blocks, lstrip_blocks, loopcontrols, its tojson, raise_exception, strftime_now; message keys whose value
 * is null dropped; reasoning/thinking copied to reasoning_content). Rendering needs no weights. Hostile templates
 * (deep recursion, huge loops or output, unterminated tags) fail with GLM_ERR_TEMPLATE or GLM_ERR_LIMIT_EXCEEDED
 * and a message with the template line and column, in bounded time and memory.
 */

/* A parsed template: immutable, may be used from many threads at once. */
typedef struct glm_chat_template glm_chat_template;

/* Parses Jinja `source`; NULL means GLM-4.7's official template (built in). `special_tokens_json` (may be NULL)
 * is an object of the variables transformers passes to every template: {"bos_token": "...", "eos_token": ...}. */
glm_status glm_chat_template_new(const char *source, const char *special_tokens_json,
                                 glm_chat_template **out_template);

/* Reads a template from `path`: a model directory (chat_template.jinja, additional_chat_templates/<name>.jinja,
 * or tokenizer_config.json's chat_template: a string, or a list picked by `name`, else "default"), a
 * tokenizer_config.json file, a .jinja file, or a .gguf file (tokenizer.chat_template, or
 * tokenizer.chat_template.<name>). `name` may be NULL. No template there is GLM_ERR_IO. */
glm_status glm_chat_template_load(const char *path, const char *name, glm_chat_template **out_template);

void glm_chat_template_free(glm_chat_template *chat_template);

/* Renders a chat. `chat_template` NULL means GLM-4.7's built-in template. request_json:
 *   {"messages": [...OpenAI messages...], "tools": [...] or null, "documents": [...] (optional),
 *    "add_generation_prompt": true (default), "chat_template_kwargs": {"enable_thinking": false, ...},
 *    "now": 1721730030 (optional)}
 * Each chat_template_kwargs entry becomes a template variable; a variable not given stays undefined (an explicit
 * null is a defined None, as in transformers). "documents" is transformers' RAG documents list.
 * The clock: "now" (integer seconds since 1970, years 1-9999) is the instant strftime_now shows, formatted in UTC;
 * without it the environment variable SOURCE_DATE_EPOCH (same unit; a malformed value fails the renders that read
 * the clock, with GLM_ERR_INVALID_ARGUMENT) if set, else the real clock in local time, as
 * transformers does. Day and month names are always the C locale's, whatever setlocale() the host called.
 * The prompt is returned in *out_prompt (glm_free). */
glm_status glm_chat_render(const glm_chat_template *chat_template, const char *request_json, char **out_prompt);

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

/* Parses a whole model output (the text generated after the prompt) into a message (JSON, glm_free). */
glm_status glm_parse_output(const char *text, const char *options_json, char **out_message_json);

/* An incremental parser for one response. One call at a time (see Threads at the top): a call while another
 * runs on the same parser is GLM_ERR_INVALID_ARGUMENT, and glm_stream_parser_free during a call defers the release
 * until that call returns. */
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
 * none. *out_ids receives `*out_count` ids (free with glm_free; a valid pointer even when the count is 0).
 * Work is linear in the text for the shipped pre-tokenizer patterns; a tokenizer.json whose split regex would
 * backtrack without end fails with GLM_ERR_LIMIT_EXCEEDED once it has used its matching budget. */
glm_status glm_tokenize(const glm_tokenizer *tokenizer, const char *text, size_t length, bool add_special_tokens,
                        int32_t **out_ids, size_t *out_count);

/* Decodes `count` ids to UTF-8 text (*out_text NUL-terminated, free with glm_free; *out_length is its
 * length in bytes without the NUL, and may be NULL). Invalid UTF-8 becomes U+FFFD; `skip_special_tokens` leaves
 * out the added tokens marked special. An id outside the vocabulary is GLM_ERR_INVALID_ARGUMENT. */
glm_status glm_detokenize(const glm_tokenizer *tokenizer, const int32_t *ids, size_t count, bool skip_special_tokens,
                          char **out_text, size_t *out_length);

/* The raw bytes token `id` stands for (may be part of a UTF-8 character), NUL-terminated for convenience;
 * *out_length is the byte count. Free with glm_free. */
glm_status glm_token_to_piece(const glm_tokenizer *tokenizer, int32_t id, char **out_piece, size_t *out_length);

/* The number of ids (BPE vocabulary and added tokens). */
glm_status glm_tokenizer_vocab_size(const glm_tokenizer *tokenizer, int32_t *out_size);

/* The id of a vocabulary entry written as in tokenizer.json ("<think>", "Ġthe"); -1 if there is none. */
glm_status glm_tokenizer_token_to_id(const glm_tokenizer *tokenizer, const char *token, int32_t *out_id);

/* Whether `id` is an added token marked special (what skip_special_tokens removes). */
glm_status glm_tokenizer_is_special(const glm_tokenizer *tokenizer, int32_t id, bool *out_is_special);

/* ------------------------------------------------------------------------------------------------ */
/* Constrained decoding                                                                             */
/* ------------------------------------------------------------------------------------------------ */
/*
 * A constraint (a JSON schema, a regular expression, or GLM-4.7 tool calls) compiled against a tokenizer's
 * vocabulary; a matcher then gives, before each token, the bitmask of the ids that may come next, and advances
 * by the id chosen. Any sampler can use it: set the logits of the ids whose bit is 0 to -infinity before
 * sampling. glm_chat_complete uses the same engine for response_format and tool_choice.
 *
 * Guarantees: an id is allowed exactly when the text so far plus the id's bytes is a prefix of some output the
 * constraint accepts (an id whose bytes are cut in the middle of a UTF-8 character included); an end id exactly
 * when the text is a complete output. Ids marked special (glm_tokenizer_is_special) other than the end ids, and
 * ids with no bytes, are never allowed. The forms generated:
 *  - JSON: object properties in the schema's order (required ones present; additional properties, when the
 *    schema allows them, after the declared ones); numbers canonical (no leading zeros, integers without
 *    fraction, exponent or "-0"; a fraction or a two-digit exponent only with at most 16 integer digits; no exponent
 *    when the schema bounds the number); strings with any JSON escape (\uXXXX for characters of the Basic
 *    Multilingual Plane); at most max_whitespace whitespace characters between two tokens and after the value.
 *  - JSON Schema supported: type (and lists), properties, required, additionalProperties (bool or schema),
 *    enum, const, anyOf, oneOf (treated as anyOf), allOf, $ref with $defs/definitions or any JSON pointer in
 *    the document (recursion allowed), items, prefixItems (and draft-7 tuple items/additionalItems), minItems,
 *    maxItems, minLength, maxLength, pattern, format (date-time, date, time, uuid, email, ipv4, ipv6, uri,
 *    hostname), minimum, maximum, exclusiveMinimum, exclusiveMaximum. Other value-constraining keywords
 *    (multipleOf, uniqueItems, contains, patternProperties, propertyNames, min/maxProperties, not, if/then/else,
 *    dependent*, unevaluated*, other formats) are an error with "strict": true and otherwise ignored: the output
 *    then satisfies everything else but may violate them; glm_grammar_info lists what was ignored.
 *  - Regular expressions: JSON Schema's dialect (ECMA-262): the whole output must match (a schema's "pattern"
 *    may match anywhere in the string, as in JSON Schema). \d, \w, \s, their negations and "." are resolved
 *    so that a generated string matches under both ECMA-262 and Python's re. Backreferences, lookaround, \b,
 *    \p{...}, possessive quantifiers and "^" other than at the start of a top-level alternative are
 *    GLM_ERR_UNSUPPORTED.
 *  - Tool calls: <tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>...</tool_call>, as GLM-4.7 writes
 *    them and glm_parse_output reads them back: V is the raw text when the parameter's schema reads as a
 *    string, JSON otherwise (typed as the parser types it, from parameters.properties); declared parameters in
 *    order, required ones present; other keys (when additionalProperties allows them) identifier-like, with
 *    string values. A string that the parser would read as another type the parameter also allows ("null", a
 *    number) is not generated as a string. Tool names and keys with '<' or surrounding whitespace are refused.
 * Hostile input (deep or huge schemas, catastrophic patterns) fails with GLM_ERR_LIMIT_EXCEEDED or
 * GLM_ERR_INVALID_ARGUMENT in bounded time and memory.
 */

typedef enum glm_grammar_kind {
    GLM_GRAMMAR_JSON_SCHEMA = 0, /* source: a JSON schema (JSON text: an object or a boolean) */
    GLM_GRAMMAR_JSON_OBJECT = 1, /* source: NULL; any JSON object (OpenAI's json_object) */
    GLM_GRAMMAR_REGEX = 2,       /* source: a regular expression the whole output must match */
    GLM_GRAMMAR_TOOL_CALLS = 3   /* source: an OpenAI "tools" array (JSON text) */
} glm_grammar_kind;

/* A compiled constraint: immutable, may be used from many threads at once (each matcher has its own state). */
typedef struct glm_grammar glm_grammar;

/* Compiles a constraint for `tokenizer`'s vocabulary (the vocabulary's prefix trees are built on the first
 * compile for a tokenizer and kept while it lives). options_json (NULL or "" for the defaults):
 *   "end_token_ids"       ids that end the output (default: the tokenizer's eos token, if it names one)
 *   "strict"              false (default): unsupported schema keywords are ignored; true: they are an error
 *   "max_whitespace"      20 (default): whitespace characters allowed between JSON tokens (0..1000)
 *   "reasoning"           false (default); true: the output starts with free text ended by "</think>"
 *                         (GLM-4.7 with thinking on), and the constraint applies after it
 *   "tool_choice"         tool calls only: "required" (default: one or more calls) or
 *                         {"type": "function", "function": {"name": "..."}} (exactly one call of it)
 *   "parallel_tool_calls" tool calls only: true (default); false allows one call
 * The grammar keeps no reference to `tokenizer`'s handle, but the tokenizer must not be freed while the
 * grammar is used. */
glm_status glm_grammar_compile(const glm_tokenizer *tokenizer, glm_grammar_kind kind, const char *source,
                               const char *options_json, glm_grammar **out_grammar);

void glm_grammar_free(glm_grammar *grammar);

/* JSON: {"kind", "vocab_size", "mask_words" ((vocab_size + 31) / 32), "end_token_ids", "lexemes", "rules",
 * "ignored": [schema keywords ignored, with their place]}. */
glm_status glm_grammar_info(const glm_grammar *grammar, char **out_info_json);

/* The state of one output. One call at a time (see Threads at the top); independent matchers of one grammar
 * may run on different threads. */
typedef struct glm_grammar_matcher glm_grammar_matcher;

glm_status glm_grammar_matcher_new(const glm_grammar *grammar, glm_grammar_matcher **out_matcher);

void glm_grammar_matcher_free(glm_grammar_matcher *matcher);

/* Writes the allowed ids: bit (id % 32) of bitmask[id / 32] (the layout of xgrammar and llguidance masks).
 * `words` must be at least (vocab_size + 31) / 32; words past that are set to 0. After the output ended
 * (an end id was accepted) no id is allowed. */
glm_status glm_grammar_matcher_fill_mask(glm_grammar_matcher *matcher, uint32_t *bitmask, size_t words);

/* Advances by `token`. An id the mask does not allow is GLM_ERR_INVALID_ARGUMENT and changes nothing. */
glm_status glm_grammar_matcher_accept(glm_grammar_matcher *matcher, int32_t token);

/* Advances by raw text (`length` bytes; e.g. a forced prefix). Text the constraint does not allow is
 * GLM_ERR_INVALID_ARGUMENT and changes nothing. Counts as one step for glm_grammar_matcher_rollback. */
glm_status glm_grammar_matcher_accept_text(glm_grammar_matcher *matcher, const char *text, size_t length);

/* *out_can_end: the text so far is a complete output (an end id is allowed); *out_ended: an end id was
 * accepted. Either pointer may be NULL. */
glm_status glm_grammar_matcher_status(glm_grammar_matcher *matcher, bool *out_can_end, bool *out_ended);

/* Undoes the last `steps` accepted tokens (or texts); more than were accepted is GLM_ERR_INVALID_ARGUMENT. */
glm_status glm_grammar_matcher_rollback(glm_grammar_matcher *matcher, size_t steps);

/* Back to the start of the output (what the matcher learned about the grammar is kept: reuse beats re-creating). */
glm_status glm_grammar_matcher_reset(glm_grammar_matcher *matcher);

/* ------------------------------------------------------------------------------------------------ */
/* Models and sessions                                                                              */
/* ------------------------------------------------------------------------------------------------ */
/*
 * A model is a Glm4MoeForCausalLM checkpoint directory as published on Hugging Face: config.json,
 * generation_config.json (optional), model.safetensors or model-*-of-*.safetensors + model.safetensors.index.json,
 * tokenizer files beside them. Weights (F32, BF16, F16) are memory-mapped and computed on in place, so a model
 * larger than RAM still opens. Everything is validated at load: a missing or unexpected tensor, a wrong shape or
 * dtype, a truncated shard or a hostile header is a status and a message naming the file and tensor. config.json
 * must say model_type "glm4_moe" or architectures ["Glm4MoeForCausalLM"] (or both); naming another model type or
 * architecture is GLM_ERR_UNSUPPORTED. Weight values are not scanned at load (that would read the whole
 * checkpoint): weights holding NaN or infinity show as GLM_ERR_FORMAT from the first evaluation.
 *
 * A model may also be a GGUF file as llama.cpp writes it for architecture "glm4moe" (any part of a split set
 * name-0000N-of-0000M.gguf opens the whole set), or a directory without config.json holding one such model. Its
 * tensors may be F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL or IQ4_XS, each
 * its own; another type is GLM_ERR_UNSUPPORTED naming the tensor and the type. Block-quantised weights multiply
 * 8-bit (Q8_0) activations as llama.cpp does. docs/MODEL.md §2.6.
 */

/* Immutable after load: one model may be shared by any number of sessions on any threads. */
typedef struct glm_model glm_model;

/* How prefill's matrix products run (decode always uses libglm's own row kernels). GLM_GEMM_PACKED, libglm's
 * packed GEMM that converts bf16/f16 weights while packing, is the default: on the machines measured it was
 * 1.5-6x faster than Debian's OpenBLAS (see BENCHMARKS.md). OpenBLAS only picks a good kernel for an
 * unrecognised CPU if OPENBLAS_CORETYPE is set before the process starts.
 * Precedence (as for every setting that also has an environment variable): an explicit PACKED or OPENBLAS here
 * wins; AUTO takes GLM_GEMM=packed|openblas from the environment if set, else PACKED. */
typedef enum glm_gemm_backend {
    GLM_GEMM_AUTO = 0,
    GLM_GEMM_PACKED = 1,
    GLM_GEMM_OPENBLAS = 2
} glm_gemm_backend;

/* The instruction set of the forward pass's kernels. Both paths give bit-identical results; AVX-512 runs the
 * prefill GEMM's wider micro-kernel. AUTO = the environment variable GLM_KERNELS (avx2 | avx512 | auto) if set,
 * else the fastest this CPU has. An explicit AVX2/AVX512 here wins over GLM_KERNELS. Every path needs AVX2, FMA
 * and F16C: on a CPU without them glm_model_load returns GLM_ERR_UNSUPPORTED naming what is missing (as does
 * GLM_KERNELS_AVX512 without AVX-512F). glm_model_info's "kernels" says which path a model runs. */
typedef enum glm_kernels {
    GLM_KERNELS_AUTO = 0,
    GLM_KERNELS_AVX2 = 1,
    GLM_KERNELS_AVX512 = 2
} glm_kernels;

/* How bf16 weights multiply their inputs. F32: the inputs stay f32, every product is exact (transformers in float32
 * computes the same sums in another order). BF16: each input row is rounded to bf16 once (nearest even), as
 * llama.cpp multiplies a BF16 tensor on CPU; on the AVX512 kernel path of a CPU with AVX-512 BF16 the products then
 * run as vdpbf16ps on the stored weights (on Zen 5, one thread: decode 1.7x, prefill 1.5x the speed of F32 inputs),
 * elsewhere through the f32 kernels on the rounded inputs. The logits move by that rounding (docs/MODEL.md §2.6,
 * "bf16 inputs": 0.2-0.5% of the largest logit on the test models), and then agree with llama.cpp's on its files.
 * AUTO: BF16 for a GGUF model, F32 for a safetensors checkpoint.
 * glm_model_info's "bf16_inputs" says which applies. */
typedef enum glm_bf16_inputs {
    GLM_BF16_INPUTS_AUTO = 0,
    GLM_BF16_INPUTS_F32 = 1,
    GLM_BF16_INPUTS_BF16 = 2
} glm_bf16_inputs;

typedef struct glm_model_params {
    int32_t threads;          /* threads for sessions that do not say; 0 = glm_default_threads() */
    glm_gemm_backend gemm;    /* GLM_GEMM_AUTO (default), GLM_GEMM_PACKED or GLM_GEMM_OPENBLAS */
    glm_kernels kernels;      /* GLM_KERNELS_AUTO (default), GLM_KERNELS_AVX2 or GLM_KERNELS_AVX512 */
    glm_bf16_inputs bf16_inputs; /* GLM_BF16_INPUTS_AUTO (default), GLM_BF16_INPUTS_F32 or GLM_BF16_INPUTS_BF16 */
    int32_t populate;         /* 1: map every page of the model's files into the process before glm_model_load
                               * returns (read from disk what the page cache lacks, on the model's threads), as
                               * llama.cpp's mmap load does, so that the first tokens do not stop on page faults;
                               * 0 (default): pages map in on first use, the load returns at once. Not for a model
                               * larger than the memory (what it reads is evicted again). Other values:
                               * GLM_ERR_INVALID_ARGUMENT. A read error is GLM_ERR_IO. */
} glm_model_params;

glm_model_params glm_model_default_params(void);

/* Loads the model at `path` (a checkpoint directory or a GGUF model, see above). `params` may be NULL (defaults). */
glm_status glm_model_load(const char *path, const glm_model_params *params, glm_model **out_model);

/* Releases the caller's reference. Sessions hold their own reference: a model freed while sessions use it stays
 * alive until the last of them is freed. */
void glm_model_free(glm_model *model);

/* JSON: {"config": {...HF keys...}, "parameter_count", "bytes_mapped", "dtype" (the type holding most parameters:
 * "bfloat16", "float32", "float16", or a ggml type such as "Q8_0"), "format" ("safetensors" or "gguf"),
 * "quantization" (parameters per stored type, e.g. {"F32": ..., "Q4_K": ..., "Q6_K": ...}), "has_mtp", "gemm",
 * "kernels" ("avx2" or "avx512": the path this model's sessions run), "bf16_inputs" ("f32" or "bf16"), "kv_bytes_per_token" ({"f16": ..., "bf16",
 * "f32", "q8_0"}: bytes of K and V per position of context over all layers, K and V of that type),
 * "mtp_kv_bytes_per_token" (the same for the MTP layer's own cache; 0 without one), ...}. */
glm_status glm_model_info(const glm_model *model, char **out_info_json);

/* Rows of the logits: the config's vocab_size. */
glm_status glm_model_vocab_size(const glm_model *model, int32_t *out_vocab_size);

/* One sequence's state: the KV cache of every layer (and of the MTP layer), activation buffers, logits. All memory
 * is allocated when the session is created; decoding a token allocates nothing. One call at a time (see Threads at
 * the top): glm_session_eval, glm_session_truncate, glm_session_position or glm_session_mtp_logits while another
 * of them runs on the same session is GLM_ERR_INVALID_ARGUMENT ("in use"); glm_session_free during a call defers
 * the release until that call returns. Sessions on one model may run on different threads at the same time. */
typedef struct glm_session glm_session;

/* The element type of a KV cache (as llama.cpp's --cache-type-k/-v). Keys and values are converted when their
 * token is evaluated and read back to f32 in registers by attention. Bytes per value: f32 4, f16 and bf16 2,
 * q8_0 34/32 (ggml's Q8_0 blocks of 32 values with an f16 scale, restarting at every head; a head_dim that is
 * not a multiple of 32 ends in a zero-padded block). f16 is the default: against f32 the logits move by less
 * than the tolerance documented in docs/MODEL.md (KV cache), measured on every test model. */
typedef enum glm_kv_type {
    GLM_KV_F16 = 0,
    GLM_KV_BF16 = 1,
    GLM_KV_F32 = 2,
    GLM_KV_Q8_0 = 3
} glm_kv_type;

typedef struct glm_session_params {
    int32_t context_length; /* positions the KV cache holds; 0 = min(4096, max_position_embeddings) */
    int32_t threads;        /* 0 = the model's thread count */
    int32_t batch_size;     /* tokens per forward chunk when evaluating many; 0 = min(512, context_length) */
    bool mtp;               /* keep what MTP drafting needs (ignored when the model has no MTP layer) */
    glm_kv_type type_k;     /* the keys' element type (GLM_KV_F16 default) */
    glm_kv_type type_v;     /* the values' element type (GLM_KV_F16 default) */
    uint64_t memory_limit;  /* bytes the session may take at most; 0 = no cap of the caller's own */
} glm_session_params;

glm_session_params glm_session_default_params(void);

/* Bytes glm_session_new with `params` (NULL: defaults) will allocate: the KV caches (of the MTP layer too when
 * params.mtp and the model has one), activations, attention scratch, the RoPE table and logits; not thread
 * stacks or OpenBLAS's own buffers. Allocates nothing. */
glm_status glm_session_memory(const glm_model *model, const glm_session_params *params, uint64_t *out_bytes);

/* Creates a session on `model`; `params` may be NULL (defaults). A session needing more than is available
 * (MemAvailable + SwapFree in /proc/meminfo, the cgroup's memory.max minus its current use, params.memory_limit:
 * the least of them) is GLM_ERR_OUT_OF_MEMORY, naming both figures, before anything is allocated. The KV caches
 * are written (zeroed) when allocated, so a session that exists holds its memory: it is not killed later when its
 * cache fills, and the next session's check sees it. */
glm_status glm_session_new(const glm_model *model, const glm_session_params *params, glm_session **out_session);

/* JSON: {"context_length", "threads", "batch_size", "mtp", "type_k", "type_v" ("f16", "bf16", "f32", "q8_0"),
 * "kv_bytes_per_token" (all layers' K and V of one position), "mtp_kv_bytes_per_token" (the MTP layer's, 0
 * without MTP), "bytes" (what the session's buffers hold: glm_session_memory's figure, plus any growth of the
 * logits buffer when a call asked for more rows of logits than one)}. */
glm_status glm_session_info(const glm_session *session, char **out_info_json);

/* Releases the session (when the call running on it returns, if one does). */
void glm_session_free(glm_session *session);

/* Which logits a call computes and writes (as llama_batch.logits says per token): the language-model head is a
 * [vocab × hidden] product per row, so a prompt should ask for the last row only (or none) unless it needs all. */
typedef enum glm_logits {
    GLM_LOGITS_NONE = 0, /* none: out_logits must be NULL and out_capacity 0 */
    GLM_LOGITS_LAST = 1, /* the last token's row: out_capacity >= vocab */
    GLM_LOGITS_ALL = 2   /* one row per token, row-major [count, vocab]: out_capacity >= count * vocab */
} glm_logits;

/* Evaluates `count` tokens at the next positions, appending them to the cache, and writes the logits `logits`
 * asks for to `out_logits` (capacity in floats; a buffer too small for them, a buffer with GLM_LOGITS_NONE or
 * none with LAST/ALL is GLM_ERR_INVALID_ARGUMENT; a larger buffer is fine and only the asked rows are written).
 * A token id outside the vocabulary is GLM_ERR_INVALID_ARGUMENT; tokens that do not
 * fit in the context are GLM_ERR_CONTEXT_FULL, checked before any id is read (so a `count` larger than the
 * caller's array is refused as long as it exceeds the positions left; a smaller one is the caller's error).
 * Logits that are not finite (NaN or infinity, from weights holding such values) are GLM_ERR_FORMAT, checked on
 * the rows the call computes (the last token's, or all of them when asked for). On error the session is
 * unchanged. */
glm_status glm_session_eval(glm_session *session, const int32_t *tokens, size_t count, glm_logits logits,
                            float *out_logits, size_t out_capacity);

/* Forgets every position from `n_tokens` on (prefix reuse: the first n tokens' cache is kept). */
glm_status glm_session_truncate(glm_session *session, size_t n_tokens);

/* Tokens in the cache (the position the next evaluated token gets). */
glm_status glm_session_position(const glm_session *session, size_t *out_position);

/* MTP draft logits for the next `count` positions p = m, m+1, ... where m is where the MTP layer's cache ends
 * (0 on a fresh session): row i uses next_tokens[i], the token at position p+1, and predicts the token after it.
 * After evaluating x[0..T) on a fresh session, passing x[1..T) gives the drafts of positions 0..T-2. The main
 * model must already have evaluated every position used. `logits`, `out_logits`, `out_capacity` as in
 * glm_session_eval. */
glm_status glm_session_mtp_logits(glm_session *session, const int32_t *next_tokens, size_t count, glm_logits logits,
                                  float *out_logits, size_t out_capacity);

/* ------------------------------------------------------------------------------------------------ */
/* Chat: OpenAI chat completions in-process                                                         */
/* ------------------------------------------------------------------------------------------------ */
/*
 * A chat session keeps its KV cache across requests. Each request re-renders the prompt with the model's chat
 * template, keeps the longest common token prefix with what the cache holds and evaluates only the rest
 * (Preserved Thinking keeps the prefix stable; usage.prompt_tokens_details.cached_tokens reports the reuse).
 *
 * request_json is an OpenAI chat-completions request: "messages", "tools", "temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty",
 * "logit_bias", "seed", "max_tokens" / "max_completion_tokens", "stop" (string or list), "response_format"
 * ({"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {"name", "schema",
 * "strict"}}), "tool_choice" ("auto", "none", "required" or {"type": "function", "function": {"name"}}),
 * "parallel_tool_calls",
 * "chat_template_kwargs" ({"enable_thinking": false, "clear_thinking": false, ...}: thinking is set per
 * request), "stream_options" ({"include_usage": true}), and libglm's "now" (the template's clock, as in
 * glm_chat_render) and "prompt": a raw prompt string in place of "messages" (text completions, as an OpenAI
 * server's /v1/completions): it is tokenized as given, with no template (so "tools" and "chat_template_kwargs"
 * cannot accompany it), and the output is not parsed: all of it streams and returns as "content".
 * Sampling defaults come from generation_config.json. Fields that would change the response's
 * shape are refused with GLM_ERR_UNSUPPORTED rather than ignored: "response_format" of another type,
 * "logprobs": true, "top_logprobs" other than 0, "n" other than 1.
 * Structured output (see Constrained decoding): with "response_format" json_object/json_schema the reply's
 * content is a JSON value valid under the schema ("strict": true refuses unsupported schema keywords); with
 * "tool_choice" "required" it is one or more tool calls (one with "parallel_tool_calls": false), with a named
 * function exactly one call of it. With thinking on, the reasoning before </think> stays free. The mask applies
 * before the sampler chain, so temperature, top_p, penalties, logit_bias and seed act on the allowed tokens as
 * usual; stop strings and max_tokens still end the reply (finish_reason "length" with a partial value).
 * Combining a JSON response_format with a forced tool call is GLM_ERR_INVALID_ARGUMENT.
 * Non-finite numbers (NaN, Infinity) in sampling fields and "logit_bias" are GLM_ERR_INVALID_ARGUMENT.
 * Tool-call "arguments" may be JSON text (as OpenAI clients send them) or an object. Generation stops at the
 * eos ids of generation_config.json (GLM-4.7: <|endoftext|>, <|user|>, <|observation|>), at a stop string,
 * at max_tokens or at the end of the context.
 *
 * The response is a "chat.completion" object: choices[0].message with "content", "reasoning_content" and
 * "tool_calls" (function.arguments as JSON text), choices[0].finish_reason ("stop", "length", "tool_calls",
 * "cancelled"), and "usage" (prompt_tokens, completion_tokens, total_tokens,
 * prompt_tokens_details.cached_tokens).
 */

/* A chat session: a session plus the model directory's tokenizer, chat template and generation defaults.
 * One call at a time (see Threads at the top): glm_chat_complete or glm_chat_reset while a call runs on the same
 * chat, from another thread or from the running request's own event callback, is GLM_ERR_INVALID_ARGUMENT
 * ("in use") and does not disturb the running request. Many chat sessions may share one model, each on its own
 * thread. */
typedef struct glm_chat glm_chat;

typedef struct glm_chat_params {
    int32_t context_length; /* 0 = min(4096, max_position_embeddings) */
    int32_t threads;        /* 0 = the model's thread count */
    int32_t num_speculative_tokens; /* MTP speculative decoding for requests that do not set "speculative_config":
                                       drafts per step, 0 = off (default), 1-3 (needs a model with an MTP layer,
                                       else glm_chat_new is GLM_ERR_INVALID_ARGUMENT) */
    glm_kv_type type_k;     /* as in glm_session_params (GLM_KV_F16 default) */
    glm_kv_type type_v;
    uint64_t memory_limit;  /* as in glm_session_params: 0 = no cap of the caller's own */
} glm_chat_params;

glm_chat_params glm_chat_default_params(void);

/* Creates a chat session on `model`, reading tokenizer.json, the chat template (chat_template.jinja or
 * tokenizer_config.json; GLM-4.7's built-in one if the directory has none) and generation_config.json from the
 * model's directory; for a GGUF model, the tokenizer and tokenizer.chat_template of the file (its first part).
 * `params` may be NULL (defaults). */
glm_status glm_chat_new(const glm_model *model, const glm_chat_params *params, glm_chat **out_chat);

/* Releases the chat. Called from the event callback of a request running on this chat (or from another thread
 * while one runs), it stops that request at its next event, if there is one: the callback is not called again
 * and glm_chat_complete returns GLM_ERR_CANCELLED with the partial response, as for a cancel. The release itself
 * happens when glm_chat_complete returns. The chat must not be used, by any thread, after this call. */
void glm_chat_free(glm_chat *chat);

typedef enum glm_event_kind {
    GLM_EVENT_ROLE = 0,   /* the first chunk: delta {"role": "assistant", "content": ""} */
    GLM_EVENT_DELTA = 1,  /* reasoning or content text, a tool call's start, or a piece of its arguments */
    GLM_EVENT_FINISH = 2, /* the last choice chunk: empty delta and the finish_reason */
    GLM_EVENT_USAGE = 3   /* a chunk without choices carrying usage (when stream_options.include_usage) */
} glm_event_kind;

/* One streamed piece. Both strings are valid only during the callback. Text never splits a UTF-8 character. */
typedef struct glm_event {
    glm_event_kind kind;
    const char *chunk_json; /* the OpenAI "chat.completion.chunk" object a server would send */
    const char *delta_json; /* the chunk's choices[0].delta ("{}" for USAGE) */
} glm_event;

/* Called for each event, on the thread that called glm_chat_complete; return false to cancel the request. It may
 * call any libglm function except glm_chat_complete and glm_chat_reset on the same chat (refused as "in use");
 * glm_chat_free on the same chat cancels the request (see glm_chat_free). */
typedef bool (*glm_event_callback)(const glm_event *event, void *user_data);

/* Runs one request. `callback` (may be NULL) receives the stream.
 *
 * Speculative decoding: the request field "speculative_config": {"method": "mtp", "num_speculative_tokens": k}
 * (vLLM's option of that name, here per request; k = 0 off, 1-3; omitted: the chat's num_speculative_tokens)
 * drafts k tokens per step with the model's MTP layer and verifies them in one forward pass. The output is
 * unchanged: at temperature 0 the same tokens as without it, with sampling the same distribution (the seed
 * gives other, equally distributed, draws). The response's usage then carries
 * "completion_tokens_details": {"accepted_prediction_tokens", "rejected_prediction_tokens"} (drafts kept and
 * refused). A request asking for it on a model without an MTP layer is GLM_ERR_INVALID_ARGUMENT; the first such
 * request on a chat created with num_speculative_tokens 0 allocates the MTP state and forgets the KV cache once.
 *  The final response is returned in
 * *out_response_json (glm_free). If the callback cancels, the call returns GLM_ERR_CANCELLED and, as the
 * one exception to the out-parameter rule, still sets *out_response_json to the partial response (finish_reason
 * "cancelled"); the session stays usable. A bad request, a template failure or a prompt longer than the context
 * is an error that leaves the session as it was. */
glm_status glm_chat_complete(glm_chat *chat, const char *request_json, glm_event_callback callback, void *user_data,
                             char **out_response_json);

/* Forgets the KV cache (the next request evaluates its whole prompt). */
glm_status glm_chat_reset(glm_chat *chat);

/* ---- Writing GGUF files (quantisation) ----
 *
 * glm_quantize converts a GGUF model (one file or any part of a split set, as llama.cpp's converter writes them;
 * BF16, F16 or F32 weights), or a Hugging Face checkpoint directory (config.json + safetensors: BF16, F16, F32 or the
 * FP8 checkpoints glm_model_load reads), into one GGUF file of a llama.cpp file type, with llama-quantize's recipes:
 * "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S",
 * "Q5_K_M", "Q6_K" (Q3_K, Q4_K and Q5_K name the _M mixes), "F16", "BF16", "F32"; case-insensitive. Without an
 * importance matrix ggml's quantisers are deterministic, and the output is byte-identical to
 * `llama-quantize SRC DST TYPE` (same metadata with general.file_type and general.quantization_version, tensor
 * order, per-tensor types, including the fallbacks for rows that are not whole 256-element super-blocks). From a
 * checkpoint directory the output is what llama.cpp's convert_hf_to_gguf.py (--outtype of the checkpoint's own type,
 * f32 for FP8) followed by llama-quantize writes, with no intermediate file: the same tensors and data, and the same
 * metadata except general.basename/finetune/version/size_label (the converter's name heuristics, not written).
 * It streams: the header first, then each tensor converted in slabs of rows over `threads` threads and written,
 * so memory stays at a few tens of MB whatever the model's size. docs/MODEL.md §2.6.
 * Errors: a bad type name or params is GLM_ERR_INVALID_ARGUMENT; an unreadable source or an unwritable destination
 * (disk full included) GLM_ERR_IO; a malformed source GLM_ERR_FORMAT; a source tensor type it cannot convert
 * GLM_ERR_UNSUPPORTED (so is a checkpoint dtype other than BF16/F16/F32/F8_E4M3 or an unknown quantization_config;
 * a checkpoint tensor that is missing, truncated or has no GGUF name is GLM_ERR_FORMAT); an already block-quantised
 * source tensor without allow_requantize
 * GLM_ERR_INVALID_ARGUMENT; the progress callback returning false GLM_ERR_CANCELLED. On any error the partial
 * destination file is removed. The destination must be a regular file (or not exist yet) and not (a part of) the
 * source: GLM_ERR_INVALID_ARGUMENT otherwise. */

/* Called after each slab of output (on the thread that called glm_quantize) with the bytes of tensor data written
 * so far, the total the file will hold, and the tensor being written (valid during the call). Return false to
 * cancel. */
typedef bool (*glm_quantize_progress)(uint64_t bytes_done, uint64_t bytes_total, const char *tensor,
                                      void *user_data);

typedef struct glm_quantize_params {
    uint32_t size;                   /* sizeof(glm_quantize_params), as glm_quantize_default_params sets it: fields
                                        may be appended later, and a caller built against this header keeps
                                        working */
    const char *type;                /* the file type, e.g. "Q4_K_M" (required) */
    int32_t threads;                 /* 0 = glm_default_threads() */
    bool allow_requantize;           /* convert tensors that are already block-quantised (default false) */
    glm_quantize_progress progress;  /* may be NULL */
    void *user_data;                 /* passed to progress */
} glm_quantize_params;

glm_quantize_params glm_quantize_default_params(void);

/* Writes the quantised model `src` to the file `dst` (created or replaced). */
glm_status glm_quantize(const char *src, const char *dst, const glm_quantize_params *params);

#ifdef __cplusplus
}
#endif

#endif /* GLM_H */
