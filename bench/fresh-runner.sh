#!/usr/bin/env bash
# A fresh CI runner whose supervisor nobody starts by hand: runner A fills a
# remote (its supervisor started, `cargo build`, `kache supervisor stop`), then
# a fresh copy elsewhere with an empty store B and its own CARGO_HOME runs one
# timed `cargo build`; its first wrapper starts B's supervisor. Prints, per
# remote and case (prefetch off: KACHE_PREFETCH_MAX_BYTES=0, so that every
# compile is a fetch on a miss; prefetch on), the compiles that reached the real
# rustc (of all), the build's wall time (median) and B's stats (local,
# prefetched, remote hits).
# usage: bench/fresh-runner.sh --kache build/bin/kache [--runs N] [--ws DIR] [--s3]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
kache="" runs=3 ws="$here/../examples/ws-small" s3=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --ws) ws="$2"; shift 2 ;;
    --s3) s3=1; shift ;;
    *) echo "usage: bench/fresh-runner.sh --kache PATH [--runs N] [--ws DIR] [--s3]" >&2; exit 2 ;;
  esac
done
[ -x "$kache" ] || { echo "bench: give the kache binary: --kache build/bin/kache" >&2; exit 2; }
work="$(mktemp -d)"
moto_pid=""
cleanup() {
  for st in "$work"/st-*; do [ -d "$st" ] && KACHE_DIR="$st" "$kache" supervisor stop >/dev/null 2>&1; done
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
counting_shim "$work/shim/rustc"

# build <store> <dir> <home>: one timed `cargo build -j2` in ms; compiles that
# reached rustc in $work/count, of all compiles (no wrapper) in $work/total
build() {
  : > "$work/shim.log"
  local t0 t1
  t0=$(date +%s%N)
  (cd "$2" && SHIM_LOG="$work/shim.log" RUSTC="$work/shim/rustc" RUSTC_WRAPPER="$kache" \
     CARGO_HOME="$3" KACHE_DIR="$1" cargo build -j2 -q >/dev/null 2>"$work/err") ||
    { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  wc -l < "$work/shim.log" > "$work/count"
  echo $(( (t1 - t0) / 1000000 ))
}
fresh_copy() { rm -rf "$1"; mkdir -p "$(dirname "$1")"; cp -a "$ws" "$1"; chmod -R u+w "$1"; rm -rf "$1/target"; }
# populate <type> <run>: runner A (prefetch off) builds and ends its job
populate() {
  local st="$work/st-$1-a-$2"
  KACHE_PREFETCH_MAX_BYTES=0 KACHE_DIR="$st" "$kache" supervisor start >/dev/null
  fresh_copy "$work/ra/ws"
  KACHE_PREFETCH_MAX_BYTES=0 build "$st" "$work/ra/ws" "$work/home-ra" >/dev/null
  KACHE_DIR="$st" "$kache" supervisor stop >/dev/null 2>&1 ||
    { echo "bench: runner A's uploads did not all leave" >&2; exit 1; }
  rm -rf "$st"
}
# fresh <type> <run> <case>: runner B, nothing started by hand
fresh() {
  local st="$work/st-$1-b-$2-$3" d="$work/rb/far/away/ws" ms j
  fresh_copy "$d"
  if [ "$3" = nopf ]; then export KACHE_PREFETCH_MAX_BYTES=0; else unset KACHE_PREFETCH_MAX_BYTES; fi
  ms=$(build "$st" "$d" "$work/home-rb")
  j=$(KACHE_DIR="$st" "$kache" stats --json)
  t[$1,$3]+=" $ms"
  c[$1,$3]+=" $(cat "$work/count")"
  h[$1,$3]+=" $(jq -r '"\(.local_hits // .hits)/\(.prefetched_hits // "-")/\(.remote_hits)"' <<<"$j")"
  KACHE_DIR="$st" "$kache" supervisor stop >/dev/null 2>&1 || true
  rm -rf "$st"
  unset KACHE_PREFETCH_MAX_BYTES
}
declare -A t c h
fresh_copy "$work/n/ws"
(cd "$work/n/ws" && SHIM_LOG="$work/shim.log" RUSTC="$work/shim/rustc" CARGO_HOME="$work/home-n" \
   cargo build -j2 -q >/dev/null 2>&1)
total=$(wc -l < "$work/shim.log")
types="dir"
[ "$s3" = 1 ] && { start_moto; types="dir s3"; }
for i in $(seq "$runs"); do
  for type in $types; do
    remote_env "$type" "$i"
    populate "$type" "$i"
    fresh "$type" "$i" nopf
    fresh "$type" "$i" pf
  done
done
printf '\nfresh runner (no supervisor started by hand), ws-small, -j2, %s run(s), of %s compiles\n\n' "$runs" "$total"
printf '| remote | prefetch | build (median) | rustc per run | hits local/prefetched/remote per run |\n'
printf '|--------|----------|---------------:|---------------|--------------------------------------|\n'
for type in $types; do
  for k in nopf pf; do
    printf '| %-6s | %-8s | %12.2f s | %-13s | %s |\n' "$type" "$([ $k = pf ] && echo on || echo off)" \
      "$(printf '%s\n' ${t[$type,$k]} | median | awk '{print $1/1000}')" "${c[$type,$k]# }" "${h[$type,$k]# }"
  done
done
