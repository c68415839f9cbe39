#!/usr/bin/env bash
# Builds the standalone C++ kernel tests twice -- plain (Release) and with
# -fsanitize=address,undefined -- outside the source tree, and runs them with ctest.
# Usage: cpp_kernels/tests/run_sanitizers.sh [build-root]   (default: build/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
root="${1:-$repo/build}"
jobs="$(nproc 2>/dev/null || echo 2)"
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

run() {  # name, extra cmake args...
  local dir="$root/$1"
  shift
  cmake -S "$here" -B "$dir" "${generator[@]}" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  # halt_on_error: any report fails the run; detect_leaks is on by default on Linux.
  ASAN_OPTIONS="halt_on_error=1:abort_on_error=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs"
}

run cpp-tests -DCMAKE_BUILD_TYPE=Release
run cpp-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRIMSIM_SANITIZE=ON
echo "C++ kernel tests passed (plain and ASan+UBSan)"
