#!/usr/bin/env bash
# CI step: build the C++ core test (csrc/test_swaa.cpp: SWAA, bone projection; no Python) with AddressSanitizer and
# UndefinedBehaviorSanitizer and run it through ctest. Any report fails the step.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv/bin ] && export PATH="$PWD/.venv/bin:$PATH"  # cmake and ninja from `make setup`
build_dir=${SYNSP_SANITIZE_BUILD_DIR:-build/sanitize}
generator=()
if command -v ninja > /dev/null && [ ! -f "$build_dir/CMakeCache.txt" ]; then generator=(-G Ninja); fi
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug -DSYNSP_SANITIZE=ON \
  -DSYNSP_BUILD_TESTS=ON -DSYNSP_BUILD_PYTHON=OFF -DSYNSP_CUDA=OFF
cmake --build "$build_dir"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build_dir" --output-on-failure
