"""The one harness of kache's Python process and scenario tests (tests/cli,
tests/proc, tests/s3, tests/scenarios): the programs under test, bounded waits,
temp dirs and environments, the processes serving a store and their
sanitizer reports, moto_server and the fault proxy, and the cargo Workspace.
A test script imports it by path:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "harness"))
    import kache_harness as kh

Every wait here has a bound; nothing here asserts: the tests do."""
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
PROXY = os.path.join(TESTS, "tools", "faultproxy.py")
IMDS = os.path.join(TESTS, "tools", "imds.py")
WS_FIXTURE = os.path.join(TESTS, "fixtures", "ws")

# The programs under test, from the environment ctest sets (defaults for a
# hand run from the worktree). Scripts that take kache as their first argument
# set KACHE with take_kache_arg().
KACHED = os.environ.get("KACHED", "build/bin/kached")
KACHE = os.environ.get("KACHE", "build/bin/kache")
POKE = os.environ.get("POKE", "build/tests/proto_poke")
FIXTURE = os.environ.get("FIXTURE", "build/tests/index_fixture")
SHIM = os.environ.get("SHIM", "build/tests/enospc_shim.so")

# The crates of tests/fixtures/ws that a cold build compiles.
CRATES = {"tiny", "greet_macro", "build_script_build", "fixture_core", "fixture_app"}


def take_kache_arg():
    """Pops the path of kache from argv[1] (the scenario scripts' usage) and makes
    it the harness's KACHE; returns it."""
    global KACHE
    KACHE = os.path.abspath(sys.argv.pop(1))
    return KACHE


