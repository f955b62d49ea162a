#!/usr/bin/env bash
# Runs one fuzz target for a bounded time over a copy of its checked-in corpus:
#   tests/fuzz/run.sh TARGET SECONDS
# TARGET is the name after fuzz_ (msg, entry, pack, ...). The binary is taken
# from KACHE_FUZZ_BIN, else from build-fuzz/ (built with
#   CC=clang-14 cmake -S . -B build-fuzz -DKACHE_FUZZ=ON && make -C build-fuzz fuzz_targets).
# A crash, leak or UB report fails the run; the input that caused it is kept in
# KACHE_FUZZ_OUT/<target>/ (default build-fuzz/fuzz-artifacts): add it to
# tests/fuzz/corpus/<target>/ once the decoder is fixed.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 TARGET SECONDS" >&2; exit 2; }
name="$1"; secs="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${KACHE_FUZZ_BIN:-$root/build-fuzz/tests/fuzz/fuzz_$name}"
out="${KACHE_FUZZ_OUT:-$root/build-fuzz/fuzz-artifacts}/$name"
[ -x "$bin" ] || { echo "run.sh: no fuzz target at $bin: build it first (see the header of $0)" >&2; exit 2; }
[ -d "$here/corpus/$name" ] || { echo "run.sh: no corpus at $here/corpus/$name" >&2; exit 2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/kache-fuzz-$name.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/corpus"
cp "$here/corpus/$name"/* "$work/corpus/"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$work"
export TMPDIR="$work" # the targets' scratch files go with the copy of the corpus
# One worker, so that ctest -j2 keeps to the cores it was given.
set +e
"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$out/" "$work/corpus" 2>&1 | tail -n 150
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "run.sh: fuzz_$name failed (exit $rc); the input is in $out/" >&2
  exit 1
fi
echo "run.sh: fuzz_$name ran ${secs}s without a finding"
