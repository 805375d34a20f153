#!/bin/sh
# run_all.sh - the whole test suite, as `make check` runs it:
#   1. unit tests (cmocka) and fuzz-corpus replay on the release build;
#   2. integration tests (boto3, AWS CLI) against the release server;
#   3. the same three again on the ASan+UBSan build.
# Ends with one line "N passed, N failed" summing every stage.
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
total_pass=0
total_fail=0
log=$(mktemp)

count() { # $1 = stage name; reads the stage output in $log
	line=$(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	p=$(printf '%s' "$line" | sed -n 's/^[a-z]*: \([0-9]*\) passed.*/\1/p')
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	if [ -z "$line" ]; then p=0; f=1; echo "$1: no summary line (stage crashed?)"; fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	echo "== $1: ${p} passed, ${f} failed"
}

stage() { # $1 = name, rest = command
	name=$1; shift
	echo "== $name"
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	count "$name"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		total_fail=$((total_fail + 1))
		echo "== $name exited with status $rc"
	fi
}

lint() {
	if sh scripts/checksrc.sh && make -s --no-print-directory format-check; then
		echo "lint: 1 passed, 0 failed"
	else
		echo "lint: 0 passed, 1 failed"
		return 1
	fi
}
stage lint lint

for variant in release asan; do
	echo "== build ($variant)"
	if ! make -s -j"$JOBS" VARIANT="$variant" build/$variant/berth unit-bins fuzz-replay-bin >"$log" 2>&1; then
		cat "$log"
		echo "build ($variant) failed"
		total_fail=$((total_fail + 1))
		continue
	fi
	stage "unit-$variant" make -s --no-print-directory VARIANT="$variant" check-unit
	stage "fuzz-replay-$variant" make -s --no-print-directory VARIANT="$variant" check-fuzz-replay
	stage "integ-$variant" make -s --no-print-directory VARIANT="$variant" check-integ
done
rm -f "$log"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
