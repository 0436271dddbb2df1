# capcr — checkpoint/restore for Linux processes.  GNU Make.
#
#   make            build everything (build/)
#   make test       build, then run every test, plain and under ASan/UBSan
#   make demo       run the demo
#   make bench      run the benchmarks
#   make faults     the fault-injection sweep (docs/architecture.md)
#   make fuzz       the fuzzers (tests/fuzz/)
#   make install PREFIX=DIR
#
# Missing Debian build dependencies are installed first (scripts/deps.sh).

PREFIX  ?= /usr/local
VERSION := 0.1.0
SAN     ?=
# The sanitizer build (SAN=1, build-san/) builds everything the tests run
# with sanitizers:
#   capcr, the unit tests         ASan + UBSan (SANFLAGS)
#   the runtime libcapcr.so       ASan + UBSan (RT_SANFLAGS)
#   the test programs (targets)   ASan + UBSan (TPROG_SANFLAGS); the static
#                                 ones with UBSan in trap mode only (no
#                                 runtime to link statically: a report is a
#                                 SIGILL)
# UBSan aborts at the first report (-fno-sanitize-recover), so a report
# fails the test that ran into it; so does an ASan report, and a leak that
# LeakSanitizer finds when a sanitized program exits (status 1).  The test
# runner's reaper and img_edit are infrastructure, never sanitized.
#
# ASan must be first in a process's initial library list.  The ASan
# runtime needs libasan.so (DT_NEEDED), so `capcr run` (src/monitor/run.c)
# preloads that first, ahead of the runtime, when the runtime's DT_NEEDED
# names it; unsanitized targets (sh, python3, perl) then run with ASan's
# allocator too, and LeakSanitizer checks them at exit.  Sanitized
# targets are dumped and restored like any other: ASan's shadow and
# allocator reservations (terabytes, MAP_NORESERVE, smaps VmFlags "nr") are
# saved as the few pages present in them and mapped MAP_NORESERVE again at
# restore (src/dump/mm.c, src/restore/takeover.c).
ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
RT_SANFLAGS := $(SANFLAGS)
TPROG_SANFLAGS := $(SANFLAGS)
TPROG_STATIC_SANFLAGS := -fsanitize=undefined \
            -fsanitize-undefined-trap-on-error
