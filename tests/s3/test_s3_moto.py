#!/usr/bin/env python3
"""End-to-end tests of the s3/ client (through tests/s3/s3_driver) against
moto_server on loopback, with boto3 as the independent client, and through
tests/tools/faultproxy.py for injected faults.

Usage: test_s3_moto.py /path/to/s3_driver [unittest args]
"""
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import boto, free_port, start_moto, stop  # noqa: E402

DRIVER = None
BUCKET = "kache-test"
SECRET = "moto-secret-Zq81x"
RESULT_EXIT = {"OK": 0, "NOT_FOUND": 11, "AUTH": 12, "BAD_REQUEST": 13, "TRANSIENT": 14,
               "NO_BUCKET": 15, "LOCAL": 16}


def blake2b_hex(data):
    return hashlib.blake2b(data, digest_size=32).hexdigest()


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto, cls.port = start_moto()
        cls.s3 = boto(cls.port)
        cls.s3.create_bucket(Bucket=BUCKET)
        cls.tmp = kh.make_tmp("kache-s3-e2e.")

    @classmethod
    def tearDownClass(cls):
        stop(cls.moto)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, port=None, **over):
        # no proxy of the machine's: the tests that use one name it
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "KACHE_"))
               and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env.update(HOME=self.tmp, KACHE_CONFIG="/nonexistent/kache.toml",
                   KACHE_S3_ENDPOINT="http://127.0.0.1:%d" % (port or self.port),
                   KACHE_S3_BUCKET=BUCKET, KACHE_S3_PREFIX="kache",
                   AWS_ACCESS_KEY_ID="AKIDKACHETEST", AWS_SECRET_ACCESS_KEY=SECRET)
        env.update(over)
        return env

    def drive(self, *args, port=None, expect="OK", timeout=120, **envover):
        p = subprocess.run([DRIVER] + list(args), env=self.env(port, **envover),
                           capture_output=True, text=True, timeout=timeout)
        if expect is not None:
            self.assertEqual(p.returncode, RESULT_EXIT[expect],
                             "stdout=%s stderr=%s" % (p.stdout, p.stderr))
            self.assertIn("result=" + expect, p.stdout)
        self.assertNotIn(SECRET, p.stdout + p.stderr)
        return p

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def leftovers(self, name):
        return [f for f in os.listdir(self.tmp) if name in f]


class TestMoto(Base):
    def test_put_get_head_list_delete(self):
        data = os.urandom(70000)
        src = self.write("rt.src", data)
        key = "dir/obj name+1.bin"
        self.drive("put", key, src)
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/" + key)["Body"].read()
        self.assertEqual(got, data)
        p = self.drive("head", key)
        self.assertIn("size=70000", p.stdout)
        self.drive("get", key, self.path("rt.dst"))
        self.assertEqual(self.read("rt.dst"), data)
        p = self.drive("list", "dir/")
        self.assertIn("dir/obj name+1.bin 70000", p.stdout.splitlines())
        self.drive("delete", key)
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket=BUCKET, Key="kache/" + key)
        self.drive("head", key, expect="NOT_FOUND")

    def test_get_into_memory_of_a_bounded_size(self):
        """A download straight into memory (a pack into its kept buffer): whole
        when it fits, even exactly; too big said as such, stopped, and not
        logged as a failure (the caller reads it through a file then);
        missing is NOT_FOUND."""
        data = os.urandom(70000)
        self.s3.put_object(Bucket=BUCKET, Key="kache/mem/big", Body=data)
        for cap in (70000, 1 << 20):
            p = self.drive("getmem", "mem/big", str(cap), self.path("mem.out"))
            self.assertIn("len=70000 too_big=0", p.stdout)
            self.assertEqual(self.read("mem.out"), data)
        p = self.drive("getmem", "mem/big", "69999", self.path("mem.small"), expect="LOCAL")
        self.assertIn("too_big=1", p.stdout)
        self.assertNotIn("s3:", p.stderr.replace("error: ", ""))  # no failure logged
        self.assertEqual(self.leftovers("mem.small"), [])
        self.drive("getmem", "mem/none", "100", self.path("mem.none"), expect="NOT_FOUND")
        self.drive("putmem", "mem/empty", "")
        p = self.drive("getmem", "mem/empty", "0", self.path("mem.empty"))
        self.assertIn("len=0 too_big=0", p.stdout)
        self.assertEqual(self.read("mem.empty"), b"")

    def test_session_token_is_sent(self):
        # moto ignores the token's value; this checks a signed
        # x-amz-security-token does not break requests.
        self.drive("putmem", "tok/k", "with token", AWS_SESSION_TOKEN="tok-value")
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/tok/k")["Body"].read()
        self.assertEqual(got, b"with token")

    def test_reads_what_boto3_planted(self):
        data = b"planted by boto3 \x00\xff" * 1000
        self.s3.put_object(Bucket=BUCKET, Key="kache/planted/a", Body=data)
        self.drive("get", "planted/a", self.path("planted"))
        self.assertEqual(self.read("planted"), data)

    def test_put_mem_and_empty(self):
        self.drive("putmem", "mem/k", "small text")
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/mem/k")["Body"].read()
        self.assertEqual(got, b"small text")
        self.drive("putmem", "mem/empty", "")
        self.drive("get", "mem/empty", self.path("empty"))
        self.assertEqual(self.read("empty"), b"")

    def test_list_pages(self):
        for i in range(1005):
            self.s3.put_object(Bucket=BUCKET, Key="kache/many/%04d" % i, Body=b"x")
        p = self.drive("list", "many/")
        keys = [l.split()[0] for l in p.stdout.splitlines() if l.startswith("many/")]
        self.assertEqual(keys, ["many/%04d" % i for i in range(1005)])

    def test_missing_key_is_not_found_and_leaves_nothing(self):
        self.drive("get", "no/such/key", self.path("missing.out"), expect="NOT_FOUND")
        self.assertEqual(self.leftovers("missing.out"), [])

    def test_multipart_round_trip(self):
        data = os.urandom(12 * 1024 * 1024 + 12345)
        src = self.write("mp.src", data)
        self.drive("-m", "5M", "-p", "5M", "put", "mp/big", src)
        head = self.s3.head_object(Bucket=BUCKET, Key="kache/mp/big")
        self.assertTrue(head["ETag"].strip('"').endswith("-3"), head["ETag"])
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/mp/big")["Body"].read()
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(data).digest())
        self.drive("get", "mp/big", self.path("mp.dst"))
        self.assertEqual(self.read("mp.dst"), data)
        ups = self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        self.assertEqual(ups, [])

    def test_missing_bucket(self):
        p = self.drive("get", "x", self.path("nb.out"), expect="NO_BUCKET",
                       KACHE_S3_BUCKET="no-such-bucket")
        self.assertIn("bucket 'no-such-bucket' does not exist", p.stderr)
        self.assertIn("KACHE_S3_BUCKET", p.stderr)

    def test_endpoint_without_scheme(self):
        p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                           env=self.env(KACHE_S3_ENDPOINT="127.0.0.1:%d" % self.port))
        self.assertEqual(p.returncode, 2)
        self.assertIn("no http:// or https:// scheme", p.stderr)

    def test_read_only_refuses_writes(self):
        self.drive("putmem", "ro/k", "x", expect="BAD_REQUEST", KACHE_S3_READ_ONLY="true")
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket=BUCKET, Key="kache/ro/k")

    def test_unreachable_endpoint_is_transient(self):
        p = self.drive("-a", "2", "-c", "1000", "head", "x", expect="TRANSIENT",
                       KACHE_S3_ENDPOINT="http://127.0.0.1:%d" % free_port())
        self.assertIn("check KACHE_S3_ENDPOINT", p.stderr)
        self.assertIn("gave up after 2 attempts", p.stderr)


