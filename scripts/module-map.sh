#!/usr/bin/env bash
# Prints the folder-level include graph of kache's C code ("from -> to  N",
# N the number of #include lines) and exits 1 when two folders include each
# other, directly or through others (a cycle is a design bug: STYLE.md).
# Usage: scripts/module-map.sh [--check]   (--check prints only problems)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
parts="common proto preload store index s3 remote wrapper supervisor workers cli planner"
folder() { case "$1" in workers/*) echo "$1" | cut -d/ -f1-2 ;; *) echo "${1%%/*}" ;; esac; }
edges=$(grep -rn --include='*.c' --include='*.h' '^#include "' $parts |
  while IFS=: read -r file _ line; do
    inc=${line#*\"}; inc=${inc%%\"*}
    from=$(folder "$file"); to=$(folder "$inc")
    if [ "$from" != "$to" ]; then echo "$from $to"; fi
  done | sort | uniq -c | awk '{print $2" -> "$3"  "$1}')
[ "${1:-}" = "--check" ] || echo "$edges"
# Cycle check: repeatedly drop folders that include nothing left; what remains
# lies on a cycle.
python3 - "$edges" <<'PY'
import sys
g = {}
for line in sys.argv[1].splitlines():
    a, _, b, _ = line.split()
    g.setdefault(a, set()).add(b); g.setdefault(b, set())
while True:
    leaves = [n for n, out in g.items() if not out]
    if not leaves:
        break
    for n in leaves:
        del g[n]
    for out in g.values():
        out.difference_update(leaves)
if g:
    print("cycle among folders: " + ", ".join(sorted(g)), file=sys.stderr)
    sys.exit(1)
PY
