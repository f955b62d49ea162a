# What the bench scripts share; sourced (`. "$here/lib.sh"`), defines functions only.

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
