# berth - one non-recursive GNU Makefile.
#   make                    release build -> build/berth
#   make VARIANT=asan       ASan+UBSan build -> build/asan/berth
#   make check              unit + integration tests (release), then the same under ASan+UBSan
#   make check-unit / check-integ [VARIANT=...]
#   make check-tsan         unit + integration tests under ThreadSanitizer (on demand, ~5 min)
VARIANT ?= release
include mk/flags.mk

# ThreadSanitizer runs: a report does not stop the program but makes it exit 66, so a unit
# test binary with one fails; tests/tsan.supp holds the suppressions (each says why it is
# benign). The integration harness also sends every berth process's reports to files of its
# own and fails the test they came from (tests/integ/berthctl.py).
TSAN_OPTIONS ?= halt_on_error=0 exitcode=66 second_deadlock_stack=1 \
	suppressions=$(CURDIR)/tests/tsan.supp
ifeq ($(VARIANT),tsan)
export TSAN_OPTIONS
endif

PKGS := libmicrohttpd jansson sqlite3 libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)

CC ?= cc
B := build/$(VARIANT)
CPPFLAGS += -MMD -MP
CFLAGS := $(BASE_CFLAGS) $(VCFLAGS) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(VLDFLAGS) $(EXTRA_LDFLAGS)

SRCS := $(sort $(wildcard src/*/*.c))
LIB_SRCS := $(filter-out src/main/%,$(SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)
MAIN_OBJS := $(patsubst %.c,$(B)/%.o,$(sort $(wildcard src/main/*.c)))
GEN := $(B)/gen/schema_sqlite.c
GEN_OBJ := $(B)/gen/schema_sqlite.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

.PHONY: all clean check check-unit check-integ check-tsan stress unit-bins fuzz fuzz-replay-bin check-fuzz-replay \
	format format-check lint docs-errors
all: build/berth

$(B)/berth: $(MAIN_OBJS) $(B)/libberth.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/libberth.a: $(LIB_OBJS) $(GEN_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# The release binary is also published at build/berth (README's documented path).
ifeq ($(VARIANT),release)
build/berth: $(B)/berth
	cp $< $@.tmp && mv -f $@.tmp $@
else
build/berth: $(B)/berth
endif

# V=1 shows full command lines.
Q := $(if $(V),,@)
$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The directory too: deleting a migration changes no remaining file's time, only its own.
$(GEN): scripts/embed.sh $(sort $(wildcard src/meta/schema/sqlite/*.sql)) src/meta/schema/sqlite
	@mkdir -p $(dir $@)
	$(Q)sh scripts/embed.sh schema_sqlite src/meta/schema/sqlite > $@

$(GEN_OBJ): $(GEN)
	$(Q)$(CC) $(CFLAGS) -w -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(B)/libberth.a
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Isrc -o $@ $< $(B)/libberth.a $(PKG_LIBS) $(CMOCKA_LIBS) $(LDFLAGS)

unit-bins: $(UNIT_BINS)

# Fuzz targets: tests/fuzz/fuzz_<name>.c with a corpus in tests/fuzz/corpus/<name>/.
# `make check` replays every corpus through the gcc build (ASan+UBSan in the asan variant);
# `make fuzz FUZZ=<name> FUZZ_SECONDS=60` runs libFuzzer with clang.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_REPLAY_BINS := $(FUZZ_NAMES:%=$(B)/fuzz/replay_%)

$(B)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(B)/libberth.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Isrc -o $@ $< tests/fuzz/replay.c $(B)/libberth.a $(PKG_LIBS) $(LDFLAGS)

fuzz-replay-bin: $(FUZZ_REPLAY_BINS)

check-fuzz-replay: $(FUZZ_REPLAY_BINS)
	@sh tests/run_fuzz_replay.sh $(B)/fuzz $(FUZZ_NAMES)

FUZZ ?= manifest
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
fuzz:
	@mkdir -p build/fuzz
	$(FUZZ_CC) -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) -Isrc \
		-o build/fuzz/fuzz_$(FUZZ) tests/fuzz/fuzz_$(FUZZ).c $(LIB_SRCS) $(GEN) $(PKG_LIBS)
	mkdir -p build/fuzz/corpus_$(FUZZ)
	build/fuzz/fuzz_$(FUZZ) -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus_$(FUZZ) \
		tests/fuzz/corpus/$(FUZZ)

check-unit: $(UNIT_BINS)
	@sh tests/run_unit.sh $(UNIT_BINS)

check-integ: $(B)/berth
	@BERTH_BIN=$(CURDIR)/$(B)/berth python3 tests/integ/run.py

# The full suite: release, then ASan+UBSan (same tests, sanitizer build).
check:
	@sh tests/run_all.sh

# Unit and integration tests on the ThreadSanitizer build (not part of `make check`: slow).
check-tsan:
	@$(MAKE) --no-print-directory -j2 VARIANT=tsan build/tsan/berth unit-bins
	@$(MAKE) --no-print-directory VARIANT=tsan check-unit
	@$(MAKE) --no-print-directory VARIANT=tsan check-integ

# The long fault tests (docs/reliability.md): the gc race loop for STRESS_SECONDS and
# KILL_ROUNDS SIGKILLs under 64 clients (`make check` runs short versions of both).
STRESS_SECONDS ?= 300
KILL_ROUNDS ?= 20
stress: $(B)/berth
	@STRESS_SECONDS=$(STRESS_SECONDS) KILL_ROUNDS=$(KILL_ROUNDS) BERTH_BIN=$(CURDIR)/$(B)/berth \
		python3 tests/integ/run.py test_gc_stress test_crash_kill

FORMAT_FILES = $(SRCS) $(wildcard src/*/*.h) $(UNIT_SRCS) $(wildcard tests/fuzz/*.c)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

lint:
	sh scripts/checksrc.sh
	$(MAKE) --no-print-directory format-check

docs-errors:
	sh scripts/gen-errors-doc.sh > docs/errors.md

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJS:.o=.d)

include bench/bench.mk
