#!/usr/bin/env python3
"""`cargo clippy` through kache: cargo runs each workspace member as
`kache <clippy-driver> <rustc> <args>` (RUSTC_WORKSPACE_WRAPPER), and kache
caches those compiles (their lints are replayed) under a key of their own:
never served to `cargo check`, nor a check's result to clippy; a clippy.toml
that appears, changes or goes, and `--no-deps`'s selected package, change the
key. Real `cargo clippy` and `cargo check` builds of a two-member workspace.

usage: test_clippy.py <path to kache> [unittest args]
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402

KACHE = None

FILES = {
    "Cargo.toml": '[workspace]\nresolver = "2"\nmembers = ["lintlib", "lintapp"]\n',
    "lintlib/Cargo.toml": '[package]\nname = "lintlib"\nversion = "0.1.0"\n'
                          'edition = "2021"\n',
    "lintlib/src/lib.rs": "pub fn empty(v: &[u32]) -> bool {\n"
                          "    let foo = v.to_vec();\n"
                          "    foo.len() == 0\n"
                          "}\n",
    "lintapp/Cargo.toml": '[package]\nname = "lintapp"\nversion = "0.1.0"\n'
                          'edition = "2021"\n\n[dependencies]\n'
                          'lintlib = { path = "../lintlib" }\n',
    "lintapp/src/main.rs": "fn two() -> u32 {\n"
                           "    return 2;\n"
                           "}\n\n"
                           "fn main() {\n"
                           "    let quux = vec![1u32, two()];\n"
                           "    println!(\"{}\", lintlib::empty(&quux));\n"
                           "}\n",
}
# what clippy says of each member's code (and rustc's check never says)
LIB_LINT = "clippy::len_zero"
APP_LINT = "clippy::needless_return"
NAME_LINT = "clippy::disallowed_names"  # foo and quux, with no clippy.toml saying otherwise


class Clippy(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp(prefix="kache-clippy-")
        self.store = os.path.join(self.tmp, "store")
        self.ws = self.workspace("ws")
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith(("KACHE_", "CARGO_", "CLIPPY_")) or k.startswith("RUSTC_"):
                del self.env[k]
        self.env.update(KACHE_DIR=self.store, RUSTC_WRAPPER=KACHE, CARGO_TERM_COLOR="never",
                        CARGO_HOME=os.path.join(self.tmp, "cargo-home"))

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def workspace(self, name):
        root = os.path.join(self.tmp, name)
        for rel, text in FILES.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        return root

    def cargo(self, *args, ws=None, clean=True, ok=True):
        """`cargo args` in ws (the workspace by default) from an empty target
        dir: its stderr; the build must succeed (ok) or fail."""
        ws = ws or self.ws
        if clean:
            shutil.rmtree(os.path.join(ws, "target"), ignore_errors=True)
        p = subprocess.run(["cargo", *args], cwd=ws, env=self.env, capture_output=True,
                           text=True, timeout=600)
        self.assertEqual(p.returncode == 0, ok, p.stderr)
        return p.stderr

    def stats(self):
        p = subprocess.run([KACHE, "stats", "--json"], env=self.env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def delta(self, before):
        """Hits, misses and compiles passed through to the compiler since
        before (cargo's questions, `-vV` and --print, left out)."""
        after = self.stats()

        def compiles_passed(st):
            return sum(n for why, n in st["pass_reasons"].items()
                       if why not in ("version-or-help", "print"))

        return dict(hits=after["hits"] - before["hits"],
                    misses=after["misses"] - before["misses"],
                    passes=compiles_passed(after) - compiles_passed(before))

    def test_clippy_is_cached_and_kept_apart_from_check(self):
        """The two members' clippy compiles are misses, then hits whose lints
        are replayed; `cargo check` is neither served clippy's results (no
        lint in its output) nor serves its own to clippy; `-- -D warnings`
        is not served the results that only warned."""
        s = self.stats()
        err = self.cargo("clippy", "--offline")
        for lint in (LIB_LINT, APP_LINT, NAME_LINT):
            self.assertIn(lint, err)
        self.assertEqual(self.delta(s), dict(hits=0, misses=2, passes=0), err)

        s = self.stats()
        again = self.cargo("clippy", "--offline")
        self.assertEqual(self.delta(s), dict(hits=2, misses=0, passes=0), again)
        for lint in (LIB_LINT, APP_LINT, NAME_LINT):
            self.assertIn(lint, again)

        s = self.stats()
        check = self.cargo("check", "--offline")
        self.assertNotIn("clippy::", check)
        self.assertEqual(self.delta(s), dict(hits=0, misses=2, passes=0), check)
        s = self.stats()
        self.assertIn(LIB_LINT, self.cargo("clippy", "--offline"))
        self.assertEqual(self.delta(s), dict(hits=2, misses=0, passes=0))
        # clippy's own arguments (CLIPPY_ARGS, in its dep-info): warnings are
        # errors now, and the lint-only result is not served
        err = self.cargo("clippy", "--offline", "--", "-D", "warnings", ok=False)
        self.assertIn("error: length comparison to zero", err)

    def test_clippy_toml_appearing_changing_or_going_is_never_served_stale_lints(self):
        """A clippy.toml put at the workspace's root (no longer listing the
        default disallowed names), then edited, then removed: each is a
        compile of its own with the lints its configuration gives (why-miss
        names the file), and a configuration seen before hits again, also
        from a moved checkout."""
        self.assertIn(NAME_LINT, self.cargo("clippy", "--offline"))
        conf = os.path.join(self.ws, "clippy.toml")
        with open(conf, "w") as f:
            f.write("disallowed-names = []\n")
        s = self.stats()
        err = self.cargo("clippy", "--offline")
        self.assertNotIn(NAME_LINT, err)
        self.assertIn(LIB_LINT, err)
        self.assertEqual(self.delta(s), dict(hits=0, misses=2, passes=0), err)
        p = subprocess.run([KACHE, "why-miss", "lintlib"], env=self.env, capture_output=True,
                           text=True, timeout=60)
        self.assertIn("argument added: clippy configuration file clippy.toml", p.stdout)
        self.assertIn("argument removed: clippy configuration file none", p.stdout)

        with open(conf, "w") as f:
            f.write('disallowed-names = ["foo"]\n')  # lintlib's, not lintapp's quux
        s = self.stats()
        err = self.cargo("clippy", "--offline")
        self.assertIn("placeholder name `foo`", err)
        self.assertNotIn("`quux`", err)
        self.assertEqual(self.delta(s), dict(hits=0, misses=2, passes=0), err)

        os.unlink(conf)
        s = self.stats()
        err = self.cargo("clippy", "--offline")
        self.assertIn("`quux`", err)
        self.assertEqual(self.delta(s), dict(hits=2, misses=0, passes=0), err)

        moved = self.workspace("moved")
        with open(os.path.join(moved, "clippy.toml"), "w") as f:
            f.write('disallowed-names = ["foo"]\n')
        s = self.stats()
        err = self.cargo("clippy", "--offline", ws=moved)
        self.assertIn("placeholder name `foo`", err)
        self.assertEqual(self.delta(s), dict(hits=2, misses=0, passes=0), err)

    def test_no_deps_lints_the_selected_package_only(self):
        """`-- --no-deps` lints the selected package only: lintlib built for
        lintapp's sake is compiled by clippy-driver without lints, and that
        result must not be served when lintlib itself is selected (cargo tells
        them apart only by CARGO_PRIMARY_PACKAGE)."""
        err = self.cargo("clippy", "--offline", "-p", "lintapp", "--", "--no-deps")
        self.assertIn(APP_LINT, err)
        self.assertNotIn(LIB_LINT, err)
        s = self.stats()
        err = self.cargo("clippy", "--offline", "-p", "lintlib", "--", "--no-deps")
        self.assertIn(LIB_LINT, err)
        self.assertEqual(self.delta(s), dict(hits=0, misses=1, passes=0), err)
        s = self.stats()
        err = self.cargo("clippy", "--offline", "-p", "lintapp", "--", "--no-deps")
        self.assertNotIn(LIB_LINT, err)
        self.assertEqual(self.delta(s), dict(hits=2, misses=0, passes=0), err)

    def test_a_workspace_wrapper_named_without_a_path_runs(self):
        """RUSTC_WORKSPACE_WRAPPER set to a program's name, as PATH finds it
        (before, kache took the name for one of its commands and failed the
        build: "unknown command 'clippy-driver'"): clippy-driver so named is
        cached as `cargo clippy`'s is; another tool is run untouched, each
        compile passed through with the reason `workspace-wrapper`."""
        s = self.stats()
        self.env["RUSTC_WORKSPACE_WRAPPER"] = "clippy-driver"
        err = self.cargo("check", "--offline")
        self.assertIn(LIB_LINT, err)
        self.assertEqual(self.delta(s), dict(hits=0, misses=2, passes=0), err)
        s = self.stats()
        self.assertIn(LIB_LINT, self.cargo("check", "--offline"))
        self.assertEqual(self.delta(s), dict(hits=2, misses=0, passes=0))

        bin_dir = os.path.join(self.tmp, "bin")
        os.makedirs(bin_dir)
        tool = os.path.join(bin_dir, "kache-test-tool")
        with open(tool, "w") as f:
            f.write("#!/bin/sh\necho \"$@\" >> %s.log\nexec \"$@\"\n" % tool)
        os.chmod(tool, 0o755)
        self.env.update(RUSTC_WORKSPACE_WRAPPER="kache-test-tool",
                        PATH=bin_dir + os.pathsep + self.env["PATH"])
        before = self.stats()["pass_reasons"].get("workspace-wrapper", 0)
        err = self.cargo("check", "--offline")
        self.assertNotIn("clippy::", err)
        self.assertEqual(self.stats()["pass_reasons"].get("workspace-wrapper", 0) - before, 2)
        with open(tool + ".log") as f:
            self.assertEqual(sum("--crate-name lint" in line for line in f), 2)


    def test_kache_as_its_own_workspace_wrapper_counts_each_compile_once(self):
        """RUSTC_WORKSPACE_WRAPPER=kache beside RUSTC_WRAPPER=kache: cargo runs
        a member as `kache kache rustc <args>`. kache takes the second word for
        itself (before, the outer one passed the compile through as
        `workspace-wrapper` and the inner one cached it: each member counted
        twice, and a process more)."""
        self.env["RUSTC_WORKSPACE_WRAPPER"] = KACHE
        s = self.stats()
        err = self.cargo("check", "--offline")
        self.assertEqual(self.delta(s), dict(hits=0, misses=2, passes=0), err)
        s = self.stats()
        self.cargo("check", "--offline")
        self.assertEqual(self.delta(s), dict(hits=2, misses=0, passes=0))
        self.assertNotIn("workspace-wrapper", self.stats()["pass_reasons"])

    def test_cargos_questions_through_clippy_driver_are_answered_from_the_store(self):
        """cargo asks its questions (`-vV`, the target query) through the
        workspace wrapper: `kache clippy-driver rustc -vV`. They are memoized
        as rustc's are, under both binaries' identities: a second run from an
        empty target dir starts clippy-driver for the members' compiles only
        (before, for each question too: 20-30 ms apiece); a new clippy-driver
        is asked again."""
        sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        real = os.path.join(sysroot, "bin", "clippy-driver")
        if not os.path.exists(real):
            self.skipTest("no clippy-driver in the toolchain")
        bin_dir = os.path.join(self.tmp, "bin")
        os.makedirs(bin_dir)
        shim = os.path.join(bin_dir, "clippy-driver")
        log = os.path.join(self.tmp, "driver.log")

        def write_shim(extra=""):
            with open(shim, "w") as f:
                f.write("#!/bin/sh\n%secho \"$*\" >> %s\nexec %s \"$@\"\n" % (extra, log, real))
            os.chmod(shim, 0o755)

        def runs():
            """(cargo's questions, compiles) the shim ran since the last call
            (kache's own `clippy-driver --version`, for the key, apart)."""
            if not os.path.exists(log):
                return (0, 0)
            with open(log) as f:
                lines = f.read().splitlines()
            os.unlink(log)
            return (sum(" -vV" in l or "--print" in l for l in lines),
                    sum("--crate-name lint" in l for l in lines))

        write_shim()
        self.env["RUSTC_WORKSPACE_WRAPPER"] = shim
        self.assertIn(LIB_LINT, self.cargo("check", "--offline"))
        asked, compiled = runs()
        self.assertGreaterEqual(asked, 2, "cargo asked nothing through the driver")
        self.assertEqual(compiled, 2)
        self.assertIn(LIB_LINT, self.cargo("check", "--offline"))
        self.assertEqual(runs(), (0, 0),
                         "cargo's questions (or the hits) reached clippy-driver again")
        # another driver (its identity: size, mtime, inode) is asked again
        write_shim("# another build\n")
        self.assertIn(LIB_LINT, self.cargo("check", "--offline"))
        self.assertEqual(runs()[0], asked)


if __name__ == "__main__":
    KACHE = kh.take_kache_arg()
    unittest.main()
