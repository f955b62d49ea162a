#!/usr/bin/env python3
"""The S3 remote through real supervisors and workers against moto_server, with
tests/tools/faultproxy.py in between: a multipart pack round-trips, and an
uploader killed in the middle of a multipart upload leaves no visible object and
finishes the upload once restarted. Environment: KACHED, POKE, FIXTURE."""
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
        self.proxy, self.pport = kh.start_proxy(self.port, self.control, self.plog)
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


if __name__ == "__main__":
    unittest.main()
