#!/usr/bin/env bash
# Sets up, builds kache, and runs every test: once in a normal build, then all
# of them again with every binary built with AddressSanitizer and UBSan, then
# the libFuzzer targets (tests/fuzz) for a bounded time each, built by clang;
# static analysis (scripts/lint.sh) runs on the normal build first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/scripts/deps.sh"
"$here/scripts/example-deps.sh"
jobs="$(nproc)"
"$here/scripts/module-map.sh" --check   # no folder includes one that includes it back
"$here/scripts/format.sh" --check       # every C file as .clang-format formats it
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
make -C "$here/build" -j"$jobs" --no-print-directory
"$here/scripts/lint.sh" "$here/build"   # cppcheck and clang-tidy; any finding fails (~1.5 min on 2 cores)
(cd "$here/build" && ctest --output-on-failure --timeout 900 -j2)
cmake -S "$here" -B "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DKACHE_SANITIZE=ON >/dev/null
make -C "$here/build-asan" -j"$jobs" --no-print-directory
(cd "$here/build-asan" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 900 -j2)
CC=clang-14 cmake -S "$here" -B "$here/build-fuzz" -DCMAKE_BUILD_TYPE=Debug -DKACHE_FUZZ=ON >/dev/null
make -C "$here/build-fuzz" -j"$jobs" --no-print-directory fuzz_targets
(cd "$here/build-fuzz" && ctest --output-on-failure --timeout 900 -j2)
