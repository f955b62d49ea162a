#!/usr/bin/env python3
"""The end of a CI job: `cargo build && kache supervisor stop` (or `kache flush`)
must leave every result of the build in the remote, checked by an independent
reader (boto3 against moto_server, or a listing of the directory remote); what
cannot be uploaded in time stays on disk and is named. Also: stale pending-store
markers (tmp/pending-*) never make a build or a flush wait. This file: the
directory remote, or none; through S3 (moto_server): tests/s3/test_s3_flush.py.

usage: test_flush.py <path to kache> [unittest args]
"""
import fcntl
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import CRATES, Workspace  # noqa: E402
from kache_harness import entry_keys as entries, intent_keys as intents  # noqa: E402


class FlushLocal(unittest.TestCase):
    """The directory remote, or none."""

    def setUp(self):
        self.tmp = kh.make_tmp("kache-flush-")
        self.remote = os.path.join(self.tmp, "remote")
        self.store = os.path.join(self.tmp, "store")
        self.envs = []

    def tearDown(self):
        for env in self.envs:
            kh.supervisor_stop(kh.KACHE, env, "10s")
        kh.remove_tmp(self.tmp)

    def ws(self, remote=True):
        w = Workspace(self.tmp, self.store)
        w.env["KACHE_CONFIG"] = os.path.join(self.tmp, "none.toml")
        if remote:
            w.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.remote)
        self.envs.append(w.env)
        return w

    def kache(self, w, *args, timeout=120):
        return subprocess.run([kh.KACHE, *args], env=w.env, capture_output=True,
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

    def kill_supervisor(self):
        """kill -9 of the store's supervisor and workers; waits until they are gone."""
        kh.kill_pids(kh.store_pids(self.store))
        self.assertTrue(kh.wait_for(lambda: not kh.store_pids(self.store), 30))

    def test_stop_with_no_supervisor_uploads_what_is_left(self):
        """The supervisor died (or never came up) before the job's end: stop still
        uploads every intent, then leaves no process behind."""
        w = self.ws()
        w.cargo("build", KACHE_UPLOADERS="0")  # uploads wait, as behind a slow remote
        self.assertTrue(kh.wait_for(lambda: not kh.store_pids(self.store) or
                                    len(intents(self.store)) >= len(CRATES), 60))
        self.kill_supervisor()
        self.assertGreaterEqual(len(intents(self.store)), len(CRATES))
        p = self.kache(w, "supervisor", "stop")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(intents(self.store), [])
        self.assertEqual(entries(self.store) - self.remote_results(), set())
        self.assertTrue(kh.wait_for(lambda: not kh.store_pids(self.store), 30),
                        "a supervisor was left running")

    @staticmethod
    def locked(path):
        """True when another process holds an flock on path."""
        try:
            with open(path) as f:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            pass
        return False

    def test_stop_waits_for_a_supervisor_being_started(self):
        """A wrapper started a supervisor an instant before `stop` (it holds the
        spawn lock until the supervisor has its own): stop waits for it and stops
        it, instead of saying "not running" and leaving it behind."""
        w = self.ws()
        run = os.path.join(self.store, "run")
        os.makedirs(run, mode=0o700, exist_ok=True)
        os.chmod(self.store, 0o700)
        with open(os.path.join(run, "spawn.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a start under way
            stop = subprocess.Popen([kh.KACHE, "supervisor", "stop"], env=w.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            kh.wait_for(lambda: stop.poll() is not None, 1.0)
            sup = subprocess.Popen([kh.KACHE, "supervisor", "run"], env=w.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # the spawn lock is held until the new supervisor holds its own lock
            self.assertTrue(kh.wait_for(lambda: self.locked(os.path.join(run, "supervisor.lock"))
                                        or stop.poll() is not None, 30))
        out, err = stop.communicate(timeout=120)
        self.assertEqual(stop.returncode, 0, out + err)
        self.assertIn("stopped", out, out + err)
        self.assertEqual(sup.wait(timeout=60), 0)

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
    kh.take_kache_arg()
    unittest.main()
