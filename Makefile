# capcr — checkpoint/restore for Linux processes.  GNU Make.
#
#   make            build everything (build/)
#   make test       build, then run every test, plain and under ASan/UBSan
#   make demo       run the demo
#   make bench      run the benchmarks
#   make install PREFIX=DIR
#
# Missing Debian build dependencies are installed first (scripts/deps.sh).

PREFIX  ?= /usr/local
VERSION := 0.1.0
SAN     ?=
ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
else
BUILD   ?= build
SANFLAGS :=
endif

CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -Iinclude \
           -DCAPCR_VERSION='"$(VERSION)"' -MMD -MP
# The runtime is loaded into every target: position-independent, nothing
# exported but the wrappers and the API, and no fortify redirections (it
# defines the functions fortify would redirect), and no trust in libc's
# nonnull declarations: a wrapper passes a NULL on and lets libc fail.
RT_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -U_FORTIFY_SOURCE \
           -fno-stack-protector \
           -fno-delete-null-pointer-checks -Wno-nonnull-compare

RT_SRC  := $(wildcard src/runtime/*.c)
RT_ASM  := $(wildcard src/runtime/*.S)
RT_OBJ  := $(RT_SRC:%.c=$(BUILD)/%.o) $(RT_ASM:%.S=$(BUILD)/%.o)
CLI_SRC := $(wildcard src/common/*.c src/monitor/*.c src/cli/*.c \
             src/image/*.c src/ptrace/*.c src/dump/*.c src/restore/*.c \
             src/files/*.c)
# Image metadata: protobuf-c, generated from src/image/capcr.proto.
PROTO_C := $(BUILD)/gen/capcr.pb-c.c
PROTO_H := $(BUILD)/gen/capcr.pb-c.h
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/capcr.pb-c.o
CLI_LIBS := -lprotobuf-c -lxxhash

LIB_SO  := $(BUILD)/lib/libcapcr.so
LIB_A   := $(BUILD)/lib/libcapcr.a
CAPCR   := $(BUILD)/bin/capcr
DEPS_OK := build/.deps-ok

TEST_SRC := $(wildcard tests/progs/*.c)
TEST_BIN := $(TEST_SRC:tests/progs/%.c=$(BUILD)/tests/%)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test test-plain test-san demo bench install clean format

all: $(DEPS_OK) $(LIB_SO) $(LIB_A) $(CAPCR) $(TEST_BIN) $(UNIT_BIN) \
     $(BENCH_BIN)

$(DEPS_OK): scripts/deps.sh
	@scripts/deps.sh
	@mkdir -p $(dir $@) && touch $@

deps:
	@scripts/deps.sh

$(BUILD)/src/runtime/%.o: src/runtime/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(RT_CFLAGS) -c $< -o $@

$(BUILD)/src/runtime/%.o: src/runtime/%.S | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) -fPIC -c $< -o $@

$(PROTO_C) $(PROTO_H): src/image/capcr.proto | $(DEPS_OK)
	@mkdir -p $(dir $@)
	protoc-c --proto_path=src/image --c_out=$(BUILD)/gen $<

$(BUILD)/gen/capcr.pb-c.o: $(PROTO_C)
	$(CC) -std=gnu11 $(CFLAGS) $(SANFLAGS) -I$(BUILD)/gen -c $< -o $@

$(BUILD)/src/%.o: src/%.c $(PROTO_H) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SANFLAGS) -I$(BUILD)/gen -c $< -o $@

$(LIB_SO): $(RT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libcapcr.so -Wl,-z,now -o $@ $^ -ldl -pthread

$(LIB_A): $(RT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CAPCR): $(CLI_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(CLI_LIBS) -pthread

# Test programs: targets run under capcr.  They are built without the
# sanitizers: a sanitizer runtime must come first in the preload list, and
# the runtime under test is the thing preloaded.  tests/progs/*-static.c
# are linked statically, without the runtime.
$(BUILD)/tests/%: tests/progs/%.c tests/progs/tprog.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/progs $(if $(findstring static,$*),-static) \
		-o $@ $< -pthread

# Unit tests link the runtime's objects directly, so the sanitizer build
# checks the runtime's code too.
$(BUILD)/unit/%: tests/unit/%.c $(RT_OBJ) $(filter-out %/main.o,$(CLI_OBJ)) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SANFLAGS) -Isrc -I$(BUILD)/gen -o $@ $< \
		$(filter-out %/main.o,$(CLI_OBJ)) $(CLI_LIBS) -lcmocka -ldl -pthread

$(BUILD)/bench/%: bench/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O2 -o $@ $< -pthread

test: all
	@$(MAKE) --no-print-directory SAN=1 all
	@tests/run.sh

test-plain: all
	@tests/run.sh build

demo: all
	@scripts/demo.sh $(BUILD)

bench: all
	@bench/run.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include/capcr $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(CAPCR) $(DESTDIR)$(PREFIX)/bin/capcr
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/libcapcr.so
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/libcapcr.a
	install -m 644 include/capcr/*.h $(DESTDIR)$(PREFIX)/include/capcr/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
		capcr.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/capcr.pc

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san

-include $(shell find build build-san -name '*.d' 2>/dev/null)
