#!/usr/bin/env python3
"""The S3 remote over real cargo builds: moto_server on loopback as the bucket,
tests/tools/faultproxy.py in front of it for faults, boto3 as the independent
client that checks what kache uploaded.

usage: test_s3_scenarios.py <path to kache> [unittest args]
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
# test_shared (tests/scenarios): the two-machines race shared with the dir remote
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenarios"))
import kache_harness as kh  # noqa: E402
from kache_harness import CRATES, Workspace, boto, start_moto, stop  # noqa: E402

BUCKET = "kache-scenarios"
SECRET = "scenario-secret-Kq93"


class S3Scenarios(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto, cls.port = start_moto()
        cls.s3 = boto(cls.port)
        cls.s3.create_bucket(Bucket=BUCKET)
        cls.ptmp = kh.make_tmp("kache-s3-proxy-")
        cls.control = os.path.join(cls.ptmp, "control.json")
        cls.proxy, cls.pport = kh.start_proxy(cls.port, cls.control,
                                             os.path.join(cls.ptmp, "proxy.log"))

    @classmethod
    def tearDownClass(cls):
        stop(cls.proxy)
        stop(cls.moto)
        shutil.rmtree(cls.ptmp, ignore_errors=True)

    def setUp(self):
        self.tmp = kh.make_tmp("kache-s3-scenario-")
        self.prefix = "t-%s" % self._testMethodName[-20:].replace("_", "-")
        self.stores = []
        self.fault({"mode": "pass"})

    def tearDown(self):
        # stop flushes every intent first: bounded, and not through a fault
        self.fault({"mode": "pass"})
        for env in self.stores:
            kh.supervisor_stop(kh.KACHE, env, "20s", timeout=90)
        kh.remove_tmp(self.tmp)

    def fault(self, ctl):
        kh.write_fault(self.control, ctl)

    def machine(self, name, root, port=None, **env):
        os.makedirs(root, exist_ok=True)
        store = os.path.join(self.tmp, name + "-store")
        ws = Workspace(root, store, name)
        kh.drop_prefixed(ws.env, "AWS_")
        ws.env.update(KACHE_REMOTE="s3", KACHE_S3_BUCKET=BUCKET, KACHE_S3_PREFIX=self.prefix,
                      KACHE_S3_ENDPOINT="http://127.0.0.1:%d" % (port or self.port),
                      AWS_ACCESS_KEY_ID="AKIDSCENARIO", AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.tmp, "no-aws"),
                      KACHE_CONFIG=os.path.join(self.tmp, "none.toml"),
                      KACHE_FETCH_TIMEOUT_MS="3000",
                      # see test_cargo.RemoteScenarios.machine: served, not fast
                      KACHE_DEADLINE_MS="1000")
        ws.env.update(env)
        self.stores.append(ws.env)
        p = subprocess.run([kh.KACHE, "supervisor", "start"], env=ws.env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        ws.store = store
        return ws

    def drained(self, ws, timeout=120):
        intents = os.path.join(ws.store, "intents")
        return kh.wait_for(lambda: not os.listdir(intents), timeout, 0.2)

    def verify(self, ws):
        kh.supervisor_stop(kh.KACHE, ws.env)
        v = subprocess.run([kh.KACHE, "verify"], env=ws.env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def logs(self, ws):
        d = os.path.join(ws.store, "logs")
        text = ""
        for name in os.listdir(d):
            text += open(os.path.join(d, name), errors="replace").read()
        self.assertNotIn(SECRET, text)
        return text

    def warnings_per_worker(self, ws, needle):
        """How many warnings containing needle each worker log holds."""
        d = os.path.join(ws.store, "logs")
        counts = {}
        for name in os.listdir(d):
            if name.startswith(("uploader", "fetcher")):
                lines = open(os.path.join(d, name), errors="replace").read().splitlines()
                counts[name] = sum(" warn: " in l and needle in l for l in lines)
        return counts

    def first_machine(self, **env):
        a = self.machine("a", os.path.join(self.tmp, "a"), **env)
        a.cargo("build")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        return a, a.run_app()

    def test_second_machine_served_from_s3(self):
        a, out = self.first_machine()
        self.assertTrue(self.drained(a), "uploads did not drain")
        b = self.machine("b", os.path.join(self.tmp, "elsewhere", "b"))
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "the second machine should be served from S3")
        self.assertEqual(b.run_app(), out)

    def prefetched_through_proxy(self, **benv):
        """Machine a builds and stops; a fresh machine b (its environment
        with benv) runs `kache prefetch --wait` through the fault proxy.
        Returns b and the GETs of its session, as the proxy logged them."""
        a = self.machine("a", os.path.join(self.tmp, "a"), port=self.pport)
        a.cargo("build")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        kh.supervisor_stop(kh.KACHE, a.env)
        b = self.machine("b", os.path.join(self.tmp, "elsewhere", "b"), port=self.pport, **benv)
        shutil.copy(os.path.join(a.dir, "Cargo.lock"), b.dir)  # the job's checkout
        log = os.path.join(self.ptmp, "proxy.log")
        mark = os.path.getsize(log)
        p = subprocess.run([kh.KACHE, "prefetch", "--wait", "--timeout", "2m"], cwd=b.dir,
                           env=b.env, capture_output=True, text=True, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(log, errors="replace") as f:
            f.seek(mark)
            mine = [l.split() for l in f if ("/%s/" % self.prefix) in l]
        return b, [l for l in mine if l[0] == "GET"]

    def test_a_prefetch_session_reads_the_format_marker_once(self):
        """The prefetch's import threads (one S3 connection each) share what
        the first learnt of the format marker: one GET for the session, not
        one per thread (it was four: s3.fetch_concurrency's default). The
        reader takes every pack alone (prefetch.bundles off), so that all four
        threads fetch."""
        b, gets = self.prefetched_through_proxy(KACHE_PREFETCH_BUNDLES="false")
        packs = [l for l in gets if "/packs/" in l[1]]
        self.assertGreaterEqual(len(packs), 4, "fewer packs than import threads: %s" % gets)
        marker = [l for l in gets if l[1].endswith("/kache-remote-format")]
        self.assertEqual(len(marker), 1, gets)
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "the prefetch did not serve the build")

    def test_a_prefetch_session_reads_bundle_parts_not_packs(self):
        """Machine a's stop writes its session's packs as bundle parts; b's
        prefetch asks S3 for the session manifest, the format marker and the
        parts, and for no pack alone (each a request: a round trip, and the
        server's work); its build compiles nothing."""
        b, gets = self.prefetched_through_proxy()
        parts = [l for l in gets if "/bundles/" in l[1]]
        self.assertGreaterEqual(len(parts), 1, gets)
        self.assertEqual([l for l in gets if "/packs/" in l[1]], [], gets)
        self.assertEqual(len(gets), 2 + len(parts), gets)  # + session, marker
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "the prefetch did not serve the build")

    def test_machines_over_https_with_the_ca_file_and_without(self):
        """An https endpoint (the fault proxy answering TLS with a self-signed
        certificate, in front of moto) named with s3.ca_file: machine a's
        packs reach the bucket (boto3 reads them from moto) and machine b is
        served from them. Machine c, without the CA file, builds all the same
        (compiling) and its logs say what to set."""
        cert, key = kh.tls_certificate(self.tmp)
        proxy, tport = kh.start_proxy(self.port, os.path.join(self.tmp, "tls-control"),
                                      os.path.join(self.tmp, "tls.log"), tls=(cert, key))
        try:
            https = "https://127.0.0.1:%d" % tport
            a = self.machine("a", os.path.join(self.tmp, "a"), KACHE_S3_ENDPOINT=https,
                             KACHE_S3_CA_FILE=cert)
            a.cargo("build")
            self.assertTrue(CRATES.issubset(set(a.compiled())))
            out = a.run_app()
            self.assertTrue(self.drained(a), "uploads did not drain")
            listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=self.prefix + "/packs/")
            self.assertGreaterEqual(listed.get("KeyCount", 0), len(CRATES), listed)
            b = self.machine("b", os.path.join(self.tmp, "elsewhere", "b"),
                             KACHE_S3_ENDPOINT=https, KACHE_S3_CA_FILE=cert)
            b.cargo("build")
            self.assertEqual(b.compiled(), [], "b should be served over https")
            self.assertEqual(b.run_app(), out)
            c = self.machine("c", os.path.join(self.tmp, "third", "c"), KACHE_S3_ENDPOINT=https)
            c.cargo("build")
            self.assertTrue(CRATES.issubset(set(c.compiled())))
            self.assertEqual(c.run_app(), out)
            self.assertIn("the server's TLS certificate is not trusted", self.logs(c))
            self.assertIn("set s3.ca_file (KACHE_S3_CA_FILE)", self.logs(c))
        finally:
            stop(proxy)

    def test_bucket_is_readable_without_kache(self):
        a, _ = self.first_machine()
        self.assertTrue(self.drained(a))
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=self.prefix + "/"):
            keys += [o["Key"][len(self.prefix) + 1:] for o in page.get("Contents", [])]
        self.assertIn("kache-remote-format", keys)
        body = self.s3.get_object(Bucket=BUCKET, Key=self.prefix + "/kache-remote-format")
        self.assertEqual(body["Body"].read(), b"kache-remote 1\n")
        packs = [k for k in keys if k.startswith("packs/")]
        manifests = [k for k in keys if k.startswith("manifests/")]
        self.assertTrue(packs and manifests)
        crates = {k.split("/")[1] for k in packs}
        self.assertTrue({"tiny", "fixture_core", "fixture_app"}.issubset(crates), crates)
        listed = {}
        for k in manifests:
            raw = self.s3.get_object(Bucket=BUCKET, Key=self.prefix + "/" + k)["Body"].read()
            m, _ = kh.mp_decode(raw)
            self.assertEqual(m["v"], 1)
            for crate, res in m["results"]:
                listed["packs/%s/%s.pack" % (crate, res)] = k.split("/")[1]
        self.assertEqual(set(listed), set(packs))
        for k in packs:
            raw = self.s3.get_object(Bucket=BUCKET, Key=self.prefix + "/" + k)["Body"].read()
            doc = subprocess.run(["zstd", "-d", "-c"], input=raw, capture_output=True,
                                 check=True).stdout
            p, end = kh.mp_decode(doc)
            self.assertEqual(end, len(doc))
            self.assertEqual(p["v"], 1)
            self.assertEqual(p["crate"], k.split("/")[1])
            self.assertEqual(p["res"].hex() + ".pack", k.split("/")[2])
            self.assertEqual(p["inv"].hex(), listed[k])
            entry, _ = kh.mp_decode(p["entry"])
            want = {o["hash"] for o in entry["outputs"]}
            got = set()
            for h, data in p["blobs"]:
                self.assertEqual(hashlib.blake2b(data, digest_size=32).digest(), h)
                got.add(h)
            self.assertEqual(want, got)

    def run_faulted(self, ctl, expect_from_remote=False):
        """A builds and uploads through the proxy while it misbehaves; B fetches
        through it. Both builds must succeed with the right output."""
        self.fault(ctl)
        a, out = self.first_machine(
            KACHE_S3_ENDPOINT="http://127.0.0.1:%d" % self.pport)
        b = self.machine("b", os.path.join(self.tmp, "b"),
                         port=self.pport)
        b.cargo("build")
        self.assertEqual(b.run_app(), out)
        self.fault({"mode": "pass"})
        return a, b

    def test_503_storm_loses_nothing(self):
        a, b = self.run_faulted({"mode": "503", "count": 25})
        self.assertTrue(self.drained(a), "every queued upload must arrive after the storm")
        c = self.machine("c", os.path.join(self.tmp, "c"))
        c.cargo("build")
        self.assertEqual(c.compiled(), [])
        self.verify(b)

    def test_slow_responses(self):
        a, b = self.run_faulted({"mode": "slow", "delay": 0.2, "count": 30})
        self.assertTrue(self.drained(a))
        self.verify(b)

    def test_hanging_fetches_fall_back_to_compiling(self):
        a, out = self.first_machine()
        self.assertTrue(self.drained(a))
        self.fault({"mode": "hang", "delay": 30, "methods": ["GET"]})
        b = self.machine("b", os.path.join(self.tmp, "b"), port=self.pport,
                         KACHE_FETCH_TIMEOUT_MS="1500")
        b.cargo("build")
        self.assertEqual(b.run_app(), out)
        self.assertIn("fixture_app", b.compiled())
        # after a few fetches time out, the rest do not wait for a hung remote;
        # a fetch counts as failed when its fetcher answers late or when the
        # supervisor drops it from the queue past its deadline, which on a
        # loaded machine may come after the build's last compile
        self.assertTrue(kh.wait_for(lambda: "fetching skipped" in self.logs(b), timeout=60),
                        self.logs(b)[-3000:])

    def test_unreachable_endpoint_fetches_are_not_retried(self):
        """An endpoint that refuses connections (no server on the port) is a
        miss at once on the fetch path: a wrapper waits on each fetch, and
        retrying with back-off made each of the first misses wait about a
        second (a cold ws-small build 2.2-2.8 s slower). The fetchers try once;
        after three such failures the breaker skips fetching; uploads, in the
        background, keep retrying and keep their intents."""
        a = self.dead_endpoint_build(kh.free_port(), "Couldn't connect")
        # a configuration reload (another remote, perhaps) closes the breaker
        cfg = a.env["KACHE_CONFIG"]
        with open(cfg, "a") as f:
            f.write("# touched\n")
        os.utime(cfg, (time.time() + 5, time.time() + 5))
        self.assertTrue(kh.wait_for(lambda: "fetching resumed after a configuration change"
                                    in self.logs(a), timeout=30), self.logs(a)[-3000:])
        self.assertEqual(kh.sup_status(a)["outcomes"]["fetch_breaker"], "closed")

    def test_blackholed_endpoint_fetches_give_up_within_a_second(self):
        """An endpoint that answers nothing (a firewall dropping packets): each
        fetch waited s3.connect_timeout_ms (5 s) and then the wrapper's whole
        wait, seven misses of a cold ws-small build 5 s each. A fetcher gives a
        connection 1 s, does not retry it, and the breaker opens after three."""
        keep, port = kh.blackhole()
        try:
            self.dead_endpoint_build(port, "no connection within 1000 ms")
        finally:
            for s in keep:
                s.close()

    def test_kache_prefetch_against_a_dropping_endpoint_asks_once(self):
        """`kache prefetch --wait` with an endpoint that drops packets: the
        session's first question (its session manifest) gets its connection
        1 s and no retry, and the session ends there, said (before, the plan
        retried each question with back-off, 5 s per connection attempt: the
        CI step waited half a minute). Exit 0: the build goes on without."""
        keep, port = kh.blackhole()
        try:
            a = self.machine("a", os.path.join(self.tmp, "a"), port=port)
            a.cargo("generate-lockfile")
            p = subprocess.run([kh.KACHE, "prefetch", "--wait"], cwd=a.dir, env=a.env,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("prefetch: the remote could not be read", p.stdout)
            log = open(os.path.join(a.store, "logs", "prefetch.0.log"),
                       errors="replace").read()
            self.assertIn("the remote could not be reached", log)
            self.assertIn("no connection within 1000 ms", log)
            self.assertNotIn("retrying", log)
        finally:
            for s in keep:
                s.close()

    def dead_endpoint_build(self, port, said):
        a = self.machine("a", os.path.join(self.tmp, "a"), port=port,
                         KACHE_PREFETCH_MAX_BYTES="0")
        a.cargo("build")
        self.assertEqual(a.run_app().split()[0], "hello")
        self.assertTrue(CRATES.issubset(set(a.compiled())), a.compiled())
        fetchers = ""
        for name in os.listdir(os.path.join(a.store, "logs")):
            if name.startswith("fetcher"):
                fetchers += open(os.path.join(a.store, "logs", name), errors="replace").read()
        self.assertIn(said, fetchers, self.logs(a)[-3000:])
        self.assertNotIn("retrying", fetchers)
        self.assertIn("the remote could not be reached; fetching skipped", self.logs(a))
        # the breaker opened at the first fetch that found no connection: only
        # the fetches already in flight then (one per fetcher) failed; every
        # later miss was answered at once
        out = kh.sup_status(a)["outcomes"]
        self.assertEqual(out["fetch_breaker"], "open", out)
        self.assertLessEqual(out["fetches"]["failed"], 2, out)
        self.assertGreater(out["fetches"]["skipped_breaker_open"], 0, out)
        self.assertGreater(len(os.listdir(os.path.join(a.store, "intents"))), 0)
        return a

    def test_a_remote_back_up_is_found_by_a_probe_not_by_a_build(self):
        """While the breaker is open no wrapper's fetch is tried: the
        supervisor itself asks the remote again (a fetch no compile waits on)
        after 5 s, then less often; once the endpoint answers, the breaker
        closes and the next build's misses are fetched again."""
        a, out = self.first_machine()
        self.assertTrue(self.drained(a))
        port = kh.free_port()  # nobody listens there yet
        b = self.machine("b", os.path.join(self.tmp, "b"), port=port,
                         KACHE_PREFETCH_MAX_BYTES="0")
        b.cargo("build", "-p", "fixture-core")
        self.assertIn("fixture_core", b.compiled())
        self.assertTrue(kh.wait_for(lambda: "fetching skipped" in self.logs(b), timeout=30),
                        self.logs(b)[-3000:])
        failed = kh.sup_status(b)["outcomes"]["fetches"]["failed"]
        self.assertLessEqual(failed, 2)
        ctl = os.path.join(self.tmp, "up.json")
        kh.write_fault(ctl, {"mode": "pass"})
        proxy, _ = kh.start_proxy(self.port, ctl, os.path.join(self.tmp, "up.log"),
                                  listen=port)
        try:
            self.assertTrue(kh.wait_for(lambda: "fetching resumed" in self.logs(b),
                                        timeout=120), self.logs(b)[-3000:])
            st = kh.sup_status(b)["outcomes"]
            self.assertEqual(st["fetch_breaker"], "closed", st)
            self.assertEqual(st["fetches"]["failed"], failed, "a wrapper's fetch probed")
            self.assertIn("manifests/%s" % ("0" * 64),
                          open(os.path.join(self.tmp, "up.log")).read())
            b.cargo("build")
            self.assertNotIn("fixture_app", b.compiled())  # fetched from the remote
            self.assertEqual(b.run_app(), out)
        finally:
            stop(proxy)

    def test_truncated_and_flipped_bodies_never_enter_the_store(self):
        """Every pack's body cut short, or three of its bits flipped (the proxy's
        flip; one flipped bit alone can leave the zstd frame's content the same,
        and such a pack is rightly taken: this failed so once in CI, on
        fixture_core): every crate is compiled, the build is right."""
        a, out = self.first_machine()
        self.assertTrue(self.drained(a))
        for mode in ("truncate", "flip"):
            self.fault({"mode": mode, "methods": ["GET"], "match": "packs/"})
            b = self.machine(mode, os.path.join(self.tmp, mode), port=self.pport)
            b.cargo("build")
            self.assertEqual(b.run_app(), out)
            self.assertTrue(CRATES.issubset(set(b.compiled())), (mode, b.compiled()))
            self.verify(b)

    def test_wrong_credentials_one_message_and_intents_kept(self):
        self.fault({"mode": "403"})
        a = self.machine("a", os.path.join(self.tmp, "a"), port=self.pport)
        a.cargo("build")
        self.assertEqual(a.run_app().split()[0], "hello")
        time.sleep(2)
        intents = os.listdir(os.path.join(a.store, "intents"))
        self.assertGreater(len(intents), 0, "intents must stay when uploads are refused")
        self.logs(a)
        counts = self.warnings_per_worker(a, "check credentials")
        self.assertGreaterEqual(sum(counts.values()), 1, counts)
        self.assertLessEqual(max(counts.values()), 1, counts)
        sup = open(os.path.join(a.store, "logs", "supervisor.log")).read().splitlines()
        failed = [l for l in sup if " warn: " in l and "upload" in l and "failed" in l]
        self.assertLessEqual(len(failed), 1, failed)

    def test_missing_bucket_one_message(self):
        a = self.machine("a", os.path.join(self.tmp, "a"), KACHE_S3_BUCKET="no-such-bucket")
        a.cargo("build")
        self.assertEqual(a.run_app().split()[0], "hello")
        time.sleep(2)
        self.logs(a)
        counts = self.warnings_per_worker(a, "NO_BUCKET")
        self.assertGreaterEqual(sum(counts.values()), 1, counts)
        self.assertLessEqual(max(counts.values()), 1, counts)
        self.assertGreater(len(os.listdir(os.path.join(a.store, "intents"))), 0)

    def test_read_only_runner_never_writes(self):
        a = self.machine("a", os.path.join(self.tmp, "a"), KACHE_S3_READ_ONLY="true")
        a.cargo("build")
        time.sleep(2)
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=self.prefix + "/")
        self.assertEqual(listed.get("KeyCount", 0), 0)

    def test_two_machines_upload_the_same_keys_at_once(self):
        """Two machines build at once and upload the same keys to one bucket: both
        builds correct, one object per result, no multipart upload left open,
        and a third machine served from the bucket."""
        from test_shared import WANT, build_at_once
        a = self.machine("a", os.path.join(self.tmp, "a", "deeper"))
        b = self.machine("b", os.path.join(self.tmp, "b"))
        results = build_at_once([a, b])
        for ws in (a, b):
            self.assertEqual(results[ws.dir].returncode, 0, results[ws.dir].stderr)
            self.assertEqual(ws.run_app(), WANT)
            self.assertTrue(self.drained(ws), "uploads of %s did not drain" % ws.dir)
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=self.prefix + "/"):
            keys += [o["Key"][len(self.prefix) + 1:] for o in page.get("Contents", [])]
        self.assertEqual(len(keys), len(set(keys)))
        packs = [k for k in keys if k.startswith("packs/")]
        other = [k for k in keys if not k.startswith(("packs/", "manifests/"))]
        self.assertEqual(other, ["kache-remote-format"])
        made = set()
        for ws in (a, b):
            for d, _, files in os.walk(os.path.join(ws.store, "entries")):
                made |= {f for f in files if not f.startswith(".")}
        self.assertEqual(sorted(k.split("/")[2][:-len(".pack")] for k in packs), sorted(made))
        for k in keys:
            if k.startswith("manifests/"):
                raw = self.s3.get_object(Bucket=BUCKET, Key=self.prefix + "/" + k)["Body"].read()
                pairs = [tuple(p) for p in kh.mp_decode(raw)[0]["results"]]
                self.assertEqual(len(pairs), len(set(pairs)), k)
        open_uploads = self.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix + "/")
        self.assertEqual(open_uploads.get("Uploads", []), [])
        c = self.machine("c", os.path.join(self.tmp, "c"))
        c.cargo("build", KACHE_DEADLINE_MS="5000")
        self.assertEqual(c.compiled(), [], "the third machine compiled instead of fetching")
        self.assertEqual(c.run_app(), WANT)
        self.verify(c)


if __name__ == "__main__":
    kh.take_kache_arg()
    unittest.main()
