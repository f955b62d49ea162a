#!/usr/bin/env python3
"""remote_list over both transports: the same objects, written by boto3 into a
bucket (under kache's prefix, with neighbours outside it) and as files into a
directory remote, list as the same names and sizes, by prefix, across S3's
pages (more than 1,000 keys), each with its time (S3's LastModified, the
file's mtime). Usage: test_remote_list.py REMOTE_DRIVER"""
import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, HERE)
import kache_harness as kh  # noqa: E402
from kache_harness import boto, start_moto, stop  # noqa: E402
from test_s3_moto import BUCKET, SECRET  # noqa: E402

DRIVER = None
OBJECTS = {"kache-format": b"kache-remote 1\n",
           "manifests/ab/" + "ab" * 32: b"m" * 10,
           "packs/serde/" + "01" * 32 + ".pack": b"p" * 300,
           "packs/libc/" + "02" * 32 + ".pack": b"q" * 7}
MANY = {"packs/many/%04d.pack" % i: b"x" for i in range(1003)}


class RemoteList(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto, cls.port = start_moto()
        cls.s3 = boto(cls.port)
        cls.s3.create_bucket(Bucket=BUCKET)
        cls.tmp = kh.make_tmp("kache-remote-list.")
        cls.dir = os.path.join(cls.tmp, "remote")
        cls.t0 = int(time.time()) * 1000
        for name, data in {**OBJECTS, **MANY}.items():
            cls.s3.put_object(Bucket=BUCKET, Key="pfx/" + name, Body=data)
            path = os.path.join(cls.dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        # outside the configured prefix: never listed
        cls.s3.put_object(Bucket=BUCKET, Key="pfx2/packs/x.pack", Body=b"no")
        cls.s3.put_object(Bucket=BUCKET, Key="other/packs/y.pack", Body=b"no")
        cls.t1 = int(time.time() + 1) * 1000
        # a known time on one file of the directory remote
        os.utime(os.path.join(cls.dir, "kache-format"), (1500000000.25, 1500000000.25))

    @classmethod
    def tearDownClass(cls):
        stop(cls.moto)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def list(self, kind, prefix):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KACHE_"))}
        env.update(HOME=self.tmp, KACHE_CONFIG="/nonexistent/kache.toml", KACHE_DIR=self.tmp)
        if kind == "s3":
            env.update(KACHE_REMOTE="s3", KACHE_S3_BUCKET=BUCKET, KACHE_S3_PREFIX="pfx",
                       KACHE_S3_ENDPOINT="http://127.0.0.1:%d" % self.port,
                       AWS_ACCESS_KEY_ID="AKIDKACHETEST", AWS_SECRET_ACCESS_KEY=SECRET)
        else:
            env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.dir)
        p = subprocess.run([DRIVER, "list", prefix], env=env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return sorted(tuple(line.rsplit(" ", 2)) for line in p.stdout.splitlines())

    def expect(self, prefix):
        return sorted((n, str(len(d))) for n, d in {**OBJECTS, **MANY}.items()
                      if n.startswith(prefix))

    def test_both_transports_list_the_same_objects(self):
        for prefix in ("", "packs/", "packs/serde/", "packs/s", "manifests/", "nothing/"):
            want = self.expect(prefix)
            for kind in ("s3", "dir"):
                with self.subTest(prefix=prefix, kind=kind):
                    got = self.list(kind, prefix)
                    self.assertEqual([(n, size) for n, size, _ in got], want)
                    for name, _, mtime in got:
                        if kind == "dir" and name == "kache-format":
                            self.assertEqual(int(mtime), 1500000000250)
                        else:  # written by this test, S3's second precision
                            self.assertTrue(self.t0 <= int(mtime) <= self.t1, (name, mtime))
        self.assertEqual(len(self.expect("packs/many/")), 1003)  # S3 answers in pages


if __name__ == "__main__":
    DRIVER = sys.argv.pop(1)
    unittest.main()
