# bench/bench.mk - benchmark targets; the main Makefile includes this file.
#   make bench          full run (about 9 minutes): berth vs Distribution and moto
#   make bench-quick    same code paths, small sizes (under 2 minutes; CI smoke check)
#   BENCH_ARGS='--only push,pull --markdown out.md' make bench   extra driver options
# Needs the Debian packages docker-registry and (for the disk/SHA limits) openssl, and
# python3 with requests and moto. Benchmarks are not tests: no thresholds, nothing is timed
# in CI; the exit status is non-zero only when the harness breaks.

# Keep the including Makefile's default goal whatever the position of the include.
_bench_saved_goal := $(.DEFAULT_GOAL)

BENCH_CC ?= cc
BENCH_PYTHON ?= python3
BENCH_ARGS ?=
BENCH_LOADGEN := build/bench/loadgen

$(BENCH_LOADGEN): bench/loadgen.c
	@mkdir -p $(dir $@)
	$(BENCH_CC) -O2 -g -std=c11 -Wall -Wextra -pthread -o $@ $<

.PHONY: bench bench-quick
bench: build/berth $(BENCH_LOADGEN)
	$(BENCH_PYTHON) bench/bench.py --berth build/berth --loadgen $(BENCH_LOADGEN) $(BENCH_ARGS)

bench-quick: build/berth $(BENCH_LOADGEN)
	$(BENCH_PYTHON) bench/bench.py --quick --berth build/berth --loadgen $(BENCH_LOADGEN) \
		$(BENCH_ARGS)

.DEFAULT_GOAL := $(_bench_saved_goal)
