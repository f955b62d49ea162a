#!/usr/bin/env bash
# Builds a workspace with no wrapper, with sccache and with kache: cold, warm
# (`cargo clean && cargo build`, --warm times per run) and warm from a copy at
# another path with another CARGO_HOME; beside them the floor: the warm target
# directory copied back with `cp -a`, then a no-op `cargo build`. Prints medians,
# ratios measured in this same run, how many compiles reached the real rustc (a
# counting shim sits in RUSTC), kache's own time per hit (median and p95 of the
# journal's `us`) and system calls per hit (`strace -f` of one more warm build).
# --ws small (default: examples/ws-small) or large (bench/ws-large, ~200
# crates; bench/ws-large/setup.sh installs its sources) or a directory. On the
# large one the builds that are full compiles anyway (no wrapper warm and
# moved, sccache moved) are skipped.
# With --remote, also the remote-warm cases: a first machine (store A) fills a
# directory remote and an S3 bucket (moto_server on loopback), then a fresh
# checkout elsewhere with an empty store B builds from it, without prefetch,
# with prefetch racing the build, and in a CI shape (`kache prefetch` as the
# job's first step, a bounded wait for its session, then the build). With --signed as
# well, store A signs what it uploads and store B imports only what a trusted
# key signed (the README's CI recipe), which spares B the hash of every blob.
# Beside them, the peer a CI job uses without a compiler cache (actions/cache,
# rust-cache): store A's warm target directory put in the same remote as one
# tar + zstd -3 archive, which the fresh copy fetches and unpacks before a
# cargo build with no wrapper.
# usage: bench/run.sh --kache build/bin/kache [--ws small|large|DIR] [--runs N] [--warm N]
#        [-j N] [--remote [--signed]]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
kache="" runs=3 warm=1 jobs=2 ws="$here/../examples/ws-small" remote=0 full=1 signed=0
usage="usage: bench/run.sh --kache PATH [--ws small|large|DIR] [--runs N] [--warm N] [-j N] [--remote [--signed]]"
while [ $# -gt 0 ]; do
  case "$1" in
    --kache) kache="$(realpath "$2")"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --warm) warm="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    --ws)
      case "$2" in
        small) ws="$here/../examples/ws-small" ;;
        large) ws="$here/ws-large" full=0
          "$ws/setup.sh" --check >/dev/null || exit 2 ;;
        *) ws="$(realpath "$2")" ;;
      esac
      shift 2 ;;
    --remote) remote=1; shift ;;
    --signed) signed=1; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ -x "$kache" ] || { echo "bench: give the kache binary: --kache build/bin/kache" >&2; exit 2; }
for t in sccache strace jq zstd curl; do
  command -v $t >/dev/null || { echo "bench: $t missing (apt-get install $t)" >&2; exit 2; }
