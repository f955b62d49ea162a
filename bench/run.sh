#!/usr/bin/env bash
# Builds ws-small with no wrapper, with sccache and with kache: cold, warm
# (`cargo clean && cargo build`) and warm from a copy at another path with another
# CARGO_HOME. Prints medians, ratios measured in this same run, and how many
# compiles reached the real rustc (a counting shim sits in RUSTC).
# With --remote, also the remote-warm case: a first machine (store A) fills a
# directory remote and an S3 bucket (moto_server on loopback), then a fresh
# checkout elsewhere with an empty store B builds from it.
# usage: bench/run.sh --kache build/bin/kache [--runs N] [--ws DIR] [--remote]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kache="" runs=3 ws="$here/../examples/ws-small" remote=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --ws) ws="$2"; shift 2 ;;
    --remote) remote=1; shift ;;
    *) echo "usage: bench/run.sh --kache PATH [--runs N] [--ws DIR]" >&2; exit 2 ;;
  esac
done
[ -x "$kache" ] || { echo "bench: give the kache binary: --kache build/bin/kache" >&2; exit 2; }
command -v sccache >/dev/null || { echo "bench: sccache missing (apt-get install sccache)" >&2; exit 2; }
work="$(mktemp -d)"
moto_pid=""
cleanup() {
  SCCACHE_DIR="$work/sccache" sccache --stop-server >/dev/null 2>&1 || true
  for st in "$work"/r-*; do [ -d "$st" ] && KACHE_DIR="$st" "$kache" supervisor stop >/dev/null 2>&1; done
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
rustc_real="$(rustc --print sysroot)/bin/rustc"
mkdir -p "$work/shim"
shim="$work/shim/rustc"
cat > "$shim" <<EOS
#!/bin/sh
case " \$* " in *' --crate-name ___ '*) ;; *' --crate-name '*) echo x >> "\$SHIM_LOG";; esac
exec "$rustc_real" "\$@"
EOS
chmod +x "$shim"

