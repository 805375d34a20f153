#!/bin/sh
# run_fuzz_replay.sh DIR NAME... - replays tests/fuzz/corpus/<NAME>/ through DIR/replay_<NAME>.
# Each corpus file counts as one test; a crash or sanitizer report fails that corpus.
passed=0; failed=0
dir=$1; shift
for name in "$@"; do
	corpus=tests/fuzz/corpus/$name
	n=$(find "$corpus" -maxdepth 1 -type f ! -name '.*' | wc -l)
	if "$dir/replay_$name" "$corpus"; then
		passed=$((passed + n))
	else
		echo "fuzz replay failed: $name"
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
