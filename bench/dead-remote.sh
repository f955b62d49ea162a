#!/usr/bin/env bash
# What a remote that is down costs a build: cold `cargo build` of a workspace
# (default examples/ws-small) with kache and an empty store, with no remote
# and with an S3 remote whose endpoint nobody listens on (a closed loopback
# port: every connection refused) or, with --endpoint dropped, one that drops
# every connection attempt (a loopback listener with a full backlog: the
# kernel ignores further SYNs, as a firewall would). Each run builds both, in an order that
# alternates; prints the medians, their ratio (target: 1.00 within noise) and,
# from the journals, the median and the largest own time of a miss in each
# case (a miss that waited on a fetch shows here).
# usage: bench/dead-remote.sh --kache build/bin/kache [--ws DIR] [--runs N] [-j N]
#        [--endpoint refused|dropped]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
kache="" runs=3 jobs=2 ws="$here/../examples/ws-small" endpoint=refused
usage="usage: bench/dead-remote.sh --kache PATH [--ws DIR] [--runs N] [-j N] [--endpoint refused|dropped]"
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --ws) ws="$(realpath "$2")"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    --endpoint) endpoint="$2"; shift 2
      case "$endpoint" in refused | dropped) ;; *) echo "$usage" >&2; exit 2 ;; esac ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ -x "$kache" ] || { echo "bench: give the kache binary: --kache build/bin/kache" >&2; exit 2; }
[ -f "$ws/Cargo.toml" ] || { echo "bench: no workspace at $ws" >&2; exit 2; }
work="$(mktemp -d)" hole=""
cleanup() {
  for d in "$work"/store-*; do [ -d "$d" ] && KACHE_DIR="$d" "$kache" supervisor stop >/dev/null 2>&1; done
  [ -n "$hole" ] && kill "$hole" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER CARGO_TARGET_DIR KACHE_REMOTE_PATH
export KACHE_CONFIG="$work/none.toml" CARGO_TERM_COLOR=never CARGO_HOME="$work/home"
if [ "$endpoint" = refused ]; then
  # a port nobody listens on: bound, read, closed
  port=$(free_port)
  label="endpoint refusing connections"
else
  # a listener that never accepts, its backlog filled: further SYNs are dropped
  python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
keep = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    keep.append(c)
print(s.getsockname()[1], flush=True)
time.sleep(86400)' > "$work/hole.port" &
  hole=$!
  for _ in $(seq 100); do [ -s "$work/hole.port" ] && break; sleep 0.05; done
  port=$(cat "$work/hole.port")
  label="endpoint dropping connection attempts"
fi

# build <case> <run>: one cold build into an empty store, in ms
build() {
  local d="$work/ws-$1-$2" st="$work/store-$1-$2" t0 t1
  cp -a "$ws" "$d"; rm -rf "$d/target"
  t0=$(date +%s%N)
  if [ "$1" = dead ]; then
    (cd "$d" && RUSTC_WRAPPER="$kache" KACHE_DIR="$st" KACHE_REMOTE=s3 \
       KACHE_S3_ENDPOINT="http://127.0.0.1:$port" KACHE_S3_BUCKET=bench \
       AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench cargo build -j"$jobs" -q) >/dev/null
  else
    (cd "$d" && RUSTC_WRAPPER="$kache" KACHE_DIR="$st" KACHE_REMOTE=none \
       cargo build -j"$jobs" -q) >/dev/null
  fi
  t1=$(date +%s%N)
  KACHE_DIR="$st" "$kache" supervisor stop >/dev/null 2>&1 || true
  echo $(( (t1 - t0) / 1000000 ))
}
declare -A t
for i in $(seq "$runs"); do
  if [ $((i % 2)) = 1 ]; then order="none dead"; else order="dead none"; fi
  for c in $order; do t[$c]+=" $(build "$c" "$i")"; done
done
none=$(printf '%s\n' ${t[none]} | median) dead=$(printf '%s\n' ${t[dead]} | median)
# own <case>: every miss's own time (journal `us`) over the builds of a case
own() { for i in $(seq "$runs"); do python3 "$here/hits.py" journal-misses "$work/store-$1-$i/journal/events"; done; }
dead_us=$(own dead) none_us=$(own none)
printf '\n%s, -j%s, cold, medians of %s run(s); an empty store each time\n\n' "$(basename "$ws")" "$jobs" "$runs"
printf '| remote | build | x no remote |\n|---|---:|---:|\n'
printf '| none | %s ms | 1.00 |\n' "$none"
printf '| s3, %s | %s ms | %s |\n' "$label" "$dead" \
  "$(awk -v a="$dead" -v b="$none" 'BEGIN{printf "%.2f", a/b}')"
printf '\nmisses, own time (journal `us`), median and largest: dead remote %s us, %s us; no remote %s us, %s us\n' \
  "$(median <<<"$dead_us")" "$(sort -n <<<"$dead_us" | tail -1)" \
  "$(median <<<"$none_us")" "$(sort -n <<<"$none_us" | tail -1)"