def wait_for(pred, timeout=10.0, step=0.05):
    """Polls pred until it is truthy or timeout seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# --- temp dirs and environments --------------------------------------------

def make_tmp(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def remove_tmp(tmp, keep_env=True):
    """Removes a test's temp dir, unless KEEP is set (and keep_env) for a post-mortem,
    and the RocksDB info logs its stores' indexes left in /dev/shm/kache-<euid>
    (named after the index's path: /tmp/x/store/index -> tmp_x_store_index_LOG)."""
    if not (keep_env and os.environ.get("KEEP")):
        shutil.rmtree(tmp, ignore_errors=True)
        prefix = re.sub(r"[^A-Za-z0-9.-]", "_", os.path.realpath(tmp).lstrip("/")) + "_"
        for log in glob.glob("/dev/shm/kache-%d/%s*_LOG*" % (os.geteuid(), glob.escape(prefix))):
            try:
                os.unlink(log)
            except OSError:
                pass


def store_env(tmp, store, drop=(), **extra):
    """The environment of kached/kache for a test's own store: the caller's
    environment, KACHE_DIR=store, a config file that does not exist under tmp,
    fast heartbeats and no remote; drop names variables to remove."""
    env = dict(os.environ, KACHE_DIR=store, KACHE_CONFIG=os.path.join(tmp, "config.toml"),
               KACHE_HEARTBEAT_MS="200", KACHE_REMOTE="none")
    env.update(extra)
    for k in drop:
        env.pop(k, None)
    return env


def gc_log(store):
    """The text of store's background gc log (logs/gc.log), or ""."""
    try:
        with open(os.path.join(store, "logs", "gc.log")) as f:
            return f.read()
    except OSError:
        return ""


def drop_prefixed(env, prefixes):
    """Removes every variable of env whose name starts with one of prefixes."""
    for k in list(env):
        if k.startswith(prefixes):
            del env[k]
    return env


# --- processes serving a store ---------------------------------------------

def alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def store_pids(store, under=False):
    """Live processes (not this one) whose environment has KACHE_DIR=store, or with
    under, KACHE_DIR naming any path that starts with store."""
    want = b"KACHE_DIR=" + store.encode() + (b"" if under else b"\0")
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if want in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return [p for p in pids if p != os.getpid() and alive(p)]


def kill_pids(pids):
    """SIGKILLs pids (continuing stopped ones first); gone ones are skipped."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def sanitizer_reports(store):
    """The logs under store/logs that hold a sanitizer report, each as
    'name:\\n<last 3000 characters>'."""
    reports = []
    logs = os.path.join(store, "logs")
    for name in (os.listdir(logs) if os.path.isdir(logs) else []):
        with open(os.path.join(logs, name), errors="replace") as f:
            text = f.read()
        if "Sanitizer" in text or "runtime error:" in text:
            reports.append(f"{name}:\n{text[-3000:]}")
    return reports


def end_test_processes(tmp, store):
    """A process test's tearDown: kills every process serving a store under tmp,
    collects store's sanitizer reports, removes tmp (unless KEEP); returns the
    reports for the test to assert empty."""
    kill_pids(store_pids(tmp, under=True))
    reports = sanitizer_reports(store)
    remove_tmp(tmp)
    return reports


def supervisor_stop(program, env, flush_timeout=None, timeout=60):
    """Runs `program supervisor stop [--timeout flush_timeout]` for env's store,
    bounded by timeout seconds; its result is not checked (a tearDown's stop)."""
    args = [program, "supervisor", "stop"]
    if flush_timeout:
        args += ["--timeout", flush_timeout]
    return subprocess.run(args, env=env, capture_output=True, timeout=timeout)


def stop(proc):
    """Terminates a child process (moto_server, the fault proxy), bounded."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def inv_of(res_hex):
    """index_fixture names the invocation key BLAKE2b-256(result key)."""
    return hashlib.blake2b(bytes.fromhex(res_hex), digest_size=32).hexdigest()


def intents(store):
    """Names in store/intents (the uploads still queued)."""
    d = os.path.join(store, "intents")
    return os.listdir(d) if os.path.isdir(d) else []


# --- moto_server and the fault proxy ---------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blackhole():
    """A loopback port whose connections are never made: a listener with a
    backlog of one, filled, so the kernel drops further SYNs (as a firewall
    that drops packets would). Returns (sockets to keep open, port)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    keep = [lst]
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        keep.append(c)
    return keep, port


def start_moto(extra_env=None):
    """Starts moto_server on a free loopback port; returns (process, port) once it
    answers, within 60 s."""
    port = free_port()
    env = dict(os.environ, **(extra_env or {}))
    proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/moto-api/" % port, timeout=1)
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("moto_server exited")
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto_server did not come up")


def boto(port):
    """A boto3 S3 client of the moto_server on port: the independent checker."""
    import boto3
    return boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % port,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        region_name="us-east-1")


def ready(proc, name):
    """(proc, its port) once a tool of tests/tools says "READY <port>"."""
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        stop(proc)
        raise RuntimeError("%s did not start: %r" % (name, line))
    return proc, int(line.split()[1])


def start_proxy(port, control, log, stats=None, listen=0, tls=None, keys=None):
    """Starts tests/tools/faultproxy.py in front of 127.0.0.1:port, steered by the
    control file (with stats: the most requests in flight at once, per method,
    as JSON in that file), on port listen (0: a free one), answering HTTPS with
    tls's (certificate, key), writing each request's signing key id to keys;
    returns (process, its port) once it says READY."""
    proc = subprocess.Popen([sys.executable, PROXY, "--upstream", "127.0.0.1:%d" % port,
                             "--control", control, "--log", log, "--port", str(listen)]
                            + (["--stats", stats] if stats else [])
                            + (["--tls", *tls] if tls else [])
                            + (["--keys", keys] if keys else []),
                            stdout=subprocess.PIPE, text=True)
    return ready(proc, "faultproxy")


def start_imds(control, log):
    """Starts tests/tools/imds.py (the instance metadata service's credentials
    endpoints) steered by the control file; returns (process, its port) once it
    says READY."""
    return ready(subprocess.Popen([sys.executable, IMDS, "--control", control, "--log", log],
                                  stdout=subprocess.PIPE, text=True), "imds")


def tls_certificate(tmp):
    """A self-signed certificate for 127.0.0.1 (its own CA), made with the
    openssl command: (certificate, key) paths in tmp."""
    cert, key = os.path.join(tmp, "tls.pem"), os.path.join(tmp, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True,
                   timeout=60)
    return cert, key


def write_fault(control, ctl):
    """Sets the fault proxy's behaviour (temp+rename: it never reads half a file)."""
    with open(control + ".tmp", "w") as f:
        json.dump(ctl, f)
    os.replace(control + ".tmp", control)


# --- cargo builds of tests/fixtures/ws -------------------------------------

_real_rustc = None


def real_rustc():
    """The real rustc of the active toolchain (asked once)."""
    global _real_rustc
    if _real_rustc is None:
        sysroot = subprocess.check_output(["rustc", "--print", "sysroot"], text=True).strip()
        _real_rustc = os.path.join(sysroot, "bin", "rustc")
    return _real_rustc


class Workspace:
    """A copy of the fixture with its own CARGO_HOME and target dir, built with
    RUSTC_WRAPPER=KACHE through a counting rustc shim (RUSTC=...) that records
    every compile that reaches the real rustc."""

    def __init__(self, root, store, name="ws"):
        self.dir = os.path.join(root, name)
        shutil.copytree(WS_FIXTURE, self.dir)
        self.home = os.path.join(root, name + "-cargo-home")
        self.log = os.path.join(root, name + "-rustc.log")
        self.shim = os.path.join(root, name + "-rustc-shim")
        with open(self.shim, "w") as f:
            f.write("#!/bin/sh\n"
                    "case \" $* \" in *' --crate-name '*) "
                    "echo \"$*\" >> '%s';; esac\n"
                    "exec '%s' \"$@\"\n" % (self.log, real_rustc()))
        os.chmod(self.shim, 0o755)
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("KACHE_") or k.startswith("CARGO_") or k == "RUSTC_WRAPPER":
                del self.env[k]
        self.env.update({
            "KACHE_DIR": store, "CARGO_HOME": self.home, "RUSTC": self.shim,
            "RUSTC_WRAPPER": KACHE, "KACHE_FIXTURE_GREETING": "hello",
            "CARGO_TERM_COLOR": "never",
        })

    def cargo(self, *args, check=True, **env):
        e = dict(self.env, **env)
        if os.path.exists(self.log):
            os.unlink(self.log)
        jobs = ["-j2"] if args[0] in ("build", "test") else []
        p = subprocess.run(["cargo", *args, "--offline", *jobs], cwd=self.dir, env=e,
                           capture_output=True, text=True, timeout=600)
        if check and p.returncode != 0:
            raise AssertionError("cargo %s failed:\n%s" % (" ".join(args), p.stderr))
        return p

    def compiled(self):
        """Crate names of compiles that reached the real rustc in the last cargo run
        (cargo's own `--crate-name ___ --print` probes excluded)."""
        if not os.path.exists(self.log):
            return []
        names = []
        for line in open(self.log):
            words = line.split()
            name = words[words.index("--crate-name") + 1]
            if name != "___":
                names.append(name)
        return sorted(names)

    def run_app(self):
        return subprocess.check_output([os.path.join(self.dir, "target/debug/fixture-app")],
                                       text=True)

    def edit(self, rel, old, new):
        path = os.path.join(self.dir, rel)
        text = open(path).read()
        assert old in text
        open(path, "w").write(text.replace(old, new))


def _hex_key(name):
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def entry_keys(store):
    """Result keys of every entry the local store holds."""
    d = os.path.join(store, "entries")
    keys = set()
    for sub in os.listdir(d) if os.path.isdir(d) else []:
        for name in os.listdir(os.path.join(d, sub)):
            if _hex_key(name):
                keys.add(name)
    return keys


def intent_keys(store):
    """Result keys of the intents queued in store (temp files left out)."""
    return [n for n in intents(store) if _hex_key(n)]


def xxh128(data):
    """XXH3-128 of data, big-endian, from xxhsum (Debian's xxhash): the
    tests' check of kache's record checksums, outside kache's code."""
    out = subprocess.run(["xxhsum", "-H2", "-"], input=data, stdout=subprocess.PIPE,
                         check=True, timeout=30).stdout
    return bytes.fromhex(out.split()[0].decode())


def zstd_inflate(data):
    """data inflated by Debian's zstd CLI (every frame whole, its checksum
    checked): the tests' reader of packs and parts, outside kache's code."""
    return subprocess.run(["zstd", "-d", "-c"], input=data, stdout=subprocess.PIPE,
                          check=True, timeout=60).stdout


def bundle_part_packs(data):
    """A bundle part (docs/remote-layout.md) read as the doc says, without
    kache: [(crate, result key, the pack's document)] in the part's order.
    Version 2: the documents are the one frame after "end", inflated;
    version 1: the packs' own bytes, each inflated. Asserts the sizes sum to
    exactly what the part holds."""
    head, _, rest = data.partition(b"\nend\n")
    lines = head.decode().split("\n")
    assert lines[0] in ("kache-bundle 1", "kache-bundle 2"), lines[0]
    assert lines[1] == "packs %d" % (len(lines) - 2), lines[:2]
    body = zstd_inflate(rest) if lines[0] == "kache-bundle 2" else rest
    out, off = [], 0
    for line in lines[2:]:
        crate, res, n = line.split()
        piece = body[off:off + int(n)]
        assert len(piece) == int(n), line
        out.append((crate, res, piece if lines[0] == "kache-bundle 2" else zstd_inflate(piece)))
        off += int(n)
    assert off == len(body), (off, len(body))
    return out


# Record frames of store/record.c: kind's tag of format 3 and of format 2.
RECORD_TAGS = {"entries": (b"kcentry3", b"kcentry2"), "manifests": (b"kcmanif3", b"kcmanif2"),
               "memo": (b"kcmemor2", b"kcmemor1")}


def record_payload(kind, path):
    """The payload of a format 3 record file, checked as docs/design.md says
    (tag | XXH3-128(tag | name | payload) | payload); None when it fails."""
    data = open(path, "rb").read()
    key = bytes.fromhex(os.path.basename(path))
    tag, total, payload = data[:8], data[8:24], data[24:]
    if tag != RECORD_TAGS[kind][0] or total != xxh128(tag + key + payload):
        return None
    return payload


def record_to_format2(kind, path):
    """Rewrites a format 3 record as the kache before it did (format 2: the
    older tag, BLAKE2b-256 of 32 bytes), for the upgrade scenarios."""
    payload = record_payload(kind, path)
    assert payload is not None, path
    tag = RECORD_TAGS[kind][1]
    key = bytes.fromhex(os.path.basename(path))
    total = hashlib.blake2b(tag + key + payload, digest_size=32).digest()
    tmp = path + ".f2"
    with open(tmp, "wb") as f:
        f.write(tag + total + payload)
    os.replace(tmp, path)


def mp_decode(b, i=0):
    """The msgpack object at b[i:] and the offset after it: the tests' own
    reader, independent of kache's (msgpack-c), for packs, entries and
    manifests; anything outside the format raises ValueError."""
    t = b[i]
    i += 1
    if t <= 0x7f:
        return t, i
    if t >= 0xe0:
        return t - 0x100, i
    if 0x80 <= t <= 0x8f:
        return mp_map(b, i, t & 0x0f)
    if 0x90 <= t <= 0x9f:
        return mp_array(b, i, t & 0x0f)
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i:i + n].decode(), i + n
    if t == 0xc0:
        return None, i
    if t in (0xc2, 0xc3):
        return t == 0xc3, i
    sizes = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
             0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}
    if t in sizes:
        v = struct.unpack_from(sizes[t], b, i)[0]
        return v, i + struct.calcsize(sizes[t])
    lens = {0xc4: ">B", 0xc5: ">H", 0xc6: ">I", 0xd9: ">B", 0xda: ">H", 0xdb: ">I"}
    if t in lens:
        n = struct.unpack_from(lens[t], b, i)[0]
        i += struct.calcsize(lens[t])
        raw = bytes(b[i:i + n])
        if len(raw) != n:
            raise ValueError("truncated")
        return (raw if t <= 0xc6 else raw.decode()), i + n
    if t in (0xdc, 0xdd):
        fmt = ">H" if t == 0xdc else ">I"
        return mp_array(b, i + struct.calcsize(fmt), struct.unpack_from(fmt, b, i)[0])
    if t in (0xde, 0xdf):
        fmt = ">H" if t == 0xde else ">I"
        return mp_map(b, i + struct.calcsize(fmt), struct.unpack_from(fmt, b, i)[0])
    raise ValueError("msgpack type 0x%02x" % t)


