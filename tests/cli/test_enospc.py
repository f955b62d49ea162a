#!/usr/bin/env python3
"""A full disk under the store (issue 7, item 3) and a run directory another
user owns (item 5). The disk is made full two ways: an LD_PRELOAD shim
(tests/tools/enospc_shim.c) that fails writes under the store with ENOSPC, which
runs everywhere, and a real 2 MiB tmpfs where mount works (skipped, saying why,
where it does not). Environment: KACHED, KACHE, FIXTURE, POKE, SHIM."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import FIXTURE, KACHE, KACHED, POKE, SHIM  # noqa: E402

KEY = "ab" * 32


def wait_for(pred, timeout=10.0):
    return kh.wait_for(pred, timeout, step=0.1)


class FullDisk(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp("kache-enospc-")
        self.store = os.path.join(self.tmp, "store")
        self.flag = os.path.join(self.tmp, "disk-full")
        self.env = kh.store_env(self.tmp, self.store, HOME=self.tmp,
                                RUSTUP_HOME=os.environ.get("RUSTUP_HOME",
                                                           os.path.expanduser("~/.rustup")),
                                drop=("KACHE_MAX_SIZE", "KACHE_FAULT", "KACHE_GC_INTERVAL",
                                      "LD_PRELOAD"))
        # in the ASan build the (unsanitized) shim comes before ASan's runtime
        asan = os.environ.get("ASAN_OPTIONS", "")
        self.full = dict(self.env, LD_PRELOAD=os.path.abspath(SHIM),
                         KACHE_ENOSPC_DIR=self.store, KACHE_ENOSPC_WHILE=self.flag,
                         ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
        self.procs = []
        self.mounted = None

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run([KACHED, "supervisor", "stop"], env=self.env, capture_output=True,
                       timeout=60)
        if self.mounted:
            subprocess.run(["umount", "-l", self.mounted], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fx(self, *args):
        return subprocess.run([FIXTURE, self.store, *map(str, args)], check=True,
                              capture_output=True, text=True).stdout.strip()

    def k(self, *args, env=None, timeout=60):
        p = subprocess.run([KACHED, *args], env=env or self.env, capture_output=True,
                           text=True, timeout=timeout)
        self.assertGreaterEqual(p.returncode, 0, f"{args} killed by a signal: {p.stderr}")
        self.assertNotIn("Assertion", p.stderr)
        return p

    def populate(self):
        a = self.fx("entry", "serde", 40000, 1000)
        b = self.fx("entry", "libc", 30000, 2000)
        # the index's first scan dates an entry by its file's mtime (seconds):
        # give the files the fixture's times, so least recently used is libc
        os.utime(self.entry_path(a), (1, 1))
        os.utime(self.entry_path(b), (2, 2))
        self.fx("hit", a, 3000, 10, 40000)
        self.assertEqual(self.k("stats").returncode, 0)  # the index exists
        return a, b

    def entry_path(self, key):
        return os.path.join(self.store, "entries", key[:2], key)

    def test_shim_reads_work_and_gc_purge_free_space(self):
        a, b = self.populate()
        self.fx("hit", a, 4000, 10, 40000)  # waits in the journal
        open(self.flag, "w").close()
        p = self.k("stats", "--json", env=self.full)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["hits"], 1)
        self.assertEqual(json.loads(p.stdout)["entries"], 2)
        self.assertIn("is full", p.stderr)
        p = self.k("list", env=self.full)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("serde", p.stdout)
        self.assertIn("libc", p.stdout)
        p = self.k("verify", env=self.full)
        self.assertEqual(p.returncode, 1)
        self.assertIn("free space first", p.stderr)
        p = self.k("gc", "--max-size", "45000", env=self.full)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("removed 1 entries, 1 blobs", p.stdout)
        self.assertFalse(os.path.exists(self.entry_path(b)))  # the LRU one
        self.assertTrue(os.path.exists(self.entry_path(a)))
        p = self.k("purge", env=self.full)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.listdir(os.path.join(self.store, "blobs")), [])
        os.unlink(self.flag)  # space is back: everything works again
        p = self.k("stats", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["entries"], 0)

    def test_shim_supervisor_survives_and_resumes(self):
        a, b = self.populate()
        open(self.flag, "w").close()
        sup = subprocess.Popen([KACHED, "supervisor", "run"], env=self.full,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs.append(sup)
        time.sleep(1.5)
        self.fx("hit", a, 5000, 10, 40000)
        time.sleep(2.5)
        self.assertIsNone(sup.poll(), "the supervisor died on a full disk")
        self.assertEqual(json.loads(self.k("stats", "--json").stdout)["hits"], 1)
        os.unlink(self.flag)
        self.assertTrue(wait_for(
            lambda: json.loads(self.k("stats", "--json").stdout)["hits"] == 2, timeout=15))
        self.assertIsNone(sup.poll())
        self.k("supervisor", "stop")
        err = sup.communicate(timeout=30)[1]
        self.assertEqual(sup.returncode, 0, err)
        # the index, and what it says of the disk, belong to the indexer worker
        with open(os.path.join(self.store, "logs", "indexer.0.log"), errors="replace") as f:
            ilog = f.read()
        self.assertEqual(ilog.count("no space left"), 1, ilog)
        self.assertEqual(ilog.count("has room again"), 1, ilog)
        self.assertNotIn("no space left", err)

    def test_shim_build_under_full_store_passes_through(self):
        src = os.path.join(self.tmp, "hello.rs")
        with open(src, "w") as f:
            f.write('fn main() { println!("still builds"); }\n')
        out = os.path.join(self.tmp, "out")
        os.makedirs(out)
        os.makedirs(self.store)
        open(self.flag, "w").close()
        p = subprocess.run([KACHE, "rustc", "--crate-name", "hello", "--edition=2021", src,
                            "--crate-type", "bin", "--emit=dep-info,link", "--out-dir", out],
                           env=self.full, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        run = subprocess.run([os.path.join(out, "hello")], capture_output=True, text=True)
        self.assertEqual(run.stdout, "still builds\n")

    def test_spawn_backoff_for_a_supervisor_that_keeps_dying(self):
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        shutil.copy(KACHE, os.path.join(bindir, "kache"))
        spawns = os.path.join(self.tmp, "spawns")
        with open(os.path.join(bindir, "kached"), "w") as f:
            f.write(f"#!/bin/sh\necho $$ >> {spawns}\nexit 1\n")
        os.chmod(os.path.join(bindir, "kached"), 0o755)
        src = os.path.join(self.tmp, "lib.rs")
        out = os.path.join(self.tmp, "out")
        os.makedirs(out)
        env = dict(self.env, KACHE_REMOTE="dir", KACHE_REMOTE_PATH=os.path.join(self.tmp, "r"))
        t0 = time.monotonic()
        for i in range(12):  # twelve misses, each would spawn one without a back-off
            with open(src, "w") as f:
                f.write(f"pub fn f() -> u32 {{ {i} }}\n")
            p = subprocess.run([os.path.join(bindir, "kache"), "rustc", "--crate-name", "l",
                                "--crate-type", "lib", "--edition=2021", src,
                                "--emit=dep-info,metadata,link", "--out-dir", out],
                               env=env, capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
        elapsed = time.monotonic() - t0
        time.sleep(0.5)
        with open(spawns) as f:
            n = len(f.read().split())
        # 1 s, then 2, 4, 8 ... apart: at most 2 + log2(elapsed) spawns
        self.assertGreaterEqual(n, 1)
        self.assertLessEqual(n, 2 + int(elapsed).bit_length(), f"{n} spawns in {elapsed:.1f} s")

    def test_tmpfs_full_disk(self):
        os.makedirs(self.store)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", self.store],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {p.stderr.strip()}")
        self.mounted = self.store
        a, b = self.populate()
        filler = os.path.join(self.store, "tmp", "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        p = self.k("stats", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["entries"], 2)
        self.assertEqual(self.k("list").returncode, 0)
        before = os.statvfs(self.store).f_bavail
        p = self.k("gc", "--max-size", "0")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreater(os.statvfs(self.store).f_bavail, before)
        self.assertFalse(os.path.exists(self.entry_path(a)))
        p = self.k("purge")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(filler))


class ForeignRunDir(unittest.TestCase):
    """run/ owned by another uid: clients do not contact the socket in it."""

    def setUp(self):
        self.tmp = kh.make_tmp("kache-foreign-")
        self.store = os.path.join(self.tmp, "store")
        self.env = dict(os.environ, KACHE_DIR=self.store, HOME=self.tmp,
                        KACHE_CONFIG=os.path.join(self.tmp, "config.toml"),
                        KACHE_HEARTBEAT_MS="200", KACHE_REMOTE="none")
        self.env.pop("LD_PRELOAD", None)

    def tearDown(self):
        run = os.path.join(self.store, "run")
        if os.path.isdir(run):
            os.chown(run, os.geteuid(), os.getegid())
        subprocess.run([KACHED, "supervisor", "stop"], env=self.env, capture_output=True,
                       timeout=60)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_clients_refuse_a_run_dir_another_uid_owns(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to chown run/ to another uid")
        subprocess.run([KACHED, "supervisor", "start"], env=self.env, check=True,
                       capture_output=True, timeout=60)
        # our own supervisor answers while run/ is ours
        p = subprocess.run([POKE, "fetch", KEY, "1000"], env=self.env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.stdout.split()[0], "miss")
        os.chown(os.path.join(self.store, "run"), 65534, 65534)
        p = subprocess.run([POKE, "fetch", KEY, "1000"], env=self.env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.stdout.split()[0], "refused")
        p = subprocess.run([KACHED, "stats"], env=self.env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("not contacting the supervisor", p.stderr)
        self.assertIn("owned by uid 65534, not by you", p.stderr)
        p = subprocess.run([KACHED, "verify"], env=self.env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("owned by uid 65534, not by you", p.stderr)


if __name__ == "__main__":
    unittest.main()
