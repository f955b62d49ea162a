#!/usr/bin/env python3
"""The end of a CI job: `cargo build && kache supervisor stop` (or `kache flush`)
must leave every result of the build in the remote, checked by an independent
reader (boto3 against moto_server, or a listing of the directory remote); what
cannot be uploaded in time stays on disk and is named. Also: stale pending-store
markers (tmp/pending-*) never make a build or a flush wait.

usage: test_flush.py <path to kache> [unittest args]
"""
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_cargo  # noqa: E402
from test_cargo import CRATES, Workspace  # noqa: E402
import test_s3  # noqa: E402
from test_s3 import BUCKET  # noqa: E402


def entries(store):
    """Result keys of every entry the local store holds."""
    d = os.path.join(store, "entries")
    keys = set()
    for sub in os.listdir(d) if os.path.isdir(d) else []:
        for name in os.listdir(os.path.join(d, sub)):
            if re.fullmatch(r"[0-9a-f]{64}", name):
                keys.add(name)
    return keys


def intents(store):
    d = os.path.join(store, "intents")
    return [n for n in os.listdir(d) if re.fullmatch(r"[0-9a-f]{64}", n)] \
        if os.path.isdir(d) else []


class FlushS3(test_s3.S3Scenarios):
    """Through moto_server behind the fault proxy."""

    def tearDown(self):
        self.fault({"mode": "pass"})
        for env in self.stores:
            subprocess.run([test_cargo.KACHE, "supervisor", "stop", "--timeout", "30s"],
                           env=env, capture_output=True, timeout=90)
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
        return subprocess.run([test_cargo.KACHE, *args], env=ws.env, capture_output=True,
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


class FlushLocal(unittest.TestCase):
    """The directory remote, or none."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kache-flush-")
        self.remote = os.path.join(self.tmp, "remote")
        self.store = os.path.join(self.tmp, "store")
        self.envs = []

    def tearDown(self):
        for env in self.envs:
            subprocess.run([test_cargo.KACHE, "supervisor", "stop", "--timeout", "10s"],
                           env=env, capture_output=True, timeout=60)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ws(self, remote=True):
        w = Workspace(self.tmp, self.store)
        w.env["KACHE_CONFIG"] = os.path.join(self.tmp, "none.toml")
        if remote:
            w.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.remote)
        self.envs.append(w.env)
        return w

    def kache(self, w, *args, timeout=120):
        return subprocess.run([test_cargo.KACHE, *args], env=w.env, capture_output=True,
                              text=True, timeout=timeout)

    def remote_results(self):
        res = set()
        packs = os.path.join(self.remote, "packs")
        for crate in os.listdir(packs) if os.path.isdir(packs) else []:
            for name in os.listdir(os.path.join(packs, crate)):
                if name.endswith(".pack"):
                    res.add(name[:-len(".pack")])
        return res

    def test_stop_after_build_dir_remote(self):
        w = self.ws()
        w.cargo("build")
        p = self.kache(w, "supervisor", "stop")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(intents(self.store), [])
        self.assertEqual(entries(self.store) - self.remote_results(), set())
        self.assertIn("stopped", p.stdout)

    def test_flush_without_remote_says_so(self):
        w = self.ws(remote=False)
        p = self.kache(w, "flush")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("no remote", p.stdout + p.stderr)
        h = self.kache(w, "help", "flush")
        self.assertEqual(h.returncode, 0)
        self.assertIn("--timeout", h.stdout)

    def inv_keys(self):
        d = os.path.join(self.store, "manifests")
        return [n for sub in os.listdir(d) for n in os.listdir(os.path.join(d, sub))
                if re.fullmatch(r"[0-9a-f]{64}", n)]

    def plant(self, keys):
        tmp = os.path.join(self.store, "tmp")
        os.makedirs(tmp, exist_ok=True)
        paths = []
        for k in keys:
            # what a background store killed with SIGKILL leaves: the marker,
            # naming a writer that is gone (nobody holds its lock)
            p = os.path.join(tmp, "pending-" + k)
            with open(p, "w") as f:
                f.write("%d\n" % 999999)
            paths.append(p)
        return paths

    def stats(self, w):
        p = self.kache(w, "stats", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_stale_pending_markers_do_not_stall_the_build(self):
        w = self.ws(remote=False)
        w.cargo("build")
        keys = self.inv_keys()
        self.assertGreaterEqual(len(keys), 3)
        self.assertEqual(self.kache(w, "purge").returncode, 0)
        w.cargo("clean")
        planted = self.plant(keys)
        w.cargo("build")
        self.assertTrue(CRATES.issubset(set(w.compiled())))
        # time in kache (the wrappers' own time, without rustc's) would hold a
        # wait of up to 5 s on each of the markers
        us = self.stats(w)["kache_us"]
        self.assertLess(us, 5 * 1000 * 1000, "wrappers waited on stale markers")
        # the marker of each key compiled again is gone (a key can differ on
        # the second build when an --extern's bytes did)
        again = set(self.inv_keys())
        self.assertTrue(again & set(keys))
        self.assertEqual([p for p in planted if os.path.exists(p) and p[-64:] in again], [])

    def test_flush_waits_for_live_stores_only(self):
        w = self.ws()
        w.cargo("build")
        self.assertEqual(self.kache(w, "flush").returncode, 0)
        stale = self.plant(["cd" * 32])[0]
        live = self.plant(["ef" * 32])[0]
        fd = os.open(live, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a store under way holds its marker's lock
        try:
            p = self.kache(w, "flush", "--timeout", "2s", timeout=60)
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stderr, r"1 background stores? still running")
            self.assertFalse(os.path.exists(stale), "a stale marker must be removed")
        finally:
            os.close(fd)
        p = self.kache(w, "flush", "--timeout", "10s", timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(live))


if __name__ == "__main__":
    test_cargo.KACHE = os.path.abspath(sys.argv.pop(1))
    unittest.main()
