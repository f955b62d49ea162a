#!/usr/bin/env python3
"""kached stats, list, gc, verify, purge with a supervisor running for the store:
it owns the index, so the commands go through it and print what they print
without one. Environment: KACHED, FIXTURE. Each test has its own store and kills
what it started in tearDown."""
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import KACHED, POKE, alive, wait_for  # noqa: E402

FUTURE = kh.FUTURE_MS


class IndexSupervisor(kh.IndexedStore, unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp("kache-isup-")
        self.store = os.path.join(self.tmp, "store")
        self.env = kh.store_env(self.tmp, self.store, HOME=self.tmp,
                                drop=("KACHE_MAX_SIZE", "KACHE_FAULT", "KACHE_RESTART_LIMIT",
                                      "KACHE_UPLOADERS", "KACHE_GC_INTERVAL"))

    def tearDown(self):
        reports = kh.end_test_processes(self.tmp, self.store)
        self.assertEqual(reports, [], "sanitizer reports in the logs")

    def store_pids(self):
        return kh.store_pids(self.store)

    def log(self, names=("supervisor.log", "indexer.0.log")):
        """The supervisor's log and its indexer's (which owns the index)."""
        text = ""
        for name in names:
            try:
                with open(os.path.join(self.store, "logs", name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def indexer_pid(self):
        st = json.loads(self.run_k("supervisor", "status", "--json").stdout)
        ws = [w for w in st["workers"] if w["role"] == "indexer" and w["state"] == "ready"]
        return ws[0]["pid"] if ws else None

    def flip_blob(self, store, size):
        """Flips a byte in the one blob of size bytes under store."""
        flipped = 0
        for root, _, files in os.walk(os.path.join(store, "blobs")):
            for f in files:
                p = os.path.join(root, f)
                if os.path.getsize(p) == size:
                    os.chmod(p, 0o644)
                    with open(p, "r+b") as fh:
                        fh.seek(7)
                        byte = fh.read(1)
                        fh.seek(7)
                        fh.write(bytes([byte[0] ^ 1]))
                    flipped += 1
        self.assertEqual(flipped, 1)

    def start(self, wait_index=True):
        self.run_k("supervisor", "start")
        with open(os.path.join(self.store, "run", "supervisor.pid")) as f:
            pid = int(f.read())
        if wait_index:
            self.assertTrue(wait_for(lambda: "open\n" in self.log()), self.log())
        return pid

    def stop(self):
        self.assertIn("stopped", self.run_k("supervisor", "stop").stdout)

    def test_stats_same_with_and_without_supervisor(self):
        self.populate()
        direct_json = self.run_k("stats", "--json").stdout
        direct_text = self.run_k("stats").stdout
        self.start()
        self.assertEqual(self.run_k("stats", "--json").stdout, direct_json)
        self.assertEqual(self.run_k("stats").stdout, direct_text)
        self.assertEqual(self.stats()["hits"], 2)
        self.assertIn("hit rate            40.0%", direct_text)

    def test_stats_zero_with_and_without_supervisor(self):
        """`kache stats --zero` prints the stats up to now (everything
        journalled counted), then zeroes every counter: without a supervisor
        on the index opened here, with one through its indexer (which owns
        the index). What comes after counts from zero; entries stay."""
        a, b, c = self.populate()
        before = self.stats()
        p = self.run_k("stats", "--zero")
        self.assertIn("hits                2", p.stdout)
        self.assertIn("zeroed: every counter above starts again from 0 now", p.stdout)
        after = self.stats()
        for k in ("hits", "misses", "passes", "errors", "bytes_restored", "ms_saved"):
            self.assertEqual(after[k], 0, (k, after))
        self.assertEqual(after["pass_reasons"], {})
        self.assertEqual(after["entries"], before["entries"])
        self.assertGreaterEqual(after["since_ms"], before["since_ms"])
        self.fx("hit", b, FUTURE + 2, 250, 3000)
        self.assertEqual(self.stats()["hits"], 1)

        self.start()
        self.fx("hit", b, FUTURE + 3, 250, 3000)
        z = json.loads(self.run_k("stats", "--zero", "--json").stdout)
        self.assertEqual((z["hits"], z["zeroed"]), (2, True), z)
        self.assertEqual(self.stats()["hits"], 0)
        self.assertIn("stats zeroed", self.log())  # the indexer did it
        self.fx("hit", b, FUTURE + 4, 250, 3000)
        self.assertTrue(wait_for(lambda: self.stats()["hits"] == 1), self.stats())
        self.stop()
        self.assertEqual(self.stats()["hits"], 1)  # kept in the index
        self.run_k("stats", "--bogus", rc=2)

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

    def test_gc_older_than_evicts_entries_unused_that_long(self):
        self.check_gc_older_than(before_gc=self.start)
        self.assertIn("gc requested (cap 10737418240 bytes, unused for 604800000 ms at most)",
                      self.log())

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

    def test_verify_and_purge_through_supervisor(self):
        """verify and purge with a supervisor running print and exit as they do
        on a copy of the same store without one; the supervisor's indexer does
        the work and the supervisor keeps running."""
        a, b, c = self.populate()
        self.stats()  # creates the index in both stores alike
        twin = os.path.join(self.tmp, "twin")
        shutil.copytree(self.store, twin)
        twin_env = dict(self.env, KACHE_DIR=twin)
        for st in (self.store, twin):
            self.flip_blob(st, 3000)

        def direct(*args, rc):
            p = subprocess.run([KACHED, *args], env=twin_env, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, rc, f"{args}: {p.stdout}{p.stderr}")
            return p.stdout

        pid = self.start()
        for args, rc in ((("verify",), 1), (("verify",), 0), (("purge",), 0)):
            via = self.run_k(*args, rc=rc).stdout
            alone = direct(*args, rc=rc)
            if args == ("purge",):  # the journal's bytes differ: the indexer rotates it
                via, alone = via.split("; freed")[0], alone.split("; freed")[0]
            self.assertEqual(via, alone, args)
            if rc == 1:
                self.assertIn("entry with a missing blob (removed): " + b, via)
            if args == ("purge",):
                self.assertIn("removed 2 entries", via)
                self.assertIn("verify requested", self.log())
        self.assertIn("purge requested", self.log())
        self.assertFalse(os.path.exists(self.path("entries", a)))
        self.assertEqual(self.stats()["entries"], 0)
        self.assertTrue(alive(pid))

    def test_scale_indexer_refused(self):
        self.start()
        p = self.run_k("supervisor", "scale", "indexer=2", rc=1)
        self.assertIn("indexer cannot be scaled", p.stderr)
        st = json.loads(self.run_k("supervisor", "status", "--json").stdout)
        self.assertEqual([w["index"] for w in st["workers"] if w["role"] == "indexer"], [0])

    def test_indexer_killed_restarts_and_ingest_continues(self):
        """kill -9 of the indexer: it is restarted, and every journal record
        written before, during and after its death is counted once."""
        a, b, c = self.populate()
        self.start()
        before = self.stats()
        old = self.indexer_pid()
        self.fx("hit", b, FUTURE + 5, 100, 3000)
        os.kill(old, signal.SIGKILL)
        self.fx("hit", a, FUTURE + 6, 100, 4000)
        self.fx("pass", "proc-macro")
        self.assertTrue(wait_for(lambda: self.indexer_pid() not in (None, old), 15),
                        self.log())
        self.fx("hit", c, FUTURE + 7, 100, 2000)
        def counted():
            s = self.stats()
            return s["hits"] == before["hits"] + 3 and s
        s = wait_for(counted, 10)
        self.assertTrue(s, self.stats())
        self.assertEqual(s["passes"], before["passes"] + 1)
        self.assertEqual(s["misses"], before["misses"])
        self.assertIn("signal 9", self.log())

    def test_supervisor_parent_holds_no_index_file(self):
        """The supervisor's own process opens nothing under the store's index/
        (nor index.lock): its indexer does."""
        self.populate()
        pid = self.start()
        self.stats()
        index_dir = os.path.join(self.store, "index")

        def open_files(p):
            out = []
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    out.append(os.readlink(f"/proc/{p}/fd/{fd}"))
                except OSError:
                    pass
            return out
        mine = [f for f in open_files(pid) if f.startswith(index_dir)]
        self.assertEqual(mine, [])
        with open(f"/proc/{pid}/maps") as f:
            self.assertNotIn(index_dir, f.read())
        theirs = [f for f in open_files(self.indexer_pid()) if f.startswith(index_dir)]
        self.assertTrue(theirs, "the indexer holds the index open")

    def test_index_held_at_start_is_retried(self):
        self.populate()
        self.stats()  # creates the index
        with open(os.path.join(self.store, "index.lock"), "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            pid = self.start(wait_index=False)
            self.assertTrue(wait_for(lambda: "held by another process" in self.log()),
                            self.log())
            p = self.run_k("stats", rc=1)
            self.assertIn("kache: supervisor: the indexer cannot open the index yet", p.stderr)
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

    def on_terminal(self, *args, rc=0):
        """Runs kached ARGS with stdout and stderr on a pseudo-terminal (script);
        returns what the terminal received, its line ends as \\n."""
        cmd = " ".join([KACHED, *args])
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        self.assertEqual(p.returncode, rc, p.stdout)
        return p.stdout.decode(errors="replace").replace("\r\n", "\n")

    def check_progress(self, args, line_re, rc=0):
        """ARGS with stderr on a pipe prints no progress at all; on a terminal it
        draws progress lines matching line_re, erases them, and ends with exactly
        the output of the pipe run (the store is unchanged by either run)."""
        piped = self.run_k(*args, rc=rc)
        self.assertEqual(piped.stderr, "", args)
        self.assertNotIn("\r", piped.stdout)
        tty = self.on_terminal(*args, rc=rc)
        drawn = re.findall(r"\r\x1b\[K([^\r\n]*)", tty)
        self.assertTrue(any(re.fullmatch(line_re, d) for d in drawn), (drawn, tty))
        self.assertEqual(tty.rsplit("\r\x1b[K", 1)[1], piped.stdout, tty)
        return drawn

    def test_verify_progress_through_supervisor(self):
        """verify and gc through a running supervisor: the indexer's progress
        reaches the CLI, drawn only on a terminal; the result is unchanged."""
        self.fx("burst", 400, 2000)
        self.start()
        drawn = self.check_progress(("verify",), r"verify: \d+/400 blobs \(\d+%\)")
        self.assertIn("verify: 1/400 entries (0%)", drawn)
        self.check_progress(("gc", "--max-size", "10G"), r"gc: \d+/400 blobs \(\d+%\)")
        self.assertIn("verify requested", self.log())
        self.assertEqual(self.stats()["entries"], 400)

    def test_progress_without_supervisor(self):
        """The same lines when the CLI opens the index itself (index/'s progress
        callback); purge's too."""
        self.fx("burst", 300, 2000)
        drawn = self.check_progress(("verify",), r"verify: \d+/300 blobs \(\d+%\)")
        self.assertIn("verify: 1/300 manifests (0%)", drawn)
        tty = self.on_terminal("purge")
        self.assertIn("\r\x1b[Kpurge: 1/300 blobs (0%)", tty)
        self.assertRegex(tty.rsplit("\r\x1b[K", 1)[1],
                         r"^purge: removed 300 entries and 300 blobs; freed [^\n]+\n$")
        self.assertEqual(self.store_pids(), [])

    def test_malformed_progress_from_a_stranger(self):
        """INDEX_PROGRESS is the indexer's to send: from a client on the control
        socket it gets an error reply (malformed ones: MALFORMED, a well-formed
        one: not a request); a flood of them on the worker socket from a peer
        that never said READY is dropped; the supervisor and its indexer run on."""
        self.populate()
        pid = self.start()
        ipid = self.indexer_pid()
        for case, want in (("progress_past", "reply ERROR 1"), ("progress_esc", "reply ERROR 1"),
                           ("progress_str", "reply ERROR 1"), ("progress", "reply ERROR 3")):
            p = subprocess.run([POKE, "raw", case], env=self.env, capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.stdout.strip(), want, case)
        for case in ("progress", "progress_past"):
            p = subprocess.run([POKE, "flood", case, "200", "workers"], env=self.env,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.stdout.strip(), "sent 200")
        self.assertTrue(alive(pid))
        self.assertEqual(self.indexer_pid(), ipid)
        self.assertEqual(self.stats()["entries"], 3)
        self.assertIn("verify: checked", self.run_k("verify").stdout)


if __name__ == "__main__":
    unittest.main()