# build <label> <tool> <dir> <cargo-home>: one timed `cargo build`, in ms; count in $work/count
build() {
  local tool="$2" dir="$3" home="$4" wrapper=""
  case "$tool" in kache) wrapper="$kache" ;; sccache) wrapper="$(command -v sccache)" ;; esac
  : > "$work/shim.log"
  local t0 t1
  t0=$(date +%s%N)
  (cd "$dir" && SHIM_LOG="$work/shim.log" RUSTC="$shim" RUSTC_WRAPPER="$wrapper" \
     CARGO_HOME="$home" KACHE_DIR="${KSTORE:-$work/kache-store}" SCCACHE_DIR="$work/sccache" \
     cargo build -j2 -q >/dev/null 2>"$work/err" ) || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  wc -l < "$work/shim.log" > "$work/count"
  echo $(( (t1 - t0) / 1000000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fresh_copy() { rm -rf "$1"; mkdir -p "$(dirname "$1")"; cp -a "$ws" "$1"; chmod -R u+w "$1"; rm -rf "$1/target"; }

declare -A med cnt times
# Runs interleave the tools (none, sccache, kache, none, ...) so that drift in
# the machine's load falls on all of them alike.
for i in $(seq "$runs"); do
  for tool in none sccache kache; do
    rm -rf "$work/kache-store" "$work/sccache"
    [ "$tool" = sccache ] && { SCCACHE_DIR="$work/sccache" sccache --stop-server >/dev/null 2>&1 || true; }
    fresh_copy "$work/a/ws"
    times[$tool,cold]+=" $(build x "$tool" "$work/a/ws" "$work/home-a")"; cnt[$tool,cold]=$(cat "$work/count")
    (cd "$work/a/ws" && cargo clean -q)
    times[$tool,warm]+=" $(build x "$tool" "$work/a/ws" "$work/home-a")"; cnt[$tool,warm]=$(cat "$work/count")
    fresh_copy "$work/b/elsewhere/ws"
    times[$tool,moved]+=" $(build x "$tool" "$work/b/elsewhere/ws" "$work/home-b")"; cnt[$tool,moved]=$(cat "$work/count")
  done
done
for tool in none sccache kache; do
  for c in cold warm moved; do
    med[$tool,$c]=$(printf '%s\n' ${times[$tool,$c]} | median)
  done
done
total=${cnt[none,cold]}
printf '\nws-small, -j2, medians of %s run(s); "rustc" = compiles that reached the real rustc (of %s)\n\n' "$runs" "$total"
printf '| case  | no wrapper | sccache | kache | kache/none | kache/sccache | rustc: sccache | rustc: kache |\n'
printf '|-------|-----------:|--------:|------:|-----------:|--------------:|---------------:|-------------:|\n'
for c in cold warm moved; do
  printf '| %-5s | %8.2f s | %5.2f s | %5.2f s | %10.3f | %13.3f | %14s | %12s |\n' "$c" \
    "$(echo "${med[none,$c]}/1000" | awk -F/ '{print $1/$2}')" \
    "$(echo "${med[sccache,$c]}/1000" | awk -F/ '{print $1/$2}')" \
    "$(echo "${med[kache,$c]}/1000" | awk -F/ '{print $1/$2}')" \
    "$(awk -v a="${med[kache,$c]}" -v b="${med[none,$c]}" 'BEGIN{print a/b}')" \
    "$(awk -v a="${med[kache,$c]}" -v b="${med[sccache,$c]}" 'BEGIN{print a/b}')" \
    "${cnt[sccache,$c]}" "${cnt[kache,$c]}"
done
served=$(( total - cnt[kache,moved] ))
printf '\nmoved copy served from the kache store: %s of %s compiles (%s%%)\n' "$served" "$total" \
  "$(awk -v s="$served" -v t="$total" 'BEGIN{printf "%.1f", 100*s/t}')"

# ---- remote-warm: empty local store, populated remote ----
[ "$remote" = 1 ] || exit 0
# Sets moto_port and moto_pid (in this shell: not in a $(...) subshell).
start_moto() {
  moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 & moto_pid=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$moto_port/moto-api/" >/dev/null && break; sleep 0.2; done
  python3 -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:$moto_port', aws_access_key_id='x', aws_secret_access_key='x', region_name='us-east-1').create_bucket(Bucket='bench')"
}
# remote_env <type> <run>: the variables that point kache at the remote
remote_env() {
  if [ "$1" = dir ]; then
    export KACHE_REMOTE=dir KACHE_REMOTE_PATH="$work/dir-remote-$2"
  else
    export KACHE_REMOTE=s3 KACHE_S3_ENDPOINT="http://127.0.0.1:$moto_port" KACHE_S3_BUCKET=bench \
      KACHE_S3_PREFIX="run-$2" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
  fi
}
drain() { for _ in $(seq 600); do [ -z "$(ls "$1/intents" 2>/dev/null)" ] && return 0; sleep 0.2; done; return 1; }
start_moto
declare -A rmed rcnt
for type in dir s3; do
  rtimes=()
  for i in $(seq "$runs"); do
    remote_env "$type" "$i"
    export KSTORE="$work/r-$type-a-$i"
    KACHE_DIR="$KSTORE" "$kache" supervisor start >/dev/null
    fresh_copy "$work/ra/ws"
    build x kache "$work/ra/ws" "$work/home-ra" >/dev/null
    drain "$KSTORE" || { echo "bench: uploads to the $type remote did not drain" >&2; exit 1; }
    KACHE_DIR="$KSTORE" "$kache" supervisor stop >/dev/null
    export KSTORE="$work/r-$type-b-$i"
    KACHE_DIR="$KSTORE" "$kache" supervisor start >/dev/null
    fresh_copy "$work/rb/far/away/ws"
    rtimes+=("$(build x kache "$work/rb/far/away/ws" "$work/home-rb")"); rcnt[$type]=$(cat "$work/count")
    KACHE_DIR="$KSTORE" "$kache" supervisor stop >/dev/null
    unset KSTORE
  done
  rmed[$type]=$(printf "%s\n" "${rtimes[@]}" | median)
done
printf '\nremote-warm (empty local store, populated remote, other path and CARGO_HOME):\n\n'
printf '| remote | kache | kache/none cold | kache/sccache warm | rustc: kache | served from remote |\n'
printf '|--------|------:|----------------:|-------------------:|-------------:|-------------------:|\n'
for type in dir s3; do
  printf '| %-6s | %5.2f s | %15.3f | %18.3f | %12s | %17s%% |\n' "$type" \
    "$(awk -v a="${rmed[$type]}" 'BEGIN{print a/1000}')" \
    "$(awk -v a="${rmed[$type]}" -v b="${med[none,cold]}" 'BEGIN{print a/b}')" \
    "$(awk -v a="${rmed[$type]}" -v b="${med[sccache,warm]}" 'BEGIN{print a/b}')" \
    "${rcnt[$type]}" "$(awk -v c="${rcnt[$type]}" -v t="$total" 'BEGIN{printf "%.1f", 100*(t-c)/t}')"
done
