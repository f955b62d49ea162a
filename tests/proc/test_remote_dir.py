#!/usr/bin/env python3
"""The directory remote through real supervisors and workers: a burst of uploads
spread over scaled uploaders, and a fetch that imports into a second store.
Environment: KACHED, POKE, FIXTURE (tests/tools/index_fixture)."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_supervisor import SupervisorTest  # noqa: E402
import kache_harness as kh  # noqa: E402
from kache_harness import FIXTURE, inv_of, wait_for  # noqa: E402


class RemoteDirTest(SupervisorTest):
    def setUp(self):
        super().setUp()
        self.remote = os.path.join(self.tmp, "remote")
        self.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.remote)

    def fixture(self, *args, store=None):
        p = subprocess.run([FIXTURE, store or self.dir, *args], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split()

    def intents(self):
        return kh.intents(self.dir)

    def test_burst_of_200_uploads_over_4_uploaders(self):
        self.start()
        self.kached("supervisor", "scale", "uploader=4")
        self.assertTrue(wait_for(lambda: sum(
            w["role"] == "uploader" and w["state"] in ("ready", "busy")
            for w in self.workers()) == 4))
        keys = self.fixture("burst", "200", "3000")
        self.assertEqual(len(keys), 200)
        self.assertTrue(wait_for(lambda: not self.intents(), 90), self.intents()[:5])
        packs = os.listdir(os.path.join(self.remote, "packs", "burst"))
        self.assertEqual(sorted(packs), sorted(k + ".pack" for k in keys))
        manifests = os.listdir(os.path.join(self.remote, "manifests"))
        self.assertEqual(sorted(manifests), sorted(inv_of(k) for k in keys))
        jobs = [w["jobs_done"] for w in self.workers() if w["role"] == "uploader"]
        self.assertEqual(sum(jobs), 200, jobs)
        self.assertGreater(min(jobs), 0, "the burst should spread over all uploaders")

    def test_fetch_imports_into_another_store(self):
        self.start()
        key = self.fixture("burst", "1", "5000")[0]
        self.assertTrue(wait_for(lambda: not self.intents(), 30))
        other = os.path.join(self.tmp, "other-store")
        self.dir, first = other, self.dir
        self.env["KACHE_DIR"] = other
        self.start()
        self.assertEqual(self.poke("fetch", inv_of(key), "2000").split()[0], "ok")
        entry = os.path.join(other, "entries", key[:2], key)
        self.assertTrue(os.path.exists(entry))
        self.assertEqual(self.poke("fetch", "cd" * 32, "2000").split()[0], "miss")
        self.kached("supervisor", "stop")
        self.assertEqual(self.kached("verify").returncode, 0)
        self.dir = first

    def test_a_fetcher_gives_its_import_memory_back_when_idle(self):
        """The memory a fetch's import keeps for the next (the buffer the pack
        is read into, the region it is inflated into: 2 x 16 MiB here) is
        unmapped after 10 s without a fetch, not held for the worker's life.
        Judged by the fall from the peak, not by the level before: under a
        sanitizer the allocator keeps what the import freed for a while."""
        def rss_kb(pid):
            with open("/proc/%d/status" % pid) as f:
                return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])
        self.start()
        key = self.fixture("burst", "1", str(16 << 20))[0]
        self.assertTrue(wait_for(lambda: not self.intents(), 60))
        other = os.path.join(self.tmp, "other-store")
        self.dir, first = other, self.dir
        self.env["KACHE_DIR"] = other
        self.start()
        before = {w["pid"]: rss_kb(w["pid"]) for w in self.workers("fetcher")}
        self.assertEqual(self.poke("fetch", inv_of(key), "20000").split()[0], "ok")
        peak = {pid: rss_kb(pid) for pid in before}
        pid = max(peak, key=lambda p: peak[p] - before[p])  # the fetcher that imported it
        self.assertGreater(peak[pid] - before[pid], 16 << 10, (peak, before))
        # the buffer alone is 16 MiB; without the release nothing falls
        self.assertTrue(wait_for(lambda: peak[pid] - rss_kb(pid) > 12 << 10, 30),
                        (rss_kb(pid), peak[pid], before[pid]))
        # and it maps anew for the next fetch
        os.remove(os.path.join(other, "entries", key[:2], key))
        self.assertEqual(self.poke("fetch", inv_of(key), "20000").split()[0], "ok")
        self.dir = first

    def test_corrupt_pack_is_rejected(self):
        self.start()
        key = self.fixture("burst", "1", "5000")[0]
        self.assertTrue(wait_for(lambda: not self.intents(), 30))
        pack = os.path.join(self.remote, "packs", "burst", key + ".pack")
        data = bytearray(open(pack, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(pack, "wb").write(bytes(data))
        other = os.path.join(self.tmp, "other-store")
        self.dir, first = other, self.dir
        self.env["KACHE_DIR"] = other
        self.start()
        self.assertEqual(self.poke("fetch", inv_of(key), "2000").split()[0], "miss")
        self.assertFalse(os.path.exists(os.path.join(other, "entries", key[:2], key)))
        log = open(os.path.join(other, "logs", "fetcher.0.log")).read()
        self.assertIn("rejected", log)
        self.dir = first


if __name__ == "__main__":
    unittest.main()
