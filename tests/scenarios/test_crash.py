#!/usr/bin/env python3
"""Crash consistency: kill -9 the wrapper, its background-store child and the
supervisor at random points of storing and importing, many times, over real
offline cargo builds of tests/fixtures/ws (tests/harness/kache_harness.py).

After every round: the store and index reopen (`kache stats`, `kache verify`
exit 0), every entry decodes and names blobs that are present and whole
(checked here with an independent msgpack reader, xxhsum for the records'
frames and hashlib's BLAKE2b for the blobs), and
the next build is correct (the program's output bytes). Kill points come from
a seeded random generator; the seed is printed (set KACHE_CRASH_SEED to replay).

usage: test_crash.py <path to kache> [unittest args]
"""
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import Workspace  # noqa: E402

BASE = "hello data-from-include-str 42 polite LOUD!"
FMT = '"{} {} {} {} {}"'
TEMP_RE = re.compile(r"^\..*\.tmp\.")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def entry_problems(store):
    """Entries that do not decode, or name a blob that is missing, of another
    size or another hash. Each a line; [] when the store is sound."""
    problems = []
    for d, _, files in os.walk(os.path.join(store, "entries")):
        for f in files:
            if TEMP_RE.match(f):
                continue
            # the frame of store/record.c: tag | XXH3-128(tag | key | payload) | payload
            payload = kh.record_payload("entries", os.path.join(d, f))
            if payload is None:
                problems.append("entry %s fails its checksum" % f)
                continue
            try:
                entry, _ = kh.mp_decode(payload)
                outputs = entry["outputs"]
            except Exception as e:  # noqa: BLE001 (any decode failure is the finding)
                problems.append("entry %s does not decode: %r" % (f, e))
                continue
            for o in outputs:
                hexname = o["hash"].hex()
                blob = os.path.join(store, "blobs", hexname[:2], hexname)
                if not os.path.exists(blob):
                    problems.append("entry %s names missing blob %s" % (f, hexname))
                    continue
                content = read_bytes(blob)
                if len(content) != o["size"] or \
                        hashlib.blake2b(content, digest_size=32).hexdigest() != hexname:
                    problems.append("entry %s names partial blob %s" % (f, hexname))
    return problems


def temporaries(store):
    """Temporary files (".<name>.tmp.*" anywhere, tmp/pending-* markers)."""
    found = []
    for d, _, files in os.walk(store):
        for f in files:
            if TEMP_RE.match(f) or (os.path.basename(d) == "tmp" and f.startswith("pending-")):
                found.append(os.path.relpath(os.path.join(d, f), store))
    return sorted(found)


