#!/usr/bin/env python3
"""kache-planner, black-box over real HTTP (http.client) against the real
binary on loopback: ingest and plans, the fallback, a branch that changed one
crate, auth and bounds (401/400/413), a restart, and a fresh replica that
rebuilds its state from session manifests in an S3 remote (moto_server,
written with boto3 in the documented format, docs/remote-layout.md).

usage: test_planner.py <path to kache-planner> [unittest args]
"""
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
import kache_harness as kh  # noqa: E402

PLANNER = None
TOKEN = "planner-test-token-0123456789"


def hexkey(s):
    return hashlib.blake2b(s.encode(), digest_size=32).hexdigest()


def hash_str(h, s):
    b = s.encode()
    h.update(len(b).to_bytes(8, "little") + b)


def session_fp(lock, toolchain, target, profile):
    """The documented fingerprint of a session manifest."""
    h = hashlib.blake2b(digest_size=32)
    for s in ("kache-session-v1", lock, toolchain, target, profile):
        hash_str(h, s)
    return h.hexdigest()


class Planner:
    """One kache-planner process on a free loopback port."""

    def __init__(self, tmp, name, env=None, args=()):
        self.port = kh.free_port()
        self.db = os.path.join(tmp, name)
        self.log = os.path.join(tmp, name + ".log")
        self.env = dict(os.environ, KACHE_PLANNER_TOKEN=TOKEN,
                        KACHE_CONFIG=os.path.join(tmp, "none.toml"))
        self.env.update(env or {})
        self.args = list(args)
        self.proc = None

    def start(self, ready=True):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PLANNER, "--listen", "127.0.0.1:%d" % self.port, "--db", self.db, *self.args],
                env=self.env, stdout=log, stderr=log)
        ok = kh.wait_for(lambda: self.get("/healthz", quiet=True)[0] == 200, timeout=20)
        if not ok:
            raise RuntimeError("planner did not come up: " + open(self.log).read())
        if ready and not kh.wait_for(lambda: self.get("/readyz")[0] == 200, timeout=60):
            raise RuntimeError("planner never ready: " + open(self.log).read())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        return self.proc.returncode if self.proc else None

    def request(self, method, path, body=None, token=TOKEN, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def get(self, path, quiet=False):
        try:
            return self.request("GET", path, token=None)
        except OSError:
            if quiet:
                return None, b""
            raise

    def post(self, path, body, **kw):
        status, data = self.request("POST", path, body, **kw)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data


CRATES = [("serde", "1.0.200"), ("serde_json", "1.0.117"), ("itoa", "1.0.11"),
          ("ryu", "1.0.18"), ("memchr", "2.7.4"), ("app", "0.1.0")]


def manifest(fp, crates=CRATES, tag="", with_meta=True, toolchain="0123456789abcdef"):
    keys = []
    for i, (c, v) in enumerate(crates):
        k = {"key": hexkey(fp + c + v + tag), "crate": c, "bytes": 1000 * (i + 1),
             "order": i}
        if with_meta:
            k.update(version=v, compile_ms=100 * (i + 1))
        keys.append(k)
    return {"fingerprint": fp, "toolchain": toolchain, "target": "x86_64-unknown-linux-gnu",
            "profile": "debug", "features": ["default"], "created_ms": 1700000000000,
            "keys": keys}


def intent(fp, crates=CRATES, **kw):
    d = {"fingerprint": fp, "toolchain": "0123456789abcdef",
         "target": "x86_64-unknown-linux-gnu", "profile": "debug",
         "crates": [{"name": c, "version": v} for c, v in crates]}
    d.update(kw)
    return d


class PlannerHttp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kache-planner-")
        self.planners = []

    def tearDown(self):
        for p in self.planners:
            p.stop()
        kh.remove_tmp(self.tmp)

    def planner(self, name="p", **kw):
        p = Planner(self.tmp, name, **kw)
        self.planners.append(p)
        return p

    def test_ingest_then_plan_executes_with_the_keys(self):
        p = self.planner().start()
        m = manifest(hexkey("lock-a"))
        st, r = p.post("/v1/manifests", m)
        self.assertEqual(st, 200, r)
        st, plan = p.post("/v1/prefetch-plan", intent(m["fingerprint"]))
        self.assertEqual(st, 200, plan)
        self.assertEqual(plan["disposition"], "execute")
        self.assertEqual(plan["source"], "exact")
        self.assertEqual([c["key"] for c in plan["candidates"]], [k["key"] for k in m["keys"]])
        self.assertEqual(plan["candidates"][0]["size"], 1000)
        self.assertEqual(plan["candidates"][0]["expected_saving_ms"], 100)
        self.assertEqual(plan["bytes"], sum(k["bytes"] for k in m["keys"]))
        metrics = p.get("/metrics")[1].decode()
        self.assertIn("kache_planner_manifests 1\n", metrics)
        self.assertIn('kache_planner_plans_total{disposition="execute"} 1\n', metrics)
        self.assertIn('kache_planner_requests_total{endpoint="manifests",code="200"} 1\n',
                      metrics)
        self.assertIn("prefetch_plan 200", open(p.log).read())

    def test_an_answered_request_is_already_counted_and_logged(self):
        # A client that has its answer reads it back in /metrics and the log
        # at once: the planner counts a request when it answers, not when the
        # connection is torn down afterwards on some other pool thread.
        p = self.planner().start()
        for i in range(1, 201):
            st, _ = p.post("/v1/prefetch-plan", intent(hexkey("lock-a")))
            self.assertEqual(st, 200)
            metrics = p.get("/metrics")[1].decode()
            self.assertIn('kache_planner_requests_total{endpoint="prefetch_plan",code="200"} %d\n'
                          % i, metrics)
        self.assertEqual(open(p.log).read().count("prefetch_plan 200"), 200)

    def test_empty_planner_answers_use_fallback(self):
        p = self.planner().start()
        st, plan = p.post("/v1/prefetch-plan", intent(hexkey("lock-a")))
        self.assertEqual(st, 200, plan)
        self.assertEqual(plan["disposition"], "use_fallback")
        self.assertEqual(plan["candidates"], [])

    def test_branch_that_changed_one_crate_gets_the_other_crates_keys(self):
        p = self.planner().start()
        m = manifest(hexkey("lock-main"))
        self.assertEqual(p.post("/v1/manifests", m)[0], 200)
        # an unrelated session of another target is never drawn from
        other = manifest(hexkey("lock-arm"), tag="arm")
        other["target"] = "aarch64-unknown-linux-gnu"
        self.assertEqual(p.post("/v1/manifests", other)[0], 200)
        branch = [(c, "1.0.999" if c == "itoa" else v) for c, v in CRATES]
        st, plan = p.post("/v1/prefetch-plan", intent(hexkey("lock-branch"), branch))
        self.assertEqual(st, 200, plan)
        self.assertEqual(plan["disposition"], "execute")
        self.assertEqual(plan["source"], "similar")
        self.assertEqual(plan["sessions"], [m["fingerprint"]])
        want = [k["key"] for k in m["keys"] if k["crate"] != "itoa"]
        self.assertEqual([c["key"] for c in plan["candidates"]], want)

    def test_same_crate_names_the_session_with_the_same_versions_wins(self):
        """Two sessions with the same crate names, one at another version of
        itoa and newer: a Cargo.lock at the older session's versions gets that
        session's keys; one at the newer's gets the newer's."""
        p = self.planner().start()
        old = manifest(hexkey("lock-old"))
        new_crates = [(c, "1.0.999" if c == "itoa" else v) for c, v in CRATES]
        new = manifest(hexkey("lock-new"), new_crates, tag="new")
        new["created_ms"] += 1000
        for m in (old, new):
            self.assertEqual(p.post("/v1/manifests", m)[0], 200)
        for crates, m in ((CRATES, old), (new_crates, new)):
            st, plan = p.post("/v1/prefetch-plan", intent(hexkey("lock-x"), crates))
            self.assertEqual(st, 200, plan)
            self.assertEqual(plan["sessions"][0], m["fingerprint"])
            self.assertEqual(sorted(c["key"] for c in plan["candidates"]),
                             sorted(k["key"] for k in m["keys"]))

    def test_byte_cap_keeps_most_saving_per_byte_in_build_order(self):
        p = self.planner().start()
        m = manifest(hexkey("lock-cap"))
        m["keys"][0]["compile_ms"] = 100000  # serde: the best saving per byte
        self.assertEqual(p.post("/v1/manifests", m)[0], 200)
        st, plan = p.post("/v1/prefetch-plan", intent(m["fingerprint"], max_bytes=4000))
        self.assertEqual(st, 200, plan)
        self.assertLessEqual(plan["bytes"], 4000)
        got = [c["crate"] for c in plan["candidates"]]
        self.assertEqual(got[0], "serde")
        self.assertEqual(got, sorted(got, key=[c for c, _ in CRATES].index))
        st, plan = p.post("/v1/prefetch-plan", intent(m["fingerprint"], max_bytes=0))
        self.assertEqual(plan["disposition"], "do_nothing")

    def test_without_or_with_a_wrong_token_is_401(self):
        p = self.planner().start()
        m = manifest(hexkey("lock-a"))
        self.assertEqual(p.post("/v1/manifests", m, token=None)[0], 401)
        self.assertEqual(p.post("/v1/manifests", m, token=TOKEN[:-1] + "x")[0], 401)
        self.assertEqual(p.post("/v1/manifests", m, token=TOKEN + "x")[0], 401)
        self.assertEqual(p.post("/v1/prefetch-plan", intent(m["fingerprint"]),
                                token="")[0], 401)
        # nothing was stored
        st, plan = p.post("/v1/prefetch-plan", intent(m["fingerprint"]))
        self.assertEqual(plan["disposition"], "use_fallback")

    def test_malformed_or_mistyped_bodies_are_400_with_a_reason(self):
        p = self.planner().start()
        fp = hexkey("lock-a")
        bad_keys = manifest(fp)
        bad_keys["keys"][2]["bytes"] = "lots"
        cases = [
            ("/v1/manifests", b"{not json"),
            ("/v1/manifests", b"[]"),
            ("/v1/manifests", {"keys": []}),
            ("/v1/manifests", dict(manifest(fp), fingerprint="zz")),
            ("/v1/manifests", bad_keys),
            ("/v1/manifests", dict(manifest(fp), keys={"a": 1})),
            ("/v1/manifests", dict(manifest(fp), target="../etc")),
            ("/v1/prefetch-plan", dict(intent(fp), crates=[{"name": 7}])),
            ("/v1/prefetch-plan", dict(intent(fp), max_bytes=-1)),
            ("/v1/prefetch-plan", b""),
        ]
        for path, body in cases:
            st, r = p.post(path, body)
            self.assertEqual(st, 400, (path, body, r))
            self.assertTrue(r["error"], r)
        st, r = p.post("/v1/manifests", bad_keys)
        self.assertIn("keys[2]", r["error"])
        self.assertEqual(p.get("/healthz")[0], 200)
        self.assertEqual(p.request("GET", "/v1/manifests")[0], 405)
        self.assertEqual(p.request("GET", "/nope")[0], 404)

    def test_plans_name_the_bundle_part_of_a_pack_where_most_of_the_part_is_planned(self):
        """A manifest's keys may name the bundle part that holds their pack
        (docs/remote-layout.md): an exact plan names each candidate's part;
        a similar plan that takes one of a part's four packs does not name
        that part (reading it whole would cost more than the one pack), and
        still names a part it takes every pack of. Kept across a restart; a
        part that is not 64 hex digits is a 400."""
        p = self.planner().start()
        m = manifest(hexkey("lock-a"))
        parts = [hexkey("part-a"), hexkey("part-b")]
        for i, k in enumerate(m["keys"]):
            k["part"] = parts[0] if i < 4 else parts[1]
        self.assertEqual(p.post("/v1/manifests", m)[0], 200)
        for restart in (False, True):
            if restart:
                self.assertEqual(p.stop(), 0)
                p.start()
            exact = p.post("/v1/prefetch-plan", intent(m["fingerprint"]))[1]
            self.assertEqual(exact["source"], "exact")
            self.assertEqual([c.get("part") for c in exact["candidates"]],
                             [k["part"] for k in m["keys"]])
            some = CRATES[:1] + CRATES[4:]  # serde of part a; memchr, app: all of part b
            similar = p.post("/v1/prefetch-plan", intent(hexkey("lock-b"), some))[1]
            self.assertEqual(similar["source"], "similar")
            self.assertEqual({c["crate"]: c.get("part") for c in similar["candidates"]},
                             {"serde": None, "memchr": parts[1], "app": parts[1]})
        bad = manifest(hexkey("lock-c"))
        bad["keys"][1]["part"] = "xyz"
        st, r = p.post("/v1/manifests", bad)
        self.assertEqual(st, 400, r)
        self.assertIn("keys[1]: field 'part' must be 64 hex digits", r["error"])

    def test_a_body_over_the_limit_is_413(self):
        p = self.planner(env={"KACHE_PLANNER_MAX_BODY": "64K"}).start()
        m = manifest(hexkey("lock-big"), [("c%d" % i, "1.0.0") for i in range(2000)])
        st, r = p.post("/v1/manifests", m)
        self.assertEqual(st, 413, r)
        small = manifest(hexkey("lock-small"))
        self.assertEqual(p.post("/v1/manifests", small)[0], 200)

    def test_a_restart_keeps_the_state(self):
        p = self.planner().start()
        m = manifest(hexkey("lock-a"))
        self.assertEqual(p.post("/v1/manifests", m)[0], 200)
        before = p.post("/v1/prefetch-plan", intent(m["fingerprint"]))[1]
        self.assertEqual(p.stop(), 0)
        p.start()
        after = p.post("/v1/prefetch-plan", intent(m["fingerprint"]))[1]
        self.assertEqual(after, before)
        self.assertEqual(after["disposition"], "execute")

    def test_max_sessions_keeps_the_newest(self):
        """--max-sessions 3: a fourth manifest pushes out the oldest (its
        fingerprint no longer plans exactly, from memory nor after a
        restart); one older than all held is not kept."""
        p = self.planner(args=["--max-sessions", "3"]).start()
        ms = [manifest(hexkey("lock-%d" % i), tag=str(i)) for i in range(4)]
        for i, m in enumerate(ms):
            m["created_ms"] = 1700000000000 + 1000 * i
            st, r = p.post("/v1/manifests", m)
            self.assertEqual((st, r["stored"]), (200, True), r)
        old = manifest(hexkey("lock-old"), tag="old")
        old["created_ms"] = 1600000000000
        st, r = p.post("/v1/manifests", old)
        self.assertEqual((st, r["stored"]), (200, False), r)
        for restart in (False, True):
            if restart:
                p.stop()
                p.start()
            self.assertIn(b"kache_planner_manifests 3\n", p.get("/metrics")[1])
            plan = p.post("/v1/prefetch-plan", intent(ms[0]["fingerprint"]))[1]
            self.assertEqual(plan["source"], "similar", plan)
            self.assertNotIn(ms[0]["fingerprint"], plan["sessions"])
            self.assertNotIn(ms[0]["keys"][0]["key"], [c["key"] for c in plan["candidates"]])
            plan = p.post("/v1/prefetch-plan", intent(ms[3]["fingerprint"]))[1]
            self.assertEqual(plan["source"], "exact", plan)

    def test_max_age_expires_manifests(self):
        """Posted 30 minutes ago: kept under the default age, gone once the
        planner restarts with --max-age 10m; one older than that is not kept."""
        p = self.planner().start()
        m = manifest(hexkey("lock-aged"))
        m["created_ms"] = int(time.time() * 1000) - 30 * 60 * 1000
        self.assertEqual(p.post("/v1/manifests", m)[1]["stored"], True)
        self.assertEqual(p.post("/v1/prefetch-plan", intent(m["fingerprint"]))[1]["source"],
                         "exact")
        p.stop()
        p.args = ["--max-age", "10m"]
        p.start()
        self.assertIn(b"kache_planner_manifests 0\n", p.get("/metrics")[1])
        self.assertEqual(p.post("/v1/prefetch-plan", intent(m["fingerprint"]))[1]["disposition"],
                         "use_fallback")
        self.assertIn("1 session manifests expired", open(p.log).read())
        self.assertEqual(p.post("/v1/manifests", m)[1]["stored"], False)
        self.assertIn(b"kache_planner_manifests 0\n", p.get("/metrics")[1])

    def test_bad_bounds_are_a_configuration_error(self):
        for args in (["--max-sessions", "-1"], ["--max-age", "forever"]):
            p = subprocess.run([PLANNER, "--listen", "127.0.0.1:1", "--db",
                                os.path.join(self.tmp, "x"), *args],
                               env=dict(os.environ, KACHE_PLANNER_TOKEN=TOKEN,
                                        KACHE_CONFIG=os.path.join(self.tmp, "none.toml")),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 78, p.stderr)
            self.assertIn("planner.max_sessions must be", p.stderr)

    def test_token_from_the_command_line_is_not_taken(self):
        p = self.planner(env={"KACHE_PLANNER_TOKEN": ""})
        r = subprocess.run([PLANNER, "--listen", "127.0.0.1:%d" % p.port, "--db", p.db,
                            "--token", TOKEN], env=p.env, capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 78, r.stderr)
        r = subprocess.run([PLANNER, "--listen", "127.0.0.1:%d" % p.port, "--db", p.db],
                           env=p.env, capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 78)
        self.assertIn(b"token", r.stderr)
        # from a file, it serves
        path = os.path.join(self.tmp, "token")
        with open(path, "w") as f:
            f.write(TOKEN + "\n")
        p.env["KACHE_PLANNER_TOKEN_FILE"] = path
        p.start()
        self.assertEqual(p.post("/v1/prefetch-plan", intent(hexkey("x")))[0], 200)
        self.assertEqual(p.post("/v1/prefetch-plan", intent(hexkey("x")), token=None)[0], 401)


BUCKET = "planner-bucket"


class PlannerFromRemote(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto, cls.mport = kh.start_moto()
        cls.s3 = kh.boto(cls.mport)
        cls.s3.create_bucket(Bucket=BUCKET)

    @classmethod
    def tearDownClass(cls):
        cls.moto.kill()
        cls.moto.wait(timeout=20)

    setUp = PlannerHttp.setUp
    tearDown = PlannerHttp.tearDown
    planner = PlannerHttp.planner

    def remote_env(self, port=None):
        env = {"KACHE_REMOTE": "s3", "KACHE_S3_BUCKET": BUCKET, "KACHE_S3_PREFIX": "kc",
               "KACHE_S3_ENDPOINT": "http://127.0.0.1:%d" % (port or self.mport),
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp, "no-aws"),
               "KACHE_DEADLINE_MS": "1000"}
        return env

    def put_session(self, lock, crates, toolchain, tag, part=None):
        """A session manifest in the documented format; returns its manifest JSON
        (no versions or compile times: the format has none). With part (64
        hex), version 3: every key's pack in that one bundle part."""
        fp = session_fp(lock, toolchain, "x86_64-unknown-linux-gnu", "debug")
        m = manifest(fp, crates, tag=tag, with_meta=False, toolchain=toolchain)
        lines = ["kache-session %d" % (3 if part else 1), "lock " + lock,
                 "toolchain " + toolchain, "target x86_64-unknown-linux-gnu", "profile debug"]
        lines += ["features -"] if part else []
        lines += ["created %d" % m["created_ms"], "keys %d" % len(m["keys"])]
        lines += ["%s %s %d%s" % (k["crate"], k["key"], k["bytes"], " - 0" if part else "")
                  for k in m["keys"]]
        lines += ["parts 1", part] if part else []
        if part:
            for k in m["keys"]:
                k["part"] = part
        body = ("\n".join(lines) + "\nend\n").encode()
        self.s3.put_object(Bucket=BUCKET, Key="kc/sessions/" + fp, Body=body)
        return m

    def test_fresh_replica_from_the_remote_answers_the_same_plan(self):
        self.s3.put_object(Bucket=BUCKET, Key="kc/kache-remote-format", Body=b"kache-remote 1\n")
        tc = "0123456789abcdef"
        ms = [self.put_session(hexkey("lock-1"), CRATES, tc, "1", part=hexkey("part-1")),
              self.put_session(hexkey("lock-2"), CRATES[:3], tc, "2")]
        self.s3.put_object(Bucket=BUCKET, Key="kc/sessions/" + "f" * 64, Body=b"garbage\n")
        ingested = self.planner("ingested").start()
        for m in ms:
            self.assertEqual(ingested.post("/v1/manifests", m)[0], 200)
        replica = self.planner("replica", env=self.remote_env(),
                               args=["--from-remote"]).start()
        metrics = replica.get("/metrics")[1].decode()
        self.assertIn("kache_planner_manifests 2\n", metrics)
        branch = [(c, "9.9.9" if c == "ryu" else v) for c, v in CRATES]
        for it in (intent(ms[0]["fingerprint"]), intent(hexkey("lock-branch"), branch),
                   intent(hexkey("lock-x"), CRATES[:2])):
            a = ingested.post("/v1/prefetch-plan", it)
            b = replica.post("/v1/prefetch-plan", it)
            self.assertEqual(a, b)
            self.assertEqual(a[1]["disposition"], "execute")
        exact = replica.post("/v1/prefetch-plan", intent(ms[0]["fingerprint"]))[1]
        self.assertEqual([c["key"] for c in exact["candidates"]],
                         [k["key"] for k in ms[0]["keys"]])
        # the version 3 object's bundle part, named in the replica's plans too
        self.assertEqual({c.get("part") for c in exact["candidates"]}, {hexkey("part-1")})

    def test_not_ready_until_the_remote_is_loaded(self):
        port = kh.free_port()  # nothing listens there
        p = self.planner("late", env=self.remote_env(port), args=["--from-remote"])
        p.start(ready=False)
        self.assertEqual(p.get("/healthz")[0], 200)
        time.sleep(1)
        self.assertEqual(p.get("/readyz")[0], 503)
        st, r = p.post("/v1/prefetch-plan", intent(hexkey("lock-a")))
        self.assertEqual(st, 503, r)


if __name__ == "__main__":
    PLANNER = os.path.abspath(sys.argv.pop(1))
    unittest.main()
