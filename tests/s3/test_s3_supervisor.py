#!/usr/bin/env python3
"""The S3 remote through real supervisors and workers against moto_server, with
tests/tools/faultproxy.py in between: a multipart pack round-trips, and an
uploader killed in the middle of a multipart upload leaves no visible object and
finishes the upload once restarted. Fetching in parallel: two fetchers serve two
fetches at once, a prefetch keeps s3.fetch_concurrency transfers in flight, a
fetch joins a prefetch's download of the same pack, and a prefetch killed
mid-transfer leaves nothing. Environment: KACHED, POKE, FIXTURE."""
import json
import os
import signal
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, os.path.join(HERE, "..", "proc"))
import kache_harness as kh  # noqa: E402
from kache_harness import FIXTURE, boto, inv_of, start_moto, stop, wait_for  # noqa: E402
from test_supervisor import SupervisorTest  # noqa: E402

BUCKET = "kache-proc"


class RemoteS3Test(SupervisorTest):
    @classmethod
    def setUpClass(cls):
        cls.moto, cls.port = start_moto()
        cls.s3 = boto(cls.port)
        cls.s3.create_bucket(Bucket=BUCKET)

    @classmethod
    def tearDownClass(cls):
        stop(cls.moto)

    def setUp(self):
        super().setUp()
        self.control = os.path.join(self.tmp, "control.json")
        self.plog = os.path.join(self.tmp, "proxy.log")
        self.fault({"mode": "pass"})
        self.pstats = os.path.join(self.tmp, "proxy-stats.json")
        self.proxy, self.pport = kh.start_proxy(self.port, self.control, self.plog,
                                                self.pstats)
        self.prefix = "proc-" + self._testMethodName[-12:]
        kh.drop_prefixed(self.env, "AWS_")
        self.env.update(KACHE_REMOTE="s3", KACHE_S3_BUCKET=BUCKET, KACHE_S3_PREFIX=self.prefix,
                        KACHE_S3_ENDPOINT="http://127.0.0.1:%d" % self.pport,
                        AWS_ACCESS_KEY_ID="AKIDPROC", AWS_SECRET_ACCESS_KEY="proc-secret",
                        AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.tmp, "none"),
                        KACHE_S3_MULTIPART_THRESHOLD="5M")

    def tearDown(self):
        stop(self.proxy)
        super().tearDown()

    def fault(self, ctl):
        kh.write_fault(self.control, ctl)

    def fixture(self, *args):
        p = subprocess.run([FIXTURE, self.dir, *args], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split()

    def intents(self):
        return kh.intents(self.dir)

    def pack_key(self, res):
        return "%s/packs/burst/%s.pack" % (self.prefix, res)

    def visible(self, key):
        try:
            self.s3.head_object(Bucket=BUCKET, Key=key)
            return True
        except Exception:
            return False

    def proxy_lines(self):
        return open(self.plog).read().splitlines() if os.path.exists(self.plog) else []

    def test_killed_multipart_upload_leaves_nothing_then_completes(self):
        self.start()
        # part 2 of the multipart upload hangs long enough to kill the uploader
        self.fault({"mode": "slow", "delay": 20, "methods": ["PUT"], "match": "partNumber=2"})
        res = self.fixture("burst", "1", str(12 * 1024 * 1024))[0]
        self.assertTrue(wait_for(lambda: any("partNumber=1" in l and " 200 " in l
                                             for l in self.proxy_lines()), 30),
                        self.proxy_lines())
        uploader = [w for w in self.workers() if w["role"] == "uploader"][0]
        os.kill(uploader["pid"], signal.SIGKILL)
        self.assertFalse(self.visible(self.pack_key(res)), "a half upload became visible")
        self.assertEqual(self.intents(), [res], "the intent must survive the kill")
        self.fault({"mode": "pass"})
        self.assertTrue(wait_for(lambda: not self.intents(), 90), "the upload never finished")
        head = self.s3.head_object(Bucket=BUCKET, Key=self.pack_key(res))
        self.assertGreater(head["ContentLength"], 5 * 1024 * 1024)
        self.assertTrue(head["ETag"].strip('"').endswith("-2"), head["ETag"])
        # and the multipart pack round-trips into another store
        first = self.dir
        self.dir = os.path.join(self.tmp, "other-store")
        self.env["KACHE_DIR"] = self.dir
        self.start()
        self.assertEqual(self.poke("fetch", inv_of(res), "10000").split()[0], "ok")
        self.assertTrue(os.path.exists(os.path.join(self.dir, "entries", res[:2], res)))
        self.kached("supervisor", "stop")
        self.assertEqual(self.kached("verify").returncode, 0)
        self.dir = first


    def test_a_pack_past_the_memory_cap_is_fetched_through_a_file(self):
        """A pack over 32 MiB (the cap of a download into memory) is fetched
        too: the read into memory stops at its Content-Length, and the pack is
        then opened (streamed into an unnamed file) and imported whole."""
        self.start()
        res = self.fixture("burst", "1", str(40 * 1024 * 1024))[0]
        self.poke("notify", res)
        self.assertTrue(wait_for(lambda: not self.intents(), 120), "the upload never finished")
        head = self.s3.head_object(Bucket=BUCKET, Key=self.pack_key(res))
        self.assertGreater(head["ContentLength"], 32 * 1024 * 1024)
        self.kached("supervisor", "stop")
        self.dir = os.path.join(self.tmp, "store-b")
        self.env["KACHE_DIR"] = self.dir
        self.start()
        open(self.plog, "w").close()
        self.assertEqual(self.poke("fetch", inv_of(res), "60000").split()[0], "ok")
        # two GETs of the pack begun: the read, given up at the headers (the
        # proxy logs no line for it); the open, whole
        self.assertEqual(len(self.gets_begun(res)), 2, self.proxy_stats())
        self.assertEqual(len(self.gets_of(res)), 1, self.proxy_lines())
        self.assertEqual(self.entries(), [res])
        blobs = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(self.dir, "blobs"))
                 for f in fs]
        self.assertEqual([os.path.getsize(b) for b in blobs], [40 * 1024 * 1024], blobs)
        self.kached("supervisor", "stop")
        self.assertEqual(self.kached("verify").returncode, 0)


    # --- fetching in parallel -------------------------------------------------

    def populate(self, n):
        """n results of crate burst uploaded from store A; returns their result keys.
        Then self.dir is store B (empty), not started."""
        self.start()
        res = self.fixture("burst", str(n), "3000")
        self.poke("notify", res[0])
        self.assertTrue(wait_for(lambda: not self.intents(), 60), "uploads did not drain")
        self.kached("supervisor", "stop")
        self.assertTrue(wait_for(lambda: not self.store_pids()), self.store_pids())
        self.dir = os.path.join(self.tmp, "store-b")
        self.env["KACHE_DIR"] = self.dir
        open(self.plog, "w").close()
        return sorted(res)

    def hint(self):
        """A build session of a workspace whose Cargo.lock names burst."""
        ws = os.path.join(self.tmp, "ws")
        os.makedirs(ws, exist_ok=True)
        with open(os.path.join(ws, "Cargo.lock"), "w") as f:
            f.write('version = 3\n\n[[package]]\nname = "burst"\nversion = "0.1.0"\n')
        self.assertEqual(self.poke("hint", ws, os.path.join(ws, "Cargo.lock")), "ok")

    def prefetch_done(self, timeout=60):
        st = wait_for(lambda: (self.status() or {}).get("prefetch", {}).get("sessions_done", 0)
                      >= 1 and self.status()["prefetch"], timeout)
        self.assertTrue(st, self.status())
        return st

    def proxy_stats(self):
        try:
            with open(self.pstats) as f:
                return json.load(f)
        except OSError:
            return {"max_inflight": {}, "begun": []}

    def max_inflight(self, method="GET"):
        return self.proxy_stats()["max_inflight"].get(method, 0)

    def gets_begun(self, res):
        """The GETs of the pack of res that reached the proxy (a GET the
        client gave up has no line in its log, but is here)."""
        return [b for b in self.proxy_stats()["begun"]
                if b.startswith("GET ") and res + ".pack" in b]

    def began(self, res):
        """1 once a GET of the pack of res reached the proxy."""
        return bool(self.gets_begun(res))

    def gets_of(self, res):
        return [l for l in self.proxy_lines() if l.startswith("GET ") and res + ".pack" in l]

    def entries(self):
        return sorted(kh.entry_keys(self.dir))

    def test_status_counts_uploads_and_fetches_by_how_they_ended(self):
        """The status's `outcomes` (what the monitor's Remote tab shows): two
        uploads ok; then, on another store, a fetch that finds its pack, one of a
        result the remote does not hold, and one the remote fails (503)."""
        self.start()
        res = self.fixture("burst", "2", "3000")
        self.poke("notify", res[0])
        self.assertTrue(wait_for(lambda: not self.intents(), 60), "uploads did not drain")
        up = self.status()["outcomes"]["uploads"]
        self.assertEqual((up["ok"], up["failed"], up["remote_off"]), (2, 0, 0), up)
        self.kached("supervisor", "stop")
        self.dir = os.path.join(self.tmp, "store-b")
        self.env["KACHE_DIR"] = self.dir
        self.start()
        self.assertEqual(self.poke("fetch", inv_of(res[0]), "10000").split()[0], "ok")
        self.assertEqual(self.poke("fetch", "ab" * 32, "10000").split()[0], "miss")
        self.fault({"mode": "503", "methods": ["GET"]})
        self.assertEqual(self.poke("fetch", inv_of(res[1]), "10000").split()[0], "miss")
        out = self.status()["outcomes"]
        f = out["fetches"]
        self.assertEqual((f["ok"], f["miss"], f["failed"]), (1, 1, 1), out)
        self.assertEqual(out["fetch_breaker"], "closed", out)

    def test_two_fetchers_serve_two_fetches_at_once(self):
        """With the default two fetchers, two wrappers' fetches over a slow remote
        are downloaded at the same time: the proxy sees both pack GETs in flight
        together, and both fetches are answered ok."""
        a, b = self.populate(2)
        self.start()
        self.assertEqual(len(self.workers("fetcher")), 2)
        self.fault({"mode": "slow", "delay": 2, "methods": ["GET"], "match": "/packs/"})
        procs = [subprocess.Popen([kh.POKE, "fetch", inv_of(r), "20000"], env=self.env,
                                  stdout=subprocess.PIPE, text=True) for r in (a, b)]
        outs = [p.communicate(timeout=60)[0].split()[0] for p in procs]
        self.assertEqual(outs, ["ok", "ok"])
        self.assertEqual(self.max_inflight(), 2, self.proxy_lines())
        self.assertEqual(self.entries(), [a, b])

    def test_prefetch_keeps_the_bound_of_transfers_in_flight(self):
        """A prefetch session imports s3.fetch_concurrency packs at once, never more."""
        res = self.populate(9)
        self.env["KACHE_S3_FETCH_CONCURRENCY"] = "3"
        self.start()
        self.fault({"mode": "slow", "delay": 0.5, "methods": ["GET"], "match": "/packs/"})
        self.hint()
        pf = self.prefetch_done()
        self.assertEqual(pf["packs"], 9, pf)
        self.assertEqual(self.max_inflight(), 3, self.proxy_lines())
        self.assertEqual(self.entries(), res)
        for r in res:
            self.assertEqual(len(self.gets_of(r)), 1, self.proxy_lines())

    def test_fetch_joins_a_prefetch_download_of_the_same_pack(self):
        """A wrapper's fetch for a pack the prefetch is downloading waits for that
        download instead of starting another: the remote sees one GET of it."""
        (res,) = self.populate(1)
        self.start()
        self.fault({"mode": "slow", "delay": 3, "methods": ["GET"], "match": "/packs/"})
        self.hint()
        self.assertTrue(wait_for(lambda: self.began(res), 20), "the prefetch never began")
        out, ms = self.poke("fetch", inv_of(res), "20000").split()
        self.assertEqual(out, "ok")
        self.assertEqual(len(self.gets_of(res)), 1, self.proxy_lines())
        pf = self.prefetch_done()
        self.assertEqual(pf["packs"], 1, pf)
        # present now: a fetch answers at once, without a transfer
        self.assertEqual(self.poke("fetch", inv_of(res), "20000").split()[0], "ok")
        self.assertEqual(len(self.gets_of(res)), 1, self.proxy_lines())
        # one lock file for every result, never one per import
        self.assertEqual([n for n in os.listdir(os.path.join(self.dir, "tmp")) if "lock" in n],
                         ["import.locks"])

    def test_prefetch_killed_mid_transfer_leaves_nothing_partial(self):
        """A prefetch worker killed mid-transfer leaves nothing; its session is
        handed once more to the restarted worker, and lost when that one is
        killed too."""
        (res,) = self.populate(1)
        self.start()
        self.fault({"mode": "hang", "delay": 30, "methods": ["GET"], "match": "/packs/"})
        self.hint()

        def begun():
            return len(self.gets_begun(res))

        def pf():
            return (self.status() or {}).get("prefetch", {})

        self.assertTrue(wait_for(lambda: begun() == 1, 20), "the prefetch never began")
        pid = self.workers("prefetch")[0]["pid"]
        os.kill(pid, signal.SIGKILL)
        # the restarted worker takes the same session: a second GET of the pack
        self.assertTrue(wait_for(lambda: begun() == 2, 20), (self.proxy_stats(), pf()))
        self.assertEqual((pf()["sessions"], pf()["sessions_retried"], pf()["sessions_lost"]),
                         (1, 1, 0), pf())
        again = self.workers("prefetch")[0]["pid"]
        self.assertNotEqual(again, pid)
        self.assertEqual(self.entries(), [])
        os.kill(again, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: pf().get("sessions_lost", 0) == 1, 20), pf())
        self.assertEqual((pf()["sessions_retried"], pf()["sessions_queued"]), (1, 0), pf())
        self.assertEqual(self.entries(), [])
        for sub in ("blobs", "manifests"):
            found = [f for _, _, fs in os.walk(os.path.join(self.dir, sub)) for f in fs]
            self.assertEqual(found, [], sub)
        self.fault({"mode": "pass"})
        # the killed importer's lock is free at once: the fetch does not wait for it
        out, ms = self.poke("fetch", inv_of(res), "20000").split()
        self.assertEqual(out, "ok")
        self.assertLess(int(ms), 15000)
        self.assertEqual(self.entries(), [res])
        self.kached("supervisor", "stop")
        self.assertEqual(self.kached("verify").returncode, 0)


if __name__ == "__main__":
    unittest.main()