class CrashBase(unittest.TestCase):
    """Workspaces, our processes, kill rounds and the checks after each."""
    # Rounds that must kill something; a round whose victims ended first
    # does not count, and at most 3 times as many rounds are run.
    WRAPPER_KILLS = int(os.environ.get("KACHE_CRASH_KILLS", "30"))
    IMPORT_KILLS = int(os.environ.get("KACHE_CRASH_KILLS", "20"))

    def setUp(self):
        seed = int(os.environ.get("KACHE_CRASH_SEED", str(int(time.time() * 1000) % 1000000)))
        print("%s: seed %d (KACHE_CRASH_SEED=%d replays it)" % (self.id(), seed, seed),
              flush=True)
        self.rng = random.Random(seed)
        self.tmp = kh.make_tmp("kache-crash-")
        self.token = "kache-crash-%d-%d" % (os.getpid(), seed)
        self.stores = []

    def tearDown(self):
        self.kill_ours(1.0)
        for store in self.stores:
            subprocess.run([kh.KACHE, "supervisor", "stop"],
                           env=dict(os.environ, KACHE_DIR=store), capture_output=True,
                           timeout=60)
        self.kill_ours(1.0)
        kh.remove_tmp(self.tmp)

    # ---- the processes this test started, found by a token in their environment

    def ours(self, exe_names=None, store_children=False):
        """Our processes (with exe_names: only those binaries). store_children:
        only the wrapper's background-store children (their stdout is /dev/null)."""
        pids = []
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % p, "rb") as f:
                    env = f.read()
                exe = os.path.basename(os.readlink("/proc/%s/exe" % p))
            except OSError:
                continue
            if ("KACHE_CRASH_TOKEN=" + self.token).encode() not in env.split(b"\0") or \
                    (exe_names is not None and exe not in exe_names):
                continue
            try:
                if store_children and os.readlink("/proc/%s/fd/1" % p) != "/dev/null":
                    continue
            except OSError:
                continue
            pids.append(int(p))
        return pids

    def kill_ours(self, wait_s):
        """Waits up to wait_s for our processes to end, then kills what is left."""
        deadline = time.monotonic() + wait_s
        while self.ours() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.ours():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def settle(self):
        """Lets in-flight writers (background stores, orphaned rustc) finish, bounded."""
        deadline = time.monotonic() + 60
        while self.ours() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.ours(), [], "processes still running 60 s after the round")

    def workspace(self, name, **env):
        store = os.path.join(self.tmp, name + "-store")
        ws = Workspace(self.tmp, store, name)
        # In the ASan build, LeakSanitizer checks at exit from a tracer task: a
        # clone of the same binary, which a kill -9 of "kache" processes may hit;
        # its parent then waits for it forever (a hang seen in CI, seed 944868).
        # These tests kill at random: a leak report at exit means nothing here.
        asan = os.environ.get("ASAN_OPTIONS", "")
        ws.env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "detect_leaks=0"
        ws.env.update(KACHE_CRASH_TOKEN=self.token, **env)
        self.stores.append(store)
        return ws, store

    def set_variant(self, ws, tag):
        path = os.path.join(ws.dir, "core/src/lib.rs")
        with open(path) as f:
            text = f.read()
        text = re.sub(r'"\{\} \{\} \{\} \{\} \{\}[^"]*"',
                      '"{} {} {} {} {}%s"' % ("" if tag is None else " " + tag), text)
        with open(path, "w") as f:
            f.write(text)
        return "%s%s DONE!\n" % (BASE, "" if tag is None else " " + tag)

    # ---- one round: build, kill at a random point, check

    def build_and_kill(self, ws, targets, linger, store_children=False):
        """Starts cargo build; as soon as one of our processes named in targets
        exists (store_children: a background-store child, which may outlive
        cargo), waits linger seconds and kills -9 a random non-empty subset of
        those still alive. The number killed."""
        cargo = subprocess.Popen(["cargo", "build", "--offline", "-j2"], cwd=ws.dir,
                                 env=ws.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        done_at = None
        victims = []
        while not victims and time.monotonic() < deadline:
            if done_at is None and cargo.poll() is not None:
                done_at = time.monotonic()
            if done_at is not None and (not store_children or time.monotonic() > done_at + 2):
                break
            victims = self.ours(targets, store_children)
            time.sleep(0.005)
        time.sleep(linger)
        victims = self.ours(targets, store_children) if victims else []
        chosen = [p for p in victims if self.rng.random() < 0.5] or victims[:1]
        for pid in chosen:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        cargo.wait(timeout=600)
        return len(chosen)

    def uploaded(self, ws, store, remote):
        """Waits (bounded) for the background stores to end and every crate's pack
        to reach the remote with no intent left: `supervisor stop` does not wait
        for them (issue 7 item 1)."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            packs = os.path.join(remote, "packs")
            crates = set(os.listdir(packs)) if os.path.isdir(packs) else set()
            intents = [f for f in os.listdir(os.path.join(store, "intents"))
                       if not f.startswith(".")]
            if not self.ours({"kache"}) and not intents and kh.CRATES <= crates:
                return True
            time.sleep(0.2)
        return False

    def stop_supervisor(self, ws):
        subprocess.run([kh.KACHE, "supervisor", "stop"], env=ws.env,
                       capture_output=True, timeout=120)

    def check_round(self, ws, store, want, label, remote=False):
        if remote:
            self.stop_supervisor(ws)
        self.settle()
        self.assertEqual(entry_problems(store), [], label)
        for cmd in (["stats"], ["verify"]):
            p = subprocess.run([kh.KACHE, *cmd], env=ws.env, capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(p.returncode, 0, "%s: kache %s: %s%s" %
                             (label, cmd[0], p.stdout, p.stderr))
        ws.cargo("build")
        self.assertEqual(ws.run_app(), want, label)
        if remote:
            self.stop_supervisor(ws)
        self.settle()


class CrashLoop(CrashBase):
    def test_kill9_wrappers_while_storing_and_restoring(self):
        ws, store = self.workspace("w")
        self.check_round(ws, store, self.set_variant(ws, None), "first build")
        kills = r = 0
        while kills < self.WRAPPER_KILLS and r < 3 * self.WRAPPER_KILLS:
            r += 1
            if self.rng.random() < 0.3:
                ws.cargo("clean")  # restores of every crate, not only stores
            # mostly a new edit (a store to kill), sometimes an earlier one (a hit)
            new = self.rng.random() < 0.7
            tag = "r%d" % (r if new else self.rng.randrange(r + 1))
            want = self.set_variant(ws, tag)
            store_only = new and self.rng.random() < 0.4
            # a background store lives tens of ms, a wrapper a little longer
            delay = self.rng.uniform(0.0, 0.04 if store_only else 0.2)
            kills += self.build_and_kill(ws, {"kache"}, delay, store_only) > 0
            self.check_round(ws, store, want,
                             "round %d (%s, kill %.2fs after a wrapper appeared)" %
                             (r, tag, delay))
        print("%d of %d rounds killed a wrapper; temporaries left: %s" %
              (kills, r, temporaries(store)), flush=True)
        self.assertEqual(kills, self.WRAPPER_KILLS, "too few rounds found a wrapper to kill")

    def test_kill9_supervisor_during_dir_remote_imports(self):
        remote = os.path.join(self.tmp, "remote")
        a, store_a = self.workspace("a", KACHE_REMOTE="dir", KACHE_REMOTE_PATH=remote)
        want = self.set_variant(a, None)
        a.cargo("build")
        self.assertEqual(a.run_app(), want)
        self.assertTrue(self.uploaded(a, store_a, remote), "machine a's uploads did not arrive")
        self.stop_supervisor(a)
        self.settle()
        kills = r = 0
        while kills < self.IMPORT_KILLS and r < 3 * self.IMPORT_KILLS:
            r += 1
            b, store_b = self.workspace("b%d" % r, KACHE_REMOTE="dir",
                                        KACHE_REMOTE_PATH=remote)
            delay = self.rng.uniform(0.0, 1.0)
            kills += self.build_and_kill(b, {"kached"}, delay) > 0
            self.check_round(b, store_b, want,
                             "import round %d (kill %.2fs after the supervisor appeared)" %
                             (r, delay), remote=True)
            self.stores.remove(store_b)
            shutil.rmtree(b.dir, ignore_errors=True)
            shutil.rmtree(store_b, ignore_errors=True)
        print("%d of %d rounds killed the supervisor or a worker" % (kills, r), flush=True)
        self.assertEqual(kills, self.IMPORT_KILLS, "too few rounds found a supervisor to kill")


class GcAfterKill9(CrashBase):
    """Temporaries that writers killed -9 leave behind are reclaimed by gc. The
    kill rounds run in setUp, so that only the final assertion is marked."""

    def setUp(self):
        super().setUp()
        shim = os.environ.get("KACHE_SLOW_RENAME")
        if not shim or not os.path.exists(shim):
            self.skipTest("KACHE_SLOW_RENAME (tests/tools/slow_rename.c, built by ctest) not set")
        self.ws, self.store = self.workspace("g")
        self.check_round(self.ws, self.store, self.set_variant(self.ws, None), "first build")
        # Every rename waits 300 ms: a kill -9 of a background store then lands
        # between a temporary's write and its rename, as a cancelled CI job's does.
        self.ws.env.update(LD_PRELOAD=shim, KACHE_SLOW_RENAME_MS="300",
                           ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0")
        outside_tmp = []
        for r in range(12):
            want = self.set_variant(self.ws, "g%d" % r)
            self.build_and_kill(self.ws, {"kache"}, self.rng.uniform(0.2, 1.5), True)
            self.check_round(self.ws, self.store, want, "round %d" % r)
            outside_tmp = [t for t in temporaries(self.store) if not t.startswith("tmp/")]
            if outside_tmp:
                break
        if not outside_tmp:
            self.skipTest("no kill in 12 rounds left a temporary outside tmp/")
        self.left = temporaries(self.store)
        print("temporaries left by kill -9: %s" % self.left, flush=True)
        old = time.time() - 3 * 86400  # stale: writers gone, files days old
        for rel in self.left:
            os.utime(os.path.join(self.store, rel), (old, old))

    def test_gc_reclaims_temporaries_left_by_kill9(self):
        gc = subprocess.run([kh.KACHE, "gc"], env=self.ws.env, capture_output=True,
                            text=True, timeout=120)
        self.assertEqual(gc.returncode, 0, gc.stderr)
        self.assertEqual(temporaries(self.store), [], "gc left temporaries of killed writers")


if __name__ == "__main__":
    kh.take_kache_arg()
    unittest.main()
