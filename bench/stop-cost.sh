#!/usr/bin/env bash
# What bundle parts cost the runner that writes them: per round and per
# setting of prefetch.bundles (on, off; alternated), a fresh remote (a new
# directory, or a new prefix of the bucket on moto_server), an empty store, its
# supervisor started, a cold `cargo build -j2` (uploads on), then a timed
# `kache supervisor stop` (the flush of the uploads left, the session
# manifest, and with bundles on the parts: each pack read back and put again).
# Prints per setting the medians of the build and of the stop, the parts
# written and their bytes.
# usage: bench/stop-cost.sh --kache build-rel/bin/kache [--runs N] [--s3] [--signed] [--ws DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
kache="" runs=3 s3=0 signed=0 ws="$here/../examples/ws-small"
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --s3) s3=1; shift ;;
    --signed) signed=1; shift ;;
    --ws) ws="$2"; shift 2 ;;
    *) echo "usage: bench/stop-cost.sh --kache PATH [--runs N] [--s3] [--signed] [--ws DIR]" >&2
       exit 2 ;;
  esac
done
[ -x "$kache" ] || { echo "bench: give the kache binary: --kache build-rel/bin/kache" >&2; exit 2; }
work="$(mktemp -d)"
moto_pid=""
cleanup() {
  [ -d "$work/a" ] && KACHE_DIR="$work/a" "$kache" supervisor stop >/dev/null 2>&1
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
if [ $s3 = 1 ]; then
  start_moto
else
  export KACHE_REMOTE=dir
fi
if [ $signed = 1 ]; then
  pub=$("$kache" keygen --out "$work/sign.key" 2>/dev/null)
  export KACHE_SIGNING_KEY_FILE="$work/sign.key" KACHE_TRUSTED_KEYS="[\"$pub\"]"
fi
ms() { echo $(( ($2 - $1) / 1000000 )); }
declare -A res
n=0
for _ in $(seq "$runs"); do
  for b in true false; do
    n=$((n + 1))
    discard "$work/a"; discard "$work/ws"; discard "$work/home"
    cp -a "$ws" "$work/ws"; chmod -R u+w "$work/ws"; rm -rf "$work/ws/target"
    export KACHE_S3_PREFIX="round$n" KACHE_REMOTE_PATH="$work/remote$n"
    env KACHE_PREFETCH_BUNDLES=$b KACHE_DIR="$work/a" "$kache" supervisor start >/dev/null
    t0=$(date +%s%N)
    (cd "$work/ws" && env KACHE_PREFETCH_BUNDLES=$b RUSTC_WRAPPER="$kache" KACHE_DIR="$work/a" \
       CARGO_HOME="$work/home" cargo build -j2 -q --offline >/dev/null 2>"$work/err") ||
      { cat "$work/err" >&2; exit 1; }
    t1=$(date +%s%N)
    KACHE_PREFETCH_BUNDLES=$b KACHE_LOG=info KACHE_DIR="$work/a" "$kache" supervisor stop \
      >"$work/stop.out" 2>&1 ||
      { cat "$work/stop.out" >&2; echo "bench: the stop failed" >&2; exit 1; }
    t2=$(date +%s%N)
    res[build$b]+=" $(ms "$t0" "$t1")"
    res[stop$b]+=" $(ms "$t1" "$t2")"
    parts=$(grep -c "bundle part .* written" "$work/stop.out" || true)
    bytes=$(sed -n 's/.*bundle part .* written: [0-9]* packs, \([0-9]*\) bytes.*/\1/p' "$work/stop.out" |
            awk '{s+=$1} END {printf "%.1f", s/1048576}')
    res[parts$b]="$parts parts, $bytes MiB"
  done
done
med() { printf '%s\n' $1 | median; }
echo "remote $([ $s3 = 1 ] && echo s3 || echo dir)$([ $signed = 1 ] && echo ", signed"), $runs rounds, a cold build then \`kache supervisor stop\`"
for b in true false; do
  echo "prefetch.bundles=$b: build $(med "${res[build$b]}") ms, stop $(med "${res[stop$b]}") ms;" \
       "last round: ${res[parts$b]}  (stops:${res[stop$b]} )"
done