done
work="$(mktemp -d)"
moto_pid=""
cleanup() {
  SCCACHE_DIR="$work/sccache" sccache --stop-server >/dev/null 2>&1 || true
  for st in "$work"/r-*; do [ -d "$st" ] && KACHE_DIR="$st" "$kache" supervisor stop >/dev/null 2>&1; done
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
shim="$work/shim/rustc"
counting_shim "$shim"

# build <label> <tool> <dir> <cargo-home> [cargo args...]: one timed `cargo build`
# (with the args, e.g. `-p cfg-if`), in ms; the compiles that reached rustc in
# $work/count. $PRE (e.g. strace) runs cargo under it.
# cpu_ms <pid> [children]: the CPU (user + system) of a running process so far,
# in ms; with "children", of the children it has waited for instead
cpu_ms() {
  local f=14
  [ "${2:-}" = children ] && f=16
  awk -v t="$(getconf CLK_TCK)" -v f="$f" '{printf "%d\n", ($f + $(f + 1)) * 1000 / t}' \
    "/proc/$1/stat" 2>/dev/null || echo 0
}
build() {
  local tool="$2" dir="$3" home="$4" wrapper=""
  shift 4
  case "$tool" in kache) wrapper="$kache" ;; sccache) wrapper="$(command -v sccache)" ;; esac
  : > "$work/shim.log"
  local t0 t1
  t0=$(date +%s%N)
  (cd "$dir" && SHIM_LOG="$work/shim.log" RUSTC="$shim" RUSTC_WRAPPER="$wrapper" \
     CARGO_HOME="$home" KACHE_DIR="${KSTORE:-$work/kache-store}" SCCACHE_DIR="$work/sccache" \
     ${PRE:-} cargo build -j"$jobs" -q "$@" >/dev/null 2>"$work/err" ) || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  wc -l < "$work/shim.log" > "$work/count"
  # the CPU of cargo and all it waited for (wrappers, rustc, build scripts;
  # not a supervisor a wrapper started)
  cpu_ms "$BASHPID" children > "$work/cpu"
  echo $(( (t1 - t0) / 1000000 ))
}
# floor <dir> <saved-target> <cargo-home>: the warm target directory copied back
# with cp -a, then a no-op cargo build (no wrapper), timed together, in ms
floor() {
  local t0 t1
  rm -rf "$1/target"
  t0=$(date +%s%N)
  cp -a "$2" "$1/target"
  (cd "$1" && RUSTC="$shim" SHIM_LOG="$work/floor.log" CARGO_HOME="$3" RUSTC_WRAPPER="" \
     cargo build -j"$jobs" -q >/dev/null 2>"$work/err") || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  [ -s "$work/floor.log" ] && echo "bench: the floor's cargo build was not a no-op:" \
    "$(wc -l < "$work/floor.log") compile(s)" >&2
  echo $(( (t1 - t0) / 1000000 ))
}
fresh_copy() { discard "$1"; mkdir -p "$(dirname "$1")"; cp -a "$ws" "$1"; chmod -R u+w "$1"; rm -rf "$1/target"; }
events() { echo "$work/kache-store/journal/events"; }
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }

declare -A med cnt times
: > "$work/hit-us"
# Per run: each tool's cold build from an empty cache (no wrapper first: its
# target is the floor's; then sccache and kache in turn), then the warm builds
# interleaved (sccache, kache, floor; no wrapper too when full) so that drift
# in the machine's load falls on all alike, then the moved copies.
for i in $(seq "$runs"); do
  # moved aside, not removed: the cold builds right after would pay ext4's scan
  # of the inodes just freed (lib.sh, discard) for every file they make
  # (their servers stopped first)
  SCCACHE_DIR="$work/sccache" sccache --stop-server >/dev/null 2>&1 || true
  if [ -d "$work/kache-store" ]; then
    KACHE_DIR="$work/kache-store" "$kache" supervisor stop >/dev/null 2>&1 || true
  fi
  discard "$work/kache-store"; discard "$work/sccache"
  # sccache and kache take turns second and third, each after a sync: the
  # build before one leaves writeback (sccache's cache writes) that would
  # otherwise fall on the next (bench/cold-ab.sh)
  order="sccache kache"; [ $((i % 2)) = 0 ] && order="kache sccache"
  for tool in none $order; do
    fresh_copy "$work/a-$tool/ws"
    sync
    times[$tool,cold]+=" $(build x "$tool" "$work/a-$tool/ws" "$work/home-a")"; cnt[$tool,cold]=$(cat "$work/count")
  done
  rm -rf "$work/floor-target"; cp -a "$work/a-none/ws/target" "$work/floor-target"
  off=$(fsize "$(events)")
  for _ in $(seq "$warm"); do
    for tool in none sccache kache floor; do
      [ "$tool" = none ] && [ "$full" = 0 ] && continue
      if [ "$tool" = floor ]; then times[floor,warm]+=" $(floor "$work/a-none/ws" "$work/floor-target" "$work/home-a")"; continue; fi
      (cd "$work/a-$tool/ws" && cargo clean -q)
      times[$tool,warm]+=" $(build x "$tool" "$work/a-$tool/ws" "$work/home-a")"; cnt[$tool,warm]=$(cat "$work/count")
    done
  done
  "$here/hits.py" journal "$(events)" "$off" >> "$work/hit-us"
  for tool in none sccache kache; do
    [ "$tool" != kache ] && [ "$full" = 0 ] && continue
    fresh_copy "$work/b-$tool/elsewhere/ws"
    times[$tool,moved]+=" $(build x "$tool" "$work/b-$tool/elsewhere/ws" "$work/home-b")"; cnt[$tool,moved]=$(cat "$work/count")
    discard "$work/b-$tool"
  done
