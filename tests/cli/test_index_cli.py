#!/usr/bin/env python3
"""Black-box tests of kached stats, gc, list, verify, purge over a store populated
through the C store API (index_fixture). Usage: test_index_cli.py KACHED FIXTURE"""
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402

class IndexCli(kh.IndexedStore, unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp("kache-cli-")
        self.store = os.path.join(self.tmp, "store")
        self.env = dict(os.environ, KACHE_DIR=self.store, HOME=self.tmp,
                        KACHE_CONFIG=os.path.join(self.tmp, "config.toml"))
        self.env.pop("KACHE_MAX_SIZE", None)

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def test_stats_json(self):
        self.populate()
        s = self.stats()
        for k in ("hits", "remote_hits", "misses", "hit_rate", "passes", "pass_reasons",
                  "errors", "error_reasons", "corrupt", "entries", "store_bytes",
                  "bytes_restored", "ms_saved", "compile_ms", "kache_us", "since_ms"):
            self.assertIn(k, s)
        self.assertEqual(s["hits"], 2)
        self.assertEqual(s["misses"], 3)
        self.assertAlmostEqual(s["hit_rate"], 0.4)
        self.assertEqual(s["pass_reasons"], {"proc-macro": 1})
        self.assertEqual(s["error_reasons"], {"io": 1})
        self.assertEqual(s["entries"], 3)
        self.assertEqual(s["bytes_restored"], 8000)
        self.assertEqual(s["ms_saved"], 500)
        self.assertGreaterEqual(s["store_bytes"], 9000)
        self.assertEqual(s["max_size"], 10 << 30)  # the default cap, which the text names
        # Ingested once: a second run counts nothing twice.
        self.assertEqual(self.stats()["hits"], 2)
        text = self.run_k("stats").stdout
        self.assertIn("hit rate            40.0%", text)
        self.assertRegex(text, r"store size +[0-9.]+ KiB of 10.0 GiB \(cache.max_size\)")
        self.assertIn("proc-macro", text)

    def test_list(self):
        a, b, c = self.populate()
        rows = json.loads(self.run_k("list", "--json").stdout)
        self.assertEqual([r["key"] for r in rows][0], a)   # most recently used first
        self.assertEqual(rows[0]["hits"], 2)
        self.assertEqual(rows[0]["size"], 4000)
        serde = json.loads(self.run_k("list", "serde", "--json").stdout)
        self.assertEqual(sorted(r["key"] for r in serde), sorted([a, c]))
        text = self.run_k("list", "libc").stdout
        self.assertIn(b[:16], text)
        self.assertNotIn(a[:16], text)
        self.run_k("list", "--bogus", rc=2)

    def test_gc(self):
        a, b, c = self.populate()
        total = self.stats()["store_bytes"]
        # LRU order: b, c, a (hit last). Room for a and c only.
        out = self.run_k("gc", "--max-size", str(total - 2000), "-v").stdout
        self.assertIn("removed libc " + b[:16], out)
        self.assertIn("removed 1 entries, 1 blobs, 1 manifests", out)
        self.assertFalse(os.path.exists(self.path("entries", b)))
        self.assertTrue(os.path.exists(self.path("entries", a)))
        self.assertEqual(self.stats()["entries"], 2)
        out = self.run_k("gc", "--max-size", "0").stdout
        self.assertIn("removed 2 entries, 2 blobs", out)
        self.assertEqual(self.stats()["store_bytes"], 0)
        self.run_k("gc", "--max-size", "lots", rc=2)

    def test_background_gc(self):
        # kached __gc, which a wrapper starts for a store no supervisor
        # serves: to cache.max_size, said in logs/gc.log
        a, b, c = self.populate()
        total = self.stats()["store_bytes"]
        env = dict(self.env, KACHE_MAX_SIZE=str(total - 2000))
        p = subprocess.run([kh.KACHED, "__gc"], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        self.assertIn("gc: removed 1 entries, 1 blobs", kh.gc_log(self.store))
        self.assertFalse(os.path.exists(self.path("entries", b)))
        self.assertEqual(self.stats()["entries"], 2)
        self.assertEqual(kh.sanitizer_reports(self.store), [])
        # another gc holds run/gc.lock: this one does nothing
        fd = os.open(os.path.join(self.store, "run", "gc.lock"), os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        subprocess.run([kh.KACHED, "__gc"], env=dict(env, KACHE_MAX_SIZE="0"), check=True,
                       timeout=60)
        os.close(fd)
        self.assertEqual(self.stats()["entries"], 2)
        # a supervisor serves the store: its indexer collects, not this
        sup = dict(env, KACHE_REMOTE="none", KACHE_MAX_SIZE="0", KACHE_GC_INTERVAL="3600")
        subprocess.run([kh.KACHED, "supervisor", "start"], env=sup, check=True,
                       capture_output=True, timeout=60)
        try:
            subprocess.run([kh.KACHED, "__gc"], env=sup, check=True, timeout=60)
            self.assertIn("a supervisor runs for", kh.gc_log(self.store))
            self.assertEqual(self.stats()["entries"], 2)
        finally:
            kh.supervisor_stop(kh.KACHED, sup)

    def test_a_command_waits_for_the_background_gc(self):
        # `kache gc` while the background gc holds the index: it waits for it
        # (it used to give up after 2 s: "another kache command ... holds")
        self.populate()
        os.makedirs(os.path.join(self.store, "run"), exist_ok=True)
        held = []
        for name in ("run/gc.lock", "index.lock"):
            fd = os.open(os.path.join(self.store, name), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            held.append(fd)
        gc = subprocess.Popen([kh.KACHED, "gc", "--max-size", "0"], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.5)
        self.assertIsNone(gc.poll(), "kache gc did not wait")
        for fd in held:
            os.close(fd)
        out, err = gc.communicate(timeout=60)
        self.assertEqual(gc.returncode, 0, out + err)
        self.assertIn("waiting for the background gc", err)
        self.assertIn("removed 3 entries", out)

    def test_verify(self):
        a, b, c = self.populate()
        self.run_k("verify")
        ent = self.path("entries", b)
        # b's only blob is the one of 3000 bytes: flip a byte in it.
        flipped = 0
        for root, _, files in os.walk(os.path.join(self.store, "blobs")):
            for f in files:
                p = os.path.join(root, f)
                if os.path.getsize(p) == 3000:
                    os.chmod(p, 0o644)
                    with open(p, "r+b") as fh:
                        fh.seek(7)
                        byte = fh.read(1)
                        fh.seek(7)
                        fh.write(bytes([byte[0] ^ 1]))
                    flipped += 1
        self.assertEqual(flipped, 1)
        p = self.run_k("verify", rc=1)
        self.assertIn("corrupt blob (removed)", p.stdout)
        self.assertIn("entry with a missing blob (removed): " + b, p.stdout)
        self.assertFalse(os.path.exists(ent))
        self.assertTrue(os.path.exists(self.path("entries", a)))
        self.run_k("verify")   # now clean: exit 0
        self.assertIn("exit status", self.run_k("help", "verify").stdout.lower())

    def test_gc_older_than_evicts_entries_unused_that_long(self):
        self.check_gc_older_than()

    def test_gc_reclaims_stale_temporaries_everywhere(self):
        """A killed writer's `.<name>.tmp.*` files, in every store folder, are removed
        by gc once older than the stale age (an hour); younger ones may belong to a
        live writer and stay, as do real files."""
        import time
        a, _, _ = self.populate()
        real = self.path("entries", a)
        old_t = time.time() - 2 * 3600
        planted = {}
        for rel in ("entries/ab", "manifests/cd", "memo/ef", "blobs/01", "intents",
                    "journal", "entries", "memo"):
            d = os.path.join(self.store, rel)
            os.makedirs(d, exist_ok=True)
            for age in ("old", "new"):
                base = "f" * 64 if "/" in rel else "x"
                p = os.path.join(d, ".%s.tmp.%d.%s" % (base, 4242, age))
                open(p, "w").write("partial")
                if age == "old":
                    os.utime(p, (old_t, old_t))
                planted[p] = age
        os.utime(real, (old_t, old_t))
        self.run_k("gc")
        for p, age in planted.items():
            self.assertEqual(os.path.exists(p), age == "new", p)
        self.assertTrue(os.path.exists(real))
        self.assertEqual(self.stats()["entries"], 3)
        self.run_k("verify")

    def test_stats_on_a_read_only_store(self):
        """A store on a read-only mount (or, where mounting is refused, made
        immutable): stats and list still answer, from the index as last written."""
        a, _, _ = self.populate()
        before = self.stats()
        ro = os.path.join(self.tmp, "ro")
        os.makedirs(ro)
        undo = None
        if subprocess.run(["mount", "--bind", self.store, ro], capture_output=True).returncode == 0:
            undo = ["umount", ro]
            if subprocess.run(["mount", "-o", "remount,bind,ro", ro],
                              capture_output=True).returncode != 0:
                subprocess.run(undo, capture_output=True)
                undo = None
        if undo is None:
            ro = self.store
            if subprocess.run(["chattr", "-R", "+i", ro], capture_output=True).returncode != 0:
                self.skipTest("neither a read-only bind mount nor chattr +i works here")
            undo = ["chattr", "-R", "-i", ro]
        try:
            self.env["KACHE_DIR"] = ro
            if os.access(ro, os.W_OK):
                self.skipTest("the store stays writable for this user")
            listing = os.listdir(os.path.join(ro, "index"))
            p = self.run_k("stats", "--json")
            s = json.loads(p.stdout)
            self.assertIn("read-only", p.stderr)
            self.assertEqual((s["entries"], s["hits"]), (before["entries"], before["hits"]))
            self.assertEqual(os.listdir(os.path.join(ro, "index")), listing)
            p = self.run_k("list", "--json")
            self.assertEqual(len(json.loads(p.stdout)), before["entries"])
            self.assertIn("read-only", p.stderr)
            self.assertEqual(os.listdir(os.path.join(ro, "index")), listing)
        finally:
            subprocess.run(undo, capture_output=True)

    def test_purge(self):
        self.populate()
        out = self.run_k("purge").stdout
        self.assertIn("removed 3 entries and 3 blobs", out)
        for kind in ("entries", "blobs", "manifests", "memo"):
            d = os.path.join(self.store, kind)
            self.assertEqual([f for _, _, fs in os.walk(d) for f in fs], [], kind)
        s = self.stats()
        self.assertEqual((s["entries"], s["hits"], s["store_bytes"]), (0, 0, 0))

    def test_lost_and_damaged_index(self):
        a, b, c = self.populate()
        self.stats()
        shutil.rmtree(os.path.join(self.store, "index"))
        s = self.stats()
        self.assertEqual(s["entries"], 3)
        idx = os.path.join(self.store, "index")
        for f in os.listdir(idx):
            with open(os.path.join(idx, f), "wb") as fh:
                fh.write(b"garbage" * 40)
        p = self.run_k("stats", "--json")
        self.assertIn("index was damaged; rebuilt it from the store", p.stderr)
        self.assertIn("counters restart", p.stderr)
        self.assertEqual(json.loads(p.stdout)["entries"], 3)
        keys = {r["key"] for r in json.loads(self.run_k("list", "--json").stdout)}
        self.assertEqual(keys, {a, b, c})

    def test_two_commands_at_once(self):
        """A second command while the first holds the lock waits, then says why."""
        self.populate()
        self.stats()
        # Hold kache's own lock (flock on index.lock), then RocksDB's (fcntl on LOCK).
        import fcntl
        for name, lock in (("index.lock", fcntl.flock), ("index/LOCK", fcntl.lockf)):
            fd = os.open(os.path.join(self.store, name), os.O_RDWR)
            lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                p = self.run_k("stats", rc=1)
                self.assertIn("another kache command or the supervisor holds the index",
                              p.stderr)
            finally:
                os.close(fd)
        self.assertFalse(os.path.exists(os.path.join(self.store, "index.broken")))
        self.run_k("stats")
        # Two real commands concurrently: neither crashes; each succeeds or says busy.
        results = []

        def go():
            p = subprocess.run([kh.KACHED, "gc", "--max-size", "10G"], env=self.env,
                               capture_output=True, text=True, timeout=60)
            results.append(p)
        ts = [threading.Thread(target=go) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for p in results:
            self.assertIn(p.returncode, (0, 1), p.stderr)
            if p.returncode:
                self.assertIn("try again", p.stderr)
            self.assertNotIn("damaged", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.store, "index.broken")))
        self.assertEqual(self.stats()["entries"], 3)


if __name__ == "__main__":
    kh.KACHED, kh.FIXTURE = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
