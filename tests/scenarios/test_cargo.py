#!/usr/bin/env python3
"""Black-box scenarios: the real kache binary as RUSTC_WRAPPER over real, offline
cargo builds of tests/fixtures/ws. A counting rustc shim (RUSTC=...) records every
compile that reaches the real rustc, so "served from the cache" is a fact, not a claim.

usage: test_cargo.py <path to kache> [unittest args]
"""
import glob
import hashlib
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import CRATES, Workspace  # noqa: E402

KACHE = None
REAL_RUSTC = kh.real_rustc()


# A build script with two feature probes, as anyhow's and thiserror's run them.
PROBE_BUILD_RS = r"""use std::{env, fs, path::Path, process::Command};

// Two feature probes as anyhow's and thiserror's build scripts run them:
// through RUSTC_WRAPPER, stderr to null, --emit=metadata (no dep-info), the
// out-dir inside OUT_DIR; a cfg for each that compiled.
fn probe(name: &str, src: &str) -> bool {
    probe_with(name, src, &[])
}

fn probe_with(name: &str, src: &str, extra: &[&str]) -> bool {
    let out = env::var("OUT_DIR").unwrap();
    probe_into(name, src, extra, &out)
}

fn probe_into(name: &str, src: &str, extra: &[&str], into: &str) -> bool {
    let out = env::var("OUT_DIR").unwrap();
    let file = Path::new(&out).join(format!("{}.rs", name));
    fs::write(&file, src).unwrap();
    let rustc = env::var("RUSTC").unwrap();
    let mut cmd = match env::var_os("RUSTC_WRAPPER") {
        Some(w) => { let mut c = Command::new(w); c.arg(&rustc); c }
        None => Command::new(&rustc),
    };
    cmd.stderr(std::process::Stdio::null())
        .args(["--edition=2018", "--crate-name", name, "--crate-type=lib",
               "--emit=metadata", "--out-dir"])
        .arg(into).arg(&file).args(extra);
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

fn main() {
    let out = env::var("OUT_DIR").unwrap();
    fs::write(Path::new(&out).join("gen.rs"), "pub const GENERATED: u32 = 21;\n").unwrap();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KACHE_FIXTURE_PROBE");
    let bad = if env::var("KACHE_FIXTURE_PROBE").as_deref() == Ok("fixed") {
        "pub fn f() -> u32 { 1 }\n"
    } else {
        "#![feature(kache_no_such_feature)]\npub fn f() -> u32 { 1 }\n"
    };
    if probe("fixture_probe_ok", "pub fn f() -> u32 { 1 }\n") {
        println!("cargo:rustc-cfg=probe_ok");
    }
    if probe("fixture_probe_bad", bad) {
        println!("cargo:rustc-cfg=probe_bad");
    }
    // a failure with a library search path: a crate it did not find would not
    // be in its dep-info, so kache does not keep it
    if probe_with("fixture_probe_searched", bad, &["-L", &out]) {
        println!("cargo:rustc-cfg=probe_searched");
    }
    // a failure of the machine's, not the language's: an out-dir that cannot be
    // made (rustc exits 1 with no error code), which kache does not keep
    fs::write(Path::new(&out).join("not-a-dir"), "").unwrap();
    let nodir = format!("{}/not-a-dir/sub", out);
    if probe_into("fixture_probe_nodir", "pub fn f() -> u32 { 1 }\n", &[], &nodir) {
        println!("cargo:rustc-cfg=probe_nodir");
    }
}
"""

def probe_cfgs(ws):
    """The cfgs PROBE_BUILD_RS printed in ws's last build."""
    lines = set()
    for o in glob.glob(os.path.join(ws.dir, "target/debug/build/fixture-core-*/output")):
        with open(o) as f:
            lines |= {l for l in f.read().split() if l.startswith("cargo:rustc-cfg")}
    return sorted(lines)


