#!/usr/bin/env python3
"""kached stats, list, gc, verify, purge with a supervisor running for the store:
it owns the index, so the commands go through it and print what they print
without one. Environment: KACHED, FIXTURE. Each test has its own store and kills
what it started in tearDown."""
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

KACHED = os.environ.get("KACHED", "build/bin/kached")
FIXTURE = os.environ.get("FIXTURE", "build/tests/index_fixture")
POKE = os.environ.get("POKE", "build/tests/proto_poke")
FUTURE = 9000000000000  # wall ms after the files' mtimes, so LRU order is ours


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class IndexSupervisor(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kache-isup-")
        self.store = os.path.join(self.tmp, "store")
        self.env = dict(os.environ, KACHE_DIR=self.store, HOME=self.tmp,
                        KACHE_CONFIG=os.path.join(self.tmp, "config.toml"),
                        KACHE_HEARTBEAT_MS="200", KACHE_REMOTE="none")
        for k in ("KACHE_MAX_SIZE", "KACHE_FAULT", "KACHE_RESTART_LIMIT", "KACHE_UPLOADERS",
                  "KACHE_GC_INTERVAL"):
            self.env.pop(k, None)

    def tearDown(self):
        for pid in self.store_pids():
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reports = []
        logs = os.path.join(self.store, "logs")
        for name in (os.listdir(logs) if os.path.isdir(logs) else []):
            with open(os.path.join(logs, name), errors="replace") as f:
                text = f.read()
            if "Sanitizer" in text or "runtime error:" in text:
                reports.append(f"{name}:\n{text[-3000:]}")
        if not os.environ.get("KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(reports, [], "sanitizer reports in the logs")

    def store_pids(self):
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if b"KACHE_DIR=" + self.store.encode() + b"\0" in f.read():
                        pids.append(int(d))
            except OSError:
                pass
        return [p for p in pids if p != os.getpid() and alive(p)]

    def fx(self, *args):
        out = subprocess.run([FIXTURE, self.store, *map(str, args)], check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()

    def run_k(self, *args, rc=0, timeout=60):
        p = subprocess.run([KACHED, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        self.assertEqual(p.returncode, rc, f"{args}: {p.stdout}{p.stderr}")
        return p

    def stats(self):
        return json.loads(self.run_k("stats", "--json").stdout)

    def log(self):
        try:
            with open(os.path.join(self.store, "logs", "supervisor.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self, wait_index=True):
        self.run_k("supervisor", "start")
        with open(os.path.join(self.store, "run", "supervisor.pid")) as f:
            pid = int(f.read())
        if wait_index:
            self.assertTrue(wait_for(lambda: "open\n" in self.log()), self.log())
        return pid

    def stop(self):
        self.assertIn("stopped", self.run_k("supervisor", "stop").stdout)

    def populate(self):
        a = self.fx("entry", "serde", 4000, FUTURE - 3000)
        b = self.fx("entry", "libc", 3000, FUTURE - 2000)
        c = self.fx("entry", "serde", 2000, FUTURE - 1000)
        self.fx("hit", a, FUTURE, 250, 4000)
        self.fx("hit", a, FUTURE + 1, 250, 4000)
        self.fx("pass", "proc-macro")
        self.fx("error", "io")
        return a, b, c

    def path(self, kind, key):
        return os.path.join(self.store, kind, key[:2], key)

    def test_stats_same_with_and_without_supervisor(self):
        self.populate()
        direct_json = self.run_k("stats", "--json").stdout
        direct_text = self.run_k("stats").stdout
        self.start()
        self.assertEqual(self.run_k("stats", "--json").stdout, direct_json)
        self.assertEqual(self.run_k("stats").stdout, direct_text)
        self.assertEqual(self.stats()["hits"], 2)
        self.assertIn("hit rate            40.0%", direct_text)

    def test_list_through_supervisor(self):
        a, b, c = self.populate()
        direct = self.run_k("list", "--json").stdout
        direct_text = self.run_k("list").stdout
        direct_serde = self.run_k("list", "serde").stdout
        self.start()
        self.assertEqual(self.run_k("list", "--json").stdout, direct)
        self.assertEqual(self.run_k("list").stdout, direct_text)
        self.assertEqual(self.run_k("list", "serde").stdout, direct_serde)
        rows = json.loads(self.run_k("list", "libc", "--json").stdout)
        self.assertEqual([r["key"] for r in rows], [b])
        self.assertEqual(json.loads(self.run_k("list", "nosuch", "--json").stdout), [])

    def test_gc_through_supervisor_evicts(self):
        a, b, c = self.populate()
        total = self.stats()["store_bytes"]
        self.start()
        out = self.run_k("gc", "--max-size", str(total - 2000), "-v").stdout
        self.assertIn("removed libc " + b[:16], out)
        self.assertIn("removed 1 entries, 1 blobs, 1 manifests", out)
        self.assertFalse(os.path.exists(self.path("entries", b)))
        self.assertTrue(os.path.exists(self.path("entries", a)))
        self.assertEqual(self.stats()["entries"], 2)
        self.assertIn("gc requested", self.log())
        out = self.run_k("gc", "--max-size", "0").stdout
        self.assertIn("removed 2 entries, 2 blobs", out)
        self.assertEqual(self.stats()["store_bytes"], 0)
        self.run_k("gc", "--max-size", "lots", rc=2)

    def test_periodic_gc_applies_max_size(self):
        self.populate()
        self.env.update(KACHE_GC_INTERVAL="1", KACHE_MAX_SIZE="0")
        self.start()
        self.assertTrue(wait_for(lambda: self.stats()["entries"] == 0, timeout=10),
                        self.log())
        self.assertIn("gc: removed 3 entries", self.log())

    def test_supervisor_ingests_journal_on_its_own(self):
        a, b, c = self.populate()
        self.start()
        before = self.stats()
        seen = self.log().count("index: ingested")
        self.fx("hit", b, FUTURE + 5, 100, 3000)
        self.fx("pass", "proc-macro")
        self.fx("entry", "rand", 1000, FUTURE - 500)
        # the tick folds them in: no CLI command runs in between
        self.assertTrue(wait_for(lambda: self.log().count("index: ingested") > seen, timeout=5),
                        self.log())
        s = self.stats()
        self.assertEqual(s["hits"], before["hits"] + 1)
        self.assertEqual(s["passes"], before["passes"] + 1)
        self.assertEqual(s["misses"], before["misses"] + 1)
        self.assertEqual(s["entries"], 4)

    def test_ingested_records_published_as_events(self):
        a, b, c = self.populate()
        self.start()
        self.stats()  # what populate wrote is ingested before we listen
        sub = subprocess.Popen([POKE, "events", "2", "8000"], env=self.env,
                               stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(sub.stdout.readline().strip(), "subscribed")
            time.sleep(0.5)  # the subscription reaches the PUB socket
            self.fx("hit", b, FUTURE + 5, 100, 3000)
            d = self.fx("entry", "rand", 1000, FUTURE - 500)
            out, _ = sub.communicate(timeout=20)
        finally:
            sub.kill()
        self.assertIn(f"event 1 {b}", out)  # EVENT_HIT, result key
        self.assertIn(f"event 2 {d}", out)  # EVENT_MISS

    def test_stopped_supervisor_cli_works_directly(self):
        a, b, c = self.populate()
        self.start()
        with_sup = self.run_k("stats", "--json").stdout
        self.fx("hit", c, FUTURE + 9, 10, 2000)
        self.stop()
        s = self.stats()
        self.assertEqual(s["hits"], 3)
        self.assertEqual(json.loads(with_sup)["hits"], 2)
        self.run_k("verify")
        self.assertEqual(len(json.loads(self.run_k("list", "--json").stdout)), 3)

    def test_verify_and_purge_refused_while_supervisor_runs(self):
        a, b, c = self.populate()
        self.start()
        for cmd in ("verify", "purge"):
            p = self.run_k(cmd, rc=1)
            self.assertIn("stop it first", p.stderr)
            self.assertIn("kache supervisor stop", p.stderr)
        self.assertTrue(os.path.exists(self.path("entries", a)))
        self.assertEqual(self.stats()["entries"], 3)
        self.stop()
        self.run_k("purge")
        self.assertEqual(self.stats()["entries"], 0)

    def test_index_held_at_start_is_retried(self):
        self.populate()
        self.stats()  # creates the index
        with open(os.path.join(self.store, "index.lock"), "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            pid = self.start(wait_index=False)
            self.assertTrue(wait_for(lambda: "held by another process" in self.log()),
                            self.log())
            p = self.run_k("stats", rc=1)
            self.assertIn("kache: supervisor: the supervisor cannot open the index yet", p.stderr)
            fcntl.flock(lk, fcntl.LOCK_UN)
        self.assertTrue(wait_for(lambda: "open\n" in self.log(), timeout=5), self.log())
        self.assertTrue(alive(pid))
        self.assertEqual(self.stats()["hits"], 2)

    def test_hung_supervisor_clear_error(self):
        self.populate()
        pid = self.start()
        os.kill(pid, signal.SIGSTOP)
        try:
            t = time.monotonic()
            p = self.run_k("stats", rc=1)
            self.assertLess(time.monotonic() - t, 10)
            self.assertIn("supervisor", p.stderr)
            self.assertIn("kache supervisor restart", p.stderr)
            self.assertEqual(p.stdout, "")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(self.stats()["hits"], 2)


if __name__ == "__main__":
    unittest.main()
