#!/usr/bin/env bash
# Racing builds of two (or more) kache binaries, alternated so that they share
# the machine's moods: runner A (the first binary, prefetch off) fills a
# remote once; then per round one local warm build (A's store, the first
# binary, its supervisor running since before the first round), and per
# binary one racing build: a fresh copy elsewhere with an
# empty store B, its supervisor started, `cargo build -j2` at once (the
# build's first compile hints the prefetch, which races it). Prints per binary
# the racing build's median, its ratio to the local warm median, and the
# prefetch worker's CPU and session time (medians). --with NAME=VALUE (more
# than once) sets a variable for the runner B of the --kache before it: its
# supervisor and its build (one binary twice, a setting alternated).
# --own-remote: each binary's runner A fills a remote of its own (a directory,
# or a bucket prefix), which that binary's racing builds read: for a change of
# what a remote holds (a pack or part format); without it they all read the
# first binary's.
# usage: bench/race-ab.sh --kache A [--with NAME=VALUE ...] [--kache B ...] [--runs N] [--s3] [--signed] [--own-remote] [--ws DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
bins=() withs=() runs=5 s3=0 signed=0 own=0 ws="$here/../examples/ws-small"
while [ $# -gt 0 ]; do
  case "$1" in
    --kache|--with) kache_arg "$1" "$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --s3) s3=1; shift ;;
    --signed) signed=1; shift ;;
    --own-remote) own=1; shift ;;
    --ws) ws="$2"; shift 2 ;;
    *) echo "usage: bench/race-ab.sh --kache A [--with NAME=VALUE ...] [--kache B ...] [--runs N] [--s3] [--signed] [--own-remote] [--ws DIR]" >&2
       exit 2 ;;
  esac
