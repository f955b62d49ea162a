# What the bench scripts share; sourced (`. "$here/lib.sh"`), defines functions only.

# counting_shim <file>: writes there a rustc for RUSTC that appends a line to
# $SHIM_LOG for each compile (cargo's `--crate-name ___` queries left out),
# then runs the toolchain's real rustc
counting_shim() {
  local rustc_real
  rustc_real="$(rustc --print sysroot)/bin/rustc"
  mkdir -p "$(dirname "$1")"
  cat > "$1" <<EOS
#!/bin/sh
case " \$* " in *' --crate-name ___ '*) ;; *' --crate-name '*) echo x >> "\$SHIM_LOG";; esac
exec "$rustc_real" "\$@"
EOS
  chmod +x "$1"
}
# median / p95: of the numbers on stdin, one per line
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p95() { sort -n | awk '{a[NR]=$1} END {i=int(NR*0.95+0.999); if(i<1)i=1; print a[i]}'; }
# free_port: a loopback TCP port nobody listens on now (bound, read, closed)
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# discard <dir>: out of $work's way now, removed with $work when the bench
# ends. ext4 scans the inodes freed in the last minute each time it makes a
# new one (recently_deleted: a third of the CPU of a remote-warm build right
# after the previous case's store was removed), which no fresh runner pays.
discard() { [ -e "$1" ] || return 0; mkdir -p "$work/trash"; mv "$1" "$work/trash/$(date +%s%N)"; }
# start_moto: moto_server on a free loopback port with the bucket "bench";
# sets moto_pid (the caller kills it) and exports the S3 remote's variables
# for it (the prefix is the caller's).
start_moto() {
  local port
  port=$(free_port)
  moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 & moto_pid=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/moto-api/" >/dev/null && break; sleep 0.2; done
  python3 -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:$port', aws_access_key_id='x', aws_secret_access_key='x', region_name='us-east-1').create_bucket(Bucket='bench')"
  export KACHE_REMOTE=s3 KACHE_S3_ENDPOINT="http://127.0.0.1:$port" KACHE_S3_BUCKET=bench \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
}
# remote_env <dir|s3> <run>: points kache at a directory remote of its own
# under $work, or at start_moto's bucket (started first) under a prefix of
# its own
remote_env() {
  if [ "$1" = dir ]; then
    export KACHE_REMOTE=dir KACHE_REMOTE_PATH="$work/dir-remote-$2"
  else
    export KACHE_REMOTE=s3 KACHE_S3_PREFIX="run-$2"
  fi
}
# kache_arg OPTION VALUE: --kache and --with of the A/B scripts (race-ab.sh,
# cold-ab.sh, warm-ab.sh), appended to the caller's arrays bins and withs (--with: a
# NAME=VALUE for the --kache before it); 1 for any other option
kache_arg() {
  case "$1" in
    --kache) bins+=("$(realpath "$2")"); withs+=("") ;;
    --with) [ ${#bins[@]} -ge 1 ] && [[ "$2" == *=* ]] ||
              { echo "bench: --with NAME=VALUE after the --kache it is for" >&2; exit 2; }
            withs[$((${#bins[@]} - 1))]+=" $2" ;;
    *) return 1 ;;
  esac
}
# local_ab_work: for the A/B scripts with no remote whose stores are
# $work/store-* (cold-ab.sh, warm-ab.sh): checks that the first --kache is
# there, makes $work, and on exit stops each store's supervisor and removes
# $work; a remote in the caller's environment is unset
local_ab_work() {
  [ ${#bins[@]} -ge 1 ] && [ -x "${bins[0]}" ] ||
    { echo "bench: give the kache binary: --kache build-rel/bin/kache" >&2; exit 2; }
  work="$(mktemp -d)"
  trap local_ab_cleanup EXIT
  unset KACHE_REMOTE KACHE_REMOTE_PATH KACHE_S3_ENDPOINT KACHE_S3_BUCKET
}
local_ab_cleanup() {
  for st in "$work"/store-*; do [ -d "$st" ] && KACHE_DIR="$st" "${bins[0]}" supervisor stop >/dev/null 2>&1; done
  rm -rf "$work"
}