done
# One more kache warm build, under strace, for the system calls per hit
(cd "$work/a-kache/ws" && cargo clean -q)
mkdir -p "$work/strace"
PRE="strace -f -ff -qq -o $work/strace/t" build x kache "$work/a-kache/ws" "$work/home-a" >/dev/null
sc="$("$here/hits.py" strace "$work/strace/t" "$kache")"
rm -rf "$work/strace"

for tool in none sccache kache floor; do
  for c in cold warm moved; do
    med[$tool,$c]=$(printf '%s\n' ${times[$tool,$c]:-} | median)
  done
done
total=${cnt[none,cold]}
# sec <ms>, ratio <a> <b>, rc <count>: table cells ("-" when not measured)
sec() { [ -n "$1" ] && awk -v a="$1" 'BEGIN{printf "%.2f s", a/1000}' || echo -; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}' || echo -; }
wsname="$(basename "$ws")"
printf '\n%s, -j%s, medians of %s run(s) (warm: %s per run); "rustc" = compiles that reached the real rustc (of %s)\n\n' \
  "$wsname" "$jobs" "$runs" "$warm" "$total"
printf '| case  | no wrapper | sccache | kache | floor | kache/none | kache/sccache | kache/floor | rustc: sccache | rustc: kache |\n'
printf '|-------|-----------:|--------:|------:|------:|-----------:|--------------:|------------:|---------------:|-------------:|\n'
for c in cold warm moved; do
  printf '| %-5s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" \
    "$(sec "${med[none,$c]}")" "$(sec "${med[sccache,$c]}")" "$(sec "${med[kache,$c]}")" \
    "$(sec "${med[floor,$c]}")" "$(ratio "${med[kache,$c]}" "${med[none,$c]}")" \
    "$(ratio "${med[kache,$c]}" "${med[sccache,$c]}")" "$(ratio "${med[kache,$c]}" "${med[floor,$c]}")" \
    "${cnt[sccache,$c]:--}" "${cnt[kache,$c]:--}"
done
if [ -n "${cnt[kache,moved]:-}" ]; then
  served=$(( total - cnt[kache,moved] ))
  printf '\nmoved copy served from the kache store: %s of %s compiles (%s%%)\n' "$served" "$total" \
    "$(awk -v s="$served" -v t="$total" 'BEGIN{printf "%.1f", 100*s/t}')"
fi
nh=$(wc -l < "$work/hit-us")
printf '\nkache per hit (journal `us`: main() to the journal append; %s hits over %s warm build(s)): median %s ms, p95 %s ms\n' \
  "$nh" "$(( runs * warm ))" \
  "$(median < "$work/hit-us" | awk '{printf "%.2f", $1/1000}')" "$(p95 < "$work/hit-us" | awk '{printf "%.2f", $1/1000}')"
printf 'system calls per hit (strace -f of one more warm build; %s hit processes): %s; top: %s; whole build (cargo, build scripts) per hit: %s\n' \
  "$(jq -r .hits <<<"$sc")" "$(jq -r '.per_hit|floor' <<<"$sc")" \
  "$(jq -r '[.top[] | "\(.[0]) \(.[1])"] | join(", ")' <<<"$sc")" \
  "$(jq -r 'if .hits > 0 then (.all_processes / .hits | floor) else "-" end' <<<"$sc")"
printf 'targets: warm <= 1.0x floor: %s; warm <= 0.1x sccache warm: %s; cold <= 1.03x no wrapper: %s\n' \
  "$(ratio "${med[kache,warm]}" "${med[floor,warm]}")" "$(ratio "${med[kache,warm]}" "${med[sccache,warm]}")" \
  "$(ratio "${med[kache,cold]}" "${med[none,cold]}")"

