#!/usr/bin/env bash
# Installs what bench/ws-large builds from: Debian's librust-*-dev packages (their
# crate sources unpack under /usr/share/cargo/registry; apt brings each one's own
# dependencies), plus sccache, strace and jq, which bench/run.sh uses. Then checks
# that every package in Cargo.lock is there. Idempotent; needs root (or sudo).
# usage: bench/ws-large/setup.sh [--check]   (--check: install nothing, only check)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
registry=/usr/share/cargo/registry
# The members' direct dependencies, with the features they ask for.
pkgs=(
  'librust-tokio+full-dev' 'librust-hyper+full-dev' 'librust-serde+derive-dev'
  'librust-serde-json+default-dev' librust-serde-yaml-dev librust-toml-dev
  librust-clap-dev librust-clap-derive-dev 'librust-regex+default-dev' librust-rayon-dev
  'librust-syn+full-dev' 'librust-syn+extra-traits-dev' librust-quote-dev librust-proc-macro2-dev
  librust-tracing-dev 'librust-tracing-subscriber+default-dev'
  'librust-tracing-subscriber+env-filter-dev' 'librust-chrono+default-dev'
  'librust-chrono+serde-dev' 'librust-uuid+v4-dev' 'librust-uuid+serde-dev'
  'librust-rand+default-dev' 'librust-futures+default-dev' 'librust-itertools+default-dev'
  'librust-anyhow+default-dev' librust-thiserror-dev librust-walkdir-dev librust-tempfile-dev
  librust-sha2-dev 'librust-base64+default-dev' librust-csv-dev 'librust-num+default-dev'
  'librust-petgraph+default-dev' librust-pest-dev librust-pest-derive-dev librust-nom-dev
  librust-indicatif-dev librust-crossterm-dev librust-bincode-dev 'librust-flate2+default-dev'
  librust-url-dev librust-globset-dev librust-ignore-dev librust-nix-dev librust-criterion-dev
  librust-image-dev librust-bytes-dev 'librust-log+default-dev' 'librust-env-logger+default-dev'
  librust-semver-dev librust-glob-dev librust-hex-dev librust-ctrlc-dev librust-dirs-dev
  librust-which-dev librust-unicode-segmentation-dev librust-siphasher-dev librust-crossbeam-dev
  librust-arrayvec-dev librust-memmap2-dev librust-filetime-dev librust-shlex-dev
  librust-colored-dev librust-camino-dev librust-fs-extra-dev librust-paste-dev
  sccache strace jq
)

# missing: the name-version of each package of Cargo.lock with no source in the
# registry (our own members have no source line and are skipped)
missing() {
  awk '/^\[\[package\]\]/ {n=""; v=""} /^name = / {n=$3} /^version = / {v=$3}
       /^source = / {gsub(/"/, "", n); gsub(/"/, "", v); print n "-" v}' "$here/Cargo.lock" |
    while read -r nv; do [ -d "$registry/$nv" ] || echo "$nv"; done
}

if [ "${1:-}" != "--check" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
fi
left="$(missing)"
if [ -n "$left" ]; then
  echo "ws-large: $(wc -l <<<"$left") crate source(s) of Cargo.lock missing from $registry:" \
    "$(tr '\n' ' ' <<<"$left"); run bench/ws-large/setup.sh (as root) to install them" >&2
  exit 1
fi
echo "ws-large: all $(grep -c '^source = ' "$here/Cargo.lock") crate sources of Cargo.lock are in $registry"
