#!/usr/bin/env bash
# Fuzz cohmemd's request handlers for a bounded time (libFuzzer, the release's clang).
#
#   tests/fuzz/fuzz-test.sh SOURCE_DIR BUILD_DIR [SECONDS]
#
# Builds tests/fuzz/fuzz-cohmemd.c with the daemon's sources and the libfuse
# stand-in (fuse-shim.c) under ASan and UBSan, replays every input of the
# corpus in the tree (tests/fuzz/corpus: each one a regression test), then
# fuzzes for SECONDS (default $COHMEM_FUZZ_SECONDS, else 60) from a copy of
# it. A finding fails the test and is kept in BUILD_DIR/fuzz: replay it with
#   BUILD_DIR/fuzz/fuzz-cohmemd FILE    (FUZZ_TRACE=1 lists its requests)
# and add it to the corpus once fixed. New inputs are not written into the
# tree; to refresh the corpus:
#   BUILD_DIR/fuzz/fuzz-cohmemd -merge=1 -use_counters=0 tests/fuzz/corpus DIR
# Exit 77 (skipped), saying why, without clang and its fuzzer runtime.
set -euo pipefail

src=$(cd "${1:?usage: fuzz-test.sh SOURCE_DIR BUILD_DIR [SECONDS]}" && pwd)
build=$(cd "${2:?usage: fuzz-test.sh SOURCE_DIR BUILD_DIR [SECONDS]}" && pwd)
seconds=${3:-${COHMEM_FUZZ_SECONDS:-60}}
out=$build/fuzz
mkdir -p "$out"

cc=$(command -v clang || command -v clang-14 || true)
[ -n "$cc" ] || { echo "SKIP: no clang (Debian: clang libclang-rt-dev)"; exit 77; }
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' >"$out/probe.c"
"$cc" -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" 2>/dev/null ||
	{ echo "SKIP: $cc cannot link -fsanitize=fuzzer (Debian: libclang-rt-dev)"; exit 77; }

# cohmemd's sources but main.c, as daemon/CMakeLists.txt lists them (with the lock rules checked).
sources=$build/daemon/cohmemd-sources.txt
[ -s "$sources" ] || { echo "fuzz: no $sources: configure the build first"; exit 1; }
mapfile -t daemon_sources <"$sources"
# shellcheck disable=SC2046 # pkg-config's flags are words
"$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	-DCOHMEMD_LOCK_CHECKS -Wall -Wextra -Wno-unused-parameter -Werror \
	-I "$src/daemon" -I "$src/shared" -I "$src/tests/fuzz" $(pkg-config --cflags fuse3) \
	"${daemon_sources[@]}" "$src/tests/fuzz/fuse-shim.c" "$src/tests/fuzz/fuzz-cohmemd.c" -lpthread \
	-o "$out/fuzz-cohmemd"

cd "$out"
rm -rf corpus crash-* timeout-* leak-* oom-*
cp -r "$src/tests/fuzz/corpus" corpus
echo "fuzz: replaying $(ls corpus | wc -l) inputs of the corpus"
./fuzz-cohmemd -runs=0 corpus 2>&1 | tail -n 3
echo "fuzz: fuzzing for $seconds s"
if ! ./fuzz-cohmemd -max_total_time="$seconds" -timeout=60 -print_final_stats=1 corpus >fuzz.log 2>&1; then
	grep -E '^fuzz:|ERROR|SUMMARY|Test unit written' fuzz.log | head -n 20
	echo "fuzz: FAILED; the input is in $out (see fuzz.log)"
	exit 1
fi
grep -E 'DONE|stat::number_of_executed_units|stat::peak_rss' fuzz.log
