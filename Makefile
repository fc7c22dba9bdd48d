# libglm build. `make` builds the release library (Swift runtime linked in statically), the C examples and the
# `glm` command line (apps/, a package of its own); `make demo` sets up, builds and runs the demo; `make test` sets
# up, builds and runs every test.
PREFIX ?= /usr/local
SWIFT ?= swift
CC ?= cc
PYTHON ?= python3
BUILD := build
LIB := $(BUILD)/lib/libglm.so
# -static-stdlib as a command-line flag (as a Package.swift linker setting it breaks `swift test`).
SWIFT_RELEASE := -c release -Xswiftc -static-stdlib
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/bin/%,$(wildcard examples/*.c))
# Our executables use jemalloc; libglm.so itself must not (a dlopen()ed jemalloc fails on static TLS).
EXE_LDFLAGS := -L$(BUILD)/lib -lglm -Wl,-rpath,'$$ORIGIN/../lib' -Wl,--no-as-needed -ljemalloc

.PHONY: all setup lib examples cli bench demo python test swift-test python-test install clean \
	fuzz fuzz-build fuzz-ci sanitize

all: lib examples cli

setup:
	@bash tools/setup.sh

lib:
	$(SWIFT) build $(SWIFT_RELEASE) --product glm
	@mkdir -p $(BUILD)/lib
	@# A new file renamed into place: processes that have the old libglm.so mapped keep their copy intact.
	cp "$$($(SWIFT) build $(SWIFT_RELEASE) --show-bin-path)/libglm.so" $(LIB).tmp && mv -f $(LIB).tmp $(LIB)

examples: $(EXAMPLES)

$(BUILD)/bin/%: examples/%.c include/glm.h $(LIB)
	@mkdir -p $(BUILD)/bin
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -Iinclude $< -o $@ $(EXE_LDFLAGS)

# The command line and server: a separate SwiftPM package (apps/Package.swift) with its own .build, so that
# `swift test` on the library never builds SwiftNIO and Hummingbird. It links build/lib/libglm.so, hence `lib`.
# From clean its dependencies cost about 5.5 CPU minutes (README); `make test` builds it once, through `all`.
cli: lib
	cd apps && $(SWIFT) build $(SWIFT_RELEASE) --product glm
	@mkdir -p $(BUILD)/bin
	cp "$$(cd apps && $(SWIFT) build $(SWIFT_RELEASE) --show-bin-path)/glm" $(BUILD)/bin/glm.tmp && mv -f $(BUILD)/bin/glm.tmp $(BUILD)/bin/glm

bench:
	$(SWIFT) build -c release --product glm-bench
	@mkdir -p $(BUILD)/bin
	cp "$$($(SWIFT) build -c release --show-bin-path)/glm-bench" $(BUILD)/bin/

demo: setup all
	$(BUILD)/bin/chat Tests/Fixtures/models/glm-tiny-chat
	$(PYTHON) examples/tool_calling.py

# Installs the Python package with libglm.so inside it.
python: lib
	cp $(LIB) bindings/python/glm/libglm.so.tmp && mv -f bindings/python/glm/libglm.so.tmp bindings/python/glm/libglm.so
	$(PYTHON) -m pip install -q ./bindings/python

swift-test:
	$(SWIFT) test

# Two pytest processes (pytest-xdist): 160 s instead of 234 s on the idle 2-core machine (2026-12-07), every test
# independent of the others (own temporary files, servers on ports they choose). PYTEST_WORKERS=0 runs them in one.
PYTEST_WORKERS ?= 2
python-test: all
	$(PYTHON) -m pytest -q -n $(PYTEST_WORKERS) bindings/python/tests Tests/abi Tests/apps

# Fuzzing (Fuzz/README.md): one libFuzzer binary built with coverage and AddressSanitizer in its own scratch
# directory (GLM_FUZZ=1 declares its target, so plain `swift build`/`swift test` never see it), linked once per
# target. `make fuzz` runs each target FUZZ_SECONDS; `make test` runs each on FUZZ_CI_RUNS fixed inputs from the seeds.
FUZZ_TARGETS := safetensors gguf gguf-model config tokenizer-json tokenize jinja chat-request stream-parser
FUZZ_SECONDS ?= 60
FUZZ_CI_SECONDS ?= 60
# lld: gold fails with an internal error on the sanitized Swift objects' debug info.
FUZZ_SWIFT_BUILD := GLM_FUZZ=1 $(SWIFT) build -c release --scratch-path .build/fuzz \
	-Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld

fuzz-build:
	$(FUZZ_SWIFT_BUILD) --product glm-fuzz
	@mkdir -p $(BUILD)/fuzz
	@bin="$$($(FUZZ_SWIFT_BUILD) --show-bin-path)/glm-fuzz"; \
	for t in $(FUZZ_TARGETS); do ln -sfn "$$bin" $(BUILD)/fuzz/glm-fuzz-$$t; done

fuzz: fuzz-build
	Fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-ci: fuzz-build
	Fuzz/run.sh --ci $(FUZZ_CI_SECONDS) $(FUZZ_TARGETS)

# Sanitizers over the test suites (not in `make test`: the debug build plus the slower suites take ~10 minutes
# here): AddressSanitizer on Swift and C, UndefinedBehaviorSanitizer on C (Swift has none on Linux; its own
# overflow and bounds checks trap), then the Python and C-ABI fuzz suites against that build's libglm.so.
# detect_leaks=0: the exit-time scan takes Swift objects reachable only through tagged enum payload pointers for
# leaks (libFuzzer's per-input leak check covers the parsers). detect_stack_use_after_return=0: its fake stacks
# put locals on the heap, which blinds the template engine's stack budget (it measures a local's address).
SANITIZE_SWIFT := $(SWIFT) build --build-tests --scratch-path .build/asan --sanitize=address \
	-Xcc -fsanitize=undefined -Xswiftc -use-ld=lld
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

sanitize:
	$(SANITIZE_SWIFT)
	$(SANITIZE_ENV) $(SWIFT) test --skip-build --scratch-path .build/asan --sanitize=address \
		-Xcc -fsanitize=undefined -Xswiftc -use-ld=lld
	@# Python does not load the sanitizer runtime itself: preload the toolchain's.
	$(SANITIZE_ENV) LD_PRELOAD="$$($(dir $(realpath $(shell command -v $(SWIFT))))clang -print-file-name=libclang_rt.asan-x86_64.so)" \
		GLM_LIBRARY="$$($(SANITIZE_SWIFT) --show-bin-path)/libglm.so" \
		$(PYTHON) -m pytest -q bindings/python/tests Tests/abi/test_fuzz.py

# Swift tests first; the pytest suite (Python API, C ABI, packaging checks) last, so its summary ends the output.
# In between, every fuzz target on a fixed number of inputs (FUZZ_CI_RUNS) from its seeds.
test: setup all swift-test fuzz-ci python-test

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/glm.h $(DESTDIR)$(PREFIX)/include/glm.h
	install -m 755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libglm.so
	install -m 755 $(BUILD)/bin/glm $(DESTDIR)$(PREFIX)/bin/glm
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' tools/glm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/glm.pc

clean:
	rm -rf $(BUILD) .build apps/.build bindings/python/glm/libglm.so
