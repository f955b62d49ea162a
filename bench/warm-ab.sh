#!/usr/bin/env bash
# Warm builds of one workspace in two checkouts on one store (git worktrees;
# a developer's machine), for builds of kache compared in the same run. Per
# binary, a cold build in checkout A fills its own store (no remote); then per
# round, for each binary in an order that rotates from round to round:
#   warm:   `cargo clean && cargo build` in A (a CI job's warm build; the
#           baseline of bench/run.sh);
#   second: `cargo build` in a fresh copy B (another path and CARGO_HOME) while
#           A's target is there: every crate a hit of a blob A's target links;
#   back:   `cargo build` in A right after, which cargo should find fresh (a
#           no-op); a hit's mtime set on an inode both checkouts link made it
#           dirty (every unit after a build script run again) before b46f917;
#           the line counts the units cargo ran again (its "Compiling" lines).
# Prints the medians per binary, and each one's ratio to the first binary's.
# usage: bench/warm-ab.sh --kache K [--with NAME=VALUE ...] [--kache K2 ...] [--runs N] [--ws DIR] [-j N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
bins=() withs=() runs=5 jobs=2 ws="$here/../examples/ws-small"
while [ $# -gt 0 ]; do
  case "$1" in
    --kache|--with) kache_arg "$1" "$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --ws) ws="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    *) echo "usage: bench/warm-ab.sh --kache K [--with NAME=VALUE ...] [--kache K2 ...] [--runs N] [--ws DIR] [-j N]" >&2
       exit 2 ;;
  esac
done
local_ab_work
# build <binary index> <checkout dir> <cargo home> <args...>: timed in ms; the
# units cargo ran (its "Compiling" lines) after a space
build() {
  local i=$1 dir=$2 home=$3 t0 t1 with=()
  shift 3
  read -ra with <<< "${withs[$i]} KACHE_BENCH=1"
  t0=$(date +%s%N)
  (cd "$dir" && env "${with[@]}" RUSTC_WRAPPER="${bins[$i]}" KACHE_DIR="$work/store-$i" \
     CARGO_HOME="$home" cargo "$@" -j"$jobs" --offline >/dev/null 2>"$work/err") ||
    { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 )) $(grep -c '^ *Compiling' "$work/err" || true)"
}
fresh_copy() { cp -a "$ws" "$1"; chmod -R u+w "$1"; rm -rf "$1/target"; }
for i in "${!bins[@]}"; do
  fresh_copy "$work/a-$i"
  build "$i" "$work/a-$i" "$work/home-a-$i" build >/dev/null
done
declare -A warm second back ran
for r in $(seq 0 $((runs - 1))); do
  n=${#bins[@]}
  for k in $(seq 0 $((n - 1))); do
    i=$(( (k + r) % n ))
    (cd "$work/a-$i" && CARGO_HOME="$work/home-a-$i" cargo clean -q)
    sleep 1 # cargo's mtimes: the builds a second apart
    read -r "warm[$i,$r]" _ <<< "$(build "$i" "$work/a-$i" "$work/home-a-$i" build)"
    discard "$work/b-$i"; discard "$work/home-b-$i"
    fresh_copy "$work/b-$i"
    sleep 1
    read -r "second[$i,$r]" _ <<< "$(build "$i" "$work/b-$i" "$work/home-b-$i" build)"
    sleep 1
    read -r "back[$i,$r]" "ran[$i,$r]" <<< "$(build "$i" "$work/a-$i" "$work/home-a-$i" build)"
  done
  printf 'round %d:' "$((r + 1))"
  for i in "${!bins[@]}"; do
    printf ' [%s] warm %s, second %s, back %s (%s ran)' "$i" "${warm[$i,$r]}" "${second[$i,$r]}" \
      "${back[$i,$r]}" "${ran[$i,$r]}"
  done
  echo
done
col() { local -n a=$1; for r in $(seq 0 $((runs - 1))); do echo "${a[$2,$r]}"; done; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { printf "%.2f", x / y }'; }
echo "warm builds of $(basename "$ws") in two checkouts on one store, -j$jobs, $runs rounds (ms, medians)"
for i in "${!bins[@]}"; do
  w=$(col warm "$i" | median) s=$(col second "$i" | median) b=$(col back "$i" | median)
  w0=$(col warm 0 | median) s0=$(col second 0 | median) b0=$(col back 0 | median)
  echo "${bins[$i]}${withs[$i]}: warm $w ($(ratio "$w" "$w0")x), second checkout $s" \
       "($(ratio "$s" "$s0")x), back in the first $b ($(ratio "$b" "$b0")x;" \
       "units run again: median $(col ran "$i" | median))"
done
