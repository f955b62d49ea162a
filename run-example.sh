#!/usr/bin/env bash
# Sets up, builds kache, and runs the main job on the bundled example: a cold and
# then a warm `cargo build` of examples/ws-small under kache, with what was served.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/scripts/deps.sh"
"$here/scripts/example-deps.sh"
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=Release -DKACHE_TESTING=OFF >/dev/null
make -C "$here/build" -j"$(nproc)" --no-print-directory >/dev/null
kache="$here/build/bin/kache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -a "$here/examples/ws-small" "$work/ws" && chmod -R u+w "$work/ws"
export KACHE_DIR="$work/store" CARGO_HOME="$work/cargo-home" RUSTC_WRAPPER="$kache"
cd "$work/ws"
t0=$(date +%s%N); cargo build -j2 -q; t1=$(date +%s%N)
echo "cold build: $(( (t1 - t0) / 1000000 )) ms"
"$kache" stats 2>/dev/null | sed 's/^/  /' || true
cargo clean -q
t0=$(date +%s%N); cargo build -j2 -q; t1=$(date +%s%N)
echo "warm build (cargo clean && cargo build): $(( (t1 - t0) / 1000000 )) ms"
"$kache" stats 2>/dev/null | sed 's/^/  /' || true
echo "the example's binary says: $(./target/debug/bench-app --help | head -1)"