else
BUILD   ?= build
SANFLAGS :=
RT_SANFLAGS :=
TPROG_SANFLAGS :=
TPROG_STATIC_SANFLAGS :=
endif
# The runtime's and the test programs' sanitizer flags, kept in a stamp
# file rewritten only when they change, so that a build directory made
# with other flags is rebuilt.
SAN_STAMP := $(BUILD)/.sanflags
SAN_STAMP_TEXT := rt: $(RT_SANFLAGS) tprog: $(TPROG_SANFLAGS) static: $(TPROG_STATIC_SANFLAGS)
$(shell mkdir -p $(BUILD) && [ "$$(cat $(SAN_STAMP) 2>/dev/null)" = "$(SAN_STAMP_TEXT)" ] || \
	echo "$(SAN_STAMP_TEXT)" >$(SAN_STAMP))

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
CLI_SRC := $(wildcard src/common/*.c src/monitor/*.c src/cli/*.c src/proc/*.c \
             src/image/*.c src/ptrace/*.c src/dump/*.c src/restore/*.c \
             src/files/*.c src/pages/*.c)
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
# The test runner's reaper (tests/run.sh): infrastructure, not a target,
# never sanitized.
REAPER  := $(BUILD)/tests-tools/reaper
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test test-plain test-san demo bench install clean format

all: $(DEPS_OK) $(LIB_SO) $(LIB_A) $(CAPCR) $(TEST_BIN) $(UNIT_BIN) \
     $(BENCH_BIN) $(REAPER)

$(DEPS_OK): scripts/deps.sh
	@scripts/deps.sh
	@mkdir -p $(dir $@) && touch $@

deps:
	@scripts/deps.sh

$(BUILD)/src/runtime/%.o: src/runtime/%.c $(SAN_STAMP) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(RT_CFLAGS) $(RT_SANFLAGS) -c $< -o $@

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
	$(CC) $(RT_SANFLAGS) -shared -Wl,-soname,libcapcr.so -Wl,-z,now -o $@ $^ \
		-ldl -pthread

$(LIB_A): $(RT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CAPCR): $(CLI_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(CLI_LIBS) -pthread

# Test programs: targets run under capcr.  In the sanitizer build they
# have ASan and UBSan (see SAN above).  tests/progs/*-static.c are linked
# statically, without the runtime, with UBSan in trap mode only.
$(BUILD)/tests/%: tests/progs/%.c tests/progs/tprog.h $(SAN_STAMP) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/progs \
		$(if $(findstring static,$*),-static $(TPROG_STATIC_SANFLAGS),$(TPROG_SANFLAGS)) \
		-o $@ $< -pthread

# img_edit rewrites image files as an attacker would (t_trust.sh): it
# decodes them with the generated protobuf code, compiled here unsanitized
# like every test program.
$(BUILD)/tests/img_edit: tests/progs/img_edit.c $(PROTO_C) $(PROTO_H) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(CFLAGS) -I$(BUILD)/gen -c $(PROTO_C) -o $(BUILD)/gen/img_edit.pb.o
	$(CC) $(ALL_CFLAGS) -I$(BUILD)/gen -o $@ $< $(BUILD)/gen/img_edit.pb.o -lprotobuf-c -lxxhash

# Unit tests link the runtime's objects directly, so the sanitizer build
# checks the runtime's code too.
$(BUILD)/unit/%: tests/unit/%.c $(RT_OBJ) $(filter-out %/main.o,$(CLI_OBJ)) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SANFLAGS) -Isrc -I$(BUILD)/gen -o $@ $< \
		$(filter-out %/main.o,$(CLI_OBJ)) $(CLI_LIBS) -lcmocka -ldl -pthread

$(REAPER): tests/tools/reaper.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

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

# The fault-injection sweep: every call N of every system call capcr makes
# failed, capcr killed at each, the target killed at each ptrace call, a
# nearly full disk (tests/faults/sweep.sh; FAULTS_LIMIT=K caps each group).
.PHONY: faults
faults: all
	@tests/faults/sweep.sh $(BUILD)

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

# Fuzzers (libFuzzer, clang): the image reader and validator, and the
# monitor's region reader, built with ASan and UBSan into build-fuzz/.
# `make fuzz` runs each for FUZZ_SECONDS from its seed corpus
# (tests/fuzz/corpus/) and prints executions and coverage;
# tests/t_fuzz.sh runs them briefly as part of `make test`.
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -Iinclude -Isrc -I$(FUZZ_BUILD)/gen \
	-fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_LINK    := -fsanitize=fuzzer,address,undefined
FUZZ_IMAGE_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/%.o,src/image/image.c \
	src/image/load.c src/image/validate.c src/image/validate_cgroups.c) \
	$(FUZZ_BUILD)/gen/capcr.pb-c.o
FUZZ_REGION_OBJ := $(FUZZ_BUILD)/src/monitor/region.o \
	$(FUZZ_BUILD)/src/monitor/region_copy.o
FUZZERS := $(FUZZ_BUILD)/fuzz_image $(FUZZ_BUILD)/fuzz_region

.PHONY: fuzz fuzz-build
fuzz-build: $(DEPS_OK) $(FUZZERS)

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

$(FUZZ_BUILD)/gen/capcr.pb-c.c $(FUZZ_BUILD)/gen/capcr.pb-c.h: src/image/capcr.proto | $(DEPS_OK)
	@mkdir -p $(dir $@)
	protoc-c --proto_path=src/image --c_out=$(FUZZ_BUILD)/gen $<

$(FUZZ_BUILD)/gen/capcr.pb-c.o: $(FUZZ_BUILD)/gen/capcr.pb-c.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/src/%.o: src/%.c $(FUZZ_BUILD)/gen/capcr.pb-c.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz_image: tests/fuzz/fuzz_image.c $(FUZZ_IMAGE_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LINK) -o $@ $^ -lprotobuf-c -lxxhash \
		-pthread

$(FUZZ_BUILD)/fuzz_region: tests/fuzz/fuzz_region.c $(FUZZ_REGION_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LINK) -o $@ $^

clean:
	rm -rf build build-san $(FUZZ_BUILD)

-include $(shell find $(sort build build-san build-fuzz $(BUILD)) -name '*.d' 2>/dev/null)
