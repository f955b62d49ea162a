#!/usr/bin/env python3
"""Black-box scenarios: the real kache binary as RUSTC_WRAPPER over real, offline
cargo builds of tests/fixtures/ws. A counting rustc shim (RUSTC=...) records every
compile that reaches the real rustc, so "served from the cache" is a fact, not a claim.

usage: test_cargo.py <path to kache> [unittest args]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

KACHE = None
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "ws")
REAL_RUSTC = os.path.join(
    subprocess.check_output(["rustc", "--print", "sysroot"], text=True).strip(), "bin", "rustc")
CRATES = {"tiny", "greet_macro", "build_script_build", "fixture_core", "fixture_app"}


class Workspace:
    """A copy of the fixture with its own CARGO_HOME and target dir."""

    def __init__(self, root, store, name="ws"):
        self.dir = os.path.join(root, name)
        shutil.copytree(FIXTURE, self.dir)
        self.home = os.path.join(root, name + "-cargo-home")
        self.log = os.path.join(root, name + "-rustc.log")
        self.shim = os.path.join(root, name + "-rustc-shim")
        with open(self.shim, "w") as f:
            f.write("#!/bin/sh\n"
                    "case \" $* \" in *' --crate-name '*) "
                    "echo \"$*\" >> '%s';; esac\n"
                    "exec '%s' \"$@\"\n" % (self.log, REAL_RUSTC))
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


class Scenarios(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kache-scenario-")
        self.store = os.path.join(self.tmp, "store")

    def tearDown(self):
        subprocess.run(["chattr", "-R", "-i", self.tmp], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def warm(self, ws):
        ws.cargo("build")
        cold = ws.compiled()
        self.assertTrue(CRATES.issubset(set(cold)), cold)
        return ws.run_app()

    def test_cold_then_warm_all_hits(self):
        ws = Workspace(self.tmp, self.store)
        first = self.warm(ws)
        self.assertEqual(first.strip(), "hello data-from-include-str 42 polite LOUD! DONE!")
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "compiles reached rustc on a warm build")
        self.assertEqual(ws.run_app(), first)
        # test harnesses are cached too
        ws.cargo("test", "--no-run")
        self.assertIn("fixture_core", ws.compiled())
        ws.cargo("clean")
        ws.cargo("test", "--no-run")
        self.assertEqual(ws.compiled(), [])

    def test_edit_misses_crate_and_dependents_only(self):
        ws = Workspace(self.tmp, self.store)
        self.warm(ws)
        ws.edit("core/src/lib.rs", "\"{} {} {} {} {}\"", "\"{} {} {} {} {} edited\"")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), ["fixture_app", "fixture_core"])
        self.assertIn("edited", ws.run_app())
        # and back: the old result is still in the store
        ws.edit("core/src/lib.rs", "\"{} {} {} {} {} edited\"", "\"{} {} {} {} {}\"")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [])
        self.assertNotIn("edited", ws.run_app())

    def test_env_dep_change_misses(self):
        ws = Workspace(self.tmp, self.store)
        self.warm(ws)
        ws.cargo("build", KACHE_FIXTURE_GREETING="bonjour")
        self.assertIn("fixture_core", ws.compiled())
        self.assertNotIn("tiny", ws.compiled())
        self.assertTrue(ws.run_app().startswith("bonjour "))

    def test_moved_checkout_other_cargo_home_hits(self):
        a = Workspace(self.tmp, self.store, "a")
        out = self.warm(a)
        os.makedirs(os.path.join(self.tmp, "elsewhere", "deeper"))
        b = Workspace(os.path.join(self.tmp, "elsewhere", "deeper"), self.store, "b")
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "a moved checkout should be served from the cache")
        self.assertEqual(b.run_app(), out)
        # the restored dep-info names b's files, not a's
        deps = os.path.join(b.dir, "target/debug/deps")
        for name in os.listdir(deps):
            if name.endswith(".d"):
                self.assertNotIn(a.dir, open(os.path.join(deps, name)).read())

    def test_failing_compile_passes_through_and_is_not_stored(self):
        ws = Workspace(self.tmp, self.store)
        ws.edit("vendor/tiny/src/lib.rs", "x * 2", "x * \"two\"")
        with_kache = ws.cargo("build", check=False)
        self.assertNotEqual(with_kache.returncode, 0)
        self.assertIn("tiny", ws.compiled())
        plain = ws.cargo("build", check=False, RUSTC_WRAPPER="")
        self.assertEqual(with_kache.returncode, plain.returncode)
        err = [l for l in with_kache.stderr.splitlines() if "error" in l]
        self.assertEqual(err, [l for l in plain.stderr.splitlines() if "error" in l])
        self.assertTrue(any("E0277" in l or "cannot multiply" in l for l in err), err)
        ws.cargo("build", check=False)
        self.assertIn("tiny", ws.compiled(), "a failed compile must not be served")

    def test_corrupted_blob_is_detected_and_rebuilt(self):
        ws = Workspace(self.tmp, self.store)
        out = self.warm(ws)
        blobs = os.path.join(self.store, "blobs")
        damaged = 0
        for d, _, files in os.walk(blobs):
            for f in files:
                p = os.path.join(d, f)
                os.chmod(p, 0o644)
                with open(p, "r+b") as fh:
                    fh.seek(os.path.getsize(p) // 2)
                    byte = fh.read(1)
                    fh.seek(-1, 1)
                    fh.write(bytes([byte[0] ^ 0xFF]) if byte else b"x")
                damaged += 1
        self.assertGreater(damaged, 0)
        ws.cargo("clean")
        ws.cargo("build")
        self.assertTrue(CRATES.issubset(set(ws.compiled())), ws.compiled())
        self.assertEqual(ws.run_app(), out)
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "rebuilt entries should serve again")
        self.assertEqual(ws.run_app(), out)

    def test_unusable_store_still_builds(self):
        ws = Workspace(self.tmp, self.store)
        blocker = os.path.join(self.tmp, "not-a-dir")
        open(blocker, "w").close()
        ws.env["KACHE_DIR"] = os.path.join(blocker, "store")
        ws.cargo("build")
        self.assertEqual(ws.run_app().split()[0], "hello")
        # a store that cannot be written (immutable), where chattr works here
        ws.env["KACHE_DIR"] = self.store
        os.makedirs(self.store)
        if subprocess.run(["chattr", "+i", self.store], capture_output=True).returncode != 0:
            self.skipTest("chattr +i not available here")
        ws.cargo("clean")
        ws.cargo("build")
        self.assertTrue(CRATES.issubset(set(ws.compiled())))
        self.assertEqual(ws.run_app().split()[0], "hello")

    def test_two_builds_at_once_on_one_store(self):
        a = Workspace(self.tmp, self.store, "a")
        b = Workspace(self.tmp, self.store, "b")
        results = {}

        def build(ws):
            results[ws.dir] = ws.cargo("build", check=False)
        threads = [threading.Thread(target=build, args=(w,)) for w in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in (a, b):
            self.assertEqual(results[w.dir].returncode, 0, results[w.dir].stderr)
            self.assertEqual(w.run_app(), "hello data-from-include-str 42 polite LOUD! DONE!\n")
        v = subprocess.run([KACHE, "verify"], env=a.env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        c = Workspace(self.tmp, self.store, "c")
        c.cargo("build")
        self.assertEqual(c.compiled(), [])
        self.assertEqual(c.run_app(), a.run_app())

    def test_pass_through_is_byte_identical(self):
        cases = [["-vV"], ["--print", "cfg"], ["--print", "sysroot"],
                 ["-", "--crate-name", "x", "--crate-type", "lib", "--emit=metadata",
                  "--out-dir", self.tmp]]
        env = dict(os.environ, KACHE_DIR=self.store)
        for args in cases:
            stdin = "pub fn f() -> u8 { 1 }\n" if "-" in args else None
            direct = subprocess.run([REAL_RUSTC, *args], input=stdin, capture_output=True,
                                    text=True)
            wrapped = subprocess.run([KACHE, REAL_RUSTC, *args], input=stdin,
                                     capture_output=True, text=True, env=env)
            self.assertEqual(direct.returncode, wrapped.returncode, args)
            self.assertEqual(direct.stdout, wrapped.stdout, args)
            self.assertEqual(direct.stderr, wrapped.stderr, args)
        bad = subprocess.run([KACHE, REAL_RUSTC, "--no-such-flag"], capture_output=True,
                             text=True, env=env)
        self.assertNotEqual(bad.returncode, 0)

    def test_config_names_unknown_keys_and_sources(self):
        cfg = os.path.join(self.tmp, "config.toml")
        with open(cfg, "w") as f:
            f.write('[cache]\nmax_size = "2G"\ncolour = "blue"\n')
        env = dict(os.environ, KACHE_CONFIG=cfg, KACHE_DIR=self.store)
        p = subprocess.run([KACHE, "config"], env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("unknown key 'cache.colour'", p.stderr)
        line = [l for l in p.stdout.splitlines() if l.startswith("cache.max_size")][0]
        self.assertIn("2G", line)
        self.assertIn("file", line)
        line = [l for l in p.stdout.splitlines() if l.startswith("cache.dir")][0]
        self.assertIn("KACHE_DIR", line)
        h = subprocess.run([KACHE, "help", "gc"], env=env, capture_output=True, text=True)
        self.assertEqual(h.returncode, 0)
        self.assertIn("--max-size", h.stdout)

    def test_disabled_passes_everything_through(self):
        ws = Workspace(self.tmp, self.store)
        self.warm(ws)
        ws.cargo("clean")
        ws.cargo("build", KACHE_DISABLED="1")
        self.assertTrue(CRATES.issubset(set(ws.compiled())))


class RemoteScenarios(unittest.TestCase):
    """Two stores and two checkouts at different paths, standing for two machines,
    sharing one directory remote through their supervisors."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kache-remote-")
        self.remote = os.path.join(self.tmp, "remote")
        self.stores = []

    def tearDown(self):
        for store in self.stores:
            subprocess.run([KACHE, "supervisor", "stop"], env=dict(os.environ, KACHE_DIR=store),
                           capture_output=True, timeout=60)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def machine(self, name, root):
        store = os.path.join(self.tmp, name + "-store")
        ws = Workspace(root, store, name)
        ws.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.remote)
        self.stores.append(store)
        p = subprocess.run([KACHE, "supervisor", "start"], env=ws.env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return ws, store

    def uploaded(self, store):
        intents = os.path.join(store, "intents")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not os.listdir(intents):
                return True
            time.sleep(0.2)
        return False

    def test_second_machine_served_from_the_remote(self):
        a, store_a = self.machine("a", self.tmp)
        a.cargo("build")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        out = a.run_app()
        self.assertTrue(self.uploaded(store_a), "uploads did not drain")
        os.makedirs(os.path.join(self.tmp, "second", "machine"))
        b, store_b = self.machine("b", os.path.join(self.tmp, "second", "machine"))
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "the second machine compiled instead of fetching")
        self.assertEqual(b.run_app(), out)
        stats = subprocess.run([KACHE, "stats", "--json"], env=b.env, capture_output=True,
                               text=True, timeout=60)
        self.assertIn('"remote_hits"', stats.stdout)

    def test_stopped_supervisor_never_stalls_a_build(self):
        a, store_a = self.machine("a", self.tmp)
        pid = int(subprocess.run([KACHE, "supervisor", "status", "--json"], env=a.env,
                                 capture_output=True, text=True).stdout.split('"pid":')[1]
                  .split(",")[0])
        os.kill(pid, 19)  # SIGSTOP
        try:
            a.cargo("build")
            self.assertTrue(CRATES.issubset(set(a.compiled())))
            self.assertEqual(a.run_app().split()[0], "hello")
        finally:
            os.kill(pid, 18)  # SIGCONT

    def test_corrupted_remote_pack_is_compiled_locally(self):
        a, store_a = self.machine("a", self.tmp)
        a.cargo("build")
        out = a.run_app()
        self.assertTrue(self.uploaded(store_a))
        packs = os.path.join(self.remote, "packs", "fixture_core")
        for name in os.listdir(packs):
            p = os.path.join(packs, name)
            data = bytearray(open(p, "rb").read())
            data[len(data) // 2] ^= 0xFF
            open(p, "wb").write(bytes(data))
        os.makedirs(os.path.join(self.tmp, "second"))
        b, store_b = self.machine("b", os.path.join(self.tmp, "second"))
        b.cargo("build")
        self.assertIn("fixture_core", b.compiled())
        self.assertNotIn("tiny", b.compiled())
        self.assertEqual(b.run_app(), out)
        subprocess.run([KACHE, "supervisor", "stop"], env=b.env, capture_output=True, timeout=60)
        v = subprocess.run([KACHE, "verify"], env=b.env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


if __name__ == "__main__":
    KACHE = os.path.abspath(sys.argv.pop(1))
    unittest.main()