class TestMotoAuth(Base):
    """moto enforces IAM auth when INITIAL_NO_AUTH_ACTION_COUNT is 0: unknown
    access keys get 403 InvalidAccessKeyId."""

    @classmethod
    def setUpClass(cls):
        cls.moto, cls.port = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
        cls.tmp = tempfile.mkdtemp(prefix="kache-s3-auth.")

    def test_wrong_credentials_is_auth(self):
        p = self.drive("get", "k", self.path("auth.out"), expect="AUTH")
        self.assertIn("check credentials", p.stderr)
        self.assertEqual(self.leftovers("auth.out"), [])
        p = self.drive("putmem", "k", "v", expect="AUTH")


class TestVirtualHosted(Base):
    """s3.addressing = virtual against a server: the bucket in the host name
    (bucket.s3.kache.test, which no resolver knows: the fault proxy, as the
    environment's http_proxy, takes each request with the host in it and
    passes it on to moto), signed for that host and checked by moto, which
    enforces SigV4 here (INITIAL_NO_AUTH_ACTION_COUNT: the first three
    actions make a user and its keys, the rest need a valid signature).
    No s3.prefix and a listing's prefix without '/': moto checks the
    signature of a virtual-hosted request whose query holds %2F against
    other bytes than S3 does (boto3's own virtual-hosted listing with
    Prefix="a/b/" gets the same 403 SignatureDoesNotMatch from it)."""

    @classmethod
    def setUpClass(cls):
        import boto3
        cls.moto, cls.port = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
        cls.tmp = kh.make_tmp("kache-s3-vhost.")
        url = "http://127.0.0.1:%d" % cls.port
        iam = boto3.client("iam", endpoint_url=url, aws_access_key_id="x",
                           aws_secret_access_key="x", region_name="us-east-1")
        iam.create_user(UserName="kache")
        iam.put_user_policy(UserName="kache", PolicyName="s3", PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": '
            '[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'))
        k = iam.create_access_key(UserName="kache")["AccessKey"]
        cls.key_id, cls.secret = k["AccessKeyId"], k["SecretAccessKey"]
        cls.s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id=cls.key_id,
                              aws_secret_access_key=cls.secret, region_name="us-east-1")
        cls.s3.create_bucket(Bucket=BUCKET)
        cls.log = os.path.join(cls.tmp, "proxy.log")
        cls.proxy, cls.pport = kh.start_proxy(cls.port, os.path.join(cls.tmp, "control"),
                                              cls.log)

    @classmethod
    def tearDownClass(cls):
        stop(cls.proxy)
        super().tearDownClass()

    def env(self, port=None, **over):
        env = super().env(port)
        env.update(KACHE_S3_ENDPOINT="http://s3.kache.test:%d" % self.port,
                   KACHE_S3_ADDRESSING="virtual", KACHE_S3_PREFIX="",
                   AWS_ACCESS_KEY_ID=self.key_id,
                   AWS_SECRET_ACCESS_KEY=self.secret,
                   http_proxy="http://127.0.0.1:%d" % self.pport)
        env.update(over)
        return env

    def test_virtual_hosted_round_trips_signed_for_the_buckets_host(self):
        """put (small and multipart), head, list, get, delete: moto took the
        bucket from the host and accepted every signature; boto3 reads the
        bytes; a wrong secret is refused (the signatures are checked)."""
        data = os.urandom(30000)
        self.drive("put", "vhobj", self.write("vh.src", data))
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="vhobj")["Body"].read(),
                         data)
        big = os.urandom(6 << 20)
        self.drive("put", "vhbig", self.write("vh.big", big), KACHE_S3_MULTIPART_THRESHOLD="5M")
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="vhbig")["Body"].read(),
                         big)
        self.assertIn("size=30000", self.drive("head", "vhobj").stdout)
        listed = self.drive("list", "vh").stdout.splitlines()
        self.assertIn("vhobj 30000", listed)
        self.assertIn("vhbig %d" % len(big), listed)
        self.drive("get", "vhobj", self.path("vh.dst"))
        self.assertEqual(self.read("vh.dst"), data)
        self.drive("delete", "vhobj")
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket=BUCKET, Key="vhobj")
        with open(self.log) as f:
            targets = [l.split()[1] for l in f]
        host = "http://%s.s3.kache.test:%d/" % (BUCKET, self.port)
        self.assertIn(host + "vhobj", targets)
        self.assertTrue(all(t.startswith(host) for t in targets), targets)
        p = self.drive("putmem", "vhrefused", "x", expect="AUTH",
                       AWS_SECRET_ACCESS_KEY="not-" + self.secret)
        self.assertIn("check credentials", p.stderr)


