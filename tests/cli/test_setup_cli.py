#!/usr/bin/env python3
"""kache init (cargo's build.rustc-wrapper and [env] CC/CXX written, the rest of
config.toml kept byte for byte, idempotent, refusing another wrapper, keeping a
user's CC; --undo taking kache's lines back out) and kache doctor (exit 0 on
a good setup; each broken setup it claims to detect: exit 1 and the fix named).
Environment: KACHED, FIXTURE. Each test has its own store, CARGO_HOME and PATH."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import KACHED, wait_for  # noqa: E402

OTHER_TABLES = (b"# my cargo settings\n"
                b"[net]\ngit-fetch-with-cli = true   # keep\n\n"
                b"[alias]\nb = \"build\"\nxs = [\n  \"[build]\",\n  'x',\n]\n"
                b"[target.x86_64-unknown-linux-gnu]\nlinker = \"clang\"\n")


KACHE_LINES = (b'[build]\nrustc-wrapper = "kache"\n\n'
               b'[env]\nCC = "kache cc"\nCXX = "kache c++"\n')


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp("kache-setup-")
        self.store = os.path.join(self.tmp, "store")
        self.home = os.path.join(self.tmp, "cargo-home")
        self.bin = os.path.join(self.tmp, "bin")
        os.makedirs(self.bin)
        kached = os.path.abspath(KACHED)
        for name in ("kache", "kached"):  # a PATH holding both, as installed
            os.symlink(os.path.join(os.path.dirname(kached), name),
                       os.path.join(self.bin, name))
        self.env = kh.store_env(self.tmp, self.store, HOME=self.tmp, CARGO_HOME=self.home,
                                PATH=self.bin + ":/usr/bin:/bin",
                                drop=("RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER",
                                      "CARGO_BUILD_RUSTC_WRAPPER", "CC", "CXX"))
        self.cwd = os.path.join(self.tmp, "work")
        os.makedirs(self.cwd)

    def tearDown(self):
        kh.end_test_processes(self.tmp, self.store)

    def k(self, *args, rc=None, **env):
        p = subprocess.run([os.path.abspath(KACHED), *args], env=dict(self.env, **env),
                           cwd=self.cwd, capture_output=True, text=True, timeout=60)
        if rc is not None:
            self.assertEqual(p.returncode, rc, f"{args}: {p.stdout}{p.stderr}")
        return p

    def config(self):
        with open(os.path.join(self.home, "config.toml"), "rb") as f:
            return f.read()

    def write_config(self, data):
        os.makedirs(self.home, exist_ok=True)
        with open(os.path.join(self.home, "config.toml"), "wb") as f:
            f.write(data)

    def good(self):
        self.k("init", rc=0)
        self.k("stats", rc=0)  # the store and its index exist

    def check(self, name, rc=1, **env):
        p = self.k("doctor", "--json", **env)
        self.assertEqual(p.returncode, rc, p.stdout + p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["ok"], rc == 0)
        found = [c for c in doc["checks"] if c["name"] == name]
        self.assertTrue(found, doc)
        return found[0], self.k("doctor", **env)

    def assert_fails(self, name, fix_words, **env):
        c, text = self.check(name, **env)
        self.assertEqual(c["status"], "fail", c)
        self.assertIn(fix_words, c["fix"])
        self.assertEqual(text.returncode, 1)
        self.assertIn("fix: " + c["fix"], text.stdout)


class Init(Base):
    def test_empty_cargo_home(self):
        self.k("init", "--check", rc=1)
        out = self.k("init", rc=0).stdout
        self.assertIn("kache supervisor install", out)
        self.assertEqual(self.config(), KACHE_LINES)
        self.assertFalse(os.path.exists(os.path.join(self.home, "config.toml.kache-backup")))
        self.k("init", "--check", rc=0)

    def test_other_tables_kept_byte_for_byte(self):
        self.write_config(OTHER_TABLES)
        self.k("init", rc=0)
        self.assertEqual(self.config(), OTHER_TABLES + b"\n" + KACHE_LINES)
        with open(os.path.join(self.home, "config.toml.kache-backup"), "rb") as f:
            self.assertEqual(f.read(), OTHER_TABLES)

    def test_existing_build_table_gets_the_line(self):
        old = b"[build]\njobs = 4\n\n[net]\noffline = true"
        self.write_config(old)
        self.k("init", rc=0)
        self.assertEqual(self.config(),
                         b'[build]\nrustc-wrapper = "kache"\njobs = 4\n\n[net]\noffline = true\n'
                         b'\n[env]\nCC = "kache cc"\nCXX = "kache c++"\n')

    def test_twice_changes_nothing(self):
        self.write_config(OTHER_TABLES)
        self.k("init", rc=0)
        first = self.config()
        st = os.stat(os.path.join(self.home, "config.toml"))
        out = self.k("init", rc=0).stdout
        self.assertIn("nothing to do", out)
        self.assertEqual(self.config(), first)
        self.assertEqual(os.stat(os.path.join(self.home, "config.toml")).st_ino, st.st_ino)

    def test_refuses_another_wrapper(self):
        old = b'[build]\nrustc-wrapper = "/usr/bin/sccache"\n'
        self.write_config(old)
        p = self.k("init", rc=1)
        self.assertIn("/usr/bin/sccache", p.stderr)
        self.assertIn("Remove that line", p.stderr)
        self.assertEqual(self.config(), old)
        self.k("init", "--check", rc=1)

    def test_dotted_key_at_top_counts(self):
        self.write_config(b'build.rustc-wrapper = "kache"\n[net]\n')
        self.k("init", "--check", rc=0)
        self.k("init", rc=0)
        self.assertEqual(self.config(), b'build.rustc-wrapper = "kache"\n[net]\n\n'
                         b'[env]\nCC = "kache cc"\nCXX = "kache c++"\n')
        self.assertIn("nothing to do", self.k("init", rc=0).stdout)

    def test_existing_env_table_gets_cc_and_a_users_cc_stays(self):
        old = b'[env]\nCC = { value = "clang-14", force = true }\nFOO = "1"\n'
        self.write_config(old)
        p = self.k("init", rc=0)
        self.assertEqual(self.config(), b'[env]\nCXX = "kache c++"\n'
                         b'CC = { value = "clang-14", force = true }\nFOO = "1"\n'
                         b'\n[build]\nrustc-wrapper = "kache"\n')
        self.assertIn('CC = "clang-14"; not changing it', p.stderr)
        self.assertIn('To route them: CC = "kache clang-14"', p.stderr)
        self.assertIn("nothing to do", self.k("init", rc=0).stdout)

    def test_cc_in_the_environment_is_warned_about(self):
        p = self.k("init", rc=0, CC="gcc-12")
        self.assertIn("CC=gcc-12 is set in this environment", p.stderr)
        self.assertIn('"kache gcc-12"', p.stderr)
        self.assertEqual(self.config(), KACHE_LINES)
        self.assertNotIn("CC=", self.k("init", rc=0, CC="kache gcc-12").stderr)

    def test_undo_gives_back_the_file(self):
        self.write_config(OTHER_TABLES)
        self.k("init", rc=0)
        self.assertIn("removed kache's 3 line(s)", self.k("init", "--undo", rc=0).stdout)
        self.assertEqual(self.config(), OTHER_TABLES)
        self.assertIn("nothing to do", self.k("init", "--undo", rc=0).stdout)
        self.k("init", "--check", rc=1)

    def test_undo_keeps_what_is_not_kaches(self):
        old = (b'[build]\njobs = 2\nrustc-wrapper = "kache"\n'
               b'[env]\nCC = "clang"\nCXX = "kache g++"\n')
        self.write_config(old)
        self.k("init", "--undo", rc=0)
        self.assertEqual(self.config(), b'[build]\njobs = 2\n[env]\nCC = "clang"\n')


class PeerOptions(Base):
    def test_a_peers_option_names_kaches_command(self):
        """`kache -s` from sccache's or ccache's habit: the usage error names
        kache's command for it, through the wrapper binary as through kached;
        it runs nothing (a store it would have made is not made)."""
        kache = os.path.join(self.bin, "kache")
        for opt, ours in (("-s", "`kache stats`"), ("--show-stats", "`kache stats`"),
                          ("--zero-stats", "`kache stats --zero`"),
                          ("--stop-server", "`kache supervisor stop`"),
                          ("-C", "`kache purge`"),
                          ("--evict-older-than", "`kache gc --older-than`")):
            for binary in (kache, os.path.abspath(KACHED)):
                p = subprocess.run([binary, opt], env=self.env, capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertRegex(p.stderr, r"^kache: unknown command '%s': \S+ (and \S+ )?%s "
                                 r"is %s here\n$" % (re.escape(opt), re.escape(opt),
                                                      re.escape(ours)))
        p = self.k("bogus", rc=2)
        self.assertEqual(p.stderr, "kache: unknown command 'bogus'; `kache --help` lists them\n")
        self.assertFalse(os.path.exists(self.store))


class Doctor(Base):
    def test_good_setup(self):
        self.good()
        p = self.k("doctor")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("all good", p.stdout)
        doc = json.loads(self.k("doctor", "--json", rc=0).stdout)
        self.assertEqual({c["name"] for c in doc["checks"]} >= {
            "binaries", "wrapper", "sccache", "store", "imports", "index", "supervisor",
            "remote", "locks"}, True)

    def test_import_writes(self):
        self.good()
        c, _ = self.check("imports", rc=0)
        self.assertEqual(c["status"], "ok", c)
        self.assertRegex(c["detail"], r"^cache.import_writes = auto; O_DIRECT (works|refused)")
        self.assertEqual([f for f in os.listdir(self.store) if f.startswith(".doctor")], [])
        # none of its values: said as the settings load, and auto is used
        c, _ = self.check("imports", rc=0, KACHE_IMPORT_WRITES="bogus")
        self.assertRegex(c["detail"], r"^cache.import_writes = auto; ")
        c, _ = self.check("config", rc=0, KACHE_IMPORT_WRITES="bogus")
        self.assertEqual(c["detail"], "KACHE_IMPORT_WRITES=bogus (cache.import_writes) is none "
                         "of the values it takes (auto|buffered|direct); the default, auto, "
                         "is used")

    def test_each_value_not_valid_is_named_and_its_default_used(self):
        """A value that is not of its key's kind (a size, a duration, true or
        false, a choice) is said once per value, by every command and by the
        doctor (a check each), and the default is what every reader uses; a
        time takes its unit. (Before: "10m" for a gc interval was 10 s, and
        KACHE_REMAP=maybe turned path remapping off, each silently.)"""
        self.good()
        bad = dict(KACHE_REMAP="maybe", KACHE_MAX_SIZE="lots", KACHE_GC_INTERVAL="10m",
                   KACHE_DEADLINE_MS="2s", KACHE_RESTORE="Copy")
        p = self.k("config", rc=0, **bad)
        self.assertEqual(p.stderr.count("kache: warning: "), 2, p.stderr)  # a line each
        self.assertIn("kache: warning: KACHE_REMAP=maybe (cache.remap) is not true or false; the default, "
                      "true, is used\n", p.stderr)
        self.assertIn("KACHE_MAX_SIZE=lots (cache.max_size) is not a size", p.stderr)
        self.assertEqual(p.stderr.count(" is used\n"), 2, p.stderr)
        conf = {l.split()[0]: l for l in p.stdout.splitlines() if " = " in l}
        self.assertRegex(conf["cache.remap"], r"= true +# default; KACHE_REMAP's value is "
                                              r"not valid")
        self.assertRegex(conf["supervisor.gc_interval"], r"= 10m +# KACHE_GC_INTERVAL")
        self.assertRegex(conf["cache.restore"], r"= copy +# KACHE_RESTORE")
        doc = json.loads(self.k("doctor", "--json", **bad).stdout)
        said = sorted(c["detail"] for c in doc["checks"] if c["name"] == "config")
        self.assertEqual(len(said), 2, said)
        self.assertTrue(said[0].startswith("KACHE_MAX_SIZE=lots"), said)
        self.assertTrue(said[1].startswith("KACHE_REMAP=maybe"), said)
        p = self.k("stats", **bad)
        self.assertIn("KACHE_REMAP=maybe", p.stderr)

    def test_cap_past_the_disk_is_named(self):
        # a cap the disk cannot hold: the store fills the disk before any gc
        # keeps it to its cap (the build's next write then fails)
        self.good()
        c, _ = self.check("cap", rc=0, KACHE_MAX_SIZE="1M")  # whatever this disk's size
        self.assertEqual(c["status"], "ok", c)
        self.assertRegex(c["detail"], r"^cache.max_size 1.0 MiB; the store [0-9.]+ [KMG]?i?B, ")
        c, text = self.check("cap", rc=0, KACHE_MAX_SIZE="1000000G")
        self.assertEqual(c["status"], "warn", c)
        self.assertIn("can fill the disk before the gc keeps it to its cap", c["detail"])
        self.assertRegex(c["fix"], r"^lower cache.max_size \(KACHE_MAX_SIZE\) to [0-9.]+ [KMGT]iB")
        self.assertIn("fix: lower cache.max_size", text.stdout)

    def test_good_with_supervisor(self):
        self.good()
        self.k("supervisor", "start", rc=0)
        c, _ = self.check("supervisor", rc=0)
        self.assertIn("running, pid", c["detail"])

    def test_kache_not_on_path(self):
        self.good()
        self.assert_fails("binaries", "PATH", PATH="/usr/bin:/bin")

    def test_kached_missing_beside_kache(self):
        self.good()
        os.unlink(os.path.join(self.bin, "kached"))
        self.assert_fails("binaries", "beside kache")

    def test_no_wrapper(self):
        self.k("stats", rc=0)
        self.assert_fails("wrapper", "kache init")

    def test_wrapper_not_kache_in_project_config(self):
        self.good()
        os.makedirs(os.path.join(self.tmp, ".cargo"))
        with open(os.path.join(self.tmp, ".cargo", "config.toml"), "w") as f:
            f.write('[build]\nrustc-wrapper = "ccache-rs"\n')
        self.assert_fails("wrapper", "set it to kache")

    def test_sccache_too(self):
        self.good()
        self.assert_fails("sccache", "unset it", RUSTC_WORKSPACE_WRAPPER="sccache")

    def test_store_not_a_directory(self):
        self.good()
        shutil.rmtree(self.store)
        open(self.store, "w").close()
        self.assert_fails("store", "directory")

    def test_index_damaged(self):
        self.good()
        with open(os.path.join(self.store, "index", "CURRENT"), "w") as f:
            f.write("garbage\n")
        self.assert_fails("index", "kache stats")

    def test_supervisor_hung(self):
        self.good()
        self.k("supervisor", "start", rc=0)
        with open(os.path.join(self.store, "run", "supervisor.pid")) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGSTOP)
        try:
            self.assert_fails("supervisor", "kill")
        finally:
            os.kill(pid, signal.SIGCONT)

    def test_remote_unreachable(self):
        self.good()
        self.assert_fails("remote", "network", KACHE_REMOTE="s3", KACHE_S3_BUCKET="b",
                          KACHE_S3_ENDPOINT="http://127.0.0.1:%d" % kh.free_port(),
                          AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b",
                          KACHE_DEADLINE_MS="1000")

    def test_remote_dir_reachable(self):
        self.good()
        remote = os.path.join(self.tmp, "remote")
        os.makedirs(remote)
        c, _ = self.check("remote", rc=0, KACHE_REMOTE="dir", KACHE_REMOTE_PATH=remote)
        self.assertIn("reachable", c["detail"])

    def test_stale_pid_file(self):
        self.good()
        os.makedirs(os.path.join(self.store, "run"), mode=0o700, exist_ok=True)
        dead = subprocess.Popen(["true"])
        dead.wait()
        with open(os.path.join(self.store, "run", "supervisor.pid"), "w") as f:
            f.write("%d\n" % dead.pid)
        self.assert_fails("locks", "rm")


class DoctorClock(Base):
    """The machine's clock against the S3 remote's (its Date header), through
    moto behind the fault proxy, which sets the Date it answers with."""

    @classmethod
    def setUpClass(cls):
        cls.moto, cls.port = kh.start_moto()
        kh.boto(cls.port).create_bucket(Bucket="doctor-clock")
        cls.ptmp = kh.make_tmp("kache-doctor-proxy-")
        cls.control = os.path.join(cls.ptmp, "control.json")
        cls.proxy, cls.pport = kh.start_proxy(cls.port, cls.control,
                                             os.path.join(cls.ptmp, "proxy.log"))

    @classmethod
    def tearDownClass(cls):
        kh.stop(cls.proxy)
        kh.stop(cls.moto)
        kh.remove_tmp(cls.ptmp)

    def remote_env(self):
        return dict(KACHE_REMOTE="s3", KACHE_S3_BUCKET="doctor-clock",
                    KACHE_S3_ENDPOINT="http://127.0.0.1:%d" % self.pport,
                    AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b",
                    KACHE_DEADLINE_MS="3000")

    def skew(self, fault):
        with open(self.control + ".tmp", "w") as f:
            json.dump(fault, f)
        os.replace(self.control + ".tmp", self.control)

    def test_clock_in_step(self):
        self.good()
        self.skew({"mode": "pass"})
        c, _ = self.check("clock", rc=0, **self.remote_env())
        self.assertEqual(c["status"], "ok", c)
        self.assertIn("within", c["detail"])

    def test_clock_a_few_minutes_off_is_a_warning(self):
        self.good()
        self.skew({"mode": "skew", "skew_minutes": 5})
        c, text = self.check("clock", rc=0, **self.remote_env())
        self.assertEqual(c["status"], "warn", c)
        self.assertIn("behind", c["detail"])
        self.assertIn("NTP", c["fix"])

    def test_clock_refused_as_too_skewed(self):
        self.good()
        self.skew({"mode": "403", "code": "RequestTimeTooSkewed", "skew_minutes": -30})
        self.assert_fails("clock", "NTP", **self.remote_env())
        c, _ = self.check("clock", **self.remote_env())
        self.assertIn("30 minutes ahead of", c["detail"])


if __name__ == "__main__":
    unittest.main()
