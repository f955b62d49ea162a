#!/usr/bin/env python3
"""What one hit costs, for bench/run.sh (and a miss, for bench/dead-remote.sh).

  hits.py journal EVENTS [OFFSET]  the `us` field (time spent in kache, from the
      wrapper's main() to its journal append) of every hit record past OFFSET of
      a store's journal/events file, one per line, in microseconds
  hits.py journal-misses EVENTS    the same of every miss record (kache's own
      time around the compile: its key, a fetch it waited on, the store)
  hits.py strace PREFIX KACHE      reads the per-process files of `strace -f -ff
      -o PREFIX` over one build; prints a JSON object: hits (processes that exec'd
      KACHE and nothing else and started no child: a hit never starts rustc), their system calls
      (total, per hit, the most frequent by name per hit) and every process's calls
"""
import collections
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "harness"))
from kache_harness import mp_decode  # noqa: E402  (the tests' own msgpack reader)

JOURNAL_HIT = 1
JOURNAL_MISS = 2
FORKS = ("clone", "clone3", "fork", "vfork")


def journal(path, offset=0, kind=JOURNAL_HIT):
    with open(path, "rb") as f:
        data = f.read()[offset:]
    pos = 0
    while len(data) - pos >= 4:
        n = int.from_bytes(data[pos:pos + 4], "big")
        if len(data) - pos - 4 < n:
            break
        ev, _ = mp_decode(data[pos + 4:pos + 4 + n])
        if isinstance(ev, dict) and ev.get("t") == kind:
            print(ev.get("us", 0))
        pos += 4 + n


CALL = re.compile(r"^(?:\d+:\d+:\d+\.\d+ |\d+\.\d+ )?([a-z_0-9]+)\(")
EXECVE = re.compile(r'^(?:[\d:.]+ )?execve\("([^"]*)".* = 0$')


def strace(prefix, kache):
    hits, per_name, every = 0, collections.Counter(), 0
    for path in glob.glob(prefix + ".*"):
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
        calls = [m.group(1) for m in map(CALL.match, lines) if m]
        every += len(calls)
        execs = [m.group(1) for m in map(EXECVE.match, lines) if m]
        if execs == [kache] and not any(c in FORKS for c in calls):
            hits += 1
            per_name.update(calls)
    total = sum(per_name.values())
    print(json.dumps({"hits": hits, "calls": total, "per_hit": total / hits if hits else 0,
                      "top": [(k, round(v / hits, 1)) for k, v in per_name.most_common(6)], "all_processes": every}))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "journal":
        journal(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif len(sys.argv) == 3 and sys.argv[1] == "journal-misses":
        journal(sys.argv[2], 0, JOURNAL_MISS)
    elif len(sys.argv) == 4 and sys.argv[1] == "strace":
        strace(sys.argv[2], os.path.realpath(sys.argv[3]))
    else:
        sys.exit(__doc__)
