#!/usr/bin/env python3
"""The client side of kache-planner over real cargo builds of tests/fixtures/ws:
runner 1 builds with planner.endpoint set and its session manifest is posted to
the real kache-planner on loopback; runner 2 (an empty store, other paths, a
Cargo.lock that differs, sessions/ removed from the remote so that only the
planner can name the keys) prefetches through the plan. A planner that never
answers, or one that refuses the token, leaves the planner-less path in place
with one log line.

usage: test_planner_client.py <path to kache> <path to kache-planner> [unittest args]
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, os.path.join(HERE, "..", "scenarios"))
sys.path.insert(0, HERE)
import kache_harness as kh  # noqa: E402
from kache_harness import CRATES  # noqa: E402
import test_planner as tpl  # noqa: E402
import test_prefetch as tpf  # noqa: E402


class PlannerClient(unittest.TestCase):
    # the prefetch scenarios' runners, remote and checks (not their tests)
    runner = tpf.PrefetchDir.runner
    populate = tpf.PrefetchDir.populate
    sessions = tpf.PrefetchDir.sessions
    prefetch_log = tpf.PrefetchDir.prefetch_log
    assert_served = tpf.PrefetchDir.assert_served

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kache-pclient-")
        self.remote = os.path.join(self.tmp, "remote")
        self.envs = []
        self.planner = None
        self.hang = None
        self.proxy = None
        self.client_env = {}

    def tearDown(self):
        for env in self.envs:
            subprocess.run([kh.KACHE, "supervisor", "stop", "--timeout", "20s"],
                           env=env, capture_output=True, timeout=90)
        if self.planner:
            self.planner.stop()
        if self.hang:
            self.hang.close()
        if self.proxy:
            self.proxy.kill()
            self.proxy.wait()
        kh.remove_tmp(self.tmp)

    def start_planner(self):
        self.planner = tpl.Planner(self.tmp, "planner").start()
        self.client_env = {"KACHE_PLANNER_ENDPOINT": "http://127.0.0.1:%d" % self.planner.port,
                           "KACHE_PLANNER_TOKEN": tpl.TOKEN}

    def client(self, name, root, start=False, **env):
        """A runner whose environment points at the planner."""
        os.makedirs(root, exist_ok=True)
        ws = self.runner(name, root)
        ws.env.update(self.client_env)
        ws.env.update(env)
        if start:
            p = tpf.kache(ws, "supervisor", "start")
            self.assertEqual(p.returncode, 0, p.stderr)
        return ws

    def first_runner(self):
        """Runner 1 builds and stops (its session manifest saved and posted)."""
        a = self.client("a", self.tmp, start=True)
        a.cargo("build")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        p = tpf.kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(len(self.sessions()), 1)
        self.stop_output = p.stdout + p.stderr
        return a, a.run_app()

    def second_runner(self, name, **env):
        b = self.client(name, os.path.join(self.tmp, name, "runner"), **env)
        with open(os.path.join(b.dir, "Cargo.lock"), "a") as f:
            f.write("# another branch: no exact session manifest\n")
        b.cargo("check")
        pf = tpf.wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        return b, pf

    def test_fresh_runner_is_served_through_the_planners_plan(self):
        self.start_planner()
        _, out = self.first_runner()
        st, metrics = self.planner.get("/metrics")
        self.assertIn(b"kache_planner_manifests 1\n", metrics)
        # only the planner can name the keys now
        shutil.rmtree(os.path.join(self.remote, "sessions"))
        b, pf = self.second_runner("b")
        self.assertEqual(pf["sources"]["planner"], 1, pf)
        self.assertEqual(pf["sources"]["packs"], 0, pf)
        self.assertGreaterEqual(pf["packs"] + pf["skipped"]["present"], len(CRATES), pf)
        self.assertRegex(self.prefetch_log(b), r"packs imported .* from planner")
        # the plan named the bundle parts runner 1's stop wrote: read, not each pack
        self.assertGreaterEqual(pf["bundle_parts"], 1, pf)
        self.assertGreaterEqual(pf["packs_from_bundle_parts"], 2, pf)
        self.assert_served(b, out)
        # where the packs came from: the status document, `kache stats` (json, text)
        pf = tpf.status(b)["prefetch"]
        self.assertGreater(pf["packs"], 0, pf)
        self.assertEqual(pf["packs_from"], {"planner": pf["packs"], "exact_session": 0,
                                            "closest_session": 0, "packs": 0}, pf)
        st = tpf.stats(b)
        n = st["prefetch_imported"]
        self.assertGreater(n, 0, st)
        self.assertEqual(st["prefetch_imported_from"], {
            "planner": n, "exact_session": 0, "closest_session": 0, "packs": 0}, st)
        text = tpf.kache(b, "stats").stdout
        self.assertIn("prefetched from   planner %d, exact session 0" % n, text)
        text = tpf.kache(b, "supervisor", "status").stdout
        self.assertIn("prefetch packs from: planner %d, exact session 0" % pf["packs"], text)
        # the build command's session (a build's) asked too: one plan
        # executed per session the planner served
        pf = tpf.wait_prefetch(self, b, lambda p: p["sessions_done"] >= 2)
        st, metrics = self.planner.get("/metrics")
        self.assertIn(b'kache_planner_plans_total{disposition="execute"} %d'
                      % pf["sources"]["planner"], metrics)
        self.assertGreaterEqual(pf["sources"]["planner"], 2, pf)

    def build_and_stop(self, name, root, **versions):
        """A runner at root whose packages (dir: version) are edited, built
        and stopped: its session manifest saved and posted."""
        w = self.client(name, root, start=True)
        for d, v in versions.items():
            w.edit(d + "/Cargo.toml", 'version = "0.1.0"', 'version = "%s"' % v)
        w.cargo("build")
        p = tpf.kache(w, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return w

    def test_plan_prefers_the_session_with_the_same_crate_versions(self):
        """Two recorded sessions with the same crate names: b (fixture-core at
        0.2.0), then a, newer, at 0.1.0. Runner c has fixture-core 0.2.0 and a
        new fixture-app version (no exact session): only versions tell b from
        a, so its plan must draw from b, and every crate but fixture_app (whose
        version no session built) is in its store before cargo asks."""
        self.start_planner()
        self.build_and_stop("b", os.path.join(self.tmp, "b", "runner"), core="0.2.0")
        self.build_and_stop("a", self.tmp)
        self.assertEqual(len(self.sessions()), 2)
        c = self.client("c", os.path.join(self.tmp, "c", "runner"))
        c.edit("core/Cargo.toml", 'version = "0.1.0"', 'version = "0.2.0"')
        c.edit("app/Cargo.toml", 'version = "0.1.0"', 'version = "0.1.1"')
        c.cargo("check")
        pf = tpf.wait_prefetch(self, c, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["sources"]["planner"], 1, pf)
        before = tpf.stats(c)
        c.cargo("build")
        self.assertEqual(c.compiled(), ["fixture_app"],
                         "compiles reached rustc after the planner's prefetch")
        self.assertEqual(tpf.stats(c)["remote_hits"], before["remote_hits"],
                         "the build fetched on a miss: the plan named other versions' keys")

    def test_planner_that_never_answers_falls_back_once(self):
        # a socket that listens and never accepts: connects, no answer
        self.hang = socket.socket()
        self.hang.bind(("127.0.0.1", 0))
        self.hang.listen(16)
        self.client_env = {"KACHE_PLANNER_ENDPOINT":
                           "http://127.0.0.1:%d" % self.hang.getsockname()[1],
                           "KACHE_PLANNER_TIMEOUT_MS": "300",
                           "KACHE_PLANNER_TOKEN": tpl.TOKEN}
        _, out = self.first_runner()
        b, pf = self.second_runner("b")
        self.assertEqual(pf["sources"]["planner"], 0, pf)
        self.assertEqual(pf["sources"]["closest_session"], 1, pf)
        log = self.prefetch_log(b)
        self.assertEqual(log.count("prefetching without it"), 1, log)
        self.assertIn("no answer within planner.timeout_ms (300 ms)", log)
        self.assert_served(b, out)
        # a second session of the same worker says nothing more
        with open(os.path.join(b.dir, "Cargo.lock"), "a") as f:
            f.write("# again\n")
        b.cargo("clean")
        b.cargo("check")
        tpf.wait_prefetch(self, b, lambda p: p["sessions_done"] >= 2)
        self.assertEqual(self.prefetch_log(b).count("prefetching without it"), 1)

    def test_wrong_token_falls_back_with_a_clear_line(self):
        self.start_planner()
        self.client_env["KACHE_PLANNER_TOKEN"] = "not-the-planners-token-000"
        _, out = self.first_runner()
        self.assertEqual(self.stop_output.count("not posted: HTTP 401"), 1, self.stop_output)
        self.assertIn(b"kache_planner_manifests 0\n", self.planner.get("/metrics")[1])
        b, pf = self.second_runner("b")
        self.assertEqual(pf["sources"]["planner"], 0, pf)
        self.assertEqual(pf["sources"]["closest_session"], 1, pf)
        log = self.prefetch_log(b)
        self.assertEqual(log.count("the planner refused the token"), 1, log)
        self.assert_served(b, out)

    def test_planner_over_https_with_its_ca_file_and_without(self):
        """The planner behind TLS (the fault proxy with a self-signed
        certificate for 127.0.0.1): without planner.ca_file the session
        manifest is not posted, with a line that says what to set, and nothing
        reaches the planner; with it, the manifest is posted over https and
        runner b is served through the plan."""
        self.start_planner()
        cert, key = kh.tls_certificate(self.tmp)
        control = os.path.join(self.tmp, "proxy.json")
        kh.write_fault(control, {"mode": "pass"})
        self.proxy, pport = kh.start_proxy(self.planner.port, control,
                                           os.path.join(self.tmp, "proxy.log"),
                                           tls=(cert, key))
        self.client_env["KACHE_PLANNER_ENDPOINT"] = "https://127.0.0.1:%d" % pport
        _, out = self.first_runner()
        self.assertEqual(self.stop_output.count("TLS certificate is not trusted"), 1,
                         self.stop_output)
        self.assertIn("set planner.ca_file (KACHE_PLANNER_CA_FILE)", self.stop_output)
        self.assertIn(b"kache_planner_manifests 0\n", self.planner.get("/metrics")[1])
        self.client_env["KACHE_PLANNER_CA_FILE"] = cert
        a = self.client("a2", self.tmp, start=True)  # the same workspace again
        a.cargo("build")
        p = tpf.kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("not posted", p.stdout + p.stderr)
        self.assertIn(b"kache_planner_manifests 1\n", self.planner.get("/metrics")[1])
        shutil.rmtree(os.path.join(self.remote, "sessions"))
        b, pf = self.second_runner("b")
        self.assertEqual(pf["sources"]["planner"], 1, pf)
        self.assert_served(b, out)


class PlannerClientS3(unittest.TestCase):
    """Over S3 (moto): runner a saves its session manifest to the bucket only;
    a planner started with --from-remote builds its state from the bucket and
    plans for runner b, with sessions/ removed so that only the planner can
    name the keys."""

    setUp = tpf.PrefetchS3.setUp

    def test_s3_runner_prefetches_through_a_replica_loaded_from_the_bucket(self):
        s3 = self.s3
        a, out = s3.first_machine()
        p = tpf.kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        env = {k: v for k, v in a.env.items()
               if k.startswith(("KACHE_S3_", "AWS_")) or k == "KACHE_REMOTE"}
        replica = tpl.Planner(s3.tmp, "replica", env=env, args=["--from-remote"]).start()
        self.addCleanup(replica.stop)
        self.assertIn(b"kache_planner_manifests 1\n", replica.get("/metrics")[1])
        bucket = tpf.BUCKET_OF(s3)
        listed = s3.s3.list_objects_v2(Bucket=bucket, Prefix=s3.prefix + "/sessions/")
        for o in listed.get("Contents", []):
            s3.s3.delete_object(Bucket=bucket, Key=o["Key"])
        b = s3.machine("b", os.path.join(s3.tmp, "elsewhere", "b"),
                       KACHE_PLANNER_ENDPOINT="http://127.0.0.1:%d" % replica.port,
                       KACHE_PLANNER_TOKEN=tpl.TOKEN)
        b.cargo("check")
        pf = tpf.wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["sources"]["planner"], 1, pf)
        self.assertGreater(pf["packs_from"]["planner"], 0, pf)
        before = tpf.stats(b)
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "compiles reached rustc after the prefetch")
        self.assertEqual(b.run_app(), out)
        self.assertEqual(tpf.stats(b)["remote_hits"], before["remote_hits"],
                         "the build fetched on a miss: the plan did not serve it")
        # the check's session asked for its check session (use_fallback),
        # then for the build's (execute); the build command's own session
        # (a build's) asked once more (execute) and found everything here:
        # one plan executed per session the planner served
        pf = tpf.wait_prefetch(self, b, lambda p: p["sessions_done"] >= 2)
        self.assertGreaterEqual(pf["sources"]["planner"], 2, pf)
        metrics = replica.get("/metrics")[1]
        self.assertIn(b'kache_planner_plans_total{disposition="execute"} %d'
                      % pf["sources"]["planner"], metrics)


if __name__ == "__main__":
    kh.take_kache_arg()
    tpl.PLANNER = os.path.abspath(sys.argv.pop(1))
    unittest.main()
