#!/usr/bin/env bash
# Static analysis of kache's own C files (Debian's cppcheck and clang-tidy 14);
# any finding fails the run. The checks clang-tidy runs are in .clang-tidy.
# Usage: scripts/lint.sh [build-dir]   (default: build; its compile_commands.json,
# which cmake writes on every configure, gives clang-tidy the real flags).
# KACHE_LINT=cppcheck or KACHE_LINT=clang-tidy runs one of the two only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$here/build}" 2>/dev/null && pwd)" ||
  { echo "lint: no build directory ${1:-build}; configure with cmake first" >&2; exit 2; }
jobs="$(nproc)"
which="${KACHE_LINT:-all}"
cd "$here"
mapfile -t files < <(git ls-files '*.c')
rc=0

if [ "$which" != clang-tidy ]; then
  # readdirCalled: readdir_r is deprecated; one stream is never shared here.
  cppcheck -q --error-exitcode=1 --enable=warning,portability,performance --inline-suppr \
    --std=c11 --library=posix --library=gnu --library=scripts/lint/jansson.cfg \
    --suppress=readdirCalled -I . -D_GNU_SOURCE -DKACHE_FAULT_INJECTION=1 -j"$jobs" \
    --template='{file}:{line}: {severity}: {message} [{id}]' "${files[@]}" || rc=1
fi

if [ "$which" != cppcheck ]; then
  [ -f "$build/compile_commands.json" ] ||
    { echo "lint: $build/compile_commands.json missing; rerun cmake" >&2; exit 2; }
  tidy=$(command -v run-clang-tidy-14 || command -v run-clang-tidy) ||
    { echo "lint: run-clang-tidy not found; run scripts/deps.sh" >&2; exit 2; }
  # Only files of this checkout that the build compiles (not generated ones).
  regex="^$here/($(printf '%s|' "${files[@]}" | sed 's/[.]/[.]/g; s/|$//'))\$"
  out=$("$tidy" -p "$build" -j"$jobs" -quiet "$regex" 2>&1) || rc=1
  # Keep the findings (without colours), drop the command lines and counts.
  printf '%s\n' "$out" | sed -r 's/\x1b\[[0-9;]*m//g' | grep -vE '^(clang-tidy-?[0-9]* |[0-9]+ warnings? (and [0-9]+ errors? )?generated|Suppressed [0-9]+ warnings|Use -header-filter|Running clang-tidy|$)' || true
fi
[ $rc -eq 0 ] && echo "lint: clean"
exit $rc
