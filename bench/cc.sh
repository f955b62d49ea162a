#!/usr/bin/env bash
# C from a build script (issue 14): cold and warm `cargo build -j2` of a
# crate that depends on Debian's ring 0.16 (its build script compiles about 30
# C and assembly files with the cc crate), under: no wrapper; ccache for C
# (CC="ccache gcc"; rustc uncached); kache for C only (CC="kache gcc"); sccache
# for both (RUSTC_WRAPPER=sccache, CC="sccache gcc"); kache for both
# (RUSTC_WRAPPER=kache, CC="kache gcc"). Cold: an empty cache and no target
# dir; warm: the cache the cold build filled, no target dir. Each run measures
# every configuration in turn (so a load change hits them alike); prints the
# medians and the ratios to the no-wrapper build, measured in this one run.
# usage: bench/cc.sh --kache build/bin/kache [--runs N]
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
kache="" runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: bench/cc.sh --kache PATH [--runs N]" >&2; exit 2 ;;
  esac
done
[ -x "$kache" ] || { echo "bench: give the kache binary: --kache build/bin/kache" >&2; exit 2; }
reg=/usr/share/cargo/registry
ls -d "$reg"/ring-0.16.* >/dev/null 2>&1 ||
  { echo "bench: Debian's librust-ring-dev is not installed (scripts/example-deps.sh)" >&2; exit 2; }
for tool in ccache sccache gcc cargo; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 2; }
done
work="$(mktemp -d)"
configs=(none ccache kache-c sccache kache)
cleanup() {
  SCCACHE_DIR="$work/cache-sccache" sccache --stop-server >/dev/null 2>&1 || true
  for d in "$work"/cache-kache*; do [ -d "$d" ] && KACHE_DIR="$d" "$kache" supervisor stop >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/ws/src" "$work/ws/.cargo"
cat > "$work/ws/Cargo.toml" <<'EOF'
[package]
name = "ringdemo"
version = "0.1.0"
edition = "2021"
[dependencies]
ring = "0.16"
EOF
cat > "$work/ws/.cargo/config.toml" <<EOF
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "$reg"
[net]
offline = true
EOF
echo 'fn main() { println!("{:?}", ring::digest::digest(&ring::digest::SHA256, b"kache")); }' \
  > "$work/ws/src/main.rs"
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER CC CXX CARGO_TARGET_DIR CCACHE_DIR SCCACHE_DIR
export CARGO_HOME="$work/home" KACHE_CONFIG="$work/none.toml" KACHE_REMOTE=none
export CARGO_TERM_COLOR=never SCCACHE_IDLE_TIMEOUT=0

# envs <config>: the variables of one configuration, one per line
envs() {
  case "$1" in
    none) echo "CC=gcc" ;;
    ccache) echo "CC=ccache gcc"; echo "CCACHE_DIR=$work/cache-ccache" ;;
    kache-c) echo "CC=$kache gcc"; echo "KACHE_DIR=$work/cache-kache-c" ;;
    sccache) echo "RUSTC_WRAPPER=sccache"; echo "CC=sccache gcc"
             echo "SCCACHE_DIR=$work/cache-sccache" ;;
    kache) echo "RUSTC_WRAPPER=$kache"; echo "CC=$kache gcc"; echo "KACHE_DIR=$work/cache-kache" ;;
  esac
}

# reset <config>: an empty cache (sccache's server stopped: it holds its dir)
reset() {
  [ "$1" = sccache ] && { SCCACHE_DIR="$work/cache-sccache" sccache --stop-server >/dev/null 2>&1 || true; }
  case "$1" in kache*) [ -d "$work/cache-$1" ] && KACHE_DIR="$work/cache-$1" "$kache" supervisor stop >/dev/null 2>&1 ;; esac
  rm -rf "$work/cache-$1"
}

# build <config>: one `cargo build -j2` without a target dir, in ms
build() {
  local -a e=()
  local t0 t1 line
  while IFS= read -r line; do e+=("$line"); done < <(envs "$1")
  rm -rf "$work/ws/target"
  t0=$(date +%s%N)
  (cd "$work/ws" && env "${e[@]}" cargo build -j2 -q >/dev/null 2>"$work/err") ||
    { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}

build none > /dev/null # unmeasured: the page cache warmed for the first config alike
for r in $(seq "$runs"); do
  for c in "${configs[@]}"; do
    reset "$c"
    build "$c" >> "$work/$c.cold"
    build "$c" >> "$work/$c.warm"
  done
  echo "run $r of $runs done" >&2
done

base=$(median < "$work/none.cold")
printf '%-9s %10s %10s %12s %12s\n' config "cold ms" "warm ms" "cold/none" "warm/none"
for c in "${configs[@]}"; do
  cold=$(median < "$work/$c.cold") warm=$(median < "$work/$c.warm")
  printf '%-9s %10s %10s %12s %12s\n' "$c" "$cold" "$warm" \
    "$(awk -v a="$cold" -v b="$base" 'BEGIN {printf "%.2f", a / b}')" \
    "$(awk -v a="$warm" -v b="$base" 'BEGIN {printf "%.2f", a / b}')"
done
kw=$(median < "$work/kache.warm")
for c in ccache sccache; do
  echo "kache warm / $c warm: $(awk -v a="$kw" -v b="$(median < "$work/$c.warm")" 'BEGIN {printf "%.2f", a / b}')"
done
echo "kache-c warm / ccache warm: $(awk -v a="$(median < "$work/kache-c.warm")" \
  -v b="$(median < "$work/ccache.warm")" 'BEGIN {printf "%.2f", a / b}')"
echo "(medians of $runs; no-wrapper cold is the base; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
