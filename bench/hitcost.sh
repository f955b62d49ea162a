#!/usr/bin/env bash
# What one hit costs kache: system calls per hit (strace -c -f on the wrapper
# processes alone) and kache's own time per hit (the journal's "us": from the
# wrapper's main to its journal line), median and p95 over several warm builds
# (`cargo clean && cargo build`). Cases: a generated library crate of --files
# source files (one module each), and, with --ws, a workspace (e.g. ws-small).
# usage: bench/hitcost.sh --kache build/bin/kache [--files 300] [--runs 7] [--ws DIR]
#        bench/hitcost.sh --gen DIR [--files 300]   (only write the generated crate)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kache="" files=300 runs=7 ws="" gen=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --files) files="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --ws) ws="$(realpath "$2")"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;   # only write the generated crate there
    *) echo "usage: bench/hitcost.sh --kache PATH [--files N] [--runs N] [--ws DIR]" >&2; exit 2 ;;
  esac
done
[ -n "$gen" ] || [ -x "$kache" ] || { echo "hitcost: give the kache binary: --kache build/bin/kache" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# gen_crate <dir> <n>: a library crate "big" of n modules, a few items each
gen_crate() {
  local d="$1" n="$2" i
  mkdir -p "$d/src"
  printf '[package]\nname = "big"\nversion = "0.1.0"\nedition = "2021"\n' > "$d/Cargo.toml"
  : > "$d/src/lib.rs"
  for ((i = 0; i < n; i++)); do
    echo "pub mod m$i;" >> "$d/src/lib.rs"
    cat > "$d/src/m$i.rs" <<EOF
/// Module $i of a generated crate.
pub struct S$i { pub a: u64, pub b: String }
impl S$i {
    pub fn new(a: u64) -> Self { S$i { a, b: format!("m$i-{}", a) } }
    pub fn sum(&self, xs: &[u64]) -> u64 { xs.iter().fold(self.a, |s, x| s.wrapping_add(*x)) }
}
pub fn f$i(x: u64) -> u64 { x.wrapping_mul($i + 1) ^ 0x5a5a }
EOF
  done
}

# us_of_hits <store> <crate|-> : one "us" per hit event in the journal, for one
# crate or all. The journal is length-prefixed msgpack maps written by
# store/journal.c; this reads only the fields it needs (t, crate, us).
us_of_hits() {
  python3 - "$1/journal/events" "$2" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
want = sys.argv[2]
def uint(b, i):
    c = b[i]
    if c < 0x80: return c, i + 1
    n = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[c]
    return int.from_bytes(b[i + 1:i + 1 + n], "big"), i + 1 + n
i = 0
while i + 4 <= len(data):
    n = struct.unpack(">I", data[i:i + 4])[0]
    rec = data[i + 4:i + 4 + n]
    i += 4 + n
    t = rec.find(b"\xa1t")
    u = rec.find(b"\xa2us")
    c = rec.find(b"\xa5crate")
    if t < 0 or u < 0 or c < 0 or uint(rec, t + 2)[0] != 1:
        continue
    ln = rec[c + 6] & 0x1f if rec[c + 6] & 0xe0 == 0xa0 else rec[c + 7]
    off = c + 7 if rec[c + 6] & 0xe0 == 0xa0 else c + 8
    name = rec[off:off + ln].decode()
    if want in ("-", name):
        print(uint(rec, u + 3)[0])
EOF
}

stats() { sort -n | awk '{v[NR]=$1} END {if (NR==0) {print "n=0"; exit}
  m=v[int((NR+1)/2)]; p=v[int(NR*0.95+0.999)]; if (p=="") p=v[NR];
  printf "n=%d median=%d us p95=%d us\n", NR, m, p}'; }

# measure <label> <dir> <crate|->: cold build, then runs warm builds timed
# from the journal, then one warm build under strace (the wrapper only)
measure() {
  local label="$1" dir="$2" crate="$3" store="$work/store-$1" home="$work/home-$1"
  local env=(KACHE_DIR="$store" CARGO_HOME="$home" RUSTC_WRAPPER="$kache" KACHE_BACKGROUND_STORE=0)
  (cd "$dir" && env "${env[@]}" cargo build -q -j2 2>/dev/null)
  rm -f "$store/journal/events"
  for ((r = 0; r < runs; r++)); do
    (cd "$dir" && cargo clean -q && env "${env[@]}" cargo build -q -j2 2>/dev/null)
  done
  echo "$label: kache's own time per hit: $(us_of_hits "$store" "$crate" | stats)"
  # CPU time of each hit process (task-clock: exec and loader included), which
  # the load of a shared machine changes far less than the wall time above.
  # perf stat (Debian 12's) now and then exits 0 for a workload that exited 1
  # when a build script runs it (`perf stat false` gave 0 in 4 of 10 cargo
  # builds here), and a build script's probe that fails (anyhow's) then reads
  # as a success and the crate fails to build: such a build is run again, its
  # samples dropped.
  if command -v perf >/dev/null; then
    cat > "$work/perf-kache" <<EOS
#!/bin/sh
echo "\$*" > "$work/try/ps-$label.\$\$"
exec perf stat -x, -e task-clock --append -o "$work/try/ps-$label.\$\$" "$kache" "\$@"
EOS
    chmod +x "$work/perf-kache"
    for ((r = 0; r < runs; r++)); do
      for try in 1 2 3 4 5; do
        rm -rf "$work/try"; mkdir "$work/try"
        if (cd "$dir" && cargo clean -q && env "${env[@]}" RUSTC_WRAPPER="$work/perf-kache" \
              cargo build -q -j2 2>/dev/null); then
          mv "$work"/try/* "$work/"; break
        fi
        [ "$try" -lt 5 ] || { echo "bench: the build under perf stat failed 5 times" >&2; exit 1; }
      done
    done
    echo "$label: CPU per hit process (perf stat task-clock): $(for f in "$work"/ps-"$label".*; do
      a=$(sed -n 1p "$f"); case "$a" in *'--crate-name ___'*) continue ;; esac
      [ "$crate" = "-" ] || case "$a" in *"--crate-name $crate "*) ;; *) continue ;; esac
      case "$a" in *'-vV'*) continue ;; esac
      awk -F, '/task-clock/ {printf "%d\n", $1 * 1000}' "$f"; done | stats)"
  fi
  cat > "$work/strace-kache" <<EOS
#!/bin/sh
exec strace -f -o "$work/st-$label.\$\$" "$kache" "\$@"
EOS
  chmod +x "$work/strace-kache"
  (cd "$dir" && cargo clean -q && env "${env[@]}" RUSTC_WRAPPER="$work/strace-kache" \
     cargo build -q -j2 2>/dev/null)
  # a hit: a wrapper of a real compile (not cargo's "___" probe) that exec'd
  # nothing (a miss or a pass-through execs rustc)
  local hits=() f
  for f in "$work"/st-"$label".*; do
    if [ "$(grep -c ' execve(' "$f")" = 1 ] && ! head -1 "$f" | grep -q '"___"' &&
       { [ "$crate" = "-" ] || head -1 "$f" | grep -q "\"--crate-name\", \"$crate\""; }; then
      hits+=("$f")
    fi
  done
  [ ${#hits[@]} -gt 0 ] || { echo "$label: no hit traced" >&2; return; }
  cat "${hits[@]}" | grep -v -e '^[0-9]* +++' -e '^[0-9]* ---' -e 'resumed>' |
    awk -v n=${#hits[@]} -v l="$label" '{s=$2; sub(/\(.*/, "", s); c[s]++; t++}
      END {printf "%s: syscalls per hit (strace -f, %d hits): %d;", l, n, t / n;
           for (k in c) printf " %s %d\n", k, c[k] / n | "sort -k2 -rn | head -8 | tr \"\\n\" \",\""; }'
  echo
}


if [ -n "$gen" ]; then gen_crate "$gen" "$files"; exit 0; fi
gen_crate "$work/big" "$files"
measure "crate-$files-files" "$work/big" big
if [ -n "$ws" ]; then
  cp -a "$ws" "$work/ws"
  rm -rf "$work/ws/target"
  measure ws "$work/ws" -
fi
