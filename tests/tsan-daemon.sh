#!/usr/bin/env bash
# cohmemd under ThreadSanitizer: the daemon's suite and its stress test run
# against a build of cohmemd with clang's -fsanitize=thread (the tests fail
# on any sanitizer report in the daemon's log).
#
#   tests/tsan-daemon.sh SOURCE_DIR BUILD_DIR
#
# Exit 77 (skipped), saying why, without clang.
set -euo pipefail

src=$(cd "${1:?usage: tsan-daemon.sh SOURCE_DIR BUILD_DIR}" && pwd)
build=$(cd "${2:?usage: tsan-daemon.sh SOURCE_DIR BUILD_DIR}" && pwd)
cc=$(command -v clang || command -v clang-14 || true)
[ -n "$cc" ] || { echo "SKIP: no clang (Debian: clang libclang-rt-dev)"; exit 77; }
out=$build/tsan
mkdir -p "$out"
# Whether the compiler can do it at all is a skip; whether our code builds is the test.
echo 'int main(void) { return 0; }' >"$out/probe.c"
"$cc" -fsanitize=thread "$out/probe.c" -o "$out/probe" 2>/dev/null ||
	{ echo "SKIP: $cc cannot build with -fsanitize=thread (Debian: libclang-rt-dev)"; exit 77; }
# The daemon's sources as daemon/CMakeLists.txt lists them, and main.c; the lock rules checked.
sources=$build/daemon/cohmemd-sources.txt
[ -s "$sources" ] || { echo "tsan: no $sources: configure the build first"; exit 1; }
mapfile -t daemon_sources <"$sources"
# main() and the transports; the io_uring one with liburing, as the build has it.
mapfile -t main_sources <"$build/daemon/cohmemd-main-sources.txt"
uring=()
if grep -q transport-uring "$build/daemon/cohmemd-main-sources.txt"; then
	# shellcheck disable=SC2207 # pkg-config's flags are words
	uring=(-DCOHMEMD_HAVE_URING $(pkg-config --cflags --libs liburing))
fi
# shellcheck disable=SC2046 # pkg-config's flags are words
"$cc" -fsanitize=thread -g -O1 -D_GNU_SOURCE -DCOHMEMD_LOCK_CHECKS -Wall -Wextra -Wno-unused-parameter -Werror \
	-I "$src/daemon" -I "$src/shared" $(pkg-config --cflags fuse3) "${daemon_sources[@]}" "${main_sources[@]}" \
	$(pkg-config --libs fuse3) "${uring[@]}" -lpthread -o "$out/cohmemd"
# COHMEMD_TEST_SANITIZER: what the tests may not measure of such a daemon (its memory).
export COHMEMD_TEST_BIN=$out/cohmemd COHMEMD_TEST_SANITIZER=thread TSAN_OPTIONS=halt_on_error=0
"$build/tests/test-daemon-stress"
"$build/tests/test-daemon"
