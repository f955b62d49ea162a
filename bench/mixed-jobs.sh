#!/usr/bin/env bash
# Two CI jobs of one workspace over one directory remote, as a pipeline runs
# them: a build job (runner A: `cargo build`, then `kache supervisor stop`)
# and, after it, a check job (runner C: `cargo check`, stop); then a fresh
# build job (runner B: `kache prefetch --wait`, then a timed `cargo build`).
# Until 596692b the check job's session manifest replaced the build's (one
# fingerprint), so B prefetched check results and fetched its own on each
# miss. Per kache binary (several: compared in the same run, their order
# rotated each round): B's build (median), its ratio to A's local warm build
# (`rm -rf target`, `cargo build`, A's store) timed in the same round, and
# B's hits: prefetched and fetched on a miss. Then, in the same round, a
# fresh job of two commands (runner D: `cargo check`, then a timed `cargo
# build`, no `kache prefetch`): until the cargo links (docs/design.md, "The
# build session") a workspace's session had the job's first command's mode,
# so D's build had no prefetch of its own and fetched the build's results on
# each miss; its build's median, its ratio to A's local warm build and the
# hits of the build alone.
# usage: bench/mixed-jobs.sh --kache K [--kache K2 ...] [--runs N] [--ws DIR] [-j N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
bins=() withs=() runs=3 jobs=2 ws="$here/../examples/ws-small"
usage="usage: bench/mixed-jobs.sh --kache K [--kache K2 ...] [--runs N] [--ws DIR] [-j N]"
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache_arg "$1" "$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --ws) ws="$(realpath "$2")"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ ${#bins[@]} -ge 1 ] && [ -x "${bins[0]}" ] ||
  { echo "bench: give the kache binary: --kache build-rel/bin/kache" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench: jq missing (apt-get install jq)" >&2; exit 2; }
work="$(mktemp -d)"
cleanup() {
  for st in "$work"/store-*; do [ -d "$st" ] && KACHE_DIR="$st" "${bins[0]}" supervisor stop >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT
unset KACHE_S3_ENDPOINT KACHE_S3_BUCKET KACHE_PLANNER_ENDPOINT

# job <binary> <runner> <cargo command...>: the runner's fresh checkout and
# store, the command timed (ms, on stdout)
job() {
  local k="$1" r="$2" t0 t1
  shift 2
  discard "$work/ws-$r"; discard "$work/store-$r"
  cp -a "$ws" "$work/ws-$r"; chmod -R u+w "$work/ws-$r"; rm -rf "$work/ws-$r/target"
  t0=$(date +%s%N)
  (cd "$work/ws-$r" && KACHE_DIR="$work/store-$r" CARGO_HOME="$work/home-$r" RUSTC_WRAPPER="$k" \
     cargo "$@" -j"$jobs" -q --offline >/dev/null 2>"$work/err") || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
kache_in() { local k="$1" r="$2"; shift 2; (cd "$work/ws-$r" && KACHE_DIR="$work/store-$r" "$k" "$@"); }
# build <binary> <runner>: a timed `cargo build` in the runner's checkout as it
# is, with its store (ms, on stdout)
build() {
  local k="$1" r="$2" t0
  t0=$(date +%s%N)
  (cd "$work/ws-$r" && KACHE_DIR="$work/store-$r" CARGO_HOME="$work/home-$r" RUSTC_WRAPPER="$k" \
     cargo build -j"$jobs" -q --offline >/dev/null 2>&1)
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
per_local() { awk -v a="$1" -v l="$2" 'BEGIN {printf "%.3f", a / l}'; }
# table <runner> <times> <ratios> <prefetched> <fetched>: one row per binary
# (the arrays' names)
table() {
  local -n tt="$2" rr="$3" pp="$4" ff="$5"
  echo "| kache binary | $1's build, median | x A's local warm, median | prefetched hits | fetched on a miss |"
  echo "|---|---:|---:|---|---|"
  for x in $(seq 0 $((${#bins[@]} - 1))); do
    echo "| ${bins[$x]} | $(tr ' ' '\n' <<< "${tt[$x]}" | grep . | median) ms |" \
      "$(tr ' ' '\n' <<< "${rr[$x]}" | grep . | median) | ${pp[$x]}| ${ff[$x]}|"
  done
}

declare -A b ratio pf rh d dratio dpf drh
for i in $(seq "$runs"); do
  n=${#bins[@]}
  for j in $(seq 0 $((n - 1))); do
    x=$(( (j + i) % n )) k="${bins[$x]}"
    export KACHE_REMOTE=dir KACHE_REMOTE_PATH="$work/remote-$i-$x"
    job "$k" a build >/dev/null
    rm -rf "$work/ws-a/target"
    local_warm=$(build "$k" a)
    kache_in "$k" a supervisor stop >/dev/null 2>&1
    job "$k" c check >/dev/null
    kache_in "$k" c supervisor stop >/dev/null 2>&1
    discard "$work/ws-b"; discard "$work/store-b"
    cp -a "$ws" "$work/ws-b"; chmod -R u+w "$work/ws-b"; rm -rf "$work/ws-b/target"
    kache_in "$k" b prefetch --wait >/dev/null
    t=$(build "$k" b)
    st=$(kache_in "$k" b stats --json)
    kache_in "$k" b supervisor stop >/dev/null 2>&1
    echo "round $i, $k: B's build $t ms, local warm $local_warm ms;" \
      "prefetched hits $(jq .prefetched_hits <<< "$st"), fetched on a miss $(jq .remote_hits <<< "$st")"
    b[$x]+="$t " ratio[$x]+="$(per_local "$t" "$local_warm") "
    pf[$x]+="$(jq .prefetched_hits <<< "$st") " rh[$x]+="$(jq .remote_hits <<< "$st") "
    job "$k" d check >/dev/null
    s0=$(kache_in "$k" d stats --json)
    t=$(build "$k" d)
    s1=$(kache_in "$k" d stats --json)
    kache_in "$k" d supervisor stop >/dev/null 2>&1
    dp=$(( $(jq .prefetched_hits <<< "$s1") - $(jq .prefetched_hits <<< "$s0") ))
    dr=$(( $(jq .remote_hits <<< "$s1") - $(jq .remote_hits <<< "$s0") ))
    echo "round $i, $k: D's build after its check $t ms; prefetched hits $dp, fetched on a miss $dr"
    d[$x]+="$t " dratio[$x]+="$(per_local "$t" "$local_warm") "
    dpf[$x]+="$dp " drh[$x]+="$dr "
  done
done
echo
echo "A build job, then a check job, then a fresh build job (kache prefetch --wait, cargo build); $runs rounds"
table B b ratio pf rh
echo
echo "One fresh job of two commands (cargo check, then cargo build, timed); $runs rounds; the build's hits"
table D d dratio dpf drh
