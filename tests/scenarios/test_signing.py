#!/usr/bin/env python3
"""Signed remotes (docs/remote-layout.md, "Signatures") over real cargo builds:
runner a signs what it uploads, runner b trusts a's public key. Over the
directory remote (SignedDir) and S3 on moto_server (SignedS3, boto3 as the
attacker's and the checker's client): b is served; then, with the write access
an attacker would have, objects are replaced, re-signed, stripped and moved,
and b refuses each, counts it in `kache stats`, and builds the same program as
cargo without kache. The signature format is checked from the doc alone with
the `cryptography` package.

usage: test_signing.py <path to kache> [unittest args]
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import CRATES, Workspace  # noqa: E402

TRAILER = 92
BUCKET = "kache-signing"


def key_id(pk):
    return hashlib.blake2b(pk, digest_size=32).digest()[:8]


def digest(head, name, body):
    """D of docs/remote-layout.md: BLAKE2b-512(head || le64(len name) || name || body)."""
    h = hashlib.blake2b(digest_size=64)
    h.update(head)
    h.update(len(name).to_bytes(8, "little") + name.encode())
    h.update(body)
    return h.digest()


def split(obj):
    """(body, head, signature) of a signed object."""
    t = obj[-TRAILER:]
    return obj[:-TRAILER], t[:28], t[28:]


def sign_as(private, name, body):
    """An object signed by private (a cryptography Ed25519 key), as the doc says."""
    from cryptography.hazmat.primitives import serialization as ser
    pk = private.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    head = b"KACHESIG" + bytes([1, 1, 0, 0]) + key_id(pk) + len(body).to_bytes(8, "little")
    return body + head + private.sign(digest(head, name, body))


class SignedBase:
    """The scenarios, over a remote the subclass provides: remote_env(),
    get(name), put(name, bytes), names(prefix). Each subclass runs the check_*
    cases as its own test_* (tests/harness/list_tests.py lists a class's own)."""

    @classmethod
    def setUpClass(cls):
        cls.ktmp = kh.make_tmp("kache-keys-")
        cls.keys = {}
        for k in ("main", "new", "stranger"):
            p = subprocess.run([kh.KACHE, "keygen", "--out", os.path.join(cls.ktmp, k)],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            cls.keys[k] = p.stdout.strip()
        # the program cargo builds without kache: what every runner must print
        ws = Workspace(cls.ktmp, os.path.join(cls.ktmp, "unused-store"), "plain")
        ws.cargo("build", RUSTC_WRAPPER="")
        cls.want = ws.run_app()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.ktmp, ignore_errors=True)

    def setUp(self):
        self.tmp = kh.make_tmp("kache-signing-")
        self.envs = []

    def tearDown(self):
        for env in self.envs:
            kh.supervisor_stop(kh.KACHE, env, "20s", timeout=90)
        if not os.environ.get("KEEP"):
            kh.remove_tmp(self.tmp)

    def key_file(self, k):
        return os.path.join(self.ktmp, k)

    def machine(self, name, sign=None, trust=(), **env):
        root = os.path.join(self.tmp, name, "deeper")
        os.makedirs(root)
        store = os.path.join(self.tmp, name + "-store")
        ws = Workspace(root, store, name)
        ws.env.update(self.remote_env(), KACHE_DEADLINE_MS="1000", KACHE_FETCH_TIMEOUT_MS="3000",
                      KACHE_CONFIG=os.path.join(self.tmp, "none.toml"))
        if sign:
            ws.env["KACHE_SIGNING_KEY_FILE"] = self.key_file(sign)
        if trust:
            ws.env["KACHE_TRUSTED_KEYS"] = json.dumps([self.keys[k] for k in trust])
        ws.env.update(env)
        ws.store = store
        self.envs.append(ws.env)
        p = subprocess.run([kh.KACHE, "supervisor", "start"], env=ws.env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return ws

    def drained(self, ws):
        """Every result of the last build uploaded (flush waits for the
        background stores too)."""
        p = subprocess.run([kh.KACHE, "flush", "--timeout", "120s"], env=ws.env,
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(kh.intent_keys(ws.store), "uploads did not drain")

    def stats(self, ws):
        p = subprocess.run([kh.KACHE, "stats", "--json"], env=ws.env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def signer(self, k="main"):
        a = self.machine("a-" + k, sign=k, trust=(k,))
        a.cargo("build")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        self.assertEqual(a.run_app(), self.want)
        self.drained(a)
        p = subprocess.run([kh.KACHE, "save-manifest"], env=a.env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return a

    def packs(self, crate):
        return sorted(n for n in self.names("packs/%s/" % crate) if n.endswith(".pack"))

    def manifests(self):
        """{crate: manifest name} from the manifests' own (signed) bytes."""
        out = {}
        for n in self.names("manifests/"):
            doc, _ = kh.mp_decode(split(self.get(n))[0])
            out[doc["results"][0][0]] = n
        return out

    def refused_lines(self, ws):
        """{(log file, kind): count} of refusal warnings in the workers' logs."""
        d = os.path.join(ws.store, "logs")
        out = {}
        for f in os.listdir(d):
            for line in open(os.path.join(d, f), errors="replace"):
                if " refused: " in line:
                    kind = line.split(" refused: ")[1].split(";")[0]
                    out[(f, kind)] = out.get((f, kind), 0) + 1
        return out

    def check_signed_runner_serves_trusting_runner(self):
        """a signs, b trusts a's key: everything b builds is served, and every
        object a uploaded verifies under the documented format."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        self.signer()
        pk = base64.b64decode(self.keys["main"].split(":")[1])
        names = [n for n in self.names("") if n != "kache-remote-format"]
        for kind in ("manifests/", "packs/", "sessions/", "bundles/"):
            self.assertTrue(any(n.startswith(kind) for n in names), (kind, names))
        for n in names:
            body, head, sig = split(self.get(n))
            self.assertEqual(head[:12], b"KACHESIG\x01\x01\x00\x00", n)
            self.assertEqual(head[12:20], key_id(pk), n)
            self.assertEqual(int.from_bytes(head[20:28], "little"), len(body), n)
            Ed25519PublicKey.from_public_bytes(pk).verify(sig, digest(head, n, body))
        b = self.machine("b", trust=("main",), KACHE_REMOTE_READ_ONLY="true")
        b.cargo("build")
        served = 1 - len(b.compiled()) / len(CRATES)
        self.assertGreaterEqual(served, 0.99, b.compiled())
        self.assertEqual(b.run_app(), self.want)
        st = self.stats(b)
        self.assertEqual(st["rejected"], 0, st)
        # served: fetched on demand (remote hits) or earlier by prefetch (hits)
        self.assertGreaterEqual(st["remote_hits"] + st["hits"], len(CRATES) - 1, st)
        self.assertEqual(st["misses"], 0, st)

    def check_attacks_refused_counted_and_built_correctly(self):
        """With write access but not the key: a pack replaced by another valid
        pack (signed by the right key, for another name), a pack re-signed with
        an unknown key, a signature stripped, a manifest moved so that it names
        another crate's pack. Each alone, before a fresh runner's build: refused
        by its signature (never left to the pack's own checks), counted by
        reason, logged once per kind; that crate compiled, the program right."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        self.signer()
        m = self.manifests()
        attacks = [
            ("moved", "tiny", "bad_signature",
             lambda n: self.get(self.packs("greet_macro")[0]), self.packs("tiny")),
            ("stranger", "fixture_core", "unknown_key",
             lambda n: sign_as(Ed25519PrivateKey.generate(), n, split(self.get(n))[0]),
             self.packs("fixture_core")),
            ("stripped", "build_script_build", "unsigned",
             lambda n: split(self.get(n))[0], self.packs("build_script_build")),
            ("manifest", "fixture_app", "bad_signature",
             lambda n: self.get(m["greet_macro"]), [m["fixture_app"]]),
        ]
        for label, crate, reason, forge, names in attacks:
            with self.subTest(attack=label):
                self.assertTrue(names)
                kept = {n: self.get(n) for n in names}
                for n in names:
                    self.put(n, forge(n))
                b = self.machine("b-" + label, trust=("main",), KACHE_REMOTE_READ_ONLY="true",
                                 KACHE_PREFETCH_MAX_BYTES="0")
                b.cargo("build")
                self.assertIn(crate, b.compiled())
                self.assertNotIn("greet_macro", b.compiled())
                self.assertEqual(b.run_app(), self.want)
                st = self.stats(b)
                self.assertGreaterEqual(st["rejected_reasons"].get(reason, 0), 1, st)
                self.assertEqual(st["rejected"], sum(st["rejected_reasons"].values()))
                logs = os.path.join(b.store, "logs")
                for f in os.listdir(logs):
                    self.assertNotIn("rejected (", open(os.path.join(logs, f)).read(), f)
                lines = self.refused_lines(b)
                self.assertTrue(lines, "no refusal was logged")
                self.assertEqual(max(lines.values()), 1, lines)
                kh.supervisor_stop(kh.KACHE, b.env)
                v = subprocess.run([kh.KACHE, "verify"], env=b.env, capture_output=True,
                                   text=True, timeout=120)
                self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
                # the operator's view names the refused objects by kind
                v = subprocess.run([kh.KACHE, "verify", "--remote"], env=b.env,
                                   capture_output=True, text=True, timeout=300)
                self.assertEqual(v.returncode, 1, v.stdout + v.stderr)
                self.assertIn({"bad_signature": "bad signature", "unsigned": "unsigned",
                               "unknown_key": "(not trusted)"}[reason], v.stdout)
                for n, data in kept.items():
                    self.put(n, data)


class SignedDir(SignedBase, unittest.TestCase):
    def test_signed_runner_serves_trusting_runner(self):
        self.check_signed_runner_serves_trusting_runner()

    def test_attacks_refused_counted_and_built_correctly(self):
        self.check_attacks_refused_counted_and_built_correctly()
    def remote_env(self):
        return {"KACHE_REMOTE": "dir", "KACHE_REMOTE_PATH": os.path.join(self.tmp, "remote")}

    def path(self, name):
        return os.path.join(self.tmp, "remote", name)

    def get(self, name):
        return open(self.path(name), "rb").read()

    def put(self, name, data):
        with open(self.path(name) + ".x", "wb") as f:
            f.write(data)
        os.replace(self.path(name) + ".x", self.path(name))

    def names(self, prefix):
        root = os.path.join(self.tmp, "remote")
        out = []
        for d, _, files in os.walk(root):
            out += [os.path.relpath(os.path.join(d, f), root) for f in files]
        return [n for n in out if n.startswith(prefix)]

    def test_rotation_old_and_new_then_new_only(self):
        """Objects of the old and the new key are both imported while both are
        trusted; once the old key is removed, only the new key's."""
        self.signer("main")
        c = self.machine("c", sign="new", trust=("main", "new"))
        c.edit("app/src/main.rs", "fn main() {", "fn main() {\n    let _rotated = 1;")
        c.cargo("build")
        self.drained(c)
        want = c.run_app()
        both = self.machine("both", trust=("main", "new"), KACHE_REMOTE_READ_ONLY="true")
        both.edit("app/src/main.rs", "fn main() {", "fn main() {\n    let _rotated = 1;")
        both.cargo("build")
        self.assertEqual(both.compiled(), [])           # old key's deps, new key's app
        self.assertEqual(both.run_app(), want)
        new_only = self.machine("newonly", trust=("new",), KACHE_REMOTE_READ_ONLY="true")
        new_only.edit("app/src/main.rs", "fn main() {", "fn main() {\n    let _rotated = 1;")
        new_only.cargo("build")
        self.assertIn("tiny", new_only.compiled())      # signed by the old key only
        self.assertEqual(new_only.run_app(), want)
        self.assertGreater(self.stats(new_only)["rejected_reasons"].get("unknown_key", 0), 0)
        v = subprocess.run([kh.KACHE, "verify", "--remote"], env=both.env, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        for k in ("main", "new"):
            self.assertIn("signed by %s (trusted)" % self.keys[k].split(":")[0], v.stdout)
        self.assertIn("verify --remote:", v.stderr)     # progress

    def test_session_manifest_signed_and_verified(self):
        """The session manifest (sessions/<fingerprint>) is signed like every
        object: stripped of its signature it is refused by the prefetch and
        counted; intact, a trusting runner prefetches from it."""
        self.signer()
        (name,) = self.names("sessions/")
        signed = self.get(name)
        self.put(name, split(signed)[0])
        b = self.machine("b", trust=("main",), KACHE_REMOTE_READ_ONLY="true")
        b.cargo("build")
        self.assertEqual(b.run_app(), self.want)
        log = os.path.join(b.store, "logs", "prefetch.0.log")
        self.assertTrue(kh.wait_for(lambda: "%s refused: it is not signed" % name
                                    in open(log).read(), 60, 0.2), open(log).read())
        self.assertNotIn("from exact session manifest", open(log).read())
        self.assertGreaterEqual(self.stats(b)["rejected_reasons"].get("unsigned", 0), 1)
        self.put(name, signed)
        c = self.machine("c", trust=("main",), KACHE_REMOTE_READ_ONLY="true")
        c.cargo("build")
        self.assertEqual(c.run_app(), self.want)
        log = os.path.join(c.store, "logs", "prefetch.0.log")
        self.assertTrue(kh.wait_for(lambda: "from exact session manifest" in open(log).read(),
                                    60, 0.2), open(log).read())
        # its packs came in the bundle parts the signer wrote, verified whole
        self.assertRegex(open(log).read(), r"; [1-9]\d* packs came in [1-9]\d* bundle parts")
        # a part stripped of its signature: refused and counted, its packs
        # fetched one by one; the build served and right
        for part in self.names("bundles/"):
            self.put(part, split(self.get(part))[0])
        d = self.machine("d", trust=("main",), KACHE_REMOTE_READ_ONLY="true")
        d.cargo("build")
        self.assertEqual(d.run_app(), self.want)
        self.assertEqual(d.compiled(), [])
        log = os.path.join(d.store, "logs", "prefetch.0.log")
        self.assertTrue(kh.wait_for(lambda: "packs came in 0 bundle parts" in open(log).read(),
                                    60, 0.2), open(log).read())
        text = open(log).read()
        self.assertRegex(text, r"bundles/[0-9a-f]{64} refused: it is not signed")
        self.assertIn("its packs are fetched one by one", text)
        self.assertGreaterEqual(self.stats(d)["rejected_reasons"].get("unsigned", 0), 1)

    def test_key_file_readable_by_others_is_refused(self):
        """A 0644 key: a clear message naming the fix; nothing uploaded, the
        build correct and its uploads kept for later."""
        bad = os.path.join(self.tmp, "loose.key")
        shutil.copy(self.key_file("main"), bad)
        os.chmod(bad, 0o644)
        a = self.machine("a", KACHE_SIGNING_KEY_FILE=bad)
        a.cargo("build")
        self.assertEqual(a.run_app(), self.want)
        v = subprocess.run([kh.KACHE, "verify", "--remote"], env=a.env, capture_output=True,
                           text=True, timeout=60)
        self.assertNotEqual(v.returncode, 0)
        self.assertIn("chmod 600 %s" % bad, v.stderr)
        log = open(os.path.join(a.store, "logs", "supervisor.log")).read()
        self.assertIn("chmod 600 %s" % bad, log)
        self.assertFalse(self.names("packs/"), "an upload went out with a refused key")
        self.assertTrue(kh.intent_keys(a.store), "the uploads were dropped")

    def test_secret_key_in_no_log_and_no_command_line(self):
        """At debug level, the secret key (its text and its bytes) is in no file
        kache writes and on no process's command line."""
        text = open(self.key_file("main")).read().strip()
        b64 = text.split(":")[2]
        raw = base64.b64decode(b64)
        seen, stop = [], threading.Event()

        def watch():
            while not stop.is_set():
                seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                           text=True).stdout)
                stop.wait(0.2)
        t = threading.Thread(target=watch)
        t.start()
        try:
            a = self.machine("a", sign="main", trust=("main",), KACHE_LOG="debug",
                             KACHE_SUPERVISOR_LOG="debug")
            a.cargo("build")
            self.drained(a)
        finally:
            stop.set()
            t.join(30)
        self.assertTrue(seen)
        for out in seen:
            self.assertNotIn(b64, out)
            self.assertNotIn(b64[:20], out)
        checked = 0
        for root in (a.store, os.path.join(self.tmp, "remote")):
            for d, _, files in os.walk(root):
                for f in files:
                    p = os.path.join(d, f)
                    if os.path.islink(p) or not os.path.isfile(p):
                        continue
                    data = open(p, "rb").read()
                    checked += p.endswith(".log")
                    for secret in (b64.encode(), b64[:20].encode(), raw, raw[:32]):
                        self.assertNotIn(secret, data, p)
        self.assertGreater(checked, 2)
        logs = "".join(open(os.path.join(a.store, "logs", f)).read()
                       for f in os.listdir(os.path.join(a.store, "logs")))
        self.assertIn("signing uploads with key " + self.keys["main"].split(":")[0], logs)


class SignedS3(SignedBase, unittest.TestCase):
    def test_signed_runner_serves_trusting_runner(self):
        self.check_signed_runner_serves_trusting_runner()

    def test_attacks_refused_counted_and_built_correctly(self):
        self.check_attacks_refused_counted_and_built_correctly()
    @classmethod
    def setUpClass(cls):
        cls.moto, cls.port = kh.start_moto()
        cls.s3 = kh.boto(cls.port)
        cls.s3.create_bucket(Bucket=BUCKET)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        kh.stop(cls.moto)

    def remote_env(self):
        return {"KACHE_REMOTE": "s3", "KACHE_S3_BUCKET": BUCKET,
                "KACHE_S3_PREFIX": "t-" + self._testMethodName[-24:].replace("_", "-"),
                "KACHE_S3_ENDPOINT": "http://127.0.0.1:%d" % self.port,
                "AWS_ACCESS_KEY_ID": "AKIDSIGNING", "AWS_SECRET_ACCESS_KEY": "signing-secret",
                "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp, "no-aws")}

    def key(self, name):
        return self.remote_env()["KACHE_S3_PREFIX"] + "/" + name

    def get(self, name):
        return self.s3.get_object(Bucket=BUCKET, Key=self.key(name))["Body"].read()

    def put(self, name, data):
        self.s3.put_object(Bucket=BUCKET, Key=self.key(name), Body=data)

    def names(self, prefix):
        pre = self.key("")
        out, token = [], None
        while True:
            kw = {"Bucket": BUCKET, "Prefix": pre + prefix}
            if token:
                kw["ContinuationToken"] = token
            r = self.s3.list_objects_v2(**kw)
            out += [o["Key"][len(pre):] for o in r.get("Contents", [])]
            token = r.get("NextContinuationToken")
            if not token:
                return out


if __name__ == "__main__":
    kh.take_kache_arg()
    unittest.main()
