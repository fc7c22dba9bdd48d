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

.PHONY: all setup lib examples cli bench demo python test swift-test python-test install clean

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

python-test: all
	$(PYTHON) -m pytest -q bindings/python/tests Tests/abi Tests/apps

# Swift tests first; the pytest suite (Python API, C ABI, packaging checks) last, so its summary ends the output.
test: setup all swift-test python-test

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/glm.h $(DESTDIR)$(PREFIX)/include/glm.h
	install -m 755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libglm.so
	install -m 755 $(BUILD)/bin/glm $(DESTDIR)$(PREFIX)/bin/glm
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' tools/glm.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/glm.pc

clean:
	rm -rf $(BUILD) .build apps/.build bindings/python/glm/libglm.so