# ---- remote-warm: empty local store, populated remote ----
[ "$remote" = 1 ] || exit 0
drain() { for _ in $(seq 600); do [ -z "$(ls "$1/intents" 2>/dev/null)" ] && return 0; sleep 0.2; done; return 1; }
# sup_stop: stops the supervisor of $KSTORE (its "flush: 0 uploaded" line hidden)
sup_stop() { KACHE_DIR="$KSTORE" "$kache" supervisor stop 2>&1 >/dev/null | grep -v '^flush: ' >&2 || true; }
# pf <field>: a prefetch counter of the supervisor of $KSTORE
pf() { KACHE_DIR="$KSTORE" "$kache" supervisor status --json | jq -r ".prefetch.$1"; }
# pf_wait: waits (at most 120 s) until every hint the supervisor got is over
# (session done or lost, hint dropped, or served by its early session: nothing
# queued); prints the wait in ms
# kache_prefetch <dir> <cargo-home>: `kache prefetch` in dir (a CI job's first
# step: it leaves the hint and returns), in ms
kache_prefetch() {
  local t0 t1
  t0=$(date +%s%N)
  (cd "$1" && RUSTC="$shim" CARGO_HOME="$2" KACHE_DIR="$KSTORE" "$kache" prefetch \
     >/dev/null 2>"$work/err") || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
pf_wait() {
  local t0 t1 st
  t0=$(date +%s%N)
  for _ in $(seq 1200); do
    st=$(KACHE_DIR="$KSTORE" "$kache" supervisor status --json)
    jq -e '.prefetch | .hints >= 1 and .sessions_queued == 0 and (.sessions_done
      + .sessions_lost + .hints_dropped + .hints_malformed + .hints_served_early) >= .hints' \
      <<<"$st" >/dev/null && break
    sleep 0.1
  done
  t1=$(date +%s%N)
  jq -e '.prefetch.sessions_done >= 1' <<<"$st" >/dev/null ||
    echo "bench: no prefetch session finished within 120 s: $(jq -c .prefetch <<<"$st")" >&2
  echo $(( (t1 - t0) / 1000000 ))
}
# populate <type> <run>: store A fills the remote (prefetch off), then times a
# local warm build (`cargo clean && cargo build`, store A) into rt[<type>,local]
populate() {
  export KSTORE="$work/r-$1-a-$2" KACHE_PREFETCH_MAX_BYTES=0
  KACHE_DIR="$KSTORE" "$kache" supervisor start >/dev/null
  fresh_copy "$work/ra/ws"
  build x kache "$work/ra/ws" "$work/home-ra" >/dev/null
  drain "$KSTORE" || { echo "bench: uploads to the $1 remote did not drain" >&2; exit 1; }
  (cd "$work/ra/ws" && cargo clean -q)
  rt[$1,local,build]+=" $(build x kache "$work/ra/ws" "$work/home-ra")"; rc[$1,local]+=" $(cat "$work/count")"
  bc[$1,local]+=" $(cat "$work/cpu")"
  # the target-dir archive of this warm target (its save, untimed)
  tar -C "$work/ra/ws" -cf - target | zstd -q -3 -T0 -f -o "$work/target.tar.zst"
  if [ "$1" = dir ]; then mv "$work/target.tar.zst" "$work/dir-remote-$2.target.tar.zst"
  else
    python3 -c "import boto3,sys; boto3.client('s3', endpoint_url='$KACHE_S3_ENDPOINT', aws_access_key_id='x', aws_secret_access_key='x', region_name='us-east-1').upload_file(sys.argv[1], 'bench', 'run-$2.target.tar.zst')" "$work/target.tar.zst"
    rm -f "$work/target.tar.zst"
  fi
  sup_stop
  unset KSTORE KACHE_PREFETCH_MAX_BYTES
}
# remote_case <type> <run> <case>: a fresh copy elsewhere, an empty store B
# with its supervisor started, the remote populated. Cases: nopf (prefetch
# off), first (prefetch on, the build races it), ci (`kache prefetch`, wait
# for its session, then the build).
remote_case() {
  local type="$1" c="$3" d="$work/rb/far/away/ws" n=0 ms mb pid cpu m0
  export KSTORE="$work/r-$type-b-$2-$c"
  if [ "$c" = nopf ]; then export KACHE_PREFETCH_MAX_BYTES=0; else unset KACHE_PREFETCH_MAX_BYTES; fi
  KACHE_DIR="$KSTORE" "$kache" supervisor start >/dev/null
  fresh_copy "$d"
  if [ "$c" = ci ]; then
    rt[$type,$c,warmup]+=" $(kache_prefetch "$d" "$work/home-rb")"
    rt[$type,$c,wait]+=" $(pf_wait)"
  fi
  m0=$(cpu_ms "$moto_pid")
  rt[$type,$c,build]+=" $(build x kache "$d" "$work/home-rb")"
  rc[$type,$c]+=" $(( n + $(cat "$work/count") ))"
  bc[$type,$c]+=" $(cat "$work/cpu")"
  if [ "$c" = first ]; then
    rd[$type]+=" $(pf sessions_done)"; pf_wait >/dev/null
    mc[$type]+=" $(( $(cpu_ms "$moto_pid") - m0 ))"
  fi
  if [ "$c" != nopf ]; then
    rp[$type,$c]+=" $(pf packs)"
    ms=$(sed -n 's/.* in \([0-9]*\) ms[ ;].*/\1/p' "$KSTORE/logs/prefetch.0.log" 2>/dev/null | tail -1)
    rs[$type,$c]+=" ${ms:-999999}"
    mb=$(sed -n 's/.*blobs written: \([0-9]*\) MB direct.*/\1/p' "$KSTORE/logs/prefetch.0.log" 2>/dev/null | tail -1)
    rw[$type,$c]+=" ${mb:-0}"
    # the worker's CPU (user + system) since it started: its sessions and its start-up
    pid=$(sed -n 's/.*started, pid \([0-9]*\).*/\1/p' "$KSTORE/logs/prefetch.0.log" 2>/dev/null | tail -1)
    cpu=$(cpu_ms "${pid:-0}")
    ru[$type,$c]+=" ${cpu:-0}"
  fi
  sup_stop
  discard "$KSTORE"
  unset KSTORE KACHE_PREFETCH_MAX_BYTES
}
# tar_case <type> <run>: the target-dir archive's restore in a fresh copy
# elsewhere with a fresh CARGO_HOME: fetched (dir: read from its file; S3: one
# GET signed by curl) and unpacked (in rt[<type>,tar,warmup]), then a cargo
# build with no wrapper (rt[<type>,tar,build]); the CPU of both in bc. The
# build must be a no-op: what it ran is said otherwise.
tar_case() {
  local d="$work/rb/far/away/ws" t0 t1 t2 src
  fresh_copy "$d"; discard "$work/home-tb"
  if [ "$1" = dir ]; then src=(cat "$work/dir-remote-$2.target.tar.zst")
  else src=(curl -sf --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
    "$KACHE_S3_ENDPOINT/bench/run-$2.target.tar.zst"); fi
  : > "$work/shim.log"
  t0=$(date +%s%N)
  (
    set -o pipefail
    "${src[@]}" | zstd -dc | tar -C "$d" -xf - || exit 1
    date +%s%N > "$work/t1"
    cd "$d" && RUSTC="$shim" SHIM_LOG="$work/shim.log" RUSTC_WRAPPER="" CARGO_HOME="$work/home-tb" \
      cargo build -j"$jobs" -v >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    cpu_ms "$BASHPID" children > "$work/cpu"
  ) || exit 1
  t2=$(date +%s%N) t1=$(cat "$work/t1")
  grep -q '^ *\(Compiling\|Running\|Dirty\)' "$work/err" &&
    echo "bench: the archive's cargo build was not a no-op: $(grep -c '^ *\(Compiling\|Running\)' "$work/err") step(s)" >&2
  rt[$1,tar,warmup]+=" $(( (t1 - t0) / 1000000 ))"
  rt[$1,tar,build]+=" $(( (t2 - t1) / 1000000 ))"
  rt[$1,tar,wait]+=" 0"
  rc[$1,tar]+=" $(wc -l < "$work/shim.log")"
  bc[$1,tar]+=" $(cat "$work/cpu")"
}
start_moto
if [ "$signed" = 1 ]; then
  pub=$("$kache" keygen --out "$work/sign.key" 2>/dev/null)
  export KACHE_SIGNING_KEY_FILE="$work/sign.key" KACHE_TRUSTED_KEYS="[\"$pub\"]"
