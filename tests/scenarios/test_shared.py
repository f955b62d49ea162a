#!/usr/bin/env python3
"""Two machines (two checkouts at different paths, two stores, two
supervisors) building the same workspace at once and uploading the same keys
at once to one directory remote: both builds correct, one pack per result in
the remote and each manifest naming it once, no temporary left behind, and a
third fresh machine served from the remote with correct outputs.

usage: test_shared.py <path to kache> [unittest args]
"""
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import CRATES, Workspace  # noqa: E402
from test_crash import read_bytes  # noqa: E402

WANT = "hello data-from-include-str 42 polite LOUD! DONE!\n"


def build_at_once(machines):
    """Runs cargo build on every workspace at the same moment; the results."""
    results = {}
    start = threading.Barrier(len(machines))

    def build(ws):
        start.wait(timeout=60)
        results[ws.dir] = ws.cargo("build", check=False)
    threads = [threading.Thread(target=build, args=(w,)) for w in machines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    return results


class SharedRemote(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp("kache-shared-")
        self.remote = os.path.join(self.tmp, "remote")
        self.machines = []

    def tearDown(self):
        for ws in self.machines:
            subprocess.run([kh.KACHE, "supervisor", "stop"], env=ws.env,
                           capture_output=True, timeout=60)
        kh.remove_tmp(self.tmp)

    def machine(self, name):
        root = os.path.join(self.tmp, name, "deeper")
        os.makedirs(root)
        ws = Workspace(root, os.path.join(self.tmp, name + "-store"), name)
        ws.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.remote)
        ws.store = os.path.join(self.tmp, name + "-store")
        p = subprocess.run([kh.KACHE, "supervisor", "start"], env=ws.env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.machines.append(ws)
        return ws

    def drained(self, ws, timeout=180):
        intents = os.path.join(ws.store, "intents")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not [f for f in os.listdir(intents) if not f.startswith(".")]:
                return True
            time.sleep(0.2)
        return False

    def remote_packs(self):
        """{crate: [pack file names]} and every other file under packs/."""
        packs, stray = {}, []
        for d, _, files in os.walk(os.path.join(self.remote, "packs")):
            for f in files:
                if f.endswith(".pack") and not f.startswith("."):
                    packs.setdefault(os.path.basename(d), []).append(f)
                else:
                    stray.append(os.path.join(d, f))
        return packs, stray

    def test_two_machines_upload_the_same_keys_at_once(self):
        a, b = self.machine("a"), self.machine("b")
        results = build_at_once([a, b])
        for ws in (a, b):
            self.assertEqual(results[ws.dir].returncode, 0, results[ws.dir].stderr)
            self.assertEqual(ws.run_app(), WANT)
        for ws in (a, b):
            self.assertTrue(self.drained(ws), "uploads of %s did not drain" % ws.dir)
        packs, stray = self.remote_packs()
        self.assertEqual(stray, [], "files other than packs under packs/")
        self.assertTrue(CRATES.issubset(set(packs)), packs)
        for crate, names in packs.items():
            self.assertEqual(len(names), len(set(names)), crate)
        mdir = os.path.join(self.remote, "manifests")
        named = set()
        for f in os.listdir(mdir):
            self.assertFalse(f.startswith("."), "temporary left in manifests/: " + f)
            m, _ = kh.mp_decode(read_bytes(os.path.join(mdir, f)))
            pairs = [tuple(p) for p in m["results"]]
            self.assertEqual(len(pairs), len(set(pairs)), "a result named twice in " + f)
            named.update(pairs)
        on_disk = {(c, n[:-len(".pack")]) for c, ns in packs.items() for n in ns}
        self.assertTrue(named.issubset(on_disk), named - on_disk)
        # One pack per result: exactly the results the two machines made, each
        # once, however many of them both uploaded at the same moment.
        made = set(self.entries(a)) | set(self.entries(b))
        self.assertEqual(sorted(r for _, r in on_disk), sorted(made))
        c = self.machine("c")
        # What is checked is the fetch, not its latency on a loaded machine.
        c.cargo("build", KACHE_DEADLINE_MS="5000")
        self.assertEqual(c.compiled(), [], "the third machine compiled instead of fetching")
        self.assertEqual(c.run_app(), WANT)
        subprocess.run([kh.KACHE, "supervisor", "stop"], env=c.env,
                       capture_output=True, timeout=60)
        v = subprocess.run([kh.KACHE, "verify"], env=c.env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def entries(self, ws):
        out = []
        for d, _, files in os.walk(os.path.join(ws.store, "entries")):
            out += [f for f in files if not f.startswith(".")]
        return out


if __name__ == "__main__":
    kh.take_kache_arg()
    unittest.main()
