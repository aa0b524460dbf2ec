#!/usr/bin/env bash
# Debian 13 (trixie), tested as Debian 12 is, from a fresh root made with
# debootstrap (cached as a tarball under ~/.cache/cohmem/chroot, as the
# bookworm ones are):
#
# 1. tests/fresh-machine.sh trixie: in a fresh trixie root, as a new user
#    with sudo and an empty cache, in a clone of this tree: `./run demo`;
#    `./run package` (the packages built on trixie, against its libfuse 3.17
#    and liburing 2.9, and lintian of trixie: no error, no warning); and
#    `./run test`'s normal build with every test that needs no kernel matrix
#    (COHMEM_TEST_BUILDS=build; the QEMU matrix and the tests that rebuild
#    the module or the packages already built run on this machine).
# 2. tests/debian-install-test.sh trixie: those packages installed into
#    another fresh trixie root (linked with pkg-config and CMake, cohmemd
#    from its unit, DKMS for trixie's 6.12 headers and trixie-backports'
#    newest, the newest's module loaded in the QEMU matrix), then purged.
#
#   tests/debian13-test.sh BUILD_DIR [TREE]
#
# TREE (default: the tree holding this script) is cloned with its uncommitted
# changes. Needs root (debootstrap, chroot, mounts) and the Debian archive;
# exits 77 without them. The root's part took 12 min here with nothing
# cached (470 MB of packages downloaded into chroot/trixie-apt-archives,
# which --apt-cache keeps) and 12-17 min with them cached, depending on the
# load beside it.
set -euo pipefail
build=$(cd "${1:?usage: debian13-test.sh BUILD_DIR [TREE]}" && pwd)
tree=$(cd "${2:-$(dirname "$0")/..}" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (debootstrap, chroot, mounts)"; exit 77; }
command -v debootstrap >/dev/null || { echo "SKIP: debootstrap missing"; exit 77; }
debs=$build/debian13-debs
t0=$(date +%s)

# The tests the trixie root leaves to this machine: the QEMU matrix (and this test: label release),
# and those that rebuild what ./run package just built and checked (the packages, the patch
# against kernel sources, the module against four kernels' headers: ~700 MB of headers and
# compilers into the root user's empty cache at every run; it passed in a trixie root by hand).
ctest_args='-LE kernel-matrix|release -E ^(debian-package|debian-install|kernel-build|kernel-patch)$'
"$tree/tests/fresh-machine.sh" --worktree --apt-cache --export-debs "$debs" --log "$build/debian13-root.log" \
	--command "./run demo && ./run package && COHMEM_TEST_BUILDS=build COHMEM_CTEST_ARGS='$ctest_args' ./run test" \
	trixie "$tree"
t1=$(date +%s)

# debian-install-test.sh takes packages that carry this tree's id.
tree_id=$(git -C "$tree" rev-parse HEAD 2>/dev/null || echo no-git)$(git -C "$tree" diff HEAD 2>/dev/null | md5sum | cut -c1-8)
echo "$tree_id" >"$debs/.tree-id"
"$tree/tests/debian-install-test.sh" "$debs" "$build" trixie
echo "debian13: the trixie root's demo, packages and tests in $((t1 - t0)) s, the install test in $(($(date +%s) - t1)) s"
