#!/usr/bin/env python3
"""C compiles through kache (`kache gcc -c foo.c -o foo.o`, wrapper/cc.c):
a hit runs no compiler process (a logging compiler script counts them) and
restores the object a plain gcc with the same -ffile-prefix-map writes; an
edited header, another -D or another compiler identity misses; -E passes
through and is counted; a moved project hits.

usage: test_cc.py <path to kache> [unittest args]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402

GCC = shutil.which("gcc")
FLAGS = ["-g", "-O1", "-Wall"]


class CcBase(unittest.TestCase):
    """A store, a logging compiler script, and projects to compile."""

    def setUp(self):
        self.tmp = kh.make_tmp("kache-cc-")
        self.store = os.path.join(self.tmp, "store")
        self.env = kh.store_env(self.tmp, self.store,
                                CARGO_HOME=os.path.join(self.tmp, "cargo-home"))
        self.log = os.path.join(self.tmp, "runs.log")
        self.cc = self.script("bin", "")

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def script(self, sub, version_line):
        """A compiler named gcc that logs each run, then runs the real gcc;
        with version_line, `-v` reports that instead."""
        d = os.path.join(self.tmp, sub)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "gcc")
        fake = (f'if [ "$1" = -v ]; then echo "{version_line}"; exit 0; fi\n'
                if version_line else "")
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\necho "$0 $*" >> {self.log}\n{fake}exec {GCC} "$@"\n')
        os.chmod(path, 0o755)
        return path

    def project(self, rel):
        d = os.path.join(self.tmp, rel)
        os.makedirs(d)
        with open(os.path.join(d, "foo.c"), "w") as f:
            f.write('#include "a.h"\n#include <stdio.h>\n'
                    'int f(void) { printf("%s\\n", __FILE__); return A + B; }\n')
        with open(os.path.join(d, "a.h"), "w") as f:
            f.write('#include "b.h"\n#define A 3\n')
        with open(os.path.join(d, "b.h"), "w") as f:
            f.write("#define B 4\n")
        return d

    def runs(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return f.read().splitlines()

    def kache_cc(self, d, *extra, cc=None):
        p = subprocess.run([kh.KACHE, cc or self.cc, "-c", "foo.c", "-o", "foo.o", *FLAGS,
                            *extra], cwd=d, env=self.env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def obj(self, d, name="foo.o"):
        with open(os.path.join(d, name), "rb") as f:
            return f.read()

    def stats(self):
        p = subprocess.run([kh.KACHE, "stats"], env=self.env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return {m.group(1): int(m.group(2))
                for m in re.finditer(r"^(hits|misses|pass-throughs)\s+(\d+)", p.stdout, re.M)}

    def plain(self, d, *extra):
        """What gcc itself writes, with the prefix map kache adds for the cwd."""
        subprocess.run([GCC, "-c", "foo.c", "-o", "plain.o", *FLAGS, *extra,
                        f"-ffile-prefix-map={d}=."], cwd=d, check=True, timeout=120)
        return self.obj(d, "plain.o")



class CcScenarios(CcBase):

    def test_fresh_dir_hits_without_compiler_and_same_bytes(self):
        d1, d2 = self.project("one"), self.project("two/deeper")
        self.kache_cc(d1, "-MD")
        n = len(self.runs())
        self.assertGreater(n, 0)
        self.kache_cc(d2, "-MD")
        self.assertEqual(self.runs()[n:], [], "a hit ran the compiler")
        self.assertEqual(self.stats().get("hits"), 1)
        self.assertEqual(self.obj(d2), self.plain(d2, "-MD", "-MF", "plain.d"))
        with open(os.path.join(d2, "foo.d")) as f:
            restored = f.read()
        with open(os.path.join(d2, "plain.d")) as f:
            self.assertEqual(restored, f.read().replace("plain.o", "foo.o"))

    def test_moved_project_hits(self):
        d1 = self.project("here")
        self.kache_cc(d1)
        n = len(self.runs())
        moved = os.path.join(self.tmp, "elsewhere", "there")
        os.makedirs(os.path.dirname(moved))
        os.rename(d1, moved)
        os.unlink(os.path.join(moved, "foo.o"))
        self.kache_cc(moved)
        self.assertEqual(self.runs()[n:], [])
        self.assertEqual(self.obj(moved), self.plain(moved))

    def test_edited_header_misses(self):
        d = self.project("p")
        self.kache_cc(d)
        before = self.obj(d)
        with open(os.path.join(d, "b.h"), "w") as f:
            f.write("#define B 40\n")
        n = len(self.runs())
        self.kache_cc(d)
        self.assertEqual(len(self.runs()), n + 1, "the edited header did not miss")
        self.assertNotEqual(self.obj(d), before)
        self.assertEqual(self.obj(d), self.plain(d))
        self.assertEqual(self.stats().get("misses"), 2)

    def test_changed_define_misses(self):
        d = self.project("p")
        self.kache_cc(d, "-DX=1")
        n = len(self.runs())
        self.kache_cc(d, "-DX=2")
        self.assertEqual(len(self.runs()), n + 1)
        self.kache_cc(d, "-DX=1")
        self.assertEqual(len(self.runs()), n + 1, "-DX=1 again should hit")

    def test_other_compiler_identity_misses(self):
        d = self.project("p")
        self.kache_cc(d)
        other = self.script("other", "gcc version 99.0.0 (a different one)")
        n = len(self.runs())
        self.kache_cc(d, cc=other)
        compiles = [r for r in self.runs()[n:] if " -c " in r]
        self.assertEqual(len(compiles), 1, "another compiler identity was served a hit")

    def test_native_code_misses_on_another_cpu(self):
        # -march=native: the object is for this CPU; another CPU (a cpuinfo
        # file with other flags) must not be served it (was: a hit)
        d = self.project("p")
        cpus = []
        for i, flags in enumerate(("fpu sse2 avx2 avx512f", "fpu sse2 avx2")):
            cpus.append(os.path.join(self.tmp, "cpuinfo%d" % i))
            with open(cpus[-1], "w") as f:
                f.write("vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
                        "flags\t\t: %s\n" % flags)
        self.env["KACHE_TEST_CPUINFO"] = cpus[0]
        self.kache_cc(d, "-march=native")
        n = len(self.runs())
        self.kache_cc(d, "-march=native")
        self.assertEqual(len(self.runs()), n, "the same CPU should hit")
        self.env["KACHE_TEST_CPUINFO"] = cpus[1]
        self.kache_cc(d, "-march=native")
        self.assertEqual(len(self.runs()), n + 1, "another CPU was served a hit")
        # code for no particular CPU hits across them
        self.kache_cc(d)
        n = len(self.runs())
        self.env["KACHE_TEST_CPUINFO"] = cpus[0]
        self.kache_cc(d)
        self.assertEqual(len(self.runs()), n)

    def test_recache_runs_the_compiler(self):
        d = self.project("p")
        self.kache_cc(d)
        n = len(self.runs())
        self.env["KACHE_RECACHE"] = "1"
        self.kache_cc(d)
        self.assertEqual(len([r for r in self.runs()[n:] if " -c " in r]), 1,
                         "KACHE_RECACHE=1 was served a hit")
        del self.env["KACHE_RECACHE"]
        n = len(self.runs())
        self.kache_cc(d)
        self.assertEqual(self.runs()[n:], [])

    def test_header_outside_the_project_is_the_new_places(self):
        """-I../inc names a header outside the cwd: a copy of the project
        beside another ../inc must compile against that one, not hit on the
        first copy's header (which still exists, unchanged)."""
        objs = []
        for rel, k in (("a/proj", "1"), ("b/proj", "2")):
            d = self.project(rel)
            os.makedirs(os.path.join(d, "..", "inc"))
            with open(os.path.join(d, "..", "inc", "k.h"), "w") as f:
                f.write(f"#define K {k}\n")
            with open(os.path.join(d, "foo.c"), "a") as f:
                f.write('#include "k.h"\nint g(void) { return K; }\n')
            self.kache_cc(d, "-I../inc")
            objs.append(self.obj(d))
            self.assertEqual(self.obj(d), self.plain(d, "-I../inc"))
        self.assertNotEqual(objs[0], objs[1])

    def test_stats_and_report_by_language(self):
        d = self.project("p")
        with open(os.path.join(d, "b.cpp"), "w") as f:
            f.write("template <int N> int g() { return N; }\nint h() { return g<2>(); }\n")
        with open(os.path.join(d, "s.S"), "w") as f:
            f.write(".text\n.globl k\nk:\n  ret\n")
        self.kache_cc(d)
        self.kache_cc(d)
        for src, obj in (("b.cpp", "b.o"), ("s.S", "s.o")):
            p = subprocess.run([kh.KACHE, self.cc, "-c", src, "-o", obj], cwd=d, env=self.env,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
        subprocess.run([kh.KACHE, self.cc, "-E", "foo.c"], cwd=d, env=self.env,
                       capture_output=True, timeout=120, check=True)
        rep = subprocess.run([kh.KACHE, "report", "--format", "json"], env=self.env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        st = subprocess.run([kh.KACHE, "stats", "--json"], env=self.env, capture_output=True,
                            text=True, timeout=60)
        self.assertEqual(st.returncode, 0, st.stderr)
        one = {"hits": 0, "misses": 1, "errors": 0}
        self.assertEqual(json.loads(st.stdout)["languages"], {
            "c": {"hits": 1, "misses": 1, "passes": 1, "errors": 0},
            "c++": dict(one, passes=0), "asm": dict(one, passes=0)})
        self.assertEqual(json.loads(rep.stdout)["languages"], {
            "c": {"hits": 1, "misses": 1, "pass_throughs": 1, "errors": 0},
            "c++": dict(one, pass_throughs=0), "asm": dict(one, pass_throughs=0)})
        text = subprocess.run([kh.KACHE, "stats"], env=self.env, capture_output=True,
                              text=True, timeout=60).stdout
        self.assertRegex(text, r"(?m)^by language\n  c +1 hits, 1 misses, 1 pass-throughs, "
                               r"0 errors\n  c\+\+ +0 hits, 1 misses")
        text = subprocess.run([kh.KACHE, "report"], env=self.env, capture_output=True,
                              text=True, timeout=60).stdout
        self.assertIn("by language: c 1 hits, 1 misses, 1 pass-throughs, 0 errors; "
                      "c++ 0 hits, 1 misses, 0 pass-throughs, 0 errors; asm 0 hits", text)

    def test_preprocess_only_passes_through(self):
        d = self.project("p")
        p = subprocess.run([kh.KACHE, self.cc, "-E", "foo.c"], cwd=d, env=self.env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("return 3 + 4;", p.stdout)
        self.assertEqual(len(self.runs()), 1)
        self.assertEqual(self.stats().get("pass-throughs"), 1)

    def test_compile_error_is_the_compilers(self):
        d = self.project("p")
        with open(os.path.join(d, "foo.c"), "a") as f:
            f.write("this is not C\n")
        p = subprocess.run([kh.KACHE, self.cc, "-c", "foo.c", "-o", "foo.o"], cwd=d,
                           env=self.env, capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("error", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "foo.o")))


class CcRemoteScenarios(CcBase):
    """C results through a directory remote: runner 1 (store A) compiles and
    `kache supervisor stop` flushes; runner 2 (an empty store B, the project at
    another path) gets the object with no compiler process."""

    def setUp(self):
        super().setUp()
        self.remote = os.path.join(self.tmp, "remote")
        self.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=self.remote,
                        KACHE_DEADLINE_MS="1000", CARGO_PKG_NAME="c-demo")

    def tearDown(self):
        for store in (self.store, self.store + "-b"):
            kh.supervisor_stop(kh.KACHE, dict(self.env, KACHE_DIR=store), "10s")
        super().tearDown()

    def test_second_runner_fetches_c_object(self):
        d1 = self.project("runner1/src")
        self.kache_cc(d1, "-MD")
        p = kh.supervisor_stop(kh.KACHE, self.env, "30s")
        self.assertEqual(p.returncode, 0, p.stderr)
        packs = os.listdir(os.path.join(self.remote, "packs", "c_demo"))
        self.assertEqual(len(packs), 1, packs)
        n = len(self.runs())
        d2 = self.project("runner2/elsewhere/src")
        self.env["KACHE_DIR"] = self.store + "-b"
        self.kache_cc(d2, "-MD")
        # a fresh store asks the compiler its identity (-v, memoized), once
        self.assertEqual([r for r in self.runs()[n:] if not r.endswith(" -v")], [],
                         "runner 2 ran the compiler")
        self.assertEqual(self.obj(d2), self.plain(d2, "-MD", "-MF", "plain.d"))
        st = subprocess.run([kh.KACHE, "stats"], env=self.env, capture_output=True, text=True,
                            timeout=60).stdout
        self.assertRegex(st, r"(?m)^hits\s+1 \(local 0, prefetched 0, remote 1\)")

    def test_outside_cargo_goes_under_kache_cc(self):
        self.env.pop("CARGO_PKG_NAME")
        self.kache_cc(self.project("p"))
        kh.supervisor_stop(kh.KACHE, self.env, "30s")
        self.assertEqual(len(os.listdir(os.path.join(self.remote, "packs", "_kache_cc"))), 1)


CC_CRATE = "/usr/share/cargo/registry"


@unittest.skipUnless(os.path.isdir(os.path.join(CC_CRATE, "cc-1.0.73")),
                     "Debian's librust-cc-dev 1.0.73 is not installed")
class CcCrateScenarios(unittest.TestCase):
    """A build script compiling C with Debian's cc crate, CC routed through
    kache by cargo's [env]: a second build of the crate moved elsewhere, with a
    fresh target dir, runs neither rustc nor the C compiler and prints the same."""

    def setUp(self):
        self.tmp = kh.make_tmp("kache-cccrate-")
        self.store = os.path.join(self.tmp, "store")
        self.log = os.path.join(self.tmp, "runs.log")
        gcc = os.path.join(self.tmp, "bin", "gcc")
        os.makedirs(os.path.dirname(gcc))
        with open(gcc, "w") as f:
            f.write(f'#!/bin/sh\necho "$*" >> {self.log}\nexec {GCC} "$@"\n')
        os.chmod(gcc, 0o755)
        self.env = kh.store_env(self.tmp, self.store, RUSTC_WRAPPER=kh.KACHE,
                                CARGO_HOME=os.path.join(self.tmp, "cargo-home"))
        self.env.pop("CC", None)
        self.gcc = gcc

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def crate(self, rel, cc_env=True):
        d = os.path.join(self.tmp, rel)
        files = {
            "Cargo.toml": '[package]\nname = "cdemo"\nversion = "0.1.0"\nedition = "2021"\n'
                          '[build-dependencies]\ncc = "=1.0.73"\n',
            ".cargo/config.toml": '[source.crates-io]\nreplace-with = "debian"\n'
                                  f'[source.debian]\ndirectory = "{CC_CRATE}"\n'
                                  '[net]\noffline = true\n' +
                                  (f'[env]\nCC = "{kh.KACHE} {self.gcc}"\n' if cc_env else ""),
            "build.rs": 'fn main() { cc::Build::new().file("csrc/add.c").include("csrc")'
                        '.compile("add"); }\n',
            "csrc/add.c": '#include "add.h"\nint add(int a, int b) { return a + b + K; }\n',
            "csrc/add.h": "#define K 1\n",
            "src/main.rs": 'extern "C" { fn add(a: i32, b: i32) -> i32; }\n'
                           'fn main() { println!("{}", unsafe { add(2, 3) }); }\n',
        }
        kh.write_tree(d, files)
        return d

    def build_and_run(self, d):
        p = subprocess.run(["cargo", "build", "-q"], cwd=d, env=self.env, capture_output=True,
                           text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        return subprocess.run([os.path.join(d, "target", "debug", "cdemo")],
                              capture_output=True, text=True, timeout=60).stdout

    def test_moved_crate_hits_c_and_rust(self):
        self.assertEqual(self.build_and_run(self.crate("one")), "6\n")
        n = len(open(self.log).read().splitlines())
        self.assertGreater(n, 0, "the C compiler did not go through CC")
        self.assertEqual(self.build_and_run(self.crate("elsewhere/two")), "6\n")
        self.assertEqual(len(open(self.log).read().splitlines()), n,
                         "the moved build ran the C compiler")
        st = subprocess.run([kh.KACHE, "stats"], env=self.env, capture_output=True, text=True,
                            timeout=60).stdout
        self.assertRegex(st, r"(?m)^misses\s+4$")
        self.assertRegex(st, r"(?m)^hits\s+4 ")
        self.assertRegex(st, r"(?m)^  rust +3 hits, 3 misses")
        self.assertRegex(st, r"(?m)^  c +1 hits, 1 misses")

    def test_session_manifest_names_the_c_objects(self):
        """With a directory remote, the session manifest `supervisor stop`
        writes names the build script's C object beside the crate's Rust
        results: a prefetch of the session brings it too."""
        remote = os.path.join(self.tmp, "remote")
        self.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=remote, KACHE_DEADLINE_MS="1000")
        try:
            self.assertEqual(self.build_and_run(self.crate("one")), "6\n")
        finally:
            p = kh.supervisor_stop(kh.KACHE, self.env, "30s")
        self.assertEqual(p.returncode, 0, p.stderr)
        packs = {n[:-len(".pack")] for n in os.listdir(os.path.join(remote, "packs", "cdemo"))}
        self.assertEqual(len(packs), 2, "cdemo's binary and add.c's object")
        listed = set()
        for name in os.listdir(os.path.join(remote, "sessions")):
            with open(os.path.join(remote, "sessions", name), "rb") as f:
                for line in f.read().decode().splitlines():
                    words = line.split()
                    # [version]; version 3: version or -, part or -
                    if len(words) in (3, 4, 5) and words[0] == "cdemo":
                        listed.add(words[1])
        self.assertEqual(packs - listed, set(), "packs the session manifest does not name")

    def test_a_check_sessions_manifest_names_the_c_objects_too(self):
        """`cargo check` runs the build script as a build does: its C
        compiles (their parent the build script, not cargo) belong to the
        cargo command's check session, found through the build script's
        parent, so the one session manifest the stop writes (profile
        debug.check) names the C object too; none goes to a build session
        that never ran."""
        remote = os.path.join(self.tmp, "remote")
        self.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=remote, KACHE_DEADLINE_MS="1000")
        d = self.crate("one")
        try:
            p = subprocess.run(["cargo", "check", "-q"], cwd=d, env=self.env,
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            p = kh.supervisor_stop(kh.KACHE, self.env, "30s")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreater(len(open(self.log).read().splitlines()), 0, "no C compile")
        packs = {n[:-len(".pack")] for n in os.listdir(os.path.join(remote, "packs", "cdemo"))}
        names = os.listdir(os.path.join(remote, "sessions"))
        self.assertEqual(len(names), 1, names)
        with open(os.path.join(remote, "sessions", names[0]), "rb") as f:
            body = f.read().decode()
        self.assertIn("\nprofile debug.check\n", body)
        listed = {line.split()[1] for line in body.splitlines()
                  if line.split()[:1] == ["cdemo"] and len(line.split()) in (3, 4, 5)}
        self.assertEqual(packs - listed, set(), "packs the check session does not name")

    def test_kache_init_routes_the_cc_crate(self):
        """The one line `kache init` writes into CARGO_HOME ([env] CC = "kache
        cc") sends the build script's compiles through kache: kache on PATH,
        and cc on PATH the logging compiler."""
        os.symlink(os.path.abspath(kh.KACHE), os.path.join(os.path.dirname(self.gcc), "kache"))
        os.rename(self.gcc, os.path.join(os.path.dirname(self.gcc), "cc"))
        self.env["PATH"] = os.path.dirname(self.gcc) + ":" + self.env["PATH"]
        p = subprocess.run([kh.KACHE, "init"], env=self.env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.build_and_run(self.crate("one", cc_env=False)), "6\n")
        runs = open(self.log).read().splitlines()
        self.assertTrue([r for r in runs if "add.c" in r], runs)
        self.assertEqual(self.build_and_run(self.crate("two", cc_env=False)), "6\n")
        self.assertEqual(open(self.log).read().splitlines(), runs,
                         "the second build ran the C compiler")


REGISTRY = "/usr/share/cargo/registry"


def registry_has(prefix):
    return os.path.isdir(REGISTRY) and any(n.startswith(prefix) for n in os.listdir(REGISTRY))


class RealCCrates(unittest.TestCase):
    """Debian's ring 0.16 and blake3 1.x, whose build scripts compile C and
    assembly with the cc crate, CC routed through kache by cargo's [env]: cold,
    then a fresh target dir (no C compile runs, nothing reaches rustc), then a
    copy of the workspace at another path with another CARGO_HOME (the same).
    Counting shims for rustc (RUSTC=) and gcc (the CC kache runs) make "served
    from the cache" a fact."""

    def setUp(self):
        self.tmp = kh.make_tmp("kache-ccreal-")
        self.store = os.path.join(self.tmp, "store")
        self.cc_log = os.path.join(self.tmp, "gcc.log")
        self.rustc_log = os.path.join(self.tmp, "rustc.log")
        self.gcc = os.path.join(self.tmp, "bin", "gcc")
        self.rustc = os.path.join(self.tmp, "bin", "rustc")
        os.makedirs(os.path.dirname(self.gcc))
        with open(self.gcc, "w") as f:
            f.write(f'#!/bin/sh\necho "$*" >> {self.cc_log}\nexec {GCC} "$@"\n')
        with open(self.rustc, "w") as f:
            f.write("#!/bin/sh\ncase \" $* \" in *' --crate-name '*) "
                    f"echo \"$*\" >> '{self.rustc_log}';; esac\n"
                    f"exec '{kh.real_rustc()}' \"$@\"\n")
        for path in (self.gcc, self.rustc):
            os.chmod(path, 0o755)

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def workspace(self, rel, dep, code):
        d = os.path.join(self.tmp, rel)
        files = {
            "Cargo.toml": '[package]\nname = "cdeps"\nversion = "0.1.0"\nedition = "2021"\n'
                          f'[dependencies]\n{dep}\n',
            ".cargo/config.toml": '[source.crates-io]\nreplace-with = "debian"\n'
                                  f'[source.debian]\ndirectory = "{REGISTRY}"\n'
                                  '[net]\noffline = true\n'
                                  f'[env]\nCC = "{os.path.abspath(kh.KACHE)} {self.gcc}"\n',
            "src/main.rs": f"fn main() {{ {code} }}\n",
        }
        for rel_path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel_path)), exist_ok=True)
            with open(os.path.join(d, rel_path), "w") as f:
                f.write(text)
        return d

    def build(self, d, home, plain=False):
        """Builds and runs d: the program's output, the C compiler's runs and
        the compiles that reached rustc. plain: no kache at all."""
        for log in (self.cc_log, self.rustc_log):
            if os.path.exists(log):
                os.unlink(log)
        env = kh.store_env(self.tmp, self.store, RUSTC_WRAPPER=os.path.abspath(kh.KACHE),
                           RUSTC=self.rustc, CARGO_HOME=os.path.join(self.tmp, home),
                           drop=("CC", "CXX", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"))
        if plain:
            env.pop("RUSTC_WRAPPER")
            env["CC"] = GCC  # the environment's CC wins over [env]
        p = subprocess.run(["cargo", "build", "-j2"], cwd=d, env=env, capture_output=True,
                           text=True, timeout=1800)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = subprocess.run([os.path.join(d, "target", "debug", "cdeps")], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout, self.lines(self.cc_log), [
            r for r in self.lines(self.rustc_log) if "--crate-name ___" not in r]

    @staticmethod
    def lines(path):
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def warm_and_moved(self, dep, code, probe=None):
        """probe: the build script's own compile-and-link probe (blake3's
        flag_check.c, no -c: kache passes it through as no-c), which runs
        on every build; every other C compiler run fails the test."""
        d = self.workspace("one/ws", dep, code)
        out, cc, rustc = self.build(d, "home-one")
        self.assertTrue([r for r in cc if " -c " in r], "no C compile went through CC")
        self.assertTrue(rustc)
        plain = os.path.join(self.tmp, "plain", "ws")
        shutil.copytree(d, plain, ignore=shutil.ignore_patterns("target"))
        self.assertEqual(self.build(plain, "home-plain", plain=True)[0], out,
                         "the program built without kache behaves otherwise")
        runs = []
        shutil.rmtree(os.path.join(d, "target"))
        runs.append(("fresh target dir", self.build(d, "home-one")))
        moved = os.path.join(self.tmp, "elsewhere", "deeper", "ws2")
        shutil.copytree(d, moved, ignore=shutil.ignore_patterns("target"))
        runs.append(("moved workspace, other CARGO_HOME", self.build(moved, "home-two")))
        for what, (o, c, r) in runs:
            self.assertEqual(o, out, what)
            self.assertEqual(r, [], f"{what}: compiles reached rustc")
            left = [x for x in c if probe is None or probe not in x or " -c " in x]
            self.assertEqual(left, [], f"{what}: the C compiler ran")

    @unittest.skipUnless(registry_has("ring-0.16."), "Debian's librust-ring-dev 0.16 is not "
                         "installed (scripts/example-deps.sh installs it)")
    def test_ring(self):
        self.warm_and_moved('ring = "0.16"', 'let d = ring::digest::digest(&ring::digest::SHA256,'
                            ' b"kache"); println!("{:02x?}", d.as_ref());')

    @unittest.skipUnless(registry_has("blake3-1."), "Debian's librust-blake3-dev is not "
                         "installed (scripts/example-deps.sh installs it)")
    def test_blake3(self):
        self.warm_and_moved('blake3 = "1"', 'println!("{}", blake3::hash(b"kache").to_hex());',
                            probe="flag_check.c")


if __name__ == "__main__":
    kh.take_kache_arg()
    unittest.main()
