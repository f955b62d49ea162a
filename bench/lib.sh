# What the bench scripts share; sourced (`. "$here/lib.sh"`), defines functions only.

# median / p95: of the numbers on stdin, one per line
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p95() { sort -n | awk '{a[NR]=$1} END {i=int(NR*0.95+0.999); if(i<1)i=1; print a[i]}'; }
# free_port: a loopback TCP port nobody listens on now (bound, read, closed)
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