class Scenarios(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp(prefix="kache-scenario-")
        self.store = os.path.join(self.tmp, "store")

    def tearDown(self):
        subprocess.run(["chattr", "-R", "-i", self.tmp], capture_output=True)
        kh.remove_tmp(self.tmp)

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


    def test_a_build_scripts_probes_hit_and_a_failure_is_replayed_as_one(self):
        """A build script's feature probes (anyhow's and thiserror's shape: no
        dep-info asked, stderr to null, the out-dir inside OUT_DIR) are cached:
        one that compiles and one that fails (exit 1, as on stable). The warm
        build runs neither, and the build script sees the same answers (its
        cfgs); a failure of a probe with -L (a crate not found is not in its
        dep-info), or one without an error code (an out-dir that cannot be
        made), is not kept; kache's own dep-info is left in neither the out-dir nor the
        store. A changed probe source misses and answers anew."""
        ws = Workspace(self.tmp, self.store)
        with open(os.path.join(ws.dir, "core", "build.rs"), "w") as f:
            f.write(PROBE_BUILD_RS)

        def cfgs():
            return probe_cfgs(ws)

        ws.cargo("build")
        self.assertIn("fixture_probe_ok", ws.compiled())
        self.assertIn("fixture_probe_bad", ws.compiled())
        self.assertEqual(cfgs(), ["cargo:rustc-cfg=probe_ok"])
        first = ws.run_app()
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), ["fixture_probe_nodir", "fixture_probe_searched"],
                         "a probe reached rustc on a warm build, or one not kept did not")
        self.assertEqual(cfgs(), ["cargo:rustc-cfg=probe_ok"])
        self.assertEqual(ws.run_app(), first)
        outdirs = glob.glob(os.path.join(ws.dir, "target/debug/build/fixture-core-*/out"))
        self.assertTrue(outdirs)
        for d in outdirs:
            self.assertEqual([n for n in os.listdir(d) if n.endswith(".d")], [], d)
        self.assertEqual([n for n in os.listdir(os.path.join(self.store, "tmp"))
                          if n.startswith("probe-")], [])
        # the failing probe's source changes: compiled again, and now it compiles
        ws.cargo("build", KACHE_FIXTURE_PROBE="fixed")
        self.assertIn("fixture_probe_bad", ws.compiled())
        self.assertNotIn("fixture_probe_ok", ws.compiled())  # the same source: a hit
        self.assertEqual(cfgs(), ["cargo:rustc-cfg=probe_bad", "cargo:rustc-cfg=probe_ok",
                                  "cargo:rustc-cfg=probe_searched"])

    def test_an_env_dep_set_to_the_empty_string_hits(self):
        """env! of a variable set to the empty string (CARGO_PKG_DESCRIPTION of a
        package without one, as clap's `about` reads it): the warm build hits.
        Its value was stored as whatever a fresh allocation held, so such a crate
        and every crate after it compiled on every build."""
        ws = Workspace(self.tmp, self.store)
        ws.edit("core/src/lib.rs", "pub fn summary", "pub const ABOUT: &str = "
                "env!(\"CARGO_PKG_DESCRIPTION\");\n\npub fn summary")
        self.warm(ws)
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "a crate with an empty env-dep missed")

    def test_a_build_without_kache_rebuilds_what_changed_over_kaches_outputs(self):
        """kache's outputs in target/ are hardlinks of its blobs (stored so on a
        miss, restored so on a hit). A build with the wrapper off (`RUSTC_WRAPPER=`,
        or after `kache init --undo`) that recompiles an edited crate must not
        fail: rustc refuses to write over an output it cannot write, and the
        blobs were read-only (as an older kache left them: a hit gives such a
        blob its owner's write bit). rustc and the linker replace an output
        (rename, unlink), never write through it: the store's blobs stay
        whole (kache verify), and kache's next build is right."""
        ws = Workspace(self.tmp, self.store)
        self.warm(ws)  # cold: every output stored by hardlink
        blobs = os.path.join(self.store, "blobs")
        for older in (False, True):
            if older:  # the blobs as a kache before 2026-12-03 made them
                for d, _, files in os.walk(blobs):
                    for f in files:
                        p = os.path.join(d, f)
                        os.chmod(p, os.stat(p).st_mode & ~0o222)
                ws.cargo("clean")
                ws.cargo("build")  # every output restored by hardlink
                self.assertEqual(ws.compiled(), [])
            ws.edit("core/src/lib.rs", "\"{} {} {} {} {}\"", "\"{} {} {} {} {} edited\"")
            p = ws.cargo("build", check=False, RUSTC_WRAPPER="")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(ws.compiled(), ["fixture_app", "fixture_core"])
            self.assertIn("edited", ws.run_app())
            v = subprocess.run([KACHE, "verify"], env=ws.env, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
            self.assertIn(" 0 corrupt blobs", v.stdout + v.stderr)
            ws.edit("core/src/lib.rs", "\"{} {} {} {} {} edited\"", "\"{} {} {} {} {}\"")
            ws.cargo("build")
            self.assertEqual(ws.compiled(), [])  # the old results, from the store
            self.assertNotIn("edited", ws.run_app())

    def test_an_older_stores_read_only_blobs_get_their_write_bit_once(self):
        """A target an older kache restored (hardlinks of its read-only blobs) and
        that no kache build restored since: a build with the wrapper off failed
        over it, and a hit's chmod never came. Opening the store's index gives
        every such blob its owner's write bit once per store (the store an older
        kache left: read-only blobs, an index without the mark), so the same
        build passes once kache has opened the index: here a command with no
        supervisor running (the supervisor's indexer does the same)."""
        ws = Workspace(self.tmp, self.store)
        self.warm(ws)
        self.assertGreater(self.kache_json(ws, "stats")["entries"], 0)  # the index made
        kh.supervisor_stop(KACHE, ws.env)
        for d, _, files in os.walk(os.path.join(self.store, "blobs")):
            for f in files:
                p = os.path.join(d, f)
                os.chmod(p, os.stat(p).st_mode & ~0o222)
        shutil.rmtree(os.path.join(self.store, "index"))
        ws.edit("core/src/lib.rs", "\"{} {} {} {} {}\"", "\"{} {} {} {} {} edited\"")
        p = ws.cargo("build", check=False, RUSTC_WRAPPER="")
        self.assertNotEqual(p.returncode, 0, "the fault this test is for did not show")
        self.assertIn("not writeable", p.stderr)
        said = []
        for _ in range(2):  # no supervisor runs: the command opens the index itself
            p = subprocess.run([KACHE, "stats"], env=dict(ws.env, KACHE_LOG="info"),
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            said.append("their owner's write bit" in p.stderr)
        self.assertEqual(said, [True, False])  # once per store
        for d, _, files in os.walk(os.path.join(self.store, "blobs")):
            for f in files:
                self.assertTrue(os.stat(os.path.join(d, f)).st_mode & 0o200, f)
        p = ws.cargo("build", check=False, RUSTC_WRAPPER="")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("edited", ws.run_app())

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

    def test_moved_checkout_reads_its_own_file_outside_every_root(self):
        # include_str! of a file above the workspace: "../../../outside.txt" from
        # core/src is <root>/outside.txt, outside the workspace, the target dir and
        # CARGO_HOME. A moved checkout must be checked against its own such file,
        # not against the first checkout's (which still exists, unchanged).
        def checkout(root, text):
            os.makedirs(root, exist_ok=True)
            with open(os.path.join(root, "outside.txt"), "w") as f:
                f.write(text)
            ws = Workspace(root, self.store, "ws")
            ws.edit("core/src/lib.rs", 'include_str!("../data.txt")',
                    'include_str!("../../../outside.txt")')
            return ws

        a = checkout(os.path.join(self.tmp, "A"), "from-a")
        a.cargo("build")
        self.assertIn("from-a", a.run_app())
        b = checkout(os.path.join(self.tmp, "B", "deeper"), "from-b")
        b.cargo("build")
        self.assertIn("fixture_core", b.compiled(), "b's own outside.txt differs from a's")
        self.assertIn("from-b", b.run_app())
        # the same bytes at b's place: served from the cache
        c = checkout(os.path.join(self.tmp, "C"), "from-a")
        c.cargo("build")
        self.assertEqual(c.compiled(), [])
        self.assertIn("from-a", c.run_app())

    def test_edit_in_a_second_directory_of_same_named_files_is_seen(self):
        # A hit stats an input through a descriptor of its directory from the
        # second input in a row there (wrapper/memo.c): lib.rs, m1.rs, m2.rs
        # in src/, then mod.rs, m1.rs, m2.rs in src/sub/. An edit of
        # src/sub/m2.rs must be seen as such, not read as src/m2.rs's stat.
        ws = Workspace(self.tmp, self.store)
        src = os.path.join(ws.dir, "core/src")
        os.makedirs(os.path.join(src, "sub"))
        for rel, text in (("m1.rs", "pub const A: &str = \"top-1\";\n"),
                          ("m2.rs", "pub const B: &str = \"top-2\";\n"),
                          ("sub/mod.rs", "pub mod m1;\npub mod m2;\n"),
                          ("sub/m1.rs", "pub const C: &str = \"sub-1\";\n"),
                          ("sub/m2.rs", "pub const D: &str = \"sub-2\";\n")):
            with open(os.path.join(src, rel), "w") as f:
                f.write(text)
        ws.edit("core/src/lib.rs", "pub const DATA", "pub mod m1;\npub mod m2;\npub mod sub;\n"
                "pub const DATA")
        self.warm(ws)
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "a warm build after clean: all hits")
        # and the hit stats by name under a descriptor of the directory: a
        # wrong directory would only cost rehashing, which the rest of this
        # test cannot see, so the system calls are looked at (strace)
        log = os.path.join(self.tmp, "core-hit.strace")
        shim = os.path.join(self.tmp, "strace-core")
        with open(shim, "w") as f:
            f.write('#!/bin/sh\ncase " $* " in *" --crate-name fixture_core "*)\n'
                    '  exec strace -f -qq -e trace=stat,newfstatat,statx,openat -o "%s" "%s" "$@";;\n'
                    'esac\nexec "%s" "$@"\n' % (log, os.path.abspath(kh.KACHE),
                                                   os.path.abspath(kh.KACHE)))
        os.chmod(shim, 0o755)
        ws.cargo("clean")
        # the ASan build's leak check traces the process itself at exit
        ws.cargo("build", RUSTC_WRAPPER=shim, ASAN_OPTIONS=os.environ.get(
            "ASAN_OPTIONS", "") + ":detect_leaks=0")
        self.assertEqual(ws.compiled(), [])
        calls = open(log).read()
        by_name = re.findall(r'(?:newfstatat|statx)\((\d+), "(m1\.rs|m2\.rs)"', calls)
        self.assertGreaterEqual(len(by_name), 3, calls)
        for d in (src, os.path.join(src, "sub")):
            self.assertRegex(calls, r'openat\(AT_FDCWD, "%s", [^)]*O_PATH' % re.escape(d))
        for name in ("m2.rs", "sub/m2.rs"):
            self.assertNotIn(os.path.join(src, name) + '"', calls)
        for rel, old, new in (("core/src/sub/m2.rs", "sub-2", "sub-X"),
                              ("core/src/m2.rs", "top-2", "top-X"),
                              ("core/src/sub/m1.rs", "sub-1", "sub-Y")):
            ws.edit(rel, old, new)  # same size: the stat (mtime, ctime) tells
            ws.cargo("build")
            self.assertIn("fixture_core", ws.compiled(), "%s edited, yet served" % rel)
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "the edited state is in the cache now")

    def test_restored_depinfo_is_the_hit_entrys(self):
        # a dep-info already in place is left alone only when it has the same bytes
        ws = Workspace(self.tmp, self.store)
        self.warm(ws)
        with open(os.path.join(ws.dir, "core/data2.txt"), "w") as f:
            f.write("data-two")
        ws.edit("core/src/lib.rs", 'include_str!("../data.txt")', 'include_str!("../data2.txt")')
        ws.cargo("build")
        self.assertIn("fixture_core", ws.compiled())

        def core_depinfo():
            deps = os.path.join(ws.dir, "target/debug/deps")
            return "".join(open(os.path.join(deps, n)).read() for n in os.listdir(deps)
                           if n.startswith("fixture_core-") and n.endswith(".d"))
        self.assertIn("data2.txt", core_depinfo())
        ws.edit("core/src/lib.rs", 'include_str!("../data2.txt")', 'include_str!("../data.txt")')
        ws.cargo("build")
        self.assertNotIn("fixture_core", ws.compiled(), "the first entry should be hit")
        self.assertNotIn("data2.txt", core_depinfo())
        self.assertIn("data.txt", core_depinfo())

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

    def store_files(self, kind):
        out = []
        for d, _, files in os.walk(os.path.join(self.store, kind)):
            out += [os.path.join(d, f) for f in files if not f.startswith(".")]
        return out

    def entry_of(self, crate):
        """The path of the one stored entry of crate (found by its msgpack name)."""
        tag = b"\xa5crate" + bytes([0xa0 | len(crate)]) + crate.encode()
        found = [p for p in self.store_files("entries") if tag in open(p, "rb").read()]
        self.assertEqual(len(found), 1, found)
        return found[0]

    def kache_json(self, ws, *args):
        p = subprocess.run([KACHE, *args, "--json"], env=ws.env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_a_store_with_no_remote_is_kept_under_its_cap(self):
        # No supervisor runs without a remote, so nothing applied cache.max_size
        # but a `kache gc` by hand: the store grew past its cap build after build.
        # A miss that comes supervisor.gc_interval after the last gc starts one
        # in the background, which the build does not wait for.
        ws = Workspace(self.tmp, self.store)
        ws.env.update(KACHE_MAX_SIZE="64K", KACHE_REMOTE="none",
                      KACHE_CONFIG=os.path.join(self.tmp, "none.toml"))
        first = self.warm(ws)
        over = self.kache_json(ws, "stats")["store_bytes"]
        self.assertGreater(over, 64 << 10)
        self.assertEqual(kh.gc_log(self.store), "",
                         "a gc ran within gc_interval of the first miss")
        time.sleep(1.5)
        ws.edit("core/src/lib.rs", "\"{} {} {} {} {}\"", "\"{} {} {} {} {} edited\"")
        ws.cargo("build", KACHE_GC_INTERVAL="1")
        self.assertEqual(ws.compiled(), ["fixture_app", "fixture_core"])
        self.assertTrue(kh.wait_for(lambda: "removed" in kh.gc_log(self.store), timeout=60),
                        kh.gc_log(self.store))
        self.assertTrue(kh.wait_for(lambda: not kh.store_pids(self.store), timeout=30),
                        "a gc or a supervisor still runs")
        # the store as the gc left it, at most its cap (the compiles after the
        # miss that started it may store theirs after it)
        now = re.search(r"store now ([0-9.]+) (B|KiB) \(cap 64.0 KiB\)", kh.gc_log(self.store))
        self.assertTrue(now, kh.gc_log(self.store))
        self.assertLessEqual(float(now.group(1)), 64 if now.group(2) == "KiB" else 65536)
        self.assertLess(self.kache_json(ws, "stats")["store_bytes"], over)
        self.assertEqual(kh.sanitizer_reports(self.store), [])
        self.assertFalse(os.path.exists(os.path.join(self.store, "run", "sup.sock")))
        # what it evicted is compiled again, and the build is as before
        ws.edit("core/src/lib.rs", "\"{} {} {} {} {} edited\"", "\"{} {} {} {} {}\"")
        ws.cargo("clean")
        ws.cargo("build")
        self.assertTrue(CRATES.issubset(set(ws.compiled())), ws.compiled())
        self.assertEqual(ws.run_app(), first)

    def test_a_file_only_the_linker_reads_is_in_the_binarys_key(self):
        # cortex-m-rt's shape: a build script copies memory.x into its OUT_DIR
        # beside a link.x that INCLUDEs it, and passes link.x to the linker.
        # Editing memory.x re-runs the build script and the link with the same
        # arguments and sources: the old binary was served (a wrong build: the
        # linker script was read by the linker only, never by rustc).
        d = os.path.join(self.tmp, "linkdemo")
        files = {
            "Cargo.toml": '[package]\nname = "linkdemo"\nversion = "0.1.0"\nedition = "2021"\n',
            "build.rs": 'use std::{env, fs, path::PathBuf};\nfn main() {\n'
                        '    let out = PathBuf::from(env::var("OUT_DIR").unwrap());\n'
                        '    fs::copy("memory.x", out.join("memory.x")).unwrap();\n'
                        '    fs::write(out.join("link.x"), "INCLUDE memory.x\\n").unwrap();\n'
                        '    println!("cargo:rustc-link-search=native={}", out.display());\n'
                        '    println!("cargo:rustc-link-arg-bins={}", out.join("link.x").display());\n'
                        '    println!("cargo:rerun-if-changed=memory.x");\n}\n',
            "src/main.rs": 'extern "C" {\n    static kache_magic: u8;\n}\nfn main() {\n'
                           '    println!("{}", unsafe { &kache_magic as *const u8 as usize });\n}\n',
        }
        kh.write_tree(d, files)
        env = kh.store_env(self.tmp, self.store, RUSTC_WRAPPER=kh.KACHE, KACHE_REMOTE="none",
                           CARGO_HOME=os.path.join(self.tmp, "cargo-home"),
                           KACHE_CONFIG=os.path.join(self.tmp, "none.toml"))

        def build(magic):
            with open(os.path.join(d, "memory.x"), "w") as f:
                f.write("PROVIDE(kache_magic = %d);\n" % magic)
            p = subprocess.run(["cargo", "build", "-q", "--offline"], cwd=d, env=env,
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr)
            return subprocess.run([os.path.join(d, "target", "debug", "linkdemo")],
                                  capture_output=True, text=True, timeout=60).stdout.strip()

        self.assertEqual(build(42), "42")
        self.assertEqual(build(43), "43")
        self.assertEqual(build(42), "42")  # the first binary again: a hit
        st = subprocess.run([kh.KACHE, "stats", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
        self.assertGreaterEqual(json.loads(st.stdout)["hits"], 1, st.stdout)
        why = subprocess.run([kh.KACHE, "why-miss", "linkdemo"], env=env, capture_output=True,
                             text=True, timeout=60).stdout
        self.assertIn("native library, linker input, PGO profile or target spec "
                      "<target>/debug/build/linkdemo-", why)
        self.assertIn("/out/memory.x changed", why)

    def split_debug_files(self, ws):
        """The split DWARF files of the target dir (incremental state aside),
        by name, with their bytes' hash."""
        out = {}
        for root, _, files in os.walk(os.path.join(ws.dir, "target")):
            if "incremental" in root:
                continue
            for f in files:
                if f.endswith((".dwo", ".dwp")):
                    with open(os.path.join(root, f), "rb") as fh:
                        out[os.path.relpath(os.path.join(root, f), ws.dir)] = \
                            hashlib.sha256(fh.read()).hexdigest()
        return out

    def test_split_debuginfo_files_are_restored_with_their_compile(self):
        # -C split-debuginfo=unpacked leaves the DWARF in a .dwo per codegen
        # unit beside the rlib (the binary points at them); =packed puts a
        # .dwp beside each binary and shared library. rustc announces
        # neither: a hit restored the rlib or the binary without them, so
        # the debugger found no debug info for the crates that hit.
        for mode in ("unpacked", "packed"):
            ws = Workspace(os.path.join(self.tmp, mode), self.store)
            flags = dict(RUSTFLAGS="-C split-debuginfo=" + mode)
            ws.cargo("build", **flags)
            first = self.split_debug_files(ws)
            self.assertTrue(first, mode)
            if mode == "packed":
                self.assertIn(os.path.join("target", "debug", "fixture-app.dwp"), first)
            ws.cargo("clean")
            ws.cargo("build", **flags)
            self.assertEqual(ws.compiled(), [], mode)
            self.assertEqual(self.split_debug_files(ws), first, mode)

    def test_a_gc_stamp_from_the_future_does_not_hold_the_gc_back(self):
        # The clock was set back (a VM booted ahead, then NTP): run/gc.stamp's
        # mtime is a day ahead. "Since the last gc" was negative, so no gc ran
        # until the clock caught up (a day, or a year) and the store grew
        # past its cap. A time ahead of now reads as long ago.
        ws = Workspace(self.tmp, self.store)
        ws.env.update(KACHE_MAX_SIZE="64K", KACHE_REMOTE="none", KACHE_GC_INTERVAL="3600",
                      KACHE_CONFIG=os.path.join(self.tmp, "none.toml"))
        self.warm(ws)
        stamp = os.path.join(self.store, "run", "gc.stamp")
        ahead = time.time() + 86400
        os.utime(stamp, (ahead, ahead))
        ws.edit("core/src/lib.rs", "\"{} {} {} {} {}\"", "\"{} {} {} {} {} edited\"")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), ["fixture_app", "fixture_core"])
        self.assertTrue(kh.wait_for(lambda: "removed" in kh.gc_log(self.store), timeout=60),
                        kh.gc_log(self.store))
        self.assertLess(os.stat(stamp).st_mtime, time.time() + 60)  # now again
        self.assertTrue(kh.wait_for(lambda: not kh.store_pids(self.store), timeout=30))

    def test_recache_compiles_everything_and_stores_it_again(self):
        # KACHE_RECACHE=1 (ccache's recache, sccache's SCCACHE_RECACHE): for a
        # result the store should not be trusted with, compile every crate,
        # serve none, and store what rustc made over what was there
        ws = Workspace(self.tmp, self.store)
        first = self.warm(ws)
        entry = self.entry_of("fixture_core")
        os.chmod(entry, 0o600)
        with open(entry, "r+b") as f:  # what a wrong result would have: stale bytes
            f.seek(os.path.getsize(entry) // 2)
            f.write(b"\xff")
        ws.cargo("clean")
        ws.cargo("build", KACHE_RECACHE="1")
        self.assertTrue(CRATES.issubset(set(ws.compiled())), ws.compiled())
        self.assertEqual(ws.run_app(), first)
        stats = self.kache_json(ws, "stats")
        self.assertEqual(stats["hits"], 0)
        self.assertEqual(stats["corrupt"], 0, "the damaged entry was read, not replaced")
        report = json.loads(kh.kache_cmd(ws, "report", "--format", "json").stdout)
        self.assertGreaterEqual(report["misses"]["by_cause"].get("recache", 0), len(CRATES))
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [])
        self.assertEqual(ws.run_app(), first)
        self.assertEqual(self.kache_json(ws, "stats")["corrupt"], 0)

    def test_flipped_entry_depinfo_is_recompiled_once_then_hits(self):
        ws = Workspace(self.tmp, self.store)
        out = self.warm(ws)
        ent = self.entry_of("tiny")
        data = bytearray(open(ent, "rb").read())
        at = data.find(b"src/lib.rs")
        self.assertGreater(at, 0)
        data[at + 4] ^= 0x20  # "lib.rs" -> "Lib.rs" in the stored dep-info
        os.chmod(ent, 0o644)
        open(ent, "wb").write(bytes(data))
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), ["tiny"], "a damaged entry must not be served")
        self.assertEqual(ws.run_app(), out)
        again = ws.cargo("build")
        self.assertNotIn("Compiling", again.stderr, "cargo keeps rebuilding: bad dep-info")
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "the recompiled entry should serve again")
        self.assertEqual(ws.run_app(), out)
        self.assertEqual(self.kache_json(ws, "stats")["corrupt"], 1)

    def test_verify_names_damaged_entry_and_manifest(self):
        ws = Workspace(self.tmp, self.store)
        self.warm(ws)
        p = subprocess.run([KACHE, "verify"], env=ws.env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ent = self.entry_of("fixture_core")
        man = sorted(self.store_files("manifests"))[0]
        for path in (ent, man):
            data = bytearray(open(path, "rb").read())
            data[len(data) // 2] ^= 0x01
            open(path, "wb").write(bytes(data))
        p = subprocess.run([KACHE, "verify"], env=ws.env, capture_output=True, text=True,
                           timeout=120)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn(os.path.basename(ent), p.stdout)
        self.assertIn(os.path.basename(man), p.stdout)
        self.assertFalse(os.path.exists(ent))
        self.assertFalse(os.path.exists(man))
        # an entry that names a blob no longer there
        victim = self.entry_of("tiny")
        blobs = self.store_files("blobs")
        for b in blobs:
            os.unlink(b)
        p = subprocess.run([KACHE, "verify"], env=ws.env, capture_output=True, text=True,
                           timeout=120)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn(os.path.basename(victim), p.stdout)
        self.assertFalse(os.path.exists(victim))
        p = subprocess.run([KACHE, "verify"], env=ws.env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, "verify repaired what it reported:\n" + p.stdout)
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.run_app().split()[0], "hello")

    def modes(self, root):
        out = {}
        for d, dirs, files in os.walk(root):
            for n in dirs + files:
                p = os.path.join(d, n)
                out[p] = os.lstat(p).st_mode & 0o777
        out[root] = os.stat(root).st_mode & 0o777
        return out

    def output_modes(self, ws):
        """The permission bits of the build's outputs in target/debug: the
        binary, and every rlib, rmeta, shared object and executable of deps/."""
        t = os.path.join(ws.dir, "target", "debug")
        files = [os.path.join(t, "fixture-app")] + [
            p for p in glob.glob(os.path.join(t, "deps", "*"))
            if not p.endswith(".d") and os.path.isfile(p)]
        return {os.path.relpath(p, t): oct(os.stat(p).st_mode & 0o7777) for p in files}

    def test_outputs_have_the_modes_a_build_without_kache_gives_them(self):
        """An output hardlinked to a blob has the blob's mode: blobs masked to
        a private store's 0700 made target/debug/fixture-app 0700, which no
        other user can run (a container's non-root user after COPY, a binary
        installed for everyone). What a miss stores and a hit restores has
        the mode a build without kache gives it, under the user's umask; an
        older store's 0600/0700 blobs get it at their next hit."""
        for mask in (0o022, 0o077):
            old = os.umask(mask)
            try:
                root = os.path.join(self.tmp, "umask%03o" % mask)
                os.makedirs(root)
                store = os.path.join(root, "store")
                plain = Workspace(root, store, "plain")
                plain.cargo("build", RUSTC_WRAPPER="")
                want = self.output_modes(plain)
                self.assertIn("fixture-app", want)
                ws = Workspace(root, store, "ws")
                ws.cargo("build")
                self.assertTrue(CRATES.issubset(set(ws.compiled())))
                self.assertEqual(self.output_modes(ws), want, "stored by a miss")
                ws.cargo("clean")
                ws.cargo("build")
                self.assertEqual(ws.compiled(), [])
                self.assertEqual(self.output_modes(ws), want, "restored by a hit")
                ws.cargo("clean")
                ws.cargo("build", KACHE_RESTORE="copy")
                self.assertEqual(ws.compiled(), [])
                self.assertEqual(self.output_modes(ws), want, "copied by a hit")
                kh.wait_for(lambda: not kache_processes(store), 60, 0.1)
                self.assertEqual(os.stat(store).st_mode & 0o777, 0o700)
                if mask != 0o022:
                    continue
                # a store from before: its blobs open to nobody but their owner
                for d, _, names in os.walk(os.path.join(store, "blobs")):
                    for n in names:
                        p = os.path.join(d, n)
                        os.chmod(p, os.stat(p).st_mode & 0o700)
                ws.cargo("clean")
                ws.cargo("build")
                self.assertEqual(ws.compiled(), [])
                self.assertEqual(self.output_modes(ws), want, "restored from an older store")
            finally:
                os.umask(old)

    def test_a_binary_stripped_in_place_leaves_the_cache_and_other_checkouts_alone(self):
        """GNU strip writes a file with several hardlinks in place (to keep
        them), as patchelf, wasm-opt and ar do: a final artifact hardlinked to
        its blob (target/debug/fixture-app) stripped after the build changed
        the blob, so every checkout whose binary was linked to it got it
        stripped, and the next hit found the blob damaged and compiled
        again. A final artifact (bin, cdylib, staticlib; not a test, not a
        build script) is stored and restored as a copy of its own."""
        a = Workspace(self.tmp, self.store, "a")
        self.warm(a)
        app = lambda ws: os.path.join(ws.dir, "target", "debug", "fixture-app")
        size = os.path.getsize(app(a))
        subprocess.run(["strip", app(a)], check=True)
        self.assertLess(os.path.getsize(app(a)), size)
        b = Workspace(self.tmp, self.store, "b")
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "the stripped blob was found damaged")
        self.assertEqual(os.path.getsize(app(b)), size)
        subprocess.run(["strip", app(b)], check=True)  # after a hit, too
        a.cargo("clean")
        a.cargo("build")
        self.assertEqual(a.compiled(), [])
        self.assertEqual(os.path.getsize(app(a)), size)
        self.assertEqual(a.run_app().split()[0], "hello")
        # the libraries in deps/ stay hardlinks of their blobs (the fast hit)
        rlibs = glob.glob(os.path.join(a.dir, "target", "debug", "deps", "libfixture_core-*.rlib"))
        self.assertEqual(len(rlibs), 1)
        self.assertGreater(os.stat(rlibs[0]).st_nlink, 1)

    def test_a_build_in_one_checkout_leaves_anothers_fresh(self):
        """Two checkouts (git worktrees) on one store. A hit set the mtime of
        what it restored to now, and a hardlink shares its inode, and so its
        mtime, with every checkout linked to the same blob: a build in one
        made the other's outputs newer than what cargo made there (a build
        script's run), and cargo's next build there was dirty ("the
        dependency ... was rebuilt"): units run again, every wrapper called.
        A blob another checkout links is placed as a copy of its own."""
        a = Workspace(self.tmp, self.store, "a")
        b = Workspace(self.tmp, self.store, "b")
        self.warm(a)
        b.cargo("build")
        self.assertEqual(b.compiled(), [])
        for ws in (a, b, a):
            time.sleep(1.1)  # cargo's mtimes: a second apart at least
            ws.cargo("clean")
            ws.cargo("build")
            self.assertEqual(ws.compiled(), [])
            other = b if ws is a else a
            time.sleep(1.1)
            p = other.cargo("build", "-v")
            self.assertNotIn("Dirty", p.stderr)
            self.assertNotIn("Compiling", p.stderr)
            self.assertNotIn("Running", p.stderr)

    def test_new_store_is_private_unless_shared(self):
        ws = Workspace(self.tmp, self.store)
        out = self.warm(ws)
        ws.cargo("clean")
        ws.cargo("build")   # restored by hardlink or copy from private blobs
        self.assertEqual(ws.compiled(), [])
        self.assertEqual(ws.run_app(), out)
        ws.cargo("clean")   # can remove what was restored
        self.assertFalse(os.path.exists(os.path.join(ws.dir, "target", "debug")))
        kh.wait_for(lambda: not kache_processes(self.store), 60, 0.1)
        modes = self.modes(self.store)
        self.assertGreater(len(modes), 10)
        # nobody but the owner enters the store; a blob has the mode of the
        # target's file it is a hardlink of (the umask's, as rustc's output:
        # test_outputs_have_the_modes_a_build_without_kache_gives_them), and
        # nobody else can write any
        umask = os.umask(0)
        os.umask(umask)
        blob = {p: m for p, m in modes.items() if "/blobs/" in p and os.path.isfile(p)}
        self.assertTrue(blob)
        self.assertEqual({p: oct(m) for p, m in blob.items()
                          if m & 0o077 != (0o755 if m & 0o100 else 0o644) & ~umask & 0o077},
                         {}, "a blob's bits for group and others are not the umask's")
        open_to_others = {p: oct(m) for p, m in modes.items()
                          if m & (0o022 if p in blob else 0o077)}
        self.assertEqual(open_to_others, {}, "open to group or others")
        self.assertEqual(modes[self.store], 0o700)
        shared = os.path.join(self.tmp, "shared-store")
        ws.env.update(KACHE_DIR=shared, KACHE_SHARED="true")
        ws.cargo("build")
        # the background stores may still be writing (a temporary is not yet
        # given its final mode): look once they are done
        kh.wait_for(lambda: not kache_processes(shared), 60, 0.1)
        modes = self.modes(shared)
        self.assertEqual(modes[shared], 0o755)
        blobs = [m for p, m in modes.items() if "/blobs/" in p and os.path.isfile(p)]
        self.assertTrue(blobs and all(m & 0o044 == 0o044 for m in blobs), blobs)

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

    def test_cargos_questions_to_rustc_answered_from_memo_after_clean(self):
        """`cargo clean` removes cargo's own memo of `rustc -vV` and of its target
        query (target/.rustc_info.json): kache answers both from its store, with
        the bytes rustc gave, until the toolchain's identity or a variable rustc
        reads for them changes; a damaged memo is asked again, never handed on."""
        ws = Workspace(self.tmp, self.store)
        asked = os.path.join(self.tmp, "asked.log")
        with open(ws.shim, "w") as f:  # the counting shim, and every question
            f.write("#!/bin/sh\n"
                    "case \" $* \" in *' --crate-name ___ '*|' -vV ') "
                    "echo \"$*\" >> '%s';; esac\n"
                    "case \" $* \" in *' --crate-name '*) echo \"$*\" >> '%s';; esac\n"
                    "exec '%s' \"$@\"\n" % (asked, ws.log, REAL_RUSTC))

        def questions(**env):
            if os.path.exists(asked):
                os.unlink(asked)
            ws.cargo("clean")
            ws.cargo("build", **env)
            if not env:  # RUSTC_BOOTSTRAP is in the compiles' keys too
                self.assertEqual(ws.compiled(), [])
            if not os.path.exists(asked):
                return []
            with open(asked) as f:
                return ["-vV" if l.split() == ["-vV"] else "print" for l in f]

        first = self.warm(ws)
        self.assertEqual(questions(), [], "cargo's questions reached rustc after a clean")
        self.assertEqual(ws.run_app(), first)
        # the answers are rustc's, byte for byte
        env = dict(ws.env)
        query = ["-", "--crate-name", "___", "--print=file-names", "--crate-type", "bin",
                 "--crate-type", "rlib", "--print=sysroot", "--print=cfg", "-Wwarnings"]
        for args in (["-vV"], query):
            direct = subprocess.run([REAL_RUSTC, *args], stdin=subprocess.DEVNULL,
                                    capture_output=True, env=env)
            for _ in range(2):
                wrapped = subprocess.run([KACHE, ws.shim, *args], stdin=subprocess.DEVNULL,
                                         capture_output=True, env=env)
                self.assertEqual((wrapped.returncode, wrapped.stdout, wrapped.stderr),
                                 (direct.returncode, direct.stdout, direct.stderr), args)
        # a variable rustc reads for them: asked again, then answered
        self.assertIn("print", questions(RUSTC_BOOTSTRAP="1"))
        self.assertEqual(questions(RUSTC_BOOTSTRAP="1"), [])
        # another toolchain (the binary's mtime): asked again
        os.utime(ws.shim, ns=(os.stat(ws.shim).st_atime_ns, os.stat(ws.shim).st_mtime_ns + 10**9))
        self.assertEqual(sorted(set(questions())), ["-vV", "print"])
        # a damaged memo is not handed to cargo: asked again, rewritten
        memos = [m for m in store_files(self.store, "memo")
                 if open(m, "rb").read(13) == b"kache-query-1"]
        # -vV and cargo's query, with and without RUSTC_BOOTSTRAP, the query
        # asked here by hand; -vV and cargo's query of the touched binary
        self.assertEqual(len(memos), 7, memos)
        for m in memos:
            with open(m, "r+b") as f:
                data = bytearray(f.read())
                data[-2] ^= 0x20
                f.seek(0)
                f.write(data)
        self.assertEqual(sorted(set(questions())), ["-vV", "print"])
        self.assertEqual(ws.run_app(), first)
        self.assertEqual(questions(), [])
        # a query whose source is not empty stdin is never memoized
        for _ in range(2):
            p = subprocess.run([KACHE, ws.shim, "-", "--crate-name", "___", "--print=cfg"],
                               input=b"fn main() {}", capture_output=True, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
        with open(asked) as f:
            self.assertEqual(len(f.readlines()), 2)

    def test_a_rustup_proxy_is_asked_every_time(self):
        """A rustup proxy (hard-linked to a rustup beside it) answers for whichever
        toolchain is selected: its answers are never memoized."""
        d = os.path.join(self.tmp, "proxy")
        os.makedirs(d)
        calls = os.path.join(self.tmp, "calls")
        with open(os.path.join(d, "rustup"), "w") as f:
            f.write("#!/bin/sh\necho x >> '%s'\nexec '%s' \"$@\"\n" % (calls, REAL_RUSTC))
        os.chmod(os.path.join(d, "rustup"), 0o755)
        os.link(os.path.join(d, "rustup"), os.path.join(d, "rustc"))
        env = dict(os.environ, KACHE_DIR=self.store)
        for _ in range(3):
            p = subprocess.run([KACHE, os.path.join(d, "rustc"), "-vV"],
                               stdin=subprocess.DEVNULL, capture_output=True, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"release:", p.stdout)
        with open(calls) as f:
            self.assertEqual(len(f.readlines()), 3)

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


def store_files(store, kind):
    """Every file under store/kind (blobs, entries, manifests, memo)."""
    out = []
    for d, _, files in os.walk(os.path.join(store, kind)):
        out += [os.path.join(d, f) for f in files if not f.startswith(".")]
    return out


def kache_processes(store):
    """Pids of kache wrappers (and their store children) working on store."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink("/proc/%s/exe" % pid) != os.path.realpath(KACHE):
                continue
            env = open("/proc/%s/environ" % pid, "rb").read().split(b"\0")
        except OSError:
            continue
        if ("KACHE_DIR=" + store).encode() in env:
            pids.append(int(pid))
    return pids


class HostileStoreScenarios(unittest.TestCase):
    """Store files replaced by a FIFO or by a symlink to a file elsewhere (issue 7,
    item 4): never followed, never waited on; counted as corrupt and compiled."""

    def setUp(self):
        self.tmp = kh.make_tmp(prefix="kache-hostile-")
        self.store = os.path.join(self.tmp, "store")
        self.elsewhere = os.path.join(self.tmp, "elsewhere")
        os.makedirs(self.elsewhere)

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def corrupt_count(self, ws):
        p = subprocess.run([KACHE, "stats", "--json"], env=ws.env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return int(p.stdout.split('"corrupt":')[1].split(",")[0].split("}")[0])

    def replace(self, files, how, content=None):
        for i, f in enumerate(files):
            keep = os.path.join(self.elsewhere, "%d-%s" % (i, os.path.basename(f)))
            shutil.copyfile(f, keep)
            if content is not None:
                open(keep, "wb").write(content)
            os.unlink(f)
            if how == "fifo":
                os.mkfifo(f)
            else:
                os.symlink(keep, f)

    def hostile(self, kind, how, content=None, recompiled=True):
        ws = Workspace(self.tmp, self.store)
        ws.cargo("build")
        out = ws.run_app()
        files = store_files(self.store, kind)
        self.assertTrue(files, kind)
        self.replace(files, how, content)
        before = self.corrupt_count(ws)
        ws.cargo("clean")
        try:
            p = subprocess.run(["cargo", "build", "--offline", "-j2"], cwd=ws.dir, env=ws.env,
                               capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            for pid in kache_processes(self.store):
                os.kill(pid, 9)
            self.fail("the build hung on a %s in %s" % (how, kind))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(ws.run_app(), out)
        kh.wait_for(lambda: not kache_processes(self.store), 30, 0.1)
        self.assertEqual(kache_processes(self.store), [], "a wrapper outlived cargo")
        if recompiled:
            self.assertTrue(CRATES.issubset(set(ws.compiled())), ws.compiled())
            self.assertGreater(self.corrupt_count(ws), before, "damage not counted")
        else:
            self.assertEqual(ws.compiled(), [])
        # healed: the next build is served again
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [])
        self.assertEqual(ws.run_app(), out)
        deps = os.path.join(ws.dir, "target/debug/deps")
        for f in os.listdir(deps):
            self.assertFalse(os.path.islink(os.path.join(deps, f)), f)

    def test_blob_fifo(self):
        self.hostile("blobs", "fifo")

    def test_blob_symlink(self):
        self.hostile("blobs", "symlink")

    def test_entry_fifo(self):
        self.hostile("entries", "fifo")

    def test_entry_symlink(self):
        self.hostile("entries", "symlink")

    def test_manifest_fifo(self):
        self.hostile("manifests", "fifo")

    def test_manifest_symlink(self):
        self.hostile("manifests", "symlink")

    def test_memo_fifo(self):
        self.hostile("memo", "fifo", recompiled=False)

    def test_memo_symlink_to_a_wrong_hash(self):
        self.hostile("memo", "symlink", content=b"\0" * 32, recompiled=False)


class MemoRecordScenarios(unittest.TestCase):
    """The crate's memo record (memo/, framed "kcmemor2"): one read and one stat
    per input on a hit. A damaged record is never trusted; an input changed in
    place with its size and mtime kept is hashed again (issue 10)."""

    def setUp(self):
        self.tmp = kh.make_tmp(prefix="kache-memo-")
        self.store = os.path.join(self.tmp, "store")

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def built(self):
        ws = Workspace(self.tmp, self.store)
        ws.cargo("build")
        out = ws.run_app()
        self.settle()
        return ws, out

    def settle(self):
        """Waits for the background stores (they write the records)."""
        kh.wait_for(lambda: not kache_processes(self.store), 60, 0.1)

    def records(self):
        return [p for p in store_files(self.store, "memo")
                if open(p, "rb").read(8) == b"kcmemor2"]

    def sound(self, path):
        """The frame checked as docs/design.md says, with xxhsum."""
        return kh.record_payload("memo", path) is not None

    def test_damaged_memo_record_is_ignored_and_rewritten(self):
        ws, out = self.built()
        recs = self.records()
        self.assertTrue(recs, "no memo record written")
        self.assertTrue(all(self.sound(p) for p in recs))
        for p in recs:
            # a byte of every entry's content hash flipped: trusted, the record
            # would name other content and every crate would be compiled again
            data = bytearray(open(p, "rb").read())
            at, n = 28, int.from_bytes(data[24:28], "little")
            for _ in range(n):
                at += 2 + int.from_bytes(data[at:at + 2], "little") + 48
                data[at] ^= 0xFF
                at += 32
            self.assertEqual(at, len(data), "the payload is not as docs/design.md says")
            os.chmod(p, 0o600)
            open(p, "wb").write(bytes(data))
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "a damaged memo record was trusted")
        self.assertEqual(ws.run_app(), out)
        self.settle()
        for p in recs:
            self.assertTrue(os.path.exists(p) and self.sound(p), "%s not rewritten" % p)

    def test_memo_files_do_not_grow_with_warm_builds(self):
        # a restore moves the output's (the blob's) mtime: a per-file memo named
        # by the mtime left one more file behind per output on every hit
        # (a final binary is placed as a copy, a new inode each build: its
        # memo piled up; each copy is kept alive here, so that no inode number
        # comes back to hide one)
        ws, out = self.built()
        counts = []
        app = os.path.join(ws.dir, "target", "debug", "fixture-app")
        for i in range(4):
            os.link(app, os.path.join(self.tmp, "app-%d" % i))
            ws.cargo("clean")
            ws.cargo("build")
            self.assertEqual(ws.compiled(), [])
            self.settle()
            counts.append(len(store_files(self.store, "memo")))
        self.assertEqual(ws.run_app(), out)
        self.assertEqual(len(set(counts[1:])), 1, "memo files grow with hits: %s" % counts)

    def test_a_store_of_the_previous_record_format_keeps_its_hits(self):
        # a kache upgrade must not turn a warm store into a cold build: records
        # framed as the kache before this one did (format 2, BLAKE2b) are
        # still read, and rewritten in format 3 when next written
        ws, out = self.built()
        older = []
        for kind in ("entries", "manifests", "memo"):
            for p in store_files(self.store, kind):
                if open(p, "rb").read(8) == kh.RECORD_TAGS[kind][0]:
                    os.chmod(p, 0o600)
                    kh.record_to_format2(kind, p)
                    older.append((kind, p))
        self.assertEqual({k for k, _ in older}, {"entries", "manifests", "memo"})
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "records of format 2 were not read")
        self.assertEqual(ws.run_app(), out)
        self.settle()
        # a flipped byte in a format 2 record is still caught: fixture_app's
        # entry, whose crate no other depends on (a workspace library compiled
        # again makes an rlib of other bytes under cargo's incremental
        # compilation, so its dependents compile too: the first entry found
        # followed the keys' order, and was a library's once they changed)
        app = b"\xa5crate" + bytes([0xa0 | len("fixture_app")]) + b"fixture_app"
        kind, p = next((k, p) for k, p in older if k == "entries"
                       and open(p, "rb").read(8) == kh.RECORD_TAGS[k][1]
                       and app in open(p, "rb").read())
        data = bytearray(open(p, "rb").read())
        data[-1] ^= 0x01
        open(p, "wb").write(bytes(data))
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(len(ws.compiled()), 1, "a damaged format 2 entry was trusted")
        self.assertEqual(ws.run_app(), out)

    def changed_in_place(self, how):
        ws, out = self.built()
        p = os.path.join(ws.dir, "core/data.txt")
        text = open(p).read()
        new = text.replace("data-from", "DATA-FROM", 1)
        self.assertEqual(len(new), len(text))
        st = os.stat(p)
        if how == "in_place":
            with open(p, "w") as f:
                f.write(new)
        else:
            with open(p + ".new", "w") as f:
                f.write(new)
            os.rename(p + ".new", p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        now = os.stat(p)
        self.assertEqual((now.st_size, now.st_mtime_ns), (st.st_size, st.st_mtime_ns))
        # cargo sees the old mtime as fresh: a clean makes it ask kache
        ws.cargo("clean")
        ws.cargo("build")
        self.assertIn("fixture_core", ws.compiled(), "a stale memo entry was trusted")
        self.assertIn("DATA-FROM", ws.run_app())
        self.settle()
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [])
        self.assertIn("DATA-FROM", ws.run_app())

    def test_stale_memo_record_file_rewritten_in_place_same_size_and_mtime(self):
        self.changed_in_place("in_place")

    def test_stale_memo_record_file_replaced_by_rename_same_size_and_mtime(self):
        self.changed_in_place("rename")


RACE_ACTIONS = {
    # what a user (cp -p, rsync -t, tar x) does to core/src/lib.rs while rustc runs
    "in_place": "with open(p, 'w') as f: f.write(new)\nos.utime(p, ns=old)\n",
    "rename": "t = p + '.new'\nopen(t, 'w').write(new)\nos.utime(t, ns=old)\n"
              "os.rename(t, p)\n",
    "recreate": "os.unlink(p)\nopen(p, 'w').write(new)\nos.utime(p, ns=old)\n",
}


class RaceScenarios(unittest.TestCase):
    """An input changes while rustc compiles it, and its mtime is set back: the
    compile must not be stored under the new content (issue 7, item 2). A rustc
    shim makes the race deterministic: it changes the input once, right after (or,
    for an --extern, right before) the real rustc ran on the chosen crate."""

    def setUp(self):
        self.tmp = kh.make_tmp(prefix="kache-race-")
        self.store = os.path.join(self.tmp, "store")

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def racing(self, ws, crate, when, action):
        """Points ws at a rustc that runs `action` (python; argv is rustc's) once,
        `when` ("before"/"after") the real rustc compiles `crate`."""
        script = os.path.join(self.tmp, "action.py")
        mark = os.path.join(self.tmp, "action.done")
        with open(script, "w") as f:
            f.write("import os, shutil, sys\nargv = sys.argv[1:]\n" + action)
        shim = os.path.join(self.tmp, "racing-rustc")
        act = ("case \" $* \" in *' --crate-name %s '*) if [ ! -e '%s' ]; then "
               ": > '%s'; python3 '%s' \"$@\" || exit 99; fi;; esac\n" % (crate, mark, mark, script))
        with open(shim, "w") as f:
            f.write("#!/bin/sh\n"
                    "case \" $* \" in *' --crate-name '*) echo \"$*\" >> '%s';; esac\n"
                    % ws.log)
            f.write(act if when == "before" else "")
            f.write("'%s' \"$@\"\nrc=$?\n" % REAL_RUSTC)
            f.write(act if when == "after" else "")
            f.write("exit $rc\n")
        os.chmod(shim, 0o755)
        return shim

    def source_changed_during_compile(self, way):
        ws = Workspace(self.tmp, self.store)
        lib = os.path.join(ws.dir, "core/src/lib.rs")
        text = open(lib).read()
        old = "\"{} {} {} {} {}\""
        action = ("p = %r\nnew = %r\nst = os.stat(p)\nold = (st.st_atime_ns, st.st_mtime_ns)\n"
                  % (lib, text.replace(old, old[:-1] + " edited\"")) + RACE_ACTIONS[way])
        shim = self.racing(ws, "fixture_core", "after", action)
        before = os.stat(lib).st_mtime_ns
        ws.cargo("build", RUSTC=shim)
        self.assertIn("edited", open(lib).read())
        self.assertEqual(os.stat(lib).st_mtime_ns, before, "the shim kept the old mtime")
        # what the source says now must be what the program does
        ws.cargo("clean")
        ws.cargo("build")
        self.assertIn("edited", ws.run_app(), "a compile of other content was served")
        self.assertIn("fixture_core", ws.compiled())
        ws.cargo("clean")
        ws.cargo("build")
        self.assertEqual(ws.compiled(), [], "the honest compile is stored")
        self.assertIn("edited", ws.run_app())

    def test_source_rewritten_in_place_mtime_set_back(self):
        self.source_changed_during_compile("in_place")

    def test_source_replaced_by_rename_mtime_set_back(self):
        self.source_changed_during_compile("rename")

    def test_source_deleted_and_recreated_mtime_set_back(self):
        self.source_changed_during_compile("recreate")

    def test_extern_rlib_replaced_during_compile(self):
        ws = Workspace(self.tmp, self.store)
        other = os.path.join(self.tmp, "variant-target")
        ws.edit("core/src/lib.rs", "\"{} {} {} {} {}\"", "\"{} {} {} {} {} edited\"")
        ws.cargo("build", KACHE_DIR=os.path.join(self.tmp, "variant-store"),
                 CARGO_TARGET_DIR=other)
        variant = [os.path.join(other, "debug/deps", n)
                   for n in os.listdir(os.path.join(other, "debug/deps"))
                   if n.startswith("libfixture_core-") and n.endswith(".rlib")][0]
        ws.edit("core/src/lib.rs", "\"{} {} {} {} {} edited\"", "\"{} {} {} {} {}\"")
        # an --extern swapped (by rename, old mtime kept) after kache hashed it
        action = ("p = [a.split('=', 1)[1] for a in argv if a.startswith('fixture_core=')][0]\n"
                  "st = os.stat(p)\nshutil.copyfile(%r, p + '.new')\n"
                  "os.utime(p + '.new', ns=(st.st_atime_ns, st.st_mtime_ns))\n"
                  "os.rename(p + '.new', p)\n" % variant)
        shim = self.racing(ws, "fixture_app", "before", action)
        ws.cargo("build", RUSTC=shim, KACHE_BACKGROUND_STORE="false")
        self.assertIn("edited", ws.run_app(), "the shim swapped the rlib")
        ws.cargo("clean")
        ws.cargo("build")
        self.assertNotIn("edited", ws.run_app(), "an app linked to other content was served")
        self.assertIn("fixture_app", ws.compiled())


class RemoteScenarios(unittest.TestCase):
    """Two stores and two checkouts at different paths, standing for two machines,
    sharing one directory remote through their supervisors."""

    def setUp(self):
        self.tmp = kh.make_tmp(prefix="kache-remote-")
        self.remote = os.path.join(self.tmp, "remote")
        self.stores = []

    def tearDown(self):
        for store in self.stores:
            kh.supervisor_stop(KACHE, dict(os.environ, KACHE_DIR=store))
        kh.remove_tmp(self.tmp)

    def machine(self, name, root, **env):
        """A workspace and its store, its supervisor started; env overrides
        the defaults below (None removes one)."""
        store = os.path.join(self.tmp, name + "-store")
        ws = Workspace(root, store, name)
        # The wrapper's acknowledgement deadline (500 ms) is about a hung
        # supervisor; these tests are about what is served, and a test machine
        # can be far busier than a user's: 1 s.
        ws.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.remote, KACHE_DEADLINE_MS="1000")
        for k, v in env.items():
            if v is None:
                ws.env.pop(k, None)
            else:
                ws.env[k] = v
        self.stores.append(store)
        p = subprocess.run([KACHE, "supervisor", "start"], env=ws.env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return ws, store

    @staticmethod
    def supervisor_pid(ws):
        st = subprocess.run([KACHE, "supervisor", "status", "--json"], env=ws.env,
                            capture_output=True, text=True, timeout=60)
        return json.loads(st.stdout)["pid"]

    def uploaded(self, store):
        # the wrappers' background stores write the last intents after cargo
        # returns: an empty intents/ before they end is not drained
        intents = os.path.join(store, "intents")
        return (kh.wait_for(lambda: not kache_processes(store), 120, 0.1) and
                kh.wait_for(lambda: not os.listdir(intents), 120, 0.2))

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

    def test_a_build_scripts_probes_are_served_from_the_remote(self):
        """A build script's probes (one compiles, one fails) travel in packs
        like any compile: the second machine runs neither, and its build
        script sees the same answers (the failure replayed as one)."""
        a, store_a = self.machine("a", self.tmp)
        with open(os.path.join(a.dir, "core", "build.rs"), "w") as f:
            f.write(PROBE_BUILD_RS)
        a.cargo("build")
        self.assertIn("fixture_probe_bad", a.compiled())
        self.assertEqual(probe_cfgs(a), ["cargo:rustc-cfg=probe_ok"])
        self.assertTrue(self.uploaded(store_a), "uploads did not drain")
        self.assertTrue(os.listdir(os.path.join(self.remote, "packs", "fixture_probe_bad")))
        os.makedirs(os.path.join(self.tmp, "second", "machine"))
        b, store_b = self.machine("b", os.path.join(self.tmp, "second", "machine"))
        with open(os.path.join(b.dir, "core", "build.rs"), "w") as f:
            f.write(PROBE_BUILD_RS)
        b.cargo("build")
        self.assertEqual(b.compiled(), ["fixture_probe_nodir", "fixture_probe_searched"],
                         "the second machine ran a probe or a compile")
        self.assertEqual(probe_cfgs(b), ["cargo:rustc-cfg=probe_ok"])

    def test_a_slow_supervisor_is_waited_for_not_compiled_around(self):
        """On a loaded machine a healthy supervisor can take several scheduler
        slices to acknowledge a fetch (the bench's S3 remote-warm case compiled
        regex_syntax or syn so in 6 of 10 builds under load). With the default
        wrapper.deadline_ms the wrapper waits for it instead of compiling what
        the remote has: the supervisor is stopped (SIGSTOP) until a wrapper has
        asked, and 150 ms more."""
        a, store_a = self.machine("a", self.tmp)
        a.cargo("build")
        self.assertTrue(self.uploaded(store_a), "uploads did not drain")
        os.makedirs(os.path.join(self.tmp, "slow"))
        b, store_b = self.machine("b", os.path.join(self.tmp, "slow"), KACHE_DEADLINE_MS=None,
                                  KACHE_LOG="debug", KACHE_PREFETCH_MAX_BYTES="0")
        pid = self.supervisor_pid(b)
        log = os.path.join(store_b, "logs", "wrapper.log")
        os.kill(pid, signal.SIGSTOP)
        try:
            cargo = subprocess.Popen(["cargo", "build", "--offline", "-j2"], cwd=b.dir,
                                     env=b.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
            asked = kh.wait_for(lambda: os.path.exists(log) and
                                "no manifest" in open(log).read(), 120, 0.01)
            time.sleep(0.15)
        finally:
            os.kill(pid, signal.SIGCONT)
        _, err = cargo.communicate(timeout=600)
        self.assertEqual(cargo.returncode, 0, err)
        self.assertTrue(asked, "no wrapper asked the supervisor")
        self.assertEqual(b.compiled(), [], "compiled around a supervisor slow to answer:\n" +
                         "".join(l for l in open(log) if "key:" not in l)[-3000:])

    def test_a_hung_supervisor_costs_one_long_wait_not_one_per_miss(self):
        """A supervisor that stays stopped: the first misses wait the whole
        acknowledgement deadline (500 ms), and the wrapper remembers it, so the
        misses after them wait only 50 ms each (the build would otherwise
        take half a second more per crate) and then compile; the build is
        right. Ten seconds on, the mark is stale (made so here) and the next
        miss waits the whole deadline again; an answer removes the mark."""
        os.makedirs(os.path.join(self.tmp, "hung"))
        a, store_a = self.machine("a", os.path.join(self.tmp, "hung"), KACHE_DEADLINE_MS=None,
                                  KACHE_LOG="debug", KACHE_PREFETCH_MAX_BYTES="0")
        pid = self.supervisor_pid(a)
        log = os.path.join(store_a, "logs", "wrapper.log")
        marker = os.path.join(store_a, "run", "fetch.unanswered")
        os.kill(pid, signal.SIGSTOP)
        try:
            a.cargo("build")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        self.assertEqual(a.run_app().split()[0], "hello")
        lines = [l for l in open(log) if "remote fetch: timeout" in l]
        short = [l for l in lines if "short wait" in l]
        self.assertLessEqual(len(lines) - len(short), 2, "".join(lines))  # cargo -j2's first two
        self.assertGreaterEqual(len(short), 1, "".join(lines))
        self.assertTrue(os.path.exists(marker))
        old = time.time() - 11
        os.utime(marker, (old, old))
        with open(os.path.join(a.dir, "core", "src", "lib.rs"), "a") as f:
            f.write("\n// edited after SIGCONT\n")
        before = len(short)
        a.cargo("build")
        self.assertEqual(len([l for l in open(log) if "short wait" in l]), before)
        self.assertFalse(os.path.exists(marker),
                         "the mark of an unanswered fetch stayed after an answer")

    def test_pack_sum_is_the_documented_one(self):
        """docs/remote-layout.md's `sum`, computed from the doc alone (hashlib, the
        zstd CLI, a separate msgpack reader) over packs kache's dir remote wrote."""
        import hashlib
        a, store_a = self.machine("a", self.tmp)
        a.cargo("build")
        self.assertTrue(self.uploaded(store_a), "uploads did not drain")
        packs = []
        for d, _, files in os.walk(os.path.join(self.remote, "packs")):
            packs += [os.path.join(d, f) for f in files if f.endswith(".pack")]
        self.assertGreaterEqual(len(packs), len(CRATES))
        le8 = lambda n: n.to_bytes(8, "little")
        for path in packs:
            raw = subprocess.run(["zstd", "-d", "-c", path], capture_output=True,
                                 check=True, timeout=60).stdout
            doc, used = kh.mp_decode(raw)
            self.assertEqual(used, len(raw))
            self.assertEqual(doc["v"], 1)
            tag = b"kache-pack-v1"
            h = hashlib.blake2b(digest_size=32)
            h.update(le8(len(tag)) + tag)
            for field in ("candidate", "entry"):
                h.update(le8(len(doc[field])) + doc[field])
            self.assertEqual(h.digest(), doc["sum"], path)
            self.assertEqual(os.path.basename(path), doc["res"].hex() + ".pack")
            for blob_hash, blob in doc["blobs"]:
                self.assertEqual(hashlib.blake2b(blob, digest_size=32).digest(), blob_hash)

    def test_secret_env_dep_never_stored_nor_uploaded(self):
        """A value read by env!("MY_API_TOKEN") reaches no file kache writes or
        uploads; the restored .d still carries the user's own value for cargo."""
        secret = "kache-secret-" + "7f3a9c0e" * 5
        a, store_a = self.machine("a", self.tmp)
        a.edit("app/src/main.rs", "fn main() {",
               "const TOKEN_LEN: usize = env!(\"MY_API_TOKEN\").len();\n\nfn main() {")
        a.edit("app/src/main.rs", "println!(\"{} {}\",", "println!(\"{} {} {}\", TOKEN_LEN,")
        a.env["MY_API_TOKEN"] = secret
        a.cargo("build")
        out = a.run_app()
        self.assertTrue(out.startswith("%d hello" % len(secret)), out)
        self.assertTrue(self.uploaded(store_a), "uploads did not drain")
        places = 0
        for root in (store_a, self.remote):
            for d, _, files in os.walk(root):
                for f in files:
                    p = os.path.join(d, f)
                    if not os.path.isfile(p) or os.path.islink(p):
                        continue  # run/'s sockets
                    data = open(p, "rb").read()
                    if p.endswith(".pack"):
                        data = subprocess.run(["zstd", "-d", "-c", p], capture_output=True,
                                              check=True, timeout=60).stdout
                        places += 1
                    self.assertNotIn(secret.encode(), data, p)
        self.assertGreater(places, 0, "no pack uploaded")
        # the warm build hits, and cargo then finds the restored crate fresh
        a.cargo("clean")
        a.cargo("build")
        self.assertEqual(a.compiled(), [])
        self.assertEqual(a.run_app(), out)
        deps = os.path.join(a.dir, "target/debug/deps")
        d = [n for n in os.listdir(deps) if n.startswith("fixture_app-") and n.endswith(".d")]
        self.assertIn("# env-dep:MY_API_TOKEN=%s\n" % secret,
                      open(os.path.join(deps, d[0])).read())
        again = a.cargo("build")
        self.assertNotIn("Compiling fixture-app", again.stderr, "cargo rebuilt a fresh crate")
        # another value is another result
        other = a.cargo("build", MY_API_TOKEN="short")
        self.assertIn("fixture_app", a.compiled(), other.stderr)
        self.assertTrue(a.run_app().startswith("5 hello"))

    def test_a_compile_that_reads_a_secret_stays_on_this_machine(self):
        """A crate that embeds a secret-looking variable's value (env! of an API
        token) is stored and served on this machine and never uploaded: no pack of
        it, no byte of the value and no line of it in the session manifest in the
        remote, said once in the log; the other crates are uploaded. A second
        machine with the same value compiles it itself. CARGO_PKG_AUTHORS,
        which clap's `author` reads, is no secret: such a crate is uploaded."""
        secret = "kache-embedded-" + "5e7a1b2c" * 5
        a, store_a = self.machine("a", self.tmp, KACHE_LOG="info")
        def embed(ws):
            ws.edit("app/src/main.rs", "fn main() {",
                    "const TOKEN: &str = env!(\"MY_API_TOKEN\");\n\nfn main() {")
            ws.edit("app/src/main.rs", "println!(\"{} {}\",", "println!(\"{} {} {}\", TOKEN,")
            ws.edit("core/src/lib.rs", "pub fn summary", "pub const AUTHORS: &str = "
                    "env!(\"CARGO_PKG_AUTHORS\");\n\npub fn summary")
            ws.env["MY_API_TOKEN"] = secret

        embed(a)
        a.cargo("build")
        out = a.run_app()
        self.assertTrue(out.startswith(secret + " hello"), out)
        self.assertTrue(self.uploaded(store_a), "uploads did not drain")
        packs = os.path.join(self.remote, "packs")
        self.assertFalse(os.path.exists(os.path.join(packs, "fixture_app")),
                         "the crate that embeds the secret was uploaded")
        for crate in CRATES - {"fixture_app"}:
            self.assertTrue(os.listdir(os.path.join(packs, crate)), crate + " not uploaded")
        log = open(os.path.join(store_a, "logs", "wrapper.log")).read()
        self.assertEqual(log.count("fixture_app: kept on this machine, not uploaded: its "
                                   "compile read MY_API_TOKEN"), 1, log[-3000:])
        self.assertNotIn(secret, log)
        stats = subprocess.run([KACHE, "stats", "--json"], env=a.env, capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(json.loads(stats.stdout)["kept_local"], 1, stats.stdout)
        stats = subprocess.run([KACHE, "stats"], env=a.env, capture_output=True, text=True,
                               timeout=60)
        self.assertIn("kept here         1 (they read a secret-looking variable", stats.stdout)
        # served here; the hit is kept out of the session manifest too
        a.cargo("clean")
        a.cargo("build")
        self.assertEqual(a.compiled(), [])
        self.assertEqual(a.run_app(), out)
        kh.supervisor_stop(KACHE, a.env)
        sessions = os.path.join(self.remote, "sessions")
        names = os.listdir(sessions)
        self.assertTrue(names, "no session manifest saved")
        for name in names:
            text = open(os.path.join(sessions, name), "rb").read()
            self.assertIn(b"\nfixture_core ", text)
            self.assertNotIn(b"\nfixture_app ", text, name)
        for d, _, files in os.walk(self.remote):
            for f in files:
                data = open(os.path.join(d, f), "rb").read()
                if f.endswith(".pack"):
                    data = subprocess.run(["zstd", "-d", "-c", os.path.join(d, f)],
                                          capture_output=True, check=True, timeout=60).stdout
                self.assertNotIn(secret.encode(), data, os.path.join(d, f))
        # another machine with the same value: everything but the app from the remote
        os.makedirs(os.path.join(self.tmp, "second", "machine"))
        b, _ = self.machine("b", os.path.join(self.tmp, "second", "machine"))
        embed(b)
        b.cargo("build")
        self.assertEqual(b.compiled(), ["fixture_app"])
        self.assertEqual(b.run_app(), out)

    def test_stopped_supervisor_never_stalls_a_build(self):
        a, store_a = self.machine("a", self.tmp)
        pid = self.supervisor_pid(a)
        os.kill(pid, signal.SIGSTOP)
        try:
            a.cargo("build")
            self.assertTrue(CRATES.issubset(set(a.compiled())))
            self.assertEqual(a.run_app().split()[0], "hello")
        finally:
            os.kill(pid, signal.SIGCONT)

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
        kh.supervisor_stop(KACHE, b.env)
        v = subprocess.run([KACHE, "verify"], env=b.env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


if __name__ == "__main__":
    KACHE = kh.take_kache_arg()
    unittest.main()
