#!/usr/bin/env python3
"""What proc macros read behind rustc's back (wrapper/trace.c, preload/trace.c),
over real cargo builds of tests/fixtures/ws: greet-macro made to read a file, a
directory, a file that may be absent and a variable with std::fs and std::env,
as askama, sqlx or include_dir do. rustc's dep-info names none of them and cargo
tracks none of them, so a fresh checkout (a CI runner) is where a stale result
shows: each step below is `cargo clean && cargo build`, as on a fresh runner.

usage: test_trace.py <path to kache> [unittest args]
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import Workspace  # noqa: E402

KACHE = None

SHOUT = "let word = input.to_string().to_uppercase();"
# greet-macro reading beside the workspace root of the crate it expands in
READS = """let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    let file = std::fs::read_to_string(dir.join("shout.txt")).unwrap_or_default();
    let extra = std::fs::read_to_string(dir.join("shout-extra.txt")).unwrap_or_default();
    let listed = std::fs::read_dir(dir.join("shout.d")).map(|d| d.count()).unwrap_or(0);
    let var = std::env::var("KACHE_FIXTURE_SHOUT").unwrap_or_default();
    let word = format!("{}-{}-{}-{}-{}", input.to_string().to_uppercase(), file.trim(),
                       extra.trim(), listed, var);"""
# the crates that expand shout!
USERS = ["fixture_app", "fixture_core"]


class TraceScenarios(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp(prefix="kache-trace-")
        self.store = os.path.join(self.tmp, "store")

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def workspace(self, name, body=READS):
        ws = Workspace(self.tmp, self.store, name=name)
        ws.edit("greet-macro/src/lib.rs", SHOUT, body)
        self.write(ws, "shout.txt", "one")
        return ws

    @staticmethod
    def write(ws, rel, text):
        path = os.path.join(ws.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def build(self, ws, **env):
        """A build, and its results stored: a miss stores in a child after
        rustc (cargo goes on), which refuses a result whose input changed
        meanwhile; the steps below change inputs right after a build."""
        ws.cargo("build", **env)
        tmp = os.path.join(self.store, "tmp")
        self.assertTrue(kh.wait_for(lambda: not [f for f in os.listdir(tmp)
                                                 if f.startswith("pending-")], timeout=30))
        return ws.compiled()

    def fresh_build(self, ws, **env):
        """What a fresh runner does: no target dir, then a build."""
        ws.cargo("clean")
        return self.build(ws, **env)

    def report(self, ws):
        return json.loads(kh.kache_cmd(ws, "report", "--format", "json").stdout)

    def test_what_a_proc_macro_reads_is_keyed(self):
        ws = self.workspace("a")
        self.assertIn("greet_macro", self.build(ws))
        first = ws.run_app()
        self.assertIn("DONE-one--0-!", first)
        # each change of what the macro reads compiles its users again (the
        # macro itself is served), and their output is the new one
        steps = [
            (lambda: self.write(ws, "shout.txt", "two"), {}, "DONE-two--0-!"),
            (lambda: self.write(ws, "shout.txt", "one"), {}, None),
            (lambda: None, {"KACHE_FIXTURE_SHOUT": "x"}, "DONE-one--0-x!"),
            (lambda: self.write(ws, "shout-extra.txt", "more"), {}, "DONE-one-more-0-!"),
            (lambda: self.write(ws, "shout.d/a", ""), {}, "DONE-one-more-1-!"),
            (lambda: self.write(ws, "shout.d/b", ""), {}, "DONE-one-more-2-!"),
        ]
        for change, env, expect in steps:
            change()
            compiled = self.fresh_build(ws, **env)
            if expect is None:  # back to the first inputs: the first results
                self.assertEqual(compiled, [], "a result made from these reads was stored")
                self.assertEqual(ws.run_app(), first)
            else:
                self.assertEqual(compiled, USERS, expect)
                self.assertIn(expect, ws.run_app())
            if env:
                why = kh.kache_cmd(ws, "why-miss", "fixture_core").stdout
                self.assertIn("environment variable KACHE_FIXTURE_SHOUT (read by env! or a "
                              "proc macro) changed", why)
        last = ws.run_app()
        # another checkout at another path with the same files: every crate
        # served (the paths and CARGO_MANIFEST_DIR are folded like the
        # dep-info's), the same output
        other = self.workspace("b")
        for rel, text in (("shout-extra.txt", "more"), ("shout.d/a", ""), ("shout.d/b", "")):
            self.write(other, rel, text)
        other.cargo("build")
        self.assertEqual(other.compiled(), [])
        self.assertEqual(other.run_app(), last)

    def test_a_rustc_run_by_a_script_as_its_child_is_traced(self):
        # RUSTC a script that runs rustc as its child, not by exec (a
        # toolchain manager's, a company's): the proc macros run in a
        # grandchild of kache, and what they read is keyed all the same
        ws = self.workspace("a")
        script = os.path.join(self.tmp, "rustc-child.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n'%s' \"$@\"\nexit $?\n" % ws.shim)
        os.chmod(script, 0o755)
        ws.env["RUSTC"] = script
        self.build(ws)
        self.assertIn("DONE-one--0-!", ws.run_app())
        self.write(ws, "shout.txt", "two")
        self.assertEqual(self.fresh_build(ws), USERS)
        self.assertIn("DONE-two--0-!", ws.run_app())

    def test_a_proc_macro_that_runs_a_program_or_writes_a_file_is_not_stored(self):
        # what a program answers (git describe) or a file written for later is
        # nothing a key holds or a hit redoes: such a compile runs every time,
        # as it does on a fresh runner without kache
        for name, body, reason in (
                ("runs", SHOUT + '\n    let _ = std::process::Command::new("true").status();',
                 "proc-macro-ran-a-program"),
                ("writes", SHOUT + '\n    std::fs::write(std::path::PathBuf::from('
                 'std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("shout.log"), "x").unwrap();',
                 "proc-macro-wrote-a-file")):
            ws = self.workspace(name, body)
            self.assertIn("greet_macro", self.build(ws))
            log = os.path.join(ws.dir, "core", "shout.log")
            if os.path.exists(log):
                os.unlink(log)
            self.assertEqual(self.fresh_build(ws), USERS, name)
            self.assertIn("hello", ws.run_app())
            if name == "writes":
                self.assertTrue(os.path.exists(log), "the macro's file is written again")
            self.assertGreaterEqual(self.report(ws)["misses"]["by_cause"].get(reason, 0), 4,
                                    self.report(ws)["misses"])
            shutil.rmtree(self.store)

    def test_a_variable_a_proc_macro_reads_is_kept_only_as_a_hash(self):
        # sqlx reads DATABASE_URL: a password in it must reach no store file
        # (nor the remote, which gets what the store has)
        body = SHOUT + '\n    let word = format!("{}{}", word, ' \
                       'std::env::var("DATABASE_URL").unwrap_or_default().len());'
        ws = self.workspace("a", body)
        url = "postgres://app:hunter2-kache@db/app"
        self.build(ws, DATABASE_URL=url)  # stored: no store's temporary left
        self.assertIn("DONE%d!" % len(url), ws.run_app())
        for root, _, files in os.walk(self.store):
            for f in files:
                try:
                    with open(os.path.join(root, f), "rb") as fh:
                        data = fh.read()
                except FileNotFoundError:  # a temporary renamed meanwhile
                    continue
                self.assertNotIn(b"hunter2", data, os.path.join(root, f))
        self.assertEqual(self.fresh_build(ws, DATABASE_URL=url), [])
        self.assertEqual(self.fresh_build(ws, DATABASE_URL=url + "2"), USERS)

    def test_without_the_library_nothing_that_may_load_a_proc_macro_is_stored(self):
        # a kache binary copied without lib/kache/kache-trace.so beside it: a
        # proc macro's reads would be unknown, so every compile that may load
        # one (an --extern naming a file) is compiled (and said why), never
        # stored as if it read nothing; one with no dependency is stored
        bindir = os.path.join(self.tmp, "bare", "bin")
        os.makedirs(bindir)
        for b in ("kache", "kached"):
            shutil.copy(os.path.join(os.path.dirname(KACHE), b), bindir)
        ws = self.workspace("a")
        ws.env["RUSTC_WRAPPER"] = os.path.join(bindir, "kache")
        ws.cargo("build")
        compiled = self.fresh_build(ws)
        self.assertTrue(set(USERS) <= set(compiled), compiled)
        self.assertNotIn("greet_macro", compiled)  # no --extern but the sysroot's
        self.assertIn("DONE-one--0-!", ws.run_app())
        self.assertGreaterEqual(
            self.report(ws)["misses"]["by_cause"].get("trace-library-missing", 0), 4)
        env = dict(ws.env, PATH=bindir + ":" + ws.env["PATH"])
        doctor = subprocess.run([os.path.join(bindir, "kache"), "doctor"], env=env,
                                capture_output=True, text=True, timeout=60)
        self.assertNotEqual(doctor.returncode, 0)
        self.assertIn("kache-trace.so is missing", doctor.stdout + doctor.stderr)

    def test_tracing_off_keys_what_it_did_before(self):
        # cache.trace_proc_macros = false: the reads are not keyed (a result
        # made from the old file is served), and such results are apart from
        # traced ones (turning it on again compiles once each crate that may
        # load a proc macro)
        ws = self.workspace("a")
        off = {"KACHE_TRACE_PROC_MACROS": "false"}
        self.build(ws, **off)
        self.write(ws, "shout.txt", "two")
        self.assertEqual(self.fresh_build(ws, **off), [])
        self.assertIn("DONE-one--0-!", ws.run_app())
        compiled = self.fresh_build(ws)
        self.assertTrue(set(USERS) <= set(compiled), compiled)
        self.assertNotIn("greet_macro", compiled)
        self.assertIn("DONE-two--0-!", ws.run_app())
        self.assertEqual(self.fresh_build(ws), [])


REGISTRY = "/usr/share/cargo/registry"


class RealProcMacros(unittest.TestCase):
    """Debian's rust-embed 6 (scripts/example-deps.sh), whose derive embeds
    each file of a folder with include_bytes! (so rustc's dep-info names the
    files it found) after listing the folder with walkdir (which nothing
    names): a file added to the folder is in a fresh checkout's build (the
    kache before the trace served the binary without it). A counting shim in
    RUSTC makes "served from the cache" a fact."""

    def setUp(self):
        self.tmp = kh.make_tmp("kache-trace-real-")
        self.store = os.path.join(self.tmp, "store")
        self.log = os.path.join(self.tmp, "rustc.log")
        self.shim = os.path.join(self.tmp, "rustc")
        with open(self.shim, "w") as f:
            f.write("#!/bin/sh\ncase \" $* \" in *' --crate-name embedapp '*) "
                    f"echo \"$*\" >> '{self.log}';; esac\n"
                    f"exec '{kh.real_rustc()}' \"$@\"\n")
        os.chmod(self.shim, 0o755)

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def workspace(self, rel):
        d = os.path.join(self.tmp, rel)
        files = {
            "Cargo.toml": '[package]\nname = "embedapp"\nversion = "0.1.0"\nedition = "2021"\n'
                          '[dependencies]\nrust-embed = { version = "6", default-features = false,'
                          ' features = ["debug-embed"] }\n',
            ".cargo/config.toml": '[source.crates-io]\nreplace-with = "debian"\n'
                                  f'[source.debian]\ndirectory = "{REGISTRY}"\n'
                                  '[net]\noffline = true\n',
            "src/main.rs": '#[derive(rust_embed::RustEmbed)]\n#[folder = "assets/"]\n'
                           'struct Assets;\n'
                           'fn main() {\n    let mut n: Vec<String> = '
                           'Assets::iter().map(|n| n.to_string()).collect();\n'
                           '    n.sort();\n    println!("{}", n.join(","));\n}\n',
            "assets/a.txt": "a\n",
        }
        for rel_path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel_path)), exist_ok=True)
            with open(os.path.join(d, rel_path), "w") as f:
                f.write(text)
        return d

    def fresh_build(self, d):
        """`cargo clean && cargo build` in d; whether embedapp reached rustc,
        and what the program prints. Waits for the results to be stored."""
        env = dict(os.environ, KACHE_DIR=self.store, RUSTC_WRAPPER=kh.KACHE, RUSTC=self.shim,
                   CARGO_HOME=d + "-cargo-home", KACHE_CONFIG=os.path.join(self.tmp, "none"))
        for k in [k for k in env if k.startswith("KACHE_") and k not in
                  ("KACHE_DIR", "KACHE_CONFIG")]:
            del env[k]
        if os.path.exists(self.log):
            os.unlink(self.log)
        for args in (["clean"], ["build", "-j2"]):
            p = subprocess.run(["cargo", *args, "--offline"], cwd=d, env=env,
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr)
        tmp = os.path.join(self.store, "tmp")
        self.assertTrue(kh.wait_for(lambda: not [f for f in os.listdir(tmp)
                                                 if f.startswith("pending-")], timeout=30))
        out = subprocess.check_output([os.path.join(d, "target/debug/embedapp")], text=True)
        return os.path.exists(self.log), out.strip()

    def test_rust_embed_a_file_added_to_the_folder_is_in_a_fresh_build(self):
        if not os.path.isdir(os.path.join(REGISTRY, "rust-embed-6.4.2")):
            self.skipTest("librust-rust-embed-dev is not installed (scripts/example-deps.sh)")
        d = self.workspace("a")
        self.assertEqual(self.fresh_build(d), (True, "a.txt"))
        self.assertEqual(self.fresh_build(d), (False, "a.txt"))  # served
        with open(os.path.join(d, "assets", "b.txt"), "w") as f:
            f.write("b\n")
        self.assertEqual(self.fresh_build(d), (True, "a.txt,b.txt"))
        other = self.workspace("b")  # another checkout of the same files
        with open(os.path.join(other, "assets", "b.txt"), "w") as f:
            f.write("b\n")
        self.assertEqual(self.fresh_build(other), (False, "a.txt,b.txt"))


if __name__ == "__main__":
    KACHE = kh.take_kache_arg()
    unittest.main()
