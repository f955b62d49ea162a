#!/usr/bin/env python3
"""The end of a CI job with the S3 remote: `cargo build && kache supervisor stop`
(or `kache flush`) must leave every result of the build in the bucket, checked
with boto3 against moto_server behind the fault proxy; what cannot be uploaded in
time stays on disk and is named. The directory remote: tests/scenarios/test_flush.py.

usage: test_s3_flush.py <path to kache> [unittest args]
"""
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, HERE)
import kache_harness as kh  # noqa: E402
from kache_harness import CRATES  # noqa: E402
from kache_harness import entry_keys as entries, intent_keys as intents  # noqa: E402
import test_s3_scenarios  # noqa: E402
from test_s3_scenarios import BUCKET  # noqa: E402


class FlushS3(test_s3_scenarios.S3Scenarios):
    """Through moto_server behind the fault proxy."""

    def tearDown(self):
        self.fault({"mode": "pass"})
        for env in self.stores:
            kh.supervisor_stop(kh.KACHE, env, "30s", timeout=90)
        self.stores = []
        super().tearDown()

    def remote_results(self):
        """Result keys of the packs in the bucket, read with boto3."""
        res = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=self.prefix + "/packs/"):
            for o in page.get("Contents", []):
                res.add(o["Key"].rsplit("/", 1)[1][:-len(".pack")])
        return res

    def kache(self, ws, *args, timeout=300):
        return subprocess.run([kh.KACHE, *args], env=ws.env, capture_output=True,
                              text=True, timeout=timeout)

    def test_stop_right_after_build_uploads_everything(self):
        # a slow remote and one uploader: the uploads take far longer than the
        # build, as the biggest packs do at the end of a real CI job
        self.fault({"mode": "slow", "delay": 1.5, "methods": ["PUT"]})
        a = self.machine("a", os.path.join(self.tmp, "a"), port=self.pport,
                         KACHE_S3_UPLOAD_CONCURRENCY="1")
        a.cargo("build")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        p = self.kache(a, "supervisor", "stop")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        made = entries(a.store)
        self.assertGreaterEqual(len(made), len(CRATES))
        self.assertEqual(intents(a.store), [], p.stdout + p.stderr)
        self.assertEqual(made - self.remote_results(), set(), "results missing from the bucket")
        self.assertRegex(p.stderr, r"flush: %d uploaded, 0 left" % len(made))

    def test_c_object_flushed_then_fetched_by_another_runner(self):
        """`kache gcc -c` on runner a, `supervisor stop` flushes its pack to the
        bucket (under packs/<CARGO_PKG_NAME>/); runner b, an empty store and the
        source at another path, gets the object with no compile."""
        log = os.path.join(self.tmp, "gcc.log")
        gcc = os.path.join(self.tmp, "bin", "gcc")
        os.makedirs(os.path.dirname(gcc))
        with open(gcc, "w") as f:
            f.write(f'#!/bin/sh\necho "$*" >> {log}\nexec /usr/bin/gcc "$@"\n')
        os.chmod(gcc, 0o755)
        objs = []
        for name in ("a", "b"):
            m = self.machine(name, os.path.join(self.tmp, name), port=self.pport,
                             CARGO_PKG_NAME="c-demo")
            src = os.path.join(self.tmp, name, "deep" * (name == "b"), "csrc")
            os.makedirs(src)
            with open(os.path.join(src, "k.c"), "w") as f:
                f.write('#include <stdio.h>\nint k(void) { return puts(__FILE__); }\n')
            p = subprocess.run([kh.KACHE, gcc, "-c", "k.c", "-o", "k.o", "-O1"], cwd=src,
                               env=m.env, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(src, "k.o"), "rb") as f:
                objs.append(f.read())
            if name == "a":
                p = self.kache(m, "supervisor", "stop")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                keys = [o["Key"] for o in self.s3.list_objects_v2(
                    Bucket=BUCKET, Prefix=self.prefix + "/packs/c_demo/").get("Contents", [])]
                self.assertEqual(len(keys), 1, keys)
                with open(log) as f:
                    compiles = len([r for r in f if " -c " in r])
        with open(log) as f:
            self.assertEqual(len([r for r in f if " -c " in r]), compiles,
                             "runner b compiled instead of fetching")
        self.assertEqual(objs[0], objs[1])

    def test_flush_keeps_the_supervisor_running(self):
        self.fault({"mode": "slow", "delay": 1.0, "methods": ["PUT"]})
        a = self.machine("a", os.path.join(self.tmp, "a"), port=self.pport,
                         KACHE_S3_UPLOAD_CONCURRENCY="1")
        a.cargo("build")
        p = self.kache(a, "flush")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(intents(a.store), [])
        self.assertEqual(entries(a.store) - self.remote_results(), set())
        st = self.kache(a, "supervisor", "status")
        self.assertEqual(st.returncode, 0, "flush must leave the supervisor running")

    def test_flush_timeout_names_what_is_left(self):
        self.fault({"mode": "hang", "delay": 8, "methods": ["PUT"]})
        a = self.machine("a", os.path.join(self.tmp, "a"), port=self.pport,
                         KACHE_S3_UPLOAD_CONCURRENCY="1")
        a.cargo("build")
        p = self.kache(a, "flush", "--timeout", "2s", timeout=60)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        left = intents(a.store)
        self.assertGreater(len(left), 0)
        m = re.search(r"(\d+) upload intents? left", p.stderr)
        self.assertTrue(m, p.stderr)
        self.assertGreaterEqual(int(m.group(1)), 1)
        self.assertLessEqual(int(m.group(1)), len(entries(a.store)))
        self.assertIn("stay on disk", p.stderr)
        # a bad duration is a usage error
        p = self.kache(a, "flush", "--timeout", "soon")
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_remote_switched_off_pauses_uploads(self):
        """A 403 switches the remote off: the supervisor stops handing intents to
        the uploaders (one failed attempt, not one per intent and retry), says so
        once, keeps every intent, and flush says why at once."""
        self.fault({"mode": "403"})
        a = self.machine("a", os.path.join(self.tmp, "a"), port=self.pport,
                         KACHE_S3_UPLOAD_CONCURRENCY="1")
        a.cargo("build")
        time.sleep(4)  # time for (old) retries and further dispatches
        made = entries(a.store)
        self.assertEqual(sorted(intents(a.store)), sorted(made))
        up = open(os.path.join(a.store, "logs", "uploader.0.log")).read().splitlines()
        attempts = [l for l in up if re.search(r"upload [0-9a-f]{64} failed", l)]
        self.assertEqual(len(attempts), 1, attempts)
        sup = open(os.path.join(a.store, "logs", "supervisor.log")).read()
        self.assertEqual(sup.count("uploads paused"), 1, sup)
        p = self.kache(a, "flush", "--timeout", "60s", timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("switched off", p.stderr)
        self.assertIn("%d upload intents left" % len(made), p.stderr)


if __name__ == "__main__":
    kh.take_kache_arg()
    unittest.main()
