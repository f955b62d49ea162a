#!/usr/bin/env bash
# Cold builds only, for the target "cold within 3 % of no wrapper", which
# bench/run.sh's three runs cannot settle (a cold build of ws-small swings by
# several percent from one to the next here). Per round, one cold build with
# no wrapper and one per kache binary, in an order that rotates from round to
# round; each in a fresh copy of the workspace, kache each time with an empty
# store (no remote; its supervisor started by the first wrapper, as a user's
# first build would), after a `sync`, so that no build pays for the writeback
# of the one before it. Prints per tool the median, and per kache binary the
# median of its paired ratios (its build over the no-wrapper build of the same
# round), their range and how many rounds it was the slower; and the builds' CPU
# (user + system of cargo and all it waited for), paired alike. --with NAME=VALUE
# (more than once) sets a variable for the builds of the --kache before it (one
# binary twice, a setting compared: --kache K --kache K --with KACHE_REMAP=false).
# --cargo CMD: the cargo command timed (default build; check, clippy).
# usage: bench/cold-ab.sh --kache K [--with NAME=VALUE ...] [--kache K2 ...] [--runs N] [--ws DIR] [-j N] [--cargo CMD]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
bins=() withs=() runs=8 jobs=2 ws="$here/../examples/ws-small" cmd=build
while [ $# -gt 0 ]; do
  case "$1" in
    --kache|--with) kache_arg "$1" "$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --ws) ws="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    --cargo) cmd="$2"; shift 2 ;;
    *) echo "usage: bench/cold-ab.sh --kache K [--with NAME=VALUE ...] [--kache K2 ...] [--runs N] [--ws DIR] [-j N] [--cargo CMD]" >&2
       exit 2 ;;
  esac
done
local_ab_work
# cold <tool index: -1 none, else the binary's>: one timed cold build: its wall
# time and the CPU (user + system) of cargo and all it waited for, in ms
cold() {
  local wrapper="" st="$work/store-$1" t0 t1 with=() u s TIMEFORMAT='%3U %3S'
  [ "$1" -ge 0 ] && wrapper="${bins[$1]}" && read -ra with <<< "${withs[$1]} KACHE_BENCH=1"
  if [ -d "$st" ]; then KACHE_DIR="$st" "${bins[0]}" supervisor stop >/dev/null 2>&1 || true; fi
  discard "$st"; discard "$work/ws"; discard "$work/home"
  cp -a "$ws" "$work/ws"; chmod -R u+w "$work/ws"; rm -rf "$work/ws/target"
  sync
  t0=$(date +%s%N)
  { time (cd "$work/ws" && env "${with[@]}" RUSTC_WRAPPER="$wrapper" KACHE_DIR="$st" CARGO_HOME="$work/home" \
     cargo "$cmd" -j"$jobs" -q --offline >/dev/null 2>"$work/err"); } 2>"$work/cpu" ||
    { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  read -r u s < "$work/cpu"
  echo "$(( (t1 - t0) / 1000000 )) $(awk -v u="$u" -v s="$s" 'BEGIN { printf "%d", (u + s) * 1000 }')"
}
declare -A t c
tools=(-1 "${!bins[@]}")
for r in $(seq 0 $((runs - 1))); do
  n=${#tools[@]}
  for k in $(seq 0 $((n - 1))); do
    i=${tools[$(( (k + r) % n ))]}
    read -r wall cpu <<< "$(cold "$i")"
    t[$i,$r]=$wall c[$i,$r]=$cpu
  done
  printf 'round %d:' "$((r + 1))"
  for i in "${tools[@]}"; do printf ' %s' "${t[$i,$r]}"; done
  printf '; CPU'
  for i in "${tools[@]}"; do printf ' %s' "${c[$i,$r]}"; done
  echo
done
# col <t or c> <tool index>: its rounds' values; paired <t or c> <binary
# index>: each round's ratio of its value to the no-wrapper build's
col() { local -n a=$1; for r in $(seq 0 $((runs - 1))); do echo "${a[$2,$r]}"; done; }
paired() {
  local -n a=$1
  for r in $(seq 0 $((runs - 1))); do
    awk -v x="${a[$2,$r]}" -v y="${a[-1,$r]}" 'BEGIN { printf "%.4f\n", x / y }'
  done
}
echo "cold builds of $(basename "$ws"), -j$jobs, $runs rounds (ms; order rotated each round; sync before each;"
echo "CPU: user + system of cargo and all it waited for, a supervisor's not counted: none starts without a remote)"
echo "no wrapper: median $(col t -1 | median), CPU median $(col c -1 | median)"
for i in "${!bins[@]}"; do
  ratios=$(paired t "$i")
  slower=$(printf '%s\n' "$ratios" | awk '$1 > 1' | wc -l)
  echo "${bins[$i]}${withs[$i]}: median $(col t "$i" | median); paired ratio to no wrapper: median" \
       "$(printf '%s\n' "$ratios" | median), range $(printf '%s\n' "$ratios" | sort -n | head -1)" \
       "to $(printf '%s\n' "$ratios" | sort -n | tail -1); slower in $slower of $runs rounds"
  echo "  CPU: median $(col c "$i" | median); paired difference to no wrapper: median" \
       "$(for r in $(seq 0 $((runs - 1))); do echo $(( c[$i,$r] - c[-1,$r] )); done | median) ms," \
       "paired ratio median $(paired c "$i" | median)"
done
