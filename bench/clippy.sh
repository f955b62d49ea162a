#!/usr/bin/env bash
# `cargo clippy` with no wrapper, with sccache and with kache: a cold run from
# an empty cache, then warm runs (`rm -rf target` first; the tools take turns
# each round) beside the floor: the warm target directory copied back with
# `cp -a`, then a no-op `cargo clippy`. cargo clippy runs the workspace's
# members through clippy-driver (RUSTC_WORKSPACE_WRAPPER) and the dependencies
# through the wrapper as `cargo check` does. Prints medians and ratios
# measured in this same run, how many compiles reached the real rustc (a
# counting shim sits in RUSTC) and kache's misses, and checks that every
# warm run printed the lints the no-wrapper run printed (the count of
# `warning:` lines).
# usage: bench/clippy.sh --kache build/bin/kache [--ws small|large|DIR] [--runs N] [-j N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
kache="" runs=5 jobs=2 ws="$here/../examples/ws-small"
usage="usage: bench/clippy.sh --kache PATH [--ws small|large|DIR] [--runs N] [-j N]"
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    --ws)
      case "$2" in
        small) ws="$here/../examples/ws-small" ;;
        large) ws="$here/ws-large"; "$ws/setup.sh" --check >/dev/null || exit 2 ;;
        *) ws="$(realpath "$2")" ;;
      esac
      shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ -x "$kache" ] || { echo "bench: give the kache binary: --kache build/bin/kache" >&2; exit 2; }
command -v sccache >/dev/null || { echo "bench: sccache missing (apt-get install sccache)" >&2; exit 2; }
cargo clippy --version >/dev/null 2>&1 ||
  { echo "bench: cargo clippy missing (rustup component add clippy)" >&2; exit 2; }
work="$(mktemp -d)"
cleanup() {
  SCCACHE_DIR="$work/sccache" sccache --stop-server >/dev/null 2>&1 || true
  KACHE_DIR="$work/kache-store" "$kache" supervisor stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
counting_shim "$work/shim/rustc"

# clippy <tool> <dir> [no-clean]: one timed `cargo clippy` (ms) from an empty
# target dir; its rustc compiles in $work/count, its warnings in $work/warn
clippy() {
  local tool="$1" dir="$2" wrapper="" t0 t1
  case "$tool" in kache) wrapper="$kache" ;; sccache) wrapper="$(command -v sccache)" ;; esac
  [ "${3:-}" = no-clean ] || rm -rf "$dir/target"
  : > "$work/shim.log"
  t0=$(date +%s%N)
  (cd "$dir" && SHIM_LOG="$work/shim.log" RUSTC="$work/shim/rustc" RUSTC_WRAPPER="$wrapper" \
     CARGO_HOME="$work/home-$tool" KACHE_DIR="$work/kache-store" SCCACHE_DIR="$work/sccache" \
     CARGO_TERM_COLOR=never cargo clippy -j"$jobs" --offline >/dev/null 2>"$work/err") ||
    { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  wc -l < "$work/shim.log" > "$work/count"
  grep -c '^warning:' "$work/err" > "$work/warn" || true
  echo $(( (t1 - t0) / 1000000 ))
}
# kache's misses, and its compiles passed through (cargo's questions left out)
misses() { KACHE_DIR="$work/kache-store" "$kache" stats --json | jq .misses; }
passes() {
  KACHE_DIR="$work/kache-store" "$kache" stats --json |
    jq '[.pass_reasons | to_entries[] | select(.key != "version-or-help" and .key != "print") | .value] | add // 0'
}

declare -A t cnt
for tool in none sccache kache; do
  mkdir -p "$work/$tool"; cp -a "$ws" "$work/$tool/ws"; chmod -R u+w "$work/$tool/ws"
  rm -rf "$work/$tool/ws/target"
  sync
  t[cold-$tool]=$(clippy "$tool" "$work/$tool/ws")
  cnt[cold-$tool]=$(cat "$work/count")
  [ "$tool" = none ] && { lints=$(cat "$work/warn"); cp -a "$work/none/ws/target" "$work/warm-target"; }
done
m0=$(misses) p0=$(passes)
: > "$work/warm-none" ; : > "$work/warm-sccache"; : > "$work/warm-kache"; : > "$work/warm-floor"
for i in $(seq "$runs"); do
  order="none sccache kache"; [ $((i % 2)) = 0 ] && order="kache sccache none"
  for tool in $order; do
    clippy "$tool" "$work/$tool/ws" >> "$work/warm-$tool"
    cnt[warm-$tool]=$(cat "$work/count")
    [ "$(cat "$work/warn")" = "$lints" ] ||
      echo "bench: $tool's warm cargo clippy printed $(cat "$work/warn") warnings, not $lints" >&2
  done
  rm -rf "$work/none/ws/target"
  t0=$(date +%s%N)
  cp -a "$work/warm-target" "$work/none/ws/target"
  clippy none "$work/none/ws" no-clean > /dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 )) >> "$work/warm-floor"
  [ "$(cat "$work/count")" = 0 ] || echo "bench: the floor's cargo clippy was not a no-op" >&2
done
m1=$(misses) p1=$(passes)
for tool in none sccache kache floor; do t[warm-$tool]=$(median < "$work/warm-$tool"); done
ms() { awk -v m="$1" 'BEGIN {printf "%.2f s", m / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo "cargo clippy on $(basename "$ws") ($runs warm runs each, medians; -j$jobs; $lints warnings each run)"
echo
echo "| case | no wrapper | sccache | kache | floor | kache/none | kache/sccache | kache/floor | rustc: sccache | rustc: kache |"
echo "|------|-----------:|--------:|------:|------:|-----------:|--------------:|------------:|---------------:|-------------:|"
for c in cold warm; do
  fl="-" kf="-"
  [ "$c" = warm ] && { fl=$(ms "${t[warm-floor]}"); kf=$(ratio "${t[warm-kache]}" "${t[warm-floor]}"); }
  echo "| $c | $(ms "${t[$c-none]}") | $(ms "${t[$c-sccache]}") | $(ms "${t[$c-kache]}") | $fl |" \
       "$(ratio "${t[$c-kache]}" "${t[$c-none]}") | $(ratio "${t[$c-kache]}" "${t[$c-sccache]}") | $kf |" \
       "${cnt[$c-sccache]} | ${cnt[$c-kache]} |"
done
echo
echo "cold: one run each, in the order none, sccache, kache: not a measure of kache's cold cost" \
  "(bench/cold-ab.sh --cargo clippy is)"
echo "kache over the warm runs: $((m1 - m0)) misses, $((p1 - p0)) compiles passed through" \
  "(clippy-driver's compiles of the members included in both)"