def mp_array(b, i, n):
    out = []
    for _ in range(n):
        v, i = mp_decode(b, i)
        out.append(v)
    return out, i


def mp_map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = mp_decode(b, i)
        v, i = mp_decode(b, i)
        out[k] = v
    return out, i


def write_tree(root, files):
    """Writes files ({relative path: text}) under root, making folders."""
    for rel, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)


FUTURE_MS = 9000000000000  # wall ms after any file's mtime: index order is the test's


class IndexedStore:
    """A mixin for tests of the index commands over a store filled through the
    C store API (index_fixture): needs self.store and self.env. KACHED and
    FIXTURE are this module's (a test may set them from its arguments)."""

    def fx(self, *args):
        out = subprocess.run([FIXTURE, self.store, *map(str, args)], check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()

    def run_k(self, *args, rc=0, timeout=60):
        p = subprocess.run([KACHED, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        self.assertEqual(p.returncode, rc, f"{args}: {p.stdout}{p.stderr}")
        return p

    def stats(self):
        return json.loads(self.run_k("stats", "--json").stdout)

    def path(self, kind, key):
        return os.path.join(self.store, kind, key[:2], key)

    def check_gc_older_than(self, before_gc=lambda: None):
        """`kache gc --older-than`: entries last used 10 days, 3 days and an
        hour ago, a cap that holds them all; 7d removes the first, 2d the
        second, the cap applying alike; a malformed duration is a usage error.
        before_gc runs once the entries are there (a supervisor's start)."""
        now = int(time.time() * 1000)
        keys = []
        for crate, size, age_ms in (("serde", 4000, 10 * 86400000), ("libc", 3000, 3 * 86400000),
                                    ("rand", 2000, 3600000)):
            keys.append(self.fx("entry", crate, size, now - age_ms))
            t = (now - age_ms) / 1000
            os.utime(self.path("entries", keys[-1]), (t, t))
        self.assertEqual(self.stats()["entries"], 3)
        before_gc()
        out = self.run_k("gc", "--older-than", "7d", "-v").stdout
        self.assertIn("removed serde " + keys[0][:16], out)
        self.assertIn("gc: removed 1 entries, 1 blobs, 1 manifests", out)
        self.assertIn("(cap 10.0 GiB; none unused for 7 days)", out)
        self.assertFalse(os.path.exists(self.path("entries", keys[0])))
        self.assertTrue(os.path.exists(self.path("entries", keys[1])))
        out = self.run_k("gc", "--older-than", "48h", "--max-size", "1G").stdout
        self.assertIn("gc: removed 1 entries", out)
        self.assertIn("(cap 1.0 GiB; none unused for 2 days)", out)
        self.assertFalse(os.path.exists(self.path("entries", keys[1])))
        self.assertTrue(os.path.exists(self.path("entries", keys[2])))
        self.assertEqual(self.stats()["entries"], 1)
        p = self.run_k("gc", "--older-than", "a week", rc=2)
        self.assertIn("--older-than: 'a week' is not a duration", p.stderr)
        self.run_k("gc", "--older-than", "0", rc=2)
        self.assertEqual(self.stats()["entries"], 1)

    def populate(self):
        """Three entries (serde twice, libc), two hits of the first, a
        pass-through and an error: the keys a, b, c."""
        a = self.fx("entry", "serde", 4000, FUTURE_MS - 3000)
        b = self.fx("entry", "libc", 3000, FUTURE_MS - 2000)
        c = self.fx("entry", "serde", 2000, FUTURE_MS - 1000)
        self.fx("hit", a, FUTURE_MS, 250, 4000)
        self.fx("hit", a, FUTURE_MS + 1, 250, 4000)
        self.fx("pass", "proc-macro")
        self.fx("error", "io")
        return a, b, c


def kache_cmd(ws, *args, timeout=60):
    """`kache args` in the Workspace ws's environment (not checked)."""
    return subprocess.run([KACHE, *args], env=ws.env, capture_output=True,
                          text=True, timeout=timeout)


def sup_status(ws):
    """The supervisor's status document, or None when none answers."""
    p = kache_cmd(ws, "supervisor", "status", "--json")
    return json.loads(p.stdout) if p.returncode == 0 else None


def kache_stats(ws):
    """`kache stats --json` of ws's store (AssertionError when it fails)."""
    p = kache_cmd(ws, "stats", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout[p.stdout.index("{"):])


class DirRunners:
    """A mixin for scenarios of CI runners over one directory remote: each
    runner a Workspace with a store of its own (self.tmp/<name>-store) and
    KACHE_DEADLINE_MS=1000; tearDown stops every runner's supervisor and
    removes self.tmp. TMP_PREFIX names the temp dir."""

    TMP_PREFIX = "kache-runners-"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.TMP_PREFIX)
        self.remote = os.path.join(self.tmp, "remote")
        self.envs = []

    def tearDown(self):
        for env in self.envs:
            subprocess.run([KACHE, "supervisor", "stop", "--timeout", "20s"],
                           env=env, capture_output=True, timeout=90)
        remove_tmp(self.tmp)

    def runner(self, name, root, start=False, **env):
        """A runner whose workspace is at root (made), env added to its
        environment; start: its supervisor started by hand."""
        os.makedirs(root, exist_ok=True)
        ws = Workspace(root, os.path.join(self.tmp, name + "-store"), name)
        ws.env.update(dict(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.remote,
                           KACHE_CONFIG=os.path.join(self.tmp, "none.toml"),
                           KACHE_DEADLINE_MS="1000"), **env)
        self.envs.append(ws.env)
        if start:
            p = kache_cmd(ws, "supervisor", "start")
            self.assertEqual(p.returncode, 0, p.stderr)
        return ws
