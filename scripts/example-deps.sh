#!/usr/bin/env bash
# Installs the crate sources the bundled example (examples/ws-small) builds from:
# Debian's librust-*-dev packages, which unpack under /usr/share/cargo/registry.
set -euo pipefail
pkgs=(librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-regex-dev
      librust-clap-dev librust-log-dev librust-anyhow-dev librust-thiserror-dev
      librust-itertools-dev librust-once-cell-dev librust-env-logger-dev
      'librust-regex+default-dev' 'librust-env-logger+default-dev' 'librust-serde+derive-dev'
      'librust-serde-json+default-dev' 'librust-itertools+default-dev'
      'librust-once-cell+default-dev' 'librust-anyhow+default-dev' 'librust-log+default-dev'
      librust-cc-dev   # the cc crate: tests/scenarios/test_cc.py builds C through it
      librust-ring-dev librust-blake3-dev  # C and assembly from build scripts: test_cc.py RealCCrates, bench/cc.sh
      librust-rust-embed-dev  # a proc macro that lists a folder: test_trace.py RealProcMacros
      ccache)          # bench/cc.sh compares against it
[ -d /usr/share/cargo/registry/clap-4.0.32 ] && [ -d /usr/share/cargo/registry/serde_json-1.0.91 ] &&
  [ -d /usr/share/cargo/registry/cc-1.0.73 ] && [ -d /usr/share/cargo/registry/ring-0.16.20 ] &&
  [ -d /usr/share/cargo/registry/blake3-1.3.1 ] && [ -d /usr/share/cargo/registry/rust-embed-6.4.2 ] &&
  command -v ccache >/dev/null && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
