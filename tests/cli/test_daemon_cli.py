#!/usr/bin/env python3
"""`kache daemon` alone prints the status (workers, hits and misses); status
tells a hung supervisor (SIGSTOP: lock held, no answer; exit 4) from a stopped
one (exit 3); `daemon log` follows as tail -f (new lines appear; it ends when
the log is gone or on SIGTERM), `-n N` prints N lines and exits.
Environment: KACHED, FIXTURE."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import KACHED, wait_for  # noqa: E402


class Daemon(kh.IndexedStore, unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp("kache-daemon-")
        self.store = os.path.join(self.tmp, "store")
        self.env = kh.store_env(self.tmp, self.store, HOME=self.tmp,
                                drop=("KACHE_MAX_SIZE", "KACHE_FAULT", "KACHE_GC_INTERVAL"))

    def tearDown(self):
        reports = kh.end_test_processes(self.tmp, self.store)
        self.assertEqual(reports, [], "sanitizer reports in the logs")

    def start(self):
        self.run_k("supervisor", "start")
        with open(os.path.join(self.store, "run", "supervisor.pid")) as f:
            return int(f.read())

    def test_no_subcommand_prints_status_with_counts(self):
        self.populate()
        self.start()
        # the indexer folds the journal in within a second or two
        ok = wait_for(lambda: "1 pass-throughs" in self.run_k("daemon").stdout, timeout=20)
        out = self.run_k("daemon").stdout
        self.assertTrue(ok, out)
        self.assertIn("supervisor: pid", out)
        self.assertIn("indexer", out)
        self.assertIn("compiles: 2 hits (0 prefetched, 0 remote), 3 misses, 1 pass-throughs, 3 entries", out)
        doc = json.loads(self.run_k("daemon", "status", "--json").stdout)
        self.assertEqual(doc["index"]["hits"], 2)
        self.assertIs(doc["remote_off"], False)

    def test_stopped(self):
        p = self.run_k("daemon", rc=3)
        self.assertIn("not running", p.stdout)
        self.assertEqual(json.loads(self.run_k("daemon", "status", "--json", rc=3).stdout),
                         {"state": "not running"})

    def test_hung_is_told_from_stopped(self):
        pid = self.start()
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            p = self.run_k("daemon", rc=4, timeout=30)
            self.assertLess(time.monotonic() - t0, 20)
            self.assertIn("hung", p.stdout)
            self.assertIn("pid %d" % pid, p.stdout)
            doc = json.loads(self.run_k("daemon", "status", "--json", rc=4).stdout)
            self.assertEqual(doc, {"state": "hung", "pid": pid})
        finally:
            os.kill(pid, signal.SIGCONT)
        self.run_k("daemon", rc=0)

    def write_log(self, lines):
        os.makedirs(os.path.join(self.store, "logs"), exist_ok=True)
        path = os.path.join(self.store, "logs", "supervisor.log")
        with open(path, "a") as f:
            f.write("".join(l + "\n" for l in lines))
        return path

    def test_log_n_one_shot(self):
        self.write_log(["line %d" % i for i in range(10)])
        out = self.run_k("daemon", "log", "-n", "3", timeout=10).stdout
        self.assertEqual(out, "line 7\nline 8\nline 9\n")

    def follow(self):
        return subprocess.Popen([KACHED, "daemon", "log"], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def test_log_follows_until_gone(self):
        path = self.write_log(["old"])
        p = self.follow()
        try:
            self.assertEqual(p.stdout.readline(), "old\n")
            self.write_log(["new one"])
            self.assertEqual(p.stdout.readline(), "new one\n")
            os.unlink(path)
            self.assertEqual(p.wait(timeout=15), 0)
            self.assertIn("is gone", p.stderr.read())
        finally:
            p.kill()
            p.wait()

    def test_log_follow_ends_on_sigterm(self):
        self.write_log(["x"])
        p = self.follow()
        try:
            self.assertEqual(p.stdout.readline(), "x\n")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10), -signal.SIGTERM)
        finally:
            p.kill()
            p.wait()


class FirstIndexProgress(kh.IndexedStore, unittest.TestCase):
    """The first index build over a store (no index yet) shows how far it got on
    a terminal and nothing when piped; the result is the same."""

    def setUp(self):
        self.tmp = kh.make_tmp("kache-firstix-")
        self.store = os.path.join(self.tmp, "store")
        self.env = kh.store_env(self.tmp, self.store, HOME=self.tmp)

    def tearDown(self):
        kh.end_test_processes(self.tmp, self.store)

    def test_first_index_build_progress(self):
        self.fx("burst", 200, 100)
        shutil.rmtree(os.path.join(self.store, "intents"))
        p = subprocess.run(["script", "-qec", f"{KACHED} list burst", "/dev/null"],
                           env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=120)
        tty = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, tty)
        self.assertIn("\r\x1b[Kindex: 1 entries scanned", tty)
        shutil.rmtree(os.path.join(self.store, "index"))
        piped = self.run_k("list", "burst")
        self.assertEqual(piped.stderr, "")
        self.assertNotIn("\r", piped.stdout)
        self.assertEqual(tty.rsplit("\r\x1b[K", 1)[1].replace("\r\n", "\n"), piped.stdout)


if __name__ == "__main__":
    unittest.main()
