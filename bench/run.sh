#!/usr/bin/env bash
# Builds ws-small with no wrapper, with sccache and with kache: cold, warm
# (`cargo clean && cargo build`) and warm from a copy at another path with another
# CARGO_HOME. Prints medians, ratios measured in this same run, and how many
# compiles reached the real rustc (a counting shim sits in RUSTC).
# usage: bench/run.sh --kache build/bin/kache [--runs N] [--ws DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kache="" runs=3 ws="$here/../examples/ws-small"
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --ws) ws="$2"; shift 2 ;;
    *) echo "usage: bench/run.sh --kache PATH [--runs N] [--ws DIR]" >&2; exit 2 ;;
  esac
done
[ -x "$kache" ] || { echo "bench: give the kache binary: --kache build/bin/kache" >&2; exit 2; }
command -v sccache >/dev/null || { echo "bench: sccache missing (apt-get install sccache)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'SCCACHE_DIR="$work/sccache" sccache --stop-server >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
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
     CARGO_HOME="$home" KACHE_DIR="$work/kache-store" SCCACHE_DIR="$work/sccache" \
     cargo build -j2 -q >/dev/null 2>"$work/err" ) || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  wc -l < "$work/shim.log" > "$work/count"
  echo $(( (t1 - t0) / 1000000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fresh_copy() { rm -rf "$1"; mkdir -p "$(dirname "$1")"; cp -a "$ws" "$1"; chmod -R u+w "$1"; rm -rf "$1/target"; }

declare -A med cnt
for tool in none sccache kache; do
  cold=() warm=() moved=()
  for i in $(seq "$runs"); do
    rm -rf "$work/kache-store" "$work/sccache"
    [ "$tool" = sccache ] && { SCCACHE_DIR="$work/sccache" sccache --stop-server >/dev/null 2>&1 || true; }
    fresh_copy "$work/a/ws"
    cold+=("$(build x "$tool" "$work/a/ws" "$work/home-a")"); cnt[$tool,cold]=$(cat "$work/count")
    (cd "$work/a/ws" && cargo clean -q)
    warm+=("$(build x "$tool" "$work/a/ws" "$work/home-a")"); cnt[$tool,warm]=$(cat "$work/count")
    fresh_copy "$work/b/elsewhere/ws"
    moved+=("$(build x "$tool" "$work/b/elsewhere/ws" "$work/home-b")"); cnt[$tool,moved]=$(cat "$work/count")
  done
  med[$tool,cold]=$(printf '%s\n' "${cold[@]}" | median)
  med[$tool,warm]=$(printf '%s\n' "${warm[@]}" | median)
  med[$tool,moved]=$(printf '%s\n' "${moved[@]}" | median)
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