fi
declare -A rt rc rp rs rd rw ru bc mc
cases=(nopf first ci tar)
# Interleaved: per run, both remotes; per remote, the four cases in an order
# that rotates from run to run.
for i in $(seq "$runs"); do
  for type in dir s3; do
    remote_env "$type" "$i"
    populate "$type" "$i"
    for k in 0 1 2 3; do
      c=${cases[$(( (k + i) % 4 ))]}
      if [ "$c" = tar ]; then tar_case "$type" "$i"; else remote_case "$type" "$i" "$c"; fi
    done
  done
done
m() { printf '%s\n' $1 | median; }
s() { awk -v a="$1" 'BEGIN{printf "%.2f s", a/1000}'; }
r() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
printf '\nremote-warm, medians of %s run(s); store B empty, other path and CARGO_HOME. "x local" =\n' "$runs"
printf 'ratio to local warm (store A, cargo clean && cargo build) measured in this run; "rustc" =\n'
printf 'compiles that reached the real rustc (of %s, worst run); "session" = the prefetch\n' "$total"
printf "session's own time (its log line), packs it imported, MB of blobs it wrote\n"
printf 'with O_DIRECT (cache.import_writes) and the prefetch worker'"'"'s CPU (user + system)'
[ "$signed" = 1 ] && printf '; packs signed, store B trusts the key'
printf '\n\n'
printf '| remote | case | warm-up | prefetch wait | build | build x local | total | total x local | rustc | served | session |\n'
printf '|--------|------|--------:|--------------:|------:|--------------:|------:|--------------:|------:|-------:|--------:|\n'
declare -A label=([local]="local warm" [nopf]="remote-warm, no prefetch" [first]="remote-warm, prefetch racing the build"
  [ci]="CI shape: kache prefetch, wait for its session, build"
  [tar]="no kache: store A's target dir as one tar + zstd -3 archive; warm-up: fetch and unpack it")