class TestFaults(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.control = os.path.join(cls.tmp, "control.json")
        cls.log = os.path.join(cls.tmp, "proxy.log")
        cls.proxy, cls.pport = kh.start_proxy(cls.port, cls.control, cls.log)

    @classmethod
    def tearDownClass(cls):
        stop(cls.proxy)
        super().tearDownClass()

    def setUp(self):
        self.fault({"mode": "pass"})
        if os.path.exists(self.log):
            self.log_lines()  # let the previous test's last lines land first
        open(self.log, "w").close()

    def fault(self, ctl):
        kh.write_fault(self.control, ctl)

    def proxied(self, *args, **kw):
        return self.drive(*args, port=self.pport, **kw)

    def log_lines(self):
        """The proxy's log once it has settled: the proxy logs a request after
        answering it, so the client can finish a moment before the line lands."""
        def read():
            with open(self.log) as f:
                return f.read().splitlines()
        lines, end = read(), time.monotonic() + 3
        while time.monotonic() < end:
            time.sleep(0.2)
            again = read()
            if again == lines:
                break
            lines = again
        return lines

    def plant(self, key, data):
        self.s3.put_object(Bucket=BUCKET, Key="kache/" + key, Body=data)

    def test_503_storm_is_retried(self):
        data = os.urandom(5000)
        self.plant("storm", data)
        self.fault({"mode": "503", "count": 3})
        self.proxied("get", "storm", self.path("storm.out"))
        self.assertEqual(self.read("storm.out"), data)
        lines = self.log_lines()
        self.assertEqual(sum(" 503 " in l for l in lines), 3, lines)
        self.assertTrue(lines[-1].endswith("200 pass"), lines)

    def test_503_storm_gives_up_at_the_cap(self):
        self.fault({"mode": "503", "count": -1})
        p = self.proxied("-a", "3", "putmem", "capped", "x", expect="TRANSIENT")
        self.assertIn("SlowDown", p.stderr)
        self.assertEqual(len(self.log_lines()), 3)

    def test_truncated_body_is_transient_and_leaves_nothing(self):
        self.plant("trunc", os.urandom(200000))
        self.fault({"mode": "truncate", "methods": ["GET"]})
        p = self.proxied("-a", "2", "get", "trunc", self.path("trunc.out"),
                         expect="TRANSIENT")
        self.assertIn("truncated", p.stderr)
        self.assertEqual(self.leftovers("trunc.out"), [])
        self.assertEqual(len(self.log_lines()), 2)

    def test_truncation_then_recovery(self):
        data = os.urandom(100000)
        self.plant("trunc2", data)
        self.fault({"mode": "truncate", "methods": ["GET"], "count": 1})
        self.proxied("get", "trunc2", self.path("trunc2.out"))
        self.assertEqual(self.read("trunc2.out"), data)

    def test_truncation_then_recovery_into_memory(self):
        """A retried download into memory starts again at the buffer's start."""
        data = os.urandom(100000)
        self.plant("trunc3", data)
        self.fault({"mode": "truncate", "methods": ["GET"], "count": 1})
        p = self.proxied("getmem", "trunc3", "100000", self.path("trunc3.out"))
        self.assertIn("len=100000 too_big=0", p.stdout)
        self.assertEqual(self.read("trunc3.out"), data)

    def test_flipped_bytes_fail_the_hash_check(self):
        data = os.urandom(50000)
        self.plant("flip", data)
        self.proxied("-H", blake2b_hex(data), "get", "flip", self.path("flip.ok"))
        self.fault({"mode": "flip", "methods": ["GET"]})
        p = self.proxied("-H", blake2b_hex(data), "get", "flip", self.path("flip.bad"),
                         expect=None)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("hash=MISMATCH", p.stdout)

    def test_unreachable_endpoint_fails_fast_only_when_asked(self):
        """Connection refused (nobody on the port): retried with back-off by
        default (an upload can wait), tried once by a client set to fail fast
        (a fetch a wrapper waits on); the error names the endpoint either way."""
        dead = kh.free_port()
        p = self.drive("-a", "3", "get", "k", self.path("dead.out"), port=dead,
                       expect="TRANSIENT")
        self.assertEqual(p.stderr.count("retrying"), 2, p.stderr)
        self.assertIn("gave up after 3 attempts", p.stderr)
        p = self.drive("-f", "-a", "3", "get", "k", self.path("dead.out"), port=dead,
                       expect="TRANSIENT")
        self.assertNotIn("retrying", p.stderr)
        self.assertIn("not retried", p.stderr)
        self.assertIn("KACHE_S3_ENDPOINT", p.stderr)
        self.assertEqual(self.leftovers("dead.out"), [])
        # a fail-fast client still retries what an answer says is transient
        self.plant("busy", b"x")
        self.fault({"mode": "503", "count": 1})
        p = self.proxied("-f", "-a", "3", "get", "busy", self.path("busy.out"))
        self.assertIn("retrying", p.stderr)

    def test_blackholed_endpoint_connect_capped_when_failing_fast(self):
        """No connection is ever made (a backlog-full listener drops the SYNs):
        a fail-fast client gives it at most 1 s whatever s3.connect_timeout_ms
        says, and does not retry; a default client keeps its connect timeout
        and retries."""
        keep, port = kh.blackhole()
        try:
            p = self.drive("-c", "300", "-a", "2", "get", "k", self.path("bh.out"), port=port,
                           expect="TRANSIENT")
            self.assertIn("no connection within 300 ms", p.stderr)
            self.assertEqual(p.stderr.count("retrying"), 1, p.stderr)
            p = self.drive("-f", "-c", "30000", "-a", "3", "get", "k", self.path("bh.out"),
                           port=port, expect="TRANSIENT", timeout=60)
            self.assertIn("no connection within 1000 ms", p.stderr)
            self.assertNotIn("retrying", p.stderr)
            self.assertEqual(self.leftovers("bh.out"), [])
            # the cap is s3.fetch_connect_timeout_ms (a far endpoint raises it)
            p = self.drive("-f", "-c", "30000", "get", "k", self.path("bh.out"), port=port,
                           expect="TRANSIENT", timeout=60,
                           KACHE_S3_FETCH_CONNECT_TIMEOUT_MS="400")
            self.assertIn("no connection within 400 ms", p.stderr)
            p = self.drive("get", "k", self.path("bh.out"), port=port, expect=None,
                           KACHE_S3_FETCH_CONNECT_TIMEOUT_MS="5")
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("s3.fetch_connect_timeout_ms is '5'; use 100 to 60000", p.stderr)
        finally:
            for s in keep:
                s.close()

    def test_a_reused_connection_that_times_out_is_not_unreachable(self):
        """A request over a connection made before (kept alive) that gets no
        answer in time is a slow remote, not an unreachable one: a fail-fast
        client retries it, and says it reached the remote (the fetch breaker
        opens at once only for an unreachable one). The blackholed endpoint
        beside it: unreachable."""
        self.plant("warm", b"w")
        self.plant("late", b"x")
        self.fault({"mode": "hang", "delay": 30, "match": "late", "count": 1})
        p = self.proxied("-f", "-a", "2", "-c", "1000", "-t", "1500", "head", "warm", "then",
                         "get", "late", self.path("late.out"))
        self.assertIn("first=OK", p.stdout)
        self.assertIn("unreachable=0", p.stdout)
        self.assertEqual(p.stderr.count("retrying"), 1, p.stderr)
        self.assertEqual(self.read("late.out"), b"x")
        keep, port = kh.blackhole()
        try:
            p = self.drive("-f", "get", "k", self.path("bh.out"), port=port, expect="TRANSIENT",
                           timeout=60)
            self.assertIn("unreachable=1", p.stdout)
        finally:
            for c in keep:
                c.close()

    def test_hang_times_out_within_bounds(self):
        self.plant("hang", b"x")
        self.fault({"mode": "hang", "delay": 120})
        t0 = time.monotonic()
        p = self.proxied("-a", "2", "-c", "1000", "-l", "2", "-t", "4000", "get", "hang",
                         self.path("hang.out"), expect="TRANSIENT", timeout=90)
        self.assertLess(time.monotonic() - t0, 60)
        self.assertIn("timed out", p.stderr)
        self.assertEqual(self.leftovers("hang.out"), [])

    def test_slow_answer_still_succeeds(self):
        self.plant("slow", b"slow data")
        self.fault({"mode": "slow", "delay": 1.5})
        self.proxied("get", "slow", self.path("slow.out"))
        self.assertEqual(self.read("slow.out"), b"slow data")

    def test_forced_403_is_auth_not_retried(self):
        self.fault({"mode": "403"})
        p = self.proxied("head", "anything", expect="AUTH")
        self.assertIn("check credentials", p.stderr)
        self.assertEqual(len(self.log_lines()), 1)

    def test_clock_skew_is_named(self):
        self.fault({"mode": "403", "code": "RequestTimeTooSkewed", "skew_minutes": 42})
        p = self.proxied("putmem", "skew", "x", expect="AUTH")
        self.assertIn("RequestTimeTooSkewed", p.stderr)
        self.assertIn("clock is off by", p.stderr)
        self.assertRegex(p.stderr, r"off by -?4[12] minutes")

    def test_failed_multipart_is_aborted(self):
        src = self.write("mpf.src", os.urandom(11 * 1024 * 1024))
        self.fault({"mode": "503", "match": "partNumber=2"})
        self.proxied("-a", "2", "-m", "5M", "-p", "5M", "put", "mpfail", src,
                     expect="TRANSIENT")
        lines = self.log_lines()
        self.assertTrue(any(l.startswith("DELETE ") and "uploadId=" in l for l in lines),
                        lines)
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []),
                         [])
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket=BUCKET, Key="kache/mpfail")