done
[ ${#bins[@]} -ge 1 ] && [ -x "${bins[0]}" ] ||
  { echo "bench: give the kache binaries: --kache build-rel/bin/kache --kache OTHER" >&2; exit 2; }
work="$(mktemp -d)"
moto_pid=""
cleanup() {
  for st in "$work"/a* "$work"/b; do [ -d "$st" ] && KACHE_DIR="$st" "${bins[0]}" supervisor stop >/dev/null 2>&1; done
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
if [ $s3 = 1 ]; then
  start_moto
  export KACHE_S3_PREFIX=race
else
  export KACHE_REMOTE=dir KACHE_REMOTE_PATH="$work/remote"
fi
if [ $signed = 1 ]; then
  pub=$("${bins[0]}" keygen --out "$work/sign.key" 2>/dev/null)
  export KACHE_SIGNING_KEY_FILE="$work/sign.key" KACHE_TRUSTED_KEYS="[\"$pub\"]"
fi
ms() { echo $(( ($2 - $1) / 1000000 )); }
# cpu_ms PID: the process's CPU time (user + system) so far, in ms; 0 without one
cpu_ms() {
  [ -n "$1" ] && awk -v t="$(getconf CLK_TCK)" '{printf "%d", ($14+$15)*1000/t}' "/proc/$1/stat" 2>/dev/null || echo 0
}
copy() { discard "$1"; mkdir -p "$(dirname "$1")"; cp -a "$ws" "$1"; chmod -R u+w "$1"; rm -rf "$1/target"; }
# build <kache> <store> <dir> <home> [env...]: one timed build, in ms
build() {
  local k=$1 st=$2 dir=$3 home=$4 t0; shift 4
  t0=$(date +%s%N)
  (cd "$dir" && env "$@" RUSTC_WRAPPER="$k" KACHE_DIR="$st" CARGO_HOME="$home" \
     cargo build -j2 -q --offline >/dev/null 2>"$work/err") || { cat "$work/err" >&2; exit 1; }
  ms "$t0" "$(date +%s%N)"
}
# own_remote J: the variables that point binary J at its remote (with
# --own-remote its own, else the first binary's, which the environment has)
own_remote() {
  if [ $own = 0 ] || [ "$1" = 0 ]; then echo KACHE_BENCH_REMOTE=0
  elif [ $s3 = 1 ]; then echo KACHE_S3_PREFIX=race$1
  else echo KACHE_REMOTE_PATH="$work/remote$1"
  fi
}
# fill J: binary J's runner A (store a, or aJ) builds cold and stops
fill() {
  local k="${bins[$1]}" st="$work/a${1#0}" rem
  rem=$(own_remote "$1")
  copy "$work/ra/ws"
  env "$rem" KACHE_PREFETCH_MAX_BYTES=0 KACHE_DIR="$st" "$k" supervisor start >/dev/null
  build "$k" "$st" "$work/ra/ws" "$work/home-a" "$rem" KACHE_PREFETCH_MAX_BYTES=0 >/dev/null
  env "$rem" KACHE_DIR="$st" "$k" supervisor stop >/dev/null 2>&1 ||
    { echo "bench: runner A's uploads did not all leave" >&2; exit 1; }
}
a="${bins[0]}"
if [ $own = 1 ]; then for j in "${!bins[@]}"; do [ "$j" = 0 ] || fill "$j"; done; fi
fill 0
declare -A res
# Store A's supervisor runs from here to the end, as on a machine that builds
# often: the local warm builds do not pay its start (until 2026-12-02 13:00
# each one started it just before, which made the denominator 0.2-0.3 s
# larger than bench/run.sh's and the ratios lower).
KACHE_PREFETCH_MAX_BYTES=0 KACHE_DIR="$work/a" "$a" supervisor start >/dev/null
for _ in $(seq "$runs"); do
  (cd "$work/ra/ws" && cargo clean -q)
  res[local]+=" $(build "$a" "$work/a" "$work/ra/ws" "$work/home-a" KACHE_PREFETCH_MAX_BYTES=0)"
  for j in "${!bins[@]}"; do
    k="${bins[$j]}"
    discard "$work/b"; discard "$work/home-b"
    copy "$work/rb/far/away/ws"
    read -ra with <<< "${withs[$j]} $(own_remote "$j")"
    env "${with[@]}" KACHE_DIR="$work/b" "$k" supervisor start >/dev/null
    m0=$(cpu_ms "$moto_pid")
    res[$j]+=" $(build "$k" "$work/b" "$work/rb/far/away/ws" "$work/home-b" "${with[@]}")"
    res[moto$j]+=" $(( $(cpu_ms "$moto_pid") - m0 ))"
    sleep 1 # the session's last imports end
    log="$work/b/logs/prefetch.0.log"
    pid=$(sed -n 's/.*started, pid \([0-9]*\).*/\1/p' "$log" | tail -1)
    res[cpu$j]+=" $(cpu_ms "$pid")"
    res[sess$j]+=" $(sed -n 's/.* in \([0-9]*\) ms from.*/\1/p' "$log" | tail -1)"
    KACHE_DIR="$work/b" "$k" supervisor stop >/dev/null 2>&1 || true
  done
done
KACHE_DIR="$work/a" "$a" supervisor stop >/dev/null 2>&1 || true
med() { printf '%s\n' $1 | median; }
lw=$(med "${res[local]}")
echo "remote $([ $s3 = 1 ] && echo s3 || echo dir)$([ $signed = 1 ] && echo ", signed")$([ $own = 1 ] && echo ", each binary's own"), $runs rounds"
echo "local warm: $lw ms  (${res[local]} )"
for j in "${!bins[@]}"; do
  r=$(med "${res[$j]}")
  echo "${bins[$j]}${withs[$j]}: racing $r ms = $(awk -v a="$r" -v b="$lw" 'BEGIN{printf "%.2f", a/b}')x local warm;" \
       "prefetch CPU $(med "${res[cpu$j]}") ms; session $(med "${res[sess$j]}") ms$([ $s3 = 1 ] &&
       echo "; S3 emulator CPU during the build $(med "${res[moto$j]}") ms")  (${res[$j]} )"
done
