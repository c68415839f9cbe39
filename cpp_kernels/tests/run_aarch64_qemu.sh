#!/usr/bin/env bash
# Cross-compiles the standalone C++ kernel tests for aarch64 (NEON tier) with Debian's
# g++-aarch64-linux-gnu and runs them under qemu-user-static via ctest.
# Needs (Debian/Ubuntu): apt-get install -y g++-aarch64-linux-gnu qemu-user-static
# Usage: cpp_kernels/tests/run_aarch64_qemu.sh [build-dir]   (default: build/cpp-aarch64)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:-$repo/build/cpp-aarch64}"
cxx="${CXX_AARCH64:-aarch64-linux-gnu-g++}"
qemu="$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)"
sysroot="${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}"
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "error: $cxx not found (apt-get install -y g++-aarch64-linux-gnu)" >&2
  exit 2
fi
if [ -z "$qemu" ]; then
  echo "error: qemu-aarch64-static not found (apt-get install -y qemu-user-static)" >&2
  exit 2
fi
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S "$here" -B "$dir" "${generator[@]}" \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_FIND_ROOT_PATH="$sysroot" \
  -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER \
  -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY \
  "-DCMAKE_CROSSCOMPILING_EMULATOR=$qemu;-L;$sysroot" >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)"
# qemu is slow: one test at a time, generous timeout (set in CMakeLists.txt).
QEMU_LD_PREFIX="$sysroot" ctest --test-dir "$dir" --output-on-failure
echo "C++ kernel tests passed on aarch64 (qemu)"