class TestTls(Base):
    """An https endpoint: the fault proxy answering TLS with a certificate of
    its own (self-signed for 127.0.0.1) in front of moto_server."""
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.control = os.path.join(cls.tmp, "control.json")
        cls.log = os.path.join(cls.tmp, "proxy.log")
        cls.cert, key = kh.tls_certificate(cls.tmp)
        cls.proxy, cls.pport = kh.start_proxy(cls.port, cls.control, cls.log,
                                              tls=(cls.cert, key))

    @classmethod
    def tearDownClass(cls):
        stop(cls.proxy)
        super().tearDownClass()

    def https(self, *args, **kw):
        kw.setdefault("KACHE_S3_CA_FILE", self.cert)
        return self.drive(*args, KACHE_S3_ENDPOINT="https://127.0.0.1:%d" % self.pport, **kw)

    def proxy_log(self):
        """What the proxy logged (no file before its first request)."""
        if not os.path.exists(self.log):
            return ""
        with open(self.log) as f:
            return f.read()

    def test_https_with_the_ca_file_round_trips(self):
        """s3.ca_file names the CA of the endpoint's certificate: put, head,
        list, get and delete go over TLS (the proxy saw them), and boto3,
        reading moto directly, finds the bytes uploaded."""
        data = os.urandom(30000)
        self.https("put", "tls/obj", self.write("tls.src", data))
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/tls/obj")["Body"].read()
        self.assertEqual(got, data)
        self.assertIn("size=30000", self.https("head", "tls/obj").stdout)
        self.assertIn("tls/obj 30000", self.https("list", "tls/").stdout.splitlines())
        self.https("get", "tls/obj", self.path("tls.dst"))
        self.assertEqual(self.read("tls.dst"), data)
        self.https("delete", "tls/obj")
        self.assertIn("PUT /%s/kache/tls/obj" % BUCKET, self.proxy_log())

    def test_an_untrusted_certificate_is_refused_said_and_not_retried(self):
        """Without the CA file the system's CAs do not know the certificate:
        AUTH at once (never retried, never sent in the clear), with what to
        set; nothing reached the bucket."""
        t0 = time.monotonic()
        p = self.https("putmem", "tls/refused", "x", expect="AUTH", KACHE_S3_CA_FILE="")
        self.assertLess(time.monotonic() - t0, 30)
        self.assertIn("the server's TLS certificate is not trusted", p.stderr)
        self.assertIn("s3.ca_file (KACHE_S3_CA_FILE)", p.stderr)
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket=BUCKET, Key="kache/tls/refused")
        self.assertNotIn("tls/refused", self.proxy_log())

    def test_a_ca_file_that_cannot_be_read_is_a_settings_error(self):
        for path, why in ((self.path("no-such.pem"), "No such file or directory"),
                          (self.tmp, "not a regular file")):
            p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                               env=self.env(KACHE_S3_CA_FILE=path), timeout=60)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("s3.ca_file '%s' cannot be read (%s)" % (path, why), p.stderr)