for type in dir s3; do
  lw=$(m "${rt[$type,local,build]}")
  for c in local nopf first ci tar; do
    b=$(m "${rt[$type,$c,build]}") wu=- wa=- tot=0 ses=-
    if [ "$c" = ci ] || [ "$c" = tar ]; then
      wu=$(s "$(m "${rt[$type,$c,warmup]}")") wa=$(s "$(m "${rt[$type,$c,wait]}")")
      tot=$(paste <(printf '%s\n' ${rt[$type,$c,warmup]}) <(printf '%s\n' ${rt[$type,$c,wait]}) \
        <(printf '%s\n' ${rt[$type,$c,build]}) | awk '{print $1+$2+$3}' | median)
    else tot=$b; fi
    case $c in first | ci) ses="$(s "$(m "${rs[$type,$c]}")"), $(m "${rp[$type,$c]}") packs, $(m "${rw[$type,$c]}") MB direct, CPU $(s "$(m "${ru[$type,$c]}")")" ;;
      tar) ses="- (its whole CPU: $(s "$(m "${bc[$type,tar]}")"))" ;; esac
    worst=$(printf '%s\n' ${rc[$type,$c]} | sort -n | tail -1)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%% | %s |\n' "$type" "${label[$c]}" \
      "$wu" "$wa" "$(s "$b")" "$(r "$b" "$lw")" "$(s "$tot")" "$(r "$tot" "$lw")" "$worst" \
      "$(awk -v c="$worst" -v t="$total" 'BEGIN{printf "%.1f", 100*(t-c)/t}')" "$ses"
  done
done
for type in dir s3; do
  printf '\n%s: the prefetch racing the build had finished when the build ended in %s of %s run(s)' \
    "$type" "$(printf '%s\n' ${rd[$type]} | awk '$1 >= 1 {n++} END {print n+0}')" "$runs"
done
printf '\n'
# The CPU the racing case needs against what 1.3x local warm leaves on this
# machine's cores: the build's own (cargo and all it waited for) plus the
# prefetch worker's. When the sum is over the budget no ordering reaches it.
cores=$(nproc)
for type in dir s3; do
  lw=$(m "${rt[$type,local,build]}") lc=$(m "${bc[$type,local]}") fc=$(m "${bc[$type,first]}")
  pc=$(m "${ru[$type,first]}")
  printf '%s: racing CPU %s (build %s, local warm build %s; prefetch %s); 1.3x local warm on %s cores: %s' \
    "$type" "$(s $(( fc + pc )))" "$(s "$fc")" "$(s "$lc")" "$(s "$pc")" "$cores" \
    "$(awk -v w="$lw" -v c="$cores" 'BEGIN{printf "%.2f s", 1.3 * w * c / 1000}')"
  # the emulator serves the packs from the same cores (a real bucket would not)
  [ "$type" = s3 ] && printf '; moto_server on the same cores, not in the sum: %s' "$(s "$(m "${mc[$type]}")")"
  printf '\n'
done
