#!/usr/bin/env python3
"""bench/ws-large is well-formed (it is a benchmark, not a test: nothing is built here).

Always: its Cargo.lock names >= 200 crates from the registry, its members include a
proc-macro, a build script and a binary (cargo metadata --no-deps, which reads no crate
source), and setup.sh parses. Only when its Debian crate sources are installed
(bench/ws-large/setup.sh --check; run-tests.sh does not install them): the whole graph
resolves offline against them with the committed Cargo.lock.

usage: test_ws_large.py [unittest args]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402

WS = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                   "bench", "ws-large"))
MIN_CRATES = 200


def kinds(meta):
    """Every target kind of the metadata's workspace members."""
    members = set(meta["workspace_members"])
    return {k for p in meta["packages"] if p["id"] in members for t in p["targets"]
            for k in t["kind"]}


class WsLarge(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp(prefix="kache-wslarge-")
        self.ws = os.path.join(self.tmp, "ws")
        shutil.copytree(WS, self.ws, ignore=shutil.ignore_patterns("target"))

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def metadata(self, *extra):
        r = subprocess.run(["cargo", "metadata", "--offline", "--locked", "--format-version", "1",
                            *extra], cwd=self.ws, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, CARGO_HOME=os.path.join(self.tmp, "home")))
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_lock_and_members_without_the_sources(self):
        with open(os.path.join(self.ws, "Cargo.lock")) as f:
            registry = re.findall(r'^source = "registry\+', f.read(), re.M)
        self.assertGreaterEqual(len(registry), MIN_CRATES)
        meta = self.metadata("--no-deps")
        self.assertTrue({"proc-macro", "custom-build", "bin", "lib"} <= kinds(meta), kinds(meta))
        r = subprocess.run(["bash", "-n", os.path.join(self.ws, "setup.sh")], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_graph_resolves_offline_against_debian_sources(self):
        check = subprocess.run([os.path.join(self.ws, "setup.sh"), "--check"], capture_output=True,
                               text=True, timeout=60)
        if check.returncode != 0:
            self.skipTest("ws-large's crate sources are not installed (bench/ws-large/setup.sh): "
                          + check.stderr.strip()[:200])
        meta = self.metadata()
        deps = [p for p in meta["packages"] if p["source"] is not None]
        self.assertGreaterEqual(len(deps), MIN_CRATES)
        self.assertTrue(all(p["source"].startswith("registry+") for p in deps))
        nodes = {n["id"] for n in meta["resolve"]["nodes"]}
        self.assertGreaterEqual(len(nodes), MIN_CRATES)


if __name__ == "__main__":
    unittest.main()