class TestImds(Base):
    """No keys in the environment or a credentials file: a role's, from the
    instance metadata service or a container agent (tests/tools/imds.py on
    loopback), or from STS for a web identity (moto's); the requests go
    through the fault proxy, which writes down the key id that signed each."""
    ROLE_KEYS = [{"id": "AKIDROLEONE", "secret": "role-secret-1", "token": "role-token-1",
                  "expires_in": 240},
                 {"id": "AKIDROLETWO", "secret": "role-secret-2", "token": "role-token-2",
                  "expires_in": 21600}]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.proxy, cls.pport = kh.start_proxy(cls.port, os.path.join(cls.tmp, "pcontrol"),
                                              os.path.join(cls.tmp, "plog"),
                                              keys=os.path.join(cls.tmp, "keys"))
        cls.control = os.path.join(cls.tmp, "imds.json")
        cls.imds = None  # started by each test's setUp

    @classmethod
    def tearDownClass(cls):
        stop(cls.proxy)
        stop(cls.imds)
        super().tearDownClass()

    def setUp(self):
        # a new service's state per test: its counters live in the process
        stop(self.imds)
        type(self).imds, type(self).iport = kh.start_imds(
            self.control, os.path.join(self.tmp, "imds.log"))
        for name in ("keys", "imds.log"):
            open(os.path.join(self.tmp, name), "w").close()

    def env(self, port=None, **over):
        env = super().env(port, **over)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(k, None)
        env.update(AWS_SHARED_CREDENTIALS_FILE=self.path("no-credentials-file"),
                   AWS_CONFIG_FILE=self.path("no-config-file"),
                   AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d" % self.iport)
        env.update(over)
        return env

    def serve(self, **ctl):
        kh.write_fault(self.control, dict({"role": "kache-runner"}, **ctl))

    def lines(self, name):
        with open(self.path(name)) as f:
            return f.read().splitlines()

    def test_the_instance_roles_keys_sign_the_requests(self):
        """IMDSv2 asked in order (token, role, keys); the object written with
        them, as boto3 reads it; the keys never in the output."""
        self.serve(keys=self.ROLE_KEYS[1:])
        p = self.drive("putmem", "role/obj", "signed by the role", port=self.pport)
        self.assertNotIn("role-secret", p.stdout + p.stderr)
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/role/obj")["Body"].read()
        self.assertEqual(got, b"signed by the role")
        self.assertEqual(self.lines("keys"), ["AKIDROLETWO role-token-2"])
        self.assertEqual(self.lines("imds.log"), [
            "PUT /latest/api/token 200",
            "GET /latest/meta-data/iam/security-credentials/ 200",
            "GET /latest/meta-data/iam/security-credentials/kache-runner 200"])

    def test_without_a_token_the_instance_is_asked_as_imdsv1_unless_disabled(self):
        """As the AWS SDKs: when the token's PUT is refused as unknown (403,
        404, 405: a service without IMDSv2) or goes unanswered once connected
        (a container behind the instance's hop limit of 1, whose answers die
        on the way), the role and its keys are asked without a token;
        AWS_EC2_METADATA_V1_DISABLED=true keeps to IMDSv2, and a service that
        requires the token (401) is said with both answers."""
        creds = ["GET /latest/meta-data/iam/security-credentials/ 200",
                 "GET /latest/meta-data/iam/security-credentials/kache-runner 200"]
        for v2, first in (("off", "PUT /latest/api/token 405"),
                          ("hang", "PUT /latest/api/token hang")):
            self.setUp()
            self.serve(keys=self.ROLE_KEYS[1:], v2=v2, v1=True)
            self.drive("putmem", "v1/obj", "signed by IMDSv1's keys", port=self.pport)
            got = self.s3.get_object(Bucket=BUCKET, Key="kache/v1/obj")["Body"].read()
            self.assertEqual(got, b"signed by IMDSv1's keys")
            self.assertEqual(self.lines("keys"), ["AKIDROLETWO role-token-2"])
            self.assertEqual(self.lines("imds.log"), [first] + creds, v2)
        self.setUp()
        self.serve(keys=self.ROLE_KEYS[1:], v2="off", v1=True)
        p = self.drive("head", "x", expect=None, AWS_EC2_METADATA_V1_DISABLED="true")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("/latest/api/token answered HTTP 405", p.stderr)
        self.assertIn("AWS_EC2_METADATA_V1_DISABLED", p.stderr)
        self.assertEqual(self.lines("imds.log"), ["PUT /latest/api/token 405"])
        self.setUp()
        self.serve(keys=self.ROLE_KEYS[1:], v2="off")
        p = self.drive("head", "x", expect=None)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("/latest/api/token answered HTTP 405", p.stderr)
        self.assertIn("without a token (IMDSv1): ", p.stderr)
        self.assertIn("security-credentials/ answered HTTP 401", p.stderr)

    def test_keys_near_their_end_are_renewed_at_most_every_five_seconds(self):
        """Keys with 4 minutes left (under the 5 of the margin): a request
        right after the first is signed with them still (no asking again
        within 5 s); one 5.5 s later, after the keys were renewed."""
        self.serve(keys=self.ROLE_KEYS)
        self.drive("head", "a", "then", "head", "b", port=self.pport, expect="NOT_FOUND")
        self.assertEqual(self.lines("keys"), ["AKIDROLEONE role-token-1"] * 2)
        self.setUp()  # the service anew: its first keys first
        self.serve(keys=self.ROLE_KEYS)
        p = self.drive("-w", "5500", "head", "a", "then", "head", "b", port=self.pport,
                       expect="NOT_FOUND")
        self.assertEqual(self.lines("keys"), ["AKIDROLEONE role-token-1",
                                              "AKIDROLETWO role-token-2"])
        self.assertIn("the role's keys renewed; they expire in", p.stderr)

    def test_a_failing_service_leaves_the_old_keys_in_use(self):
        """The renewal fails (500 from the service, once it gave the first
        keys): said, and the keys that are still valid sign the request."""
        self.serve(keys=self.ROLE_KEYS)
        p = subprocess.Popen([DRIVER, "-w", "5500", "head", "a", "then", "head", "b"],
                             env=self.env(self.pport), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        kh.wait_for(lambda: len(self.lines("imds.log")) >= 3, 10)
        self.serve(keys=self.ROLE_KEYS, fail=100)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, RESULT_EXIT["NOT_FOUND"], out + err)
        self.assertIn("the role's keys could not be renewed", err)
        self.assertIn("answered HTTP 500", err)
        self.assertEqual(self.lines("keys"), ["AKIDROLEONE role-token-1"] * 2)

    def test_no_role_is_said_with_the_rest_of_the_chain(self):
        """No keys anywhere: the settings error names the credentials file,
        then why the instance role gave none (no service; no role's keys;
        keys that are not whole), unless asking is turned off."""
        def error(**env):
            p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                               env=self.env(**env), timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("no S3 credentials", p.stderr)
            return p.stderr
        closed = "http://127.0.0.1:%d" % free_port()
        self.assertIn("nor a role's (%s/latest/api/token: " % closed,
                      error(AWS_EC2_METADATA_SERVICE_ENDPOINT=closed))
        self.assertNotIn("nor a role's", error(AWS_EC2_METADATA_DISABLED="true"))
        self.serve()  # a role, no keys
        self.assertIn("security-credentials/kache-runner answered HTTP 404", error())
        self.serve(keys=[{"id": "", "secret": "s"}])
        self.assertIn("security-credentials/kache-runner: not a role's keys (Success; a key id,"
                      " a secret and an Expiration are needed)", error())

    def test_a_credentials_file_that_is_wrong_is_the_error_not_the_instances_keys(self):
        """A credentials file with a syntax error, a profile asked for by name
        that it does not have, or a profile with half a key pair: the error
        names the file (and the line), and the instance, which has keys, is
        not asked (as the AWS SDKs stop there). A file whose default profile
        has no keys, none asked for: the instance's keys, as before."""
        self.serve(keys=self.ROLE_KEYS[1:])
        def error(body, **env):
            f = self.write("credentials", body)
            p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                               env=self.env(AWS_SHARED_CREDENTIALS_FILE=f, **env), timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn(f, p.stderr)
            self.assertNotIn("nor a role's", p.stderr)
            self.assertNotIn("secret-x", p.stderr)
            self.assertEqual(self.lines("imds.log"), [])
            return p.stderr
        good = b"[ci]\naws_access_key_id = AKIDFILE\naws_secret_access_key = secret-x\n"
        self.assertIn("line 2 of", error(b"[default]\naws_access_key_id AKIDFILE\n"
                                         b"aws_secret_access_key = secret-x\n"))
        self.assertIn("profile [nosuch] is not in", error(good, AWS_PROFILE="nosuch"))
        self.assertIn("profile [half] of", error(good + b"[half]\naws_access_key_id = AKIDHALF\n",
                                                 AWS_PROFILE="half"))
        self.assertIn("profile [ci] of", error(b"[ci]\nregion = eu-west-1\n", AWS_PROFILE="ci"))
        f = self.write("credentials", good + b"[default]\nregion = eu-west-1\n")
        self.drive("head", "x", port=self.pport, expect="NOT_FOUND",
                   AWS_SHARED_CREDENTIALS_FILE=f)
        self.assertEqual(self.lines("keys"), ["AKIDROLETWO role-token-2"])

    def process(self, body, profile="default", expires_in=None):
        """~/.aws/config (AWS_CONFIG_FILE) whose profile runs a credential_process:
        a script that counts its runs in process.runs and prints body's JSON
        (an Expiration expires_in seconds away, when given)."""
        script = self.write("creds.py", (
            "import datetime, json, sys\n"
            "open(%r, 'a').write('run\\n')\n"
            "d = json.loads(%r)\n"
            "if %r is not None:\n"
            "    t = datetime.datetime.now(datetime.timezone.utc) + "
            "datetime.timedelta(seconds=%r or 0)\n"
            "    d['Expiration'] = t.strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ')\n"
            "if d.get('exit'):\n"
            "    sys.exit(d['exit'])\n"
            "print(json.dumps(d) if not d.get('raw') else d['raw'])\n"
            % (self.path("process.runs"), body, expires_in, expires_in)).encode())
        section = "default" if profile == "default" else "profile " + profile
        return self.write("aws-config", ("[%s]\nregion = eu-west-1\ncredential_process = %s %s\n"
                                         % (section, sys.executable, script)).encode())

    def runs(self):
        return len(self.lines("process.runs")) if os.path.exists(self.path("process.runs")) \
            else 0

    def test_a_profiles_credential_process_gives_the_keys(self):
        """A profile of ~/.aws/config (AWS_CONFIG_FILE) with credential_process
        (aws-vault, SSO's `aws configure export-credentials`, a company's
        tool): its JSON's keys sign the requests when the credentials file has
        none for the profile, named or default; the instance, which has keys,
        is not asked. Keys with an Expiration are renewed by running it again.
        The credentials file's keys come first."""
        self.serve(keys=self.ROLE_KEYS[1:])
        keys = json.dumps({"Version": 1, "AccessKeyId": "AKIDPROCESS1",
                           "SecretAccessKey": "process-secret-9", "SessionToken": "ptok"})
        cfg = self.process(keys, profile="ci")
        p = self.drive("putmem", "proc/obj", "by the process", port=self.pport,
                       AWS_CONFIG_FILE=cfg, AWS_PROFILE="ci")
        self.assertNotIn("process-secret", p.stdout + p.stderr)
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/proc/obj")["Body"].read()
        self.assertEqual(got, b"by the process")
        self.assertEqual(self.lines("keys"), ["AKIDPROCESS1 ptok"])
        self.assertEqual(self.lines("imds.log"), [])
        # the default profile, no profile named; then keys that expire in 4 min
        # (under the 5 of the margin): renewed by a second run 5.5 s later
        self.setUp()
        cfg = self.process(keys, expires_in=240)
        os.unlink(self.path("process.runs"))
        self.drive("-w", "5500", "head", "a", "then", "head", "b", port=self.pport,
                   expect="NOT_FOUND", AWS_CONFIG_FILE=cfg)
        self.assertEqual(self.lines("keys"), ["AKIDPROCESS1 ptok"] * 2)
        self.assertEqual(self.runs(), 2)
        self.assertEqual(self.lines("imds.log"), [])
        # the credentials file's keys first: the process is not run
        self.setUp()
        os.unlink(self.path("process.runs"))
        f = self.write("credentials", b"[ci]\naws_access_key_id = AKIDFILE\n"
                                      b"aws_secret_access_key = secret-x\n")
        self.drive("head", "x", port=self.pport, expect="NOT_FOUND", AWS_PROFILE="ci",
                   AWS_CONFIG_FILE=self.process(keys, profile="ci"),
                   AWS_SHARED_CREDENTIALS_FILE=f)
        self.assertEqual(self.lines("keys"), ["AKIDFILE -"])
        self.assertEqual(self.runs(), 0)

    def test_a_credential_process_that_fails_is_the_error(self):
        """A process that exits non-zero, prints what is not its JSON, another
        Version, or no secret; a config file with a syntax error: the error
        names the command or the file, never a secret, and the instance is not
        asked."""
        self.serve(keys=self.ROLE_KEYS[1:])
        def error(cfg):
            p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                               env=self.env(AWS_CONFIG_FILE=cfg), timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertNotIn("nor a role's", p.stderr)
            self.assertNotIn("process-secret", p.stderr)
            self.assertEqual(self.lines("imds.log"), [])
            return p.stderr
        good = {"Version": 1, "AccessKeyId": "AKIDP", "SecretAccessKey": "process-secret-9"}
        said = error(self.process(json.dumps(dict(good, exit=3))))
        self.assertIn("credential_process of profile [default]", said)
        self.assertIn("creds.py", said)
        self.assertIn("exited with status 3", said)
        said = error(self.process(json.dumps({"raw": "not json process-secret-9"})))
        self.assertIn("did not print its JSON", said)
        said = error(self.process(json.dumps(dict(good, Version=2))))
        self.assertIn("Version 1", said)
        said = error(self.process(json.dumps({"Version": 1, "AccessKeyId": "AKIDP"})))
        self.assertIn("AccessKeyId and SecretAccessKey", said)
        cfg = self.write("aws-config", b"[default]\ncredential_process\n")
        said = error(cfg)
        self.assertIn("line 2 of %s" % cfg, said)

    def sts_refusing(self, code, run):
        """What run() returns while the fault proxy answers every POST (STS's
        requests) with 403 and code."""
        kh.write_fault(os.path.join(self.tmp, "pcontrol"),
                       {"mode": "403", "methods": ["POST"], "code": code})
        try:
            return run()
        finally:
            kh.write_fault(os.path.join(self.tmp, "pcontrol"), {"mode": "pass"})

    def web_identity(self, **over):
        """A web identity's environment: a token file, a role, STS at moto
        through the fault proxy (which logs and writes down its requests)."""
        tok = self.write("web-identity-token", b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2ln\n")
        return dict(dict(AWS_WEB_IDENTITY_TOKEN_FILE=tok,
                         AWS_ROLE_ARN="arn:aws:iam::123456789012:role/kache-ci",
                         AWS_ENDPOINT_URL_STS="http://127.0.0.1:%d/" % self.pport), **over)

    def test_a_web_identitys_keys_come_from_sts_before_the_file_and_the_instance(self):
        """AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (EKS, a CI's OIDC):
        one unsigned AssumeRoleWithWebIdentity at STS (moto's), whose session
        keys sign the request; the instance is not asked, though it has keys."""
        self.serve(keys=self.ROLE_KEYS[1:])
        p = self.drive("putmem", "wi/obj", "by web identity", port=self.pport,
                       **self.web_identity())
        self.assertNotIn("eyJhbGci", p.stdout + p.stderr)
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/wi/obj")["Body"].read()
        self.assertEqual(got, b"by web identity")
        keys = self.lines("keys")
        self.assertEqual(len(keys), 2, keys)
        self.assertEqual(keys[0], "- -")  # the STS request: not signed
        self.assertRegex(keys[1], r"^ASIA[A-Z0-9]{16} \S+$")  # STS's session keys
        self.assertEqual(self.lines("imds.log"), [])

    def role_profile(self, extra=b"", source=b"source_profile = base\n"):
        """~/.aws/config with profile ci, a role to assume from source, and a
        credentials file whose [base] has keys; the environment that names
        them, with STS at moto through the fault proxy."""
        creds = self.write("credentials", b"[base]\naws_access_key_id = AKIDBASE\n"
                                          b"aws_secret_access_key = base-secret-1\n")
        cfg = self.write("aws-config", b"[profile ci]\n"
                                       b"role_arn = arn:aws:iam::123456789012:role/kache-ci\n"
                         + source + extra)
        return dict(AWS_CONFIG_FILE=cfg, AWS_SHARED_CREDENTIALS_FILE=creds, AWS_PROFILE="ci",
                    AWS_ENDPOINT_URL_STS="http://127.0.0.1:%d/" % self.pport)

    def test_a_role_arn_profile_is_assumed_with_its_source_profiles_keys(self):
        """A profile of ~/.aws/config with role_arn and source_profile (a
        cross-account role, as the AWS SDKs assume it): one AssumeRole at STS
        (moto's), signed with the source profile's keys from the credentials
        file, whose session keys then sign the requests; the instance, which
        has keys, is not asked. A chain (the source itself a role_arn profile)
        assumes twice; the profile's own keys in the credentials file do not
        stand in for its role."""
        self.serve(keys=self.ROLE_KEYS[1:])
        env = self.role_profile(b"role_session_name = runner-7\nexternal_id = ext-42\n"
                                b"duration_seconds = 900\n")
        p = self.drive("putmem", "ar/obj", "by the assumed role", port=self.pport, **env)
        self.assertNotIn("base-secret", p.stdout + p.stderr)
        got = self.s3.get_object(Bucket=BUCKET, Key="kache/ar/obj")["Body"].read()
        self.assertEqual(got, b"by the assumed role")
        keys = self.lines("keys")
        self.assertEqual(len(keys), 2, keys)
        self.assertEqual(keys[0], "AKIDBASE -")  # AssumeRole, signed by the source
        self.assertRegex(keys[1], r"^ASIA[A-Z0-9]{16} \S+$")  # the role's session keys
        self.assertEqual(self.lines("imds.log"), [])
        # a chain: ci's source is mid, itself a role assumed from base; and ci
        # has keys of its own in the credentials file, which are not used
        self.setUp()
        env = self.role_profile(source=b"source_profile = mid\n"
                                b"[profile mid]\nrole_arn = arn:aws:iam::123456789012:role/mid\n"
                                b"source_profile = base\n")
        with open(env["AWS_SHARED_CREDENTIALS_FILE"], "ab") as f:
            f.write(b"[ci]\naws_access_key_id = AKIDCIOWN\naws_secret_access_key = ci-secret\n")
        self.drive("head", "x", port=self.pport, expect="NOT_FOUND", **env)
        keys = self.lines("keys")
        self.assertEqual(len(keys), 3, keys)
        self.assertEqual(keys[0], "AKIDBASE -")
        self.assertRegex(keys[1], r"^ASIA[A-Z0-9]{16} \S+$")  # mid's keys ask for ci's
        self.assertRegex(keys[2], r"^ASIA[A-Z0-9]{16} \S+$")
        self.assertNotEqual(keys[1], keys[2])
        self.assertEqual(self.lines("imds.log"), [])

    def test_the_assume_role_request_is_signed_as_botocore_signs_it(self):
        """moto does not check signatures: an STS of the test's own checks the
        AssumeRole request's SigV4 with botocore's signer (the source's keys,
        service sts, the region of s3.region) and answers keys, which then
        sign the S3 request. Keys that expire in 4 min (under the 5 of the
        margin) are renewed by assuming the role again 5.5 s later."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        seen = []

        class Sts(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                auth, date = self.headers["Authorization"], self.headers["X-Amz-Date"]
                req = AWSRequest(method="POST", url="http://%s/" % self.headers["Host"],
                                 data=body, headers={"Content-Type": self.headers["Content-Type"],
                                                     "X-Amz-Date": date})
                req.context["timestamp"] = date
                signer = SigV4Auth(Credentials("AKIDBASE", "base-secret-1"), "sts", "eu-west-3")
                want = signer.signature(
                    signer.string_to_sign(req, signer.canonical_request(req)), req)
                seen.append((auth.endswith("Signature=" + want), body.decode()))
                # the first keys expire in 4 min (under the 5 of the margin)
                exp = time.gmtime(time.time() + (240 if len(seen) == 1 else 3600))
                x = ("<AssumeRoleResponse><AssumeRoleResult><Credentials>"
                     "<AccessKeyId>ASIATESTSTSKEYS0000%d</AccessKeyId>"
                     "<SecretAccessKey>sts-secret</SecretAccessKey>"
                     "<SessionToken>sts-token</SessionToken>"
                     "<Expiration>%s</Expiration>"
                     "</Credentials></AssumeRoleResult></AssumeRoleResponse>"
                     % (len(seen), time.strftime("%Y-%m-%dT%H:%M:%SZ", exp))).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(x)))
                self.end_headers()
                self.wfile.write(x)

        srv = http.server.HTTPServer(("127.0.0.1", 0), Sts)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            env = self.role_profile(b"external_id = a b+/=\n")
            env["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:%d/" % srv.server_address[1]
            self.drive("-w", "5500", "head", "a", "then", "head", "b", port=self.pport,
                       expect="NOT_FOUND", KACHE_S3_REGION="eu-west-3", **env)
        finally:
            srv.shutdown()
            srv.server_close()
        self.assertEqual(len(seen), 2, seen)
        self.assertTrue(seen[0][0] and seen[1][0], seen)
        self.assertIn("Action=AssumeRole&", seen[0][1])
        self.assertIn("&ExternalId=a%20b%2B%2F%3D", seen[0][1])
        self.assertEqual(self.lines("keys"), ["ASIATESTSTSKEYS00001 sts-token",
                                              "ASIATESTSTSKEYS00002 sts-token"])

    def test_a_role_arn_profile_that_cannot_be_assumed_is_the_error(self):
        """What kache cannot assume is the error, naming the profile and its
        role, never a fall-through to the instance's keys: an mfa_serial, both
        or neither of source_profile and credential_source, a source without
        keys, a loop, a duration out of range, STS refusing (its code said)."""
        self.serve(keys=self.ROLE_KEYS[1:])
        def error(env):
            p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                               env=self.env(**env), timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("profile [ci]'s role_arn (arn:aws:iam::123456789012:role/kache-ci)",
                          p.stderr)
            self.assertNotIn("base-secret", p.stdout + p.stderr)
            return p.stderr
        self.assertIn("mfa_serial", error(self.role_profile(
            b"mfa_serial = arn:aws:iam::123456789012:mfa/me\n")))
        self.assertIn("exactly one of source_profile and credential_source", error(
            self.role_profile(b"credential_source = Ec2InstanceMetadata\n")))
        self.assertIn("exactly one of source_profile and credential_source", error(
            self.role_profile(source=b"")))
        self.assertIn("is not Ec2InstanceMetadata or EcsContainer", error(
            self.role_profile(source=b"credential_source = Environment\n")))
        self.assertIn("source_profile [nobody] has no keys", error(
            self.role_profile(source=b"source_profile = nobody\n")))
        self.assertIn("source_profile links (a loop?)", error(
            self.role_profile(source=b"source_profile = ci\n")))
        self.assertIn("duration_seconds '60' is not 900 to 43200", error(
            self.role_profile(b"duration_seconds = 60\n")))
        said = self.sts_refusing("AccessDenied", lambda: error(self.role_profile()))
        self.assertIn("answered HTTP 403 (AccessDenied)", said)
        self.assertEqual(self.lines("imds.log"), [])

    def test_a_web_identity_that_fails_is_the_error(self):
        """A token file that cannot be read, or STS refusing the token: the
        error says which and what to check; no fall-through to the instance's
        keys."""
        self.serve(keys=self.ROLE_KEYS[1:])
        def error(env):
            p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                               env=self.env(**env), timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("check AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN", p.stderr)
            return p.stderr
        missing = self.path("no-token")
        self.assertIn("AWS_WEB_IDENTITY_TOKEN_FILE %s cannot be read" % missing,
                      error(self.web_identity(AWS_WEB_IDENTITY_TOKEN_FILE=missing)))
        said = self.sts_refusing("InvalidIdentityToken", lambda: error(self.web_identity()))
        self.assertIn("answered HTTP 403 (InvalidIdentityToken)", said)
        self.assertEqual(self.lines("imds.log"), [])

    def test_sts_is_the_regions_and_asked_through_the_environments_proxy(self):
        """Without AWS_ENDPOINT_URL_STS a web identity's keys come from the STS
        endpoint of s3.region, as the AWS SDKs' major versions since 2022 ask
        (China's partition has no global endpoint; a runner with only a VPC
        endpoint reaches no other), or from the global one with
        AWS_STS_REGIONAL_ENDPOINTS=legacy; and through the environment's
        https_proxy, as the S3 requests go (it was bypassed, as for the
        instance's own address). The fault proxy stands for that proxy: it
        logs each CONNECT and refuses it."""
        self.serve(keys=self.ROLE_KEYS[1:])
        plog = self.path("plog")
        cases = [({"KACHE_S3_REGION": "eu-west-3"}, "sts.eu-west-3.amazonaws.com"),
                 ({"KACHE_S3_REGION": "cn-north-1"}, "sts.cn-north-1.amazonaws.com.cn"),
                 ({"KACHE_S3_REGION": "eu-west-3", "AWS_STS_REGIONAL_ENDPOINTS": "legacy"},
                  "sts.amazonaws.com")]
        for over, host in cases:
            mark = os.path.getsize(plog) if os.path.exists(plog) else 0
            env = self.env(**self.web_identity(**over))
            del env["AWS_ENDPOINT_URL_STS"]
            env["https_proxy"] = "http://127.0.0.1:%d" % self.pport
            p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                               env=env, timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("https://%s/" % host, p.stderr)
            self.assertIn("check AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN", p.stderr)
            with open(plog) as f:
                f.seek(mark)
                self.assertEqual(f.read().splitlines(),
                                 ["CONNECT %s:443 502 refused" % host], over)
        env = self.env(**self.web_identity(KACHE_S3_REGION="eu_west/3"))
        del env["AWS_ENDPOINT_URL_STS"]
        p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True, env=env,
                           timeout=60)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("s3.region 'eu_west/3' is not a region name", p.stderr)
        self.assertEqual(self.lines("imds.log"), [])

    def container(self, **over):
        """The environment of a container whose agent is the loopback service."""
        tok = self.write("container-auth", b"Bearer agent-token-7Qx\n")
        return dict(dict(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/container/creds"
                         % self.iport, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=tok), **over)

    def test_a_containers_keys_come_from_its_agent_before_the_instances(self):
        """AWS_CONTAINER_CREDENTIALS_FULL_URI and the token file (ECS,
        CodeBuild): one GET with its Authorization, no IMDS request; the keys
        sign the requests and are renewed from the agent too."""
        self.serve(keys=self.ROLE_KEYS, auth="Bearer agent-token-7Qx")
        p = self.drive("-w", "5500", "head", "a", "then", "head", "b", port=self.pport,
                       expect="NOT_FOUND", **self.container())
        self.assertEqual(self.lines("keys"), ["AKIDROLEONE role-token-1",
                                              "AKIDROLETWO role-token-2"])
        self.assertEqual(self.lines("imds.log"), ["GET /container/creds 200"] * 2)
        self.assertIn("the role's keys renewed", p.stderr)

    def test_a_container_agent_refused_or_not_trusted_is_said(self):
        """A wrong token: the agent's 401, said; plain http to a host that is
        neither loopback nor the agent's address: refused before any request,
        as the AWS SDKs do; no keys from the instance then either."""
        self.serve(keys=self.ROLE_KEYS, auth="Bearer another-token")
        for env, said in ((self.container(), "/container/creds answered HTTP 401"),
                          (dict(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://192.0.2.1/creds"),
                           "http://192.0.2.1/creds is not https, nor http to loopback or the "
                           "container agent")):
            p = subprocess.run([DRIVER, "head", "x"], capture_output=True, text=True,
                               env=self.env(**env), timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn(said, p.stderr)
            self.assertNotIn("agent-token", p.stderr)
        self.assertNotIn("latest/api/token", "\n".join(self.lines("imds.log")))


if __name__ == "__main__":
    DRIVER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
