#include "fuzz_support.h"

// Sanitizer defaults for glm-fuzz. In C, not Swift: the sanitizers call these before their shadow memory exists,
// when instrumented code must not run (this target is compiled without instrumentation).

// No fake stacks for use-after-return detection: with them a local variable lives on the heap, and the template
// engine's stack budget, which measures the address of a local, would no longer see how deep the render went.
const char *__asan_default_options(void) { return "detect_stack_use_after_return=0"; }

// No leak check at exit. What a target's set-up loaded (a template, a tokenizer) lives to the end, reachable only
// through Swift enum payloads whose pointers carry tag bits, which the exit-time scan does not take for pointers,
// so it would report all of it. libFuzzer's own check after each input that allocated more than it freed
// (-detect_leaks=1, the default) stays on.
const char *__lsan_default_options(void) { return "leak_check_at_exit=0"; }
