#!/bin/sh
# checksrc.sh - style gate beyond clang-format: banned functions, include direction between
# layers, header guards, trailing whitespace. Exit 1 on any finding.
set -u
cd "$(dirname "$0")/.."
bad=0
say() { echo "checksrc: $*"; bad=1; }

# Banned functions (unbounded or thread-unsafe); word match, outside comments roughly.
for f in src/*/*.c src/*/*.h; do
	grep -nE '(^|[^_a-z])(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets|system)[ ]*\(' "$f" |
		grep -vE '^\s*[0-9]+:\s*(/\*|\*)' | while read -r l; do echo "checksrc: $f:$l: banned function"; done
done | grep . && bad=1

# Layer order: a layer may include only itself and the layers below it.
rank() {
	case $1 in
	base) echo 0 ;; crypto) echo 1 ;; oci) echo 2 ;; meta | blob) echo 3 ;; core) echo 4 ;;
	api | bg) echo 5 ;; http) echo 6 ;; main) echo 7 ;; *) echo 99 ;;
	esac
}
for f in src/*/*.c src/*/*.h; do
	layer=$(echo "$f" | cut -d/ -f2)
	r=$(rank "$layer")
	for inc in $(sed -n 's|^#include "\.\./\([a-z]*\)/.*|\1|p' "$f"); do
		ri=$(rank "$inc")
		if [ "$ri" -gt "$r" ]; then say "$f includes upward layer $inc"; fi
		if [ "$layer" != "$inc" ] && [ "$ri" -eq "$r" ]; then say "$f includes sideways layer $inc"; fi
	done
done
grep -ln '<microhttpd.h>' src/*/*.c src/*/*.h | grep -v '^src/http/' | while read -r f; do
	echo "checksrc: $f: only src/http may include microhttpd.h"
done | grep . && bad=1
grep -ln '<sqlite3.h>' src/*/*.c src/*/*.h | grep -v '^src/meta/' | while read -r f; do
	echo "checksrc: $f: only src/meta may include sqlite3.h"
done | grep . && bad=1

# Header guards.
for h in src/*/*.h; do
	grep -q '^#ifndef BERTH_' "$h" || say "$h: missing BERTH_ header guard"
done

# Trailing whitespace.
grep -nE '[[:space:]]+$' src/*/*.c src/*/*.h tests/unit/*.c Makefile 2>/dev/null |
	sed 's/^/checksrc: trailing whitespace: /' | grep . && bad=1

[ "$bad" -eq 0 ] && echo "checksrc: ok"
exit "$bad"
