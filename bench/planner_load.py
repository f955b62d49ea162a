#!/usr/bin/env python3
"""A bounded load test of kache-planner (not part of ctest): starts the real
binary on loopback with a fresh state, records SESSIONS session manifests
(POST /v1/manifests), then sends REQUESTS plan requests over CONNS keep-alive
connections (one client process each: no interpreter lock between them) and
prints p50/p99/max latency as the client saw it, the server-side latency
histogram of the plans (the planner's /metrics: time from the request's
first byte to the answer), the errors and the planner's resident memory
before and after. It stops by itself.

usage: bench/planner_load.py <path to kache-planner> [--sessions 10000]
       [--requests 20000] [--conns 8] [--crates 60]
"""
import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TOKEN = "planner-load-token-0123456789"
POOL = ["crate_%d" % i for i in range(400)]


def hexkey(s):
    return hashlib.blake2b(s.encode(), digest_size=32).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def cpu_s(pid):
    """The process's user + system CPU seconds (/proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lockfile(rng, n):
    """A workspace's crates: n of the pool, each at one of 3 versions."""
    return [(c, "1.0.%d" % rng.randrange(3)) for c in rng.sample(POOL, n)]


def manifest(i, crates):
    fp = hexkey("session-%d" % i)
    return {"fingerprint": fp, "toolchain": "0123456789abcdef", "target": "x86_64",
            "profile": "debug", "created_ms": 1700000000000 + i,
            "keys": [{"key": hexkey("%d-%s-%s" % (i, c, v)), "crate": c, "version": v,
                      "compile_ms": 50 + j, "bytes": 10000 + 100 * j, "order": j}
                     for j, (c, v) in enumerate(crates)]}


def post(conn, path, body):
    conn.request("POST", path, body=body, headers={
        "Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def worker(port, bodies, q):
    lat, errors = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for b in bodies:
        t0 = time.perf_counter()
        try:
            st = post(conn, "/v1/prefetch-plan", b)
        except (OSError, http.client.HTTPException) as e:
            errors.append(repr(e))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        lat.append(time.perf_counter() - t0)
        if st != 200:
            errors.append(st)
    conn.close()
    q.put((lat, errors))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("planner")
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--crates", type=int, default=60)
    a = ap.parse_args()
    rng = random.Random(13)
    tmp = tempfile.mkdtemp(prefix="kache-planner-load-")
    port = free_port()
    log = open(os.path.join(tmp, "planner.log"), "wb")
    env = dict(os.environ, KACHE_PLANNER_TOKEN=TOKEN, KACHE_CONFIG=os.path.join(tmp, "x"),
               KACHE_PLANNER_THREADS=str(a.conns))
    p = subprocess.Popen([a.planner, "--listen", "127.0.0.1:%d" % port, "--db",
                          os.path.join(tmp, "db")], env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or p.poll() is not None:
                sys.exit("planner did not come up")
            time.sleep(0.1)
        t0 = time.time()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(a.sessions):
            st = post(c, "/v1/manifests", json.dumps(manifest(i, lockfile(rng, a.crates))))
            if st != 200:
                sys.exit("ingest %d: %d" % (i, st))
        print("ingested %d sessions of %d crates in %.1f s" % (a.sessions, a.crates,
                                                            time.time() - t0))
        rss0 = rss_kib(p.pid)
        bodies = [json.dumps({"fingerprint": hexkey("intent-%d" % i), "toolchain":
                              "0123456789abcdef", "target": "x86_64", "profile": "debug",
                              "crates": [{"name": n, "version": v}
                                         for n, v in lockfile(rng, a.crates)]}).encode()
                  for i in range(a.requests)]
        lat, errors = [], []
        per = a.requests // a.conns
        q = multiprocessing.Queue()
        ts = [multiprocessing.Process(target=worker, args=(port, bodies[i * per:(i + 1) * per],
                                                             q)) for i in range(a.conns)]
        cpu0 = cpu_s(p.pid)
        t0 = time.time()
        for t in ts:
            t.start()
        for _ in ts:
            got = q.get(timeout=600)
            lat += got[0]
            errors += got[1]
        wall = time.time() - t0
        cpu = cpu_s(p.pid) - cpu0
        for t in ts:
            t.join(timeout=60)
        lat.sort()
        q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000  # noqa: E731
        print("plans: %d over %d connections in %.1f s (%.0f/s); errors %d" % (
            len(lat), a.conns, wall, len(lat) / wall, len(errors)))
        print("client latency ms: p50 %.2f p99 %.2f max %.2f" % (q(0.5), q(0.99), lat[-1] * 1000))
        print("planner CPU: %.2f s for the plans, %.3f ms a plan; load average %s" % (
            cpu, 1000 * cpu / max(1, len(lat)), " ".join("%.2f" % x for x in os.getloadavg())))
        print("planner RSS KiB: %d after ingest, %d after the plans" % (rss0, rss_kib(p.pid)))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        hist = []
        for line in c.getresponse().read().decode().splitlines():
            if line.startswith("kache_planner_request_seconds_bucket") and \
                    "prefetch_plan" in line:
                le = line.split('le="')[1].split('"')[0]
                hist.append((le, int(line.split()[-1])))
            elif line.startswith("kache_planner_plans_total"):
                print("  " + line)
        total = hist[-1][1] if hist else 0
        print("server-side plans by latency (cumulative): " +
              ", ".join("<=%s s: %d" % (le, n) for le, n in hist))
        for f in (0.5, 0.99):
            le = next((le for le, n in hist if n >= f * total), "?")
            print("server-side p%d <= %s s" % (f * 100, le))
        sys.exit(1 if errors else 0)
    finally:
        p.terminate()
        p.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
