#!/usr/bin/env bash
# Installs what kache builds and tests with, from Debian's packages. Idempotent.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libzmq3-dev libmsgpack-dev librocksdb-dev libcurl4-openssl-dev libssl-dev
      libsodium-dev libzstd-dev libinih-dev libjansson-dev libcmocka-dev
      libxxhash-dev xxhash
      libmicrohttpd-dev
      libncurses-dev tmux strace
      python3 openssl zstd clang-14 libclang-rt-14-dev clang-format clang-tidy cppcheck)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "deps: cargo and rustc must be on PATH (rustup or Debian's cargo)" >&2; exit 1; }
