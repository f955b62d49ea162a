#!/usr/bin/env python3
"""Prefetch over real cargo builds of tests/fixtures/ws: two stores standing for
two CI runners over one remote; the second runner's wrapper starts its supervisor,
hints a build session, and the prefetch worker warms the store before cargo asks.

usage: test_prefetch.py <path to kache> [unittest args]
"""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, os.path.join(HERE, "..", "s3"))
sys.path.insert(0, HERE)
import kache_harness as kh  # noqa: E402
from kache_harness import CRATES  # noqa: E402


# the harness's (test_planner_client.py takes them from here too)
kache = kh.kache_cmd
status = kh.sup_status
stats = kh.kache_stats


def wait_prefetch(test, ws, what, timeout=120, settled=True):
    """Waits (bounded) until what(status["prefetch"]) holds and, when settled,
    no session is queued or running (an early hint's session may end before
    the compile's hint it made wait); returns the counters."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        st = status(ws)
        last = st and st.get("prefetch")
        if last is not None and what(last) and (
                not settled or last["sessions_queued"] == 0):
            return last
        time.sleep(0.2)
    test.fail("prefetch counters never got there: %s" % last)


def considered(p):
    """The keys prefetch sessions took up: packs imported, or results the
    store had when the session got to them."""
    return p["packs"] + p["skipped"]["present"]


def session_and_compile_hint(p):
    """A session done and the compile's hint counted: the hint is a file the
    supervisor takes when its loop gets to it, which on a slow machine (the
    sanitizer pass) can be after the early hint's session has ended."""
    return p["sessions_done"] >= 1 and p["hints"] - p["hints_early"] >= 1



# greet-macro made to read a variable neither cargo nor kache sees: a walk of
# the whole environment (std::env::vars reads `environ`, no call kache traces:
# wrapper/trace.c keys what std::env::var reads), so that a result in the
# remote can be wrong for a runner whose variable differs
SHOUT_UNTRACKED = ("let word = input.to_string().to_uppercase();",
                   "let word = input.to_string().to_uppercase()\n"
                   "        + &std::env::vars().find(|(k, _)| k == \"KACHE_FIXTURE_SHOUT\")"
                   ".map(|(_, v)| v).unwrap_or_default();")


def check_recache_replaces_the_remotes_result(test, runner, packs):
    """KACHE_RECACHE=1 on a runner replaces, in the remote, the packs of the
    results it compiled again, and the parts of the session manifest it saves
    hold the new ones: a later fresh runner, prefetching that manifest, is
    served the recompiled result. runner(name, **env): a fresh runner over the
    remote, greet-macro edited; packs(crate): the inflated documents of the
    crate's packs in the remote, as another client reads them."""
    def stop(ws):
        p = kache(ws, "supervisor", "stop", timeout=120)
        test.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    a = runner("a", KACHE_FIXTURE_SHOUT="old")
    a.cargo("build")
    test.assertIn("DONEold!", a.run_app())
    stop(a)
    b = runner("b", KACHE_FIXTURE_SHOUT="new")
    b.cargo("build")
    # the premise: the remote's result is served where cargo would not
    # rebuild either, and it is wrong here
    test.assertEqual(b.compiled(), [])
    test.assertIn("DONEold!", b.run_app())
    b.cargo("clean")
    b.cargo("build", KACHE_RECACHE="1")
    test.assertIn("fixture_app", b.compiled())
    test.assertIn("DONEnew!", b.run_app())
    # a workspace member's rlib is not the same bytes from one compile to the
    # next (incremental: its object's name changes), so this is runner b's
    rlib, = glob.glob(os.path.join(b.dir, "target/debug/deps/libfixture_core-*.rlib"))
    with open(rlib, "rb") as f:
        b_rlib = f.read()
    stop(b)
    core = packs("fixture_core")
    test.assertEqual(len(core), 1, "one result key, its pack replaced in place")
    test.assertTrue(b_rlib in core[0], "the remote's pack is still runner a's")
    test.assertTrue(any(b"DONEnew!" in d for d in packs("fixture_app")))
    c = runner("c", KACHE_FIXTURE_SHOUT="new")
    c.cargo("check")
    pf = wait_prefetch(test, c, session_and_compile_hint)
    test.assertGreater(pf["packs_from_bundle_parts"], 0, pf)
    c.cargo("build")
    test.assertEqual(c.compiled(), [])
    test.assertIn("DONEnew!", c.run_app())


class PrefetchDir(kh.DirRunners, unittest.TestCase):
    TMP_PREFIX = "kache-prefetch-"

    def populate(self):
        a = self.runner("a", self.tmp, start=True)
        self.a_dir = a.dir
        self.a_store = a.env["KACHE_DIR"]
        a.cargo("build")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.a_stop = p.stdout + p.stderr
        return a.run_app()

    def session_clues(self, b):
        """What to read when a fresh runner found no session manifest: runner
        a's stop, the remote's sessions, the logs' session lines."""
        sessions = os.path.join(self.remote, "sessions")
        lines = []
        for st in (self.a_store, b.env["KACHE_DIR"]):
            for name in ("supervisor.log", "prefetch.0.log"):
                path = os.path.join(st, "logs", name)
                if os.path.exists(path):
                    with open(path) as f:
                        lines += [l for l in f if "session" in l or "hint" in l]
        return "a's stop: %s\nremote sessions: %s\n%s" % (
            self.a_stop, os.listdir(sessions) if os.path.isdir(sessions) else None,
            "".join(lines[-40:]))

    def test_fresh_runner_is_served_from_its_store_after_prefetch(self):
        out = self.populate()
        b = self.runner("b", os.path.join(self.tmp, "second", "runner"))
        # the first command of the job starts the supervisor from a wrapper and
        # hints the session; `check` results are not in the remote, but a build
        # script compiles fully under `check` too, so this command may fetch that
        # one result itself (prefetch then counts it as present)
        b.cargo("check")
        self.assertIsNotNone(status(b), "no wrapper started a supervisor")
        pf = wait_prefetch(self, b, session_and_compile_hint)
        # the compile's hint; and an early one when cargo wrote Cargo.lock
        # before it asked `rustc -vV` (it may, on a busy machine): one session
        self.assertEqual(pf["hints"] - pf["hints_early"], 1, pf)
        self.assertEqual(pf["sessions"], 1, pf)
        self.assertGreaterEqual(pf["packs"] + pf["skipped"]["present"], len(CRATES), pf)
        self.assertGreater(pf["bytes"], 0, pf)
        before = stats(b)
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "compiles reached rustc after the prefetch")
        self.assertEqual(b.run_app(), out)
        after = stats(b)
        self.assertEqual(after["remote_hits"], before["remote_hits"],
                         "the build fetched on a miss: prefetch did not serve it")
        self.assertEqual(after["misses"], before["misses"], "the build compiled")
        self.assertGreater(after["hits"], before["hits"])
        log = open(os.path.join(b.env["KACHE_DIR"], "logs", "prefetch.0.log")).read()
        self.assertRegex(log, r"prefetch .*: \d+ crates, [1-9]\d* packs imported")

    def test_blobs_written_past_the_page_cache_restore_the_same_build(self):
        # cache.import_writes = direct: every blob the prefetch imports is
        # written with O_DIRECT (whole blocks from an aligned buffer, the file
        # then cut to its size); the build served from them runs the same,
        # and every blob holds the bytes of runner a's
        out = self.populate()
        b = self.runner("b", os.path.join(self.tmp, "direct", "runner"),
                        KACHE_IMPORT_WRITES="direct")
        b.cargo("check")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        with open(os.path.join(b.env["KACHE_DIR"], "logs", "prefetch.0.log")) as f:
            log = f.read()
        m = re.search(r"(\d+) packs imported \((\d+) bytes\).*"
                      r"blobs written: \d+ MB direct, 0 MB buffered", log)
        self.assertIsNotNone(m, log)
        self.assertGreater(int(m.group(1)), 0, pf)
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "compiles reached rustc after the prefetch")
        self.assertEqual(b.run_app(), out)
        blobs_a = os.path.join(self.a_store, "blobs")
        blobs_b = os.path.join(b.env["KACHE_DIR"], "blobs")
        names = [os.path.relpath(os.path.join(d, f), blobs_b)
                 for d, _, files in os.walk(blobs_b) for f in files]
        # b's own `check` may have stored a build script's result: a's are
        # the imported ones
        self.assertTrue([n for n in names if os.path.exists(os.path.join(blobs_a, n))])
        for name in names:
            with open(os.path.join(blobs_b, name), "rb") as fb:
                data = fb.read()
            if os.path.exists(os.path.join(blobs_a, name)):
                with open(os.path.join(blobs_a, name), "rb") as fa:
                    self.assertEqual(fa.read(), data, name)
            self.assertEqual(hashlib.blake2b(data, digest_size=32).hexdigest(),
                             os.path.basename(name), name)

    def test_one_hint_per_session_and_again_when_cargo_lock_changes(self):
        ws = self.runner("c", self.tmp, start=True)
        ws.cargo("build")
        ws.cargo("clean")
        ws.cargo("build")
        ws.cargo("clean")
        ws.cargo("test", "--no-run")
        pf = wait_prefetch(self, ws, session_and_compile_hint)
        # one compile's hint; and an early one when cargo's second `rustc -vV`
        # (once it has written the Cargo.lock it made) came before the first
        # compile, so at most one
        self.assertEqual(pf["hints"] - pf["hints_early"], 1, pf)
        self.assertLessEqual(pf["hints_early"], 1, pf)
        early = pf["hints_early"]
        lock = os.path.join(ws.dir, "Cargo.lock")
        with open(lock, "a") as f:
            f.write("# a change\n")
        ws.cargo("clean")
        ws.cargo("build")
        pf = wait_prefetch(self, ws, lambda p: p["hints"] - p["hints_early"] >= 2)
        self.assertEqual(pf["hints"] - pf["hints_early"], 2, pf)
        # the changed Cargo.lock was there at cargo's first question; cargo
        # then rewrites it (the comment goes: a new ctime), and its second
        # question, when it comes before the first compile, hints again (with
        # the hash of what the build will use)
        self.assertIn(pf["hints_early"] - early, (1, 2), pf)
        # a zero cooldown: each command is a session of its own
        ws.cargo("clean")
        ws.cargo("build", KACHE_PREFETCH_COOLDOWN="0")
        pf = wait_prefetch(self, ws, lambda p: p["hints"] >= 3)

    def test_a_session_marker_from_the_future_does_not_hold_hints_back(self):
        """The clock was set back since the last session: its marker's mtime
        is a day ahead and read as "hinted 0 s ago" for a day, so no build
        of the workspace prefetched until the clock caught up. A time ahead
        of now reads as long ago: the next command hints."""
        ws = self.runner("c", self.tmp, start=True)
        ws.cargo("build")
        pf = wait_prefetch(self, ws, session_and_compile_hint)
        compile_hints = pf["hints"] - pf["hints_early"]
        d = os.path.join(ws.env["KACHE_DIR"], "run", "sessions")
        ahead = time.time() + 86400
        markers = [n for n in os.listdir(d) if re.match(r"^[0-9a-f]{16}(\.early)?$", n)]
        self.assertTrue(markers, os.listdir(d))
        for n in markers:
            os.utime(os.path.join(d, n), (ahead, ahead))
        ws.cargo("clean")
        ws.cargo("build")
        pf = wait_prefetch(self, ws, lambda p: p["hints"] - p["hints_early"] > compile_hints
                           or p["hints_early"] > 1)
        for n in markers:
            self.assertLess(os.stat(os.path.join(d, n)).st_mtime, time.time() + 60, n)

    def test_garbage_cargo_lock_is_refused_once_and_the_build_is_right(self):
        """cargo rewrites a Cargo.lock it can parse, so the worker meets garbage
        when it changes under it; here a rustc call in a directory whose
        Cargo.lock is garbage stands for that."""
        ws = self.runner("g", self.tmp, start=True)
        d = os.path.join(self.tmp, "plain")
        os.makedirs(os.path.join(d, "out"))
        with open(os.path.join(d, "lib.rs"), "w") as f:
            f.write("pub fn seven() -> u32 { 7 }\n")
        with open(os.path.join(d, "Cargo.lock"), "wb") as f:
            f.write(b"\x00\x01garbage\n[[package]]\nname = \"../../etc\"\n")
        p = subprocess.run([kh.KACHE, kh.real_rustc(), "--crate-name", "plain",
                            "--edition", "2021", "--crate-type", "lib", "lib.rs",
                            "--emit=dep-info,metadata,link",
                            "--out-dir", "out"], cwd=d, env=ws.env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(d, "out", "libplain.rlib")))
        pf = wait_prefetch(self, ws, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["skipped"]["lock_refused"], 1, pf)
        self.assertEqual(pf["packs"], 0, pf)
        log = open(os.path.join(ws.env["KACHE_DIR"], "logs", "prefetch.0.log")).read()
        self.assertEqual(log.count("is not used"), 1, log)

    # ---- session manifests (remote/session.h) ----

    def sessions(self):
        """The session manifests in the directory remote: {name: bytes}.
        A dot-name is a put still being written (the remote renames it into
        place when whole): not a manifest, and it may vanish under us."""
        d = os.path.join(self.remote, "sessions")
        if not os.path.isdir(d):
            return {}
        out = {}
        for n in os.listdir(d):
            if n.startswith("."):
                continue
            with open(os.path.join(d, n), "rb") as f:
                out[n] = f.read()
        return out

    def prefetch_log(self, ws):
        return open(os.path.join(ws.env["KACHE_DIR"], "logs", "prefetch.0.log")).read()

    def second_runner(self, name):
        """A fresh runner: its first command starts the supervisor and hints;
        returns it with the prefetch counters once its session is done."""
        b = self.runner(name, os.path.join(self.tmp, name, "runner"))
        b.cargo("check")
        pf = wait_prefetch(self, b, session_and_compile_hint)
        return b, pf

    def assert_served(self, b, out):
        before = stats(b)
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "compiles reached rustc after the prefetch")
        self.assertEqual(b.run_app(), out)
        after = stats(b)
        self.assertEqual(after["remote_hits"], before["remote_hits"],
                         "the build fetched on a miss: prefetch did not serve it")

    def test_stop_saves_a_session_manifest_and_a_fresh_runner_prefetches_it(self):
        out = self.populate()
        ss = self.sessions()
        self.assertEqual(len(ss), 1, ss.keys())
        name, body = next(iter(ss.items()))
        self.assertRegex(name, r"^[0-9a-f]{64}$")
        lines = body.decode().split("\n")
        # version 3: the packs put together in bundle parts (prefetch.bundles)
        self.assertEqual(lines[0], "kache-session 3")
        keys = [l for l in lines
                if re.match(r"^[A-Za-z0-9_-]+ [0-9a-f]{64} \d+ [A-Za-z0-9_.+-]+ (\d+|-)$", l)]
        self.assertIn("keys %d" % len(keys), lines)
        self.assertTrue(CRATES.issubset({k.split()[0] for k in keys}), keys)
        # each key with the version cargo gave its package (CARGO_PKG_VERSION)
        self.assertTrue(all(k.split()[3] == "0.1.0" for k in keys
                            if k.split()[0] in ("fixture_core", "fixture_app")), keys)
        at = [i for i, l in enumerate(lines) if l.startswith("parts ")]
        self.assertEqual(len(at), 1, lines)
        parts = lines[at[0] + 1:at[0] + 1 + int(lines[at[0]].split()[1])]
        self.assertEqual(lines[at[0] + 1 + len(parts):], ["end", ""], lines)
        self.assertGreaterEqual(len(parts), 1, lines)
        held = self.check_bundle_parts(keys, parts)
        self.assertGreaterEqual(len(held), 2, keys)
        b, pf = self.second_runner("b")
        # read once, or by each of an early session and the compile's
        self.assertGreaterEqual(pf["bundle_parts"], len(parts), pf)
        self.assertLessEqual(pf["bundle_parts"], len(parts) * pf["sessions"], pf)
        # all of them but the build script's, which `cargo check` may have
        # fetched on its miss first (a pack in flight elsewhere is left to it)
        self.assertGreaterEqual(pf["packs_from_bundle_parts"], len(held) - 1, pf)
        self.assertLessEqual(pf["packs_from_bundle_parts"], len(held), pf)
        text = kache(b, "supervisor", "status").stdout
        self.assertIn("; %d came in %d bundle parts\n" % (
            pf["packs_from_bundle_parts"], pf["bundle_parts"]), text)
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        self.assertEqual(pf["sources"]["packs"], 0, pf)
        self.assertGreaterEqual(pf["packs"] + pf["skipped"]["present"], len(CRATES), pf)
        self.assertEqual(pf["packs_from"], {"planner": 0, "exact_session": pf["packs"],
                                            "closest_session": 0, "packs": 0}, pf)
        self.assertRegex(self.prefetch_log(b), r"packs imported .* from exact session manifest")
        self.assert_served(b, out)
        st = stats(b)
        self.assertGreater(st["prefetch_imported"], 0, st)
        self.assertEqual(st["prefetch_imported_from"], {
            "planner": 0, "exact_session": st["prefetch_imported"], "closest_session": 0,
            "packs": 0}, st)

    def check_bundle_parts(self, keys, parts):
        """Reads each part the session manifest names from the remote, as
        docs/remote-layout.md says it is made (version 2: one zstd frame of
        the packs' documents, read with the zstd CLI), and checks that every
        pack in it is, inflated, byte for byte the pack under packs/ and is
        the one its key line names. Returns the result keys the parts hold."""
        held = set()
        for i, pid in enumerate(parts):
            with open(os.path.join(self.remote, "bundles", pid), "rb") as f:
                data = f.read()
            self.assertEqual(hashlib.blake2b(data, digest_size=32).hexdigest(), pid)
            self.assertTrue(data.startswith(b"kache-bundle 2\n"), data[:40])
            for crate, res, doc in kh.bundle_part_packs(data):
                with open(os.path.join(self.remote, "packs", crate, res + ".pack"), "rb") as f:
                    self.assertEqual(doc, kh.zstd_inflate(f.read()), res)
                self.assertIn("%s %s" % (crate, res), [" ".join(k.split()[:2]) for k in keys
                                                      if k.split()[4] == str(i)])
                held.add(res)
        return held

    def early_marker(self, ws):
        """The text of the workspace's early-hint marker (run/sessions/<ws>.early)."""
        d = os.path.join(ws.env["KACHE_DIR"], "run", "sessions")
        names = [n for n in os.listdir(d) if n.endswith(".early")]
        self.assertEqual(len(names), 1, os.listdir(d))
        self.assertRegex(names[0], r"^[0-9a-f]{16}\.early$")
        return open(os.path.join(d, names[0])).read()

    def test_cargos_first_question_hints_and_its_session_serves_the_compile_hint(self):
        """cargo asks `rustc -vV` before any compile: the wrapper hints there,
        guessing target and profile from cargo's command line, so the exact
        session manifest is being imported while cargo still asks its
        questions; the first compile's hint, of the same fingerprint, finds
        that session has done its work and is not run again."""
        out = self.populate()
        # started by hand: its prefetch worker is idle when the early hint comes
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"), start=True)
        # committed, as in CI: cargo asks rustc before it writes a missing one
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), b.dir)
        b.cargo("build")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["hints_early"], 1, pf)
        self.assertEqual(pf["hints"], 2, pf)  # the early one and the compile's
        self.assertEqual(pf["sessions"], 1, pf)
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        self.assertGreaterEqual(pf["packs"] + pf["skipped"]["present"], len(CRATES), pf)
        marker = self.early_marker(b)
        self.assertIn("\ntarget=\nprofile=debug\n", marker)
        self.assertIn("guess=1\n", marker)
        log = open(os.path.join(b.env["KACHE_DIR"], "logs", "supervisor.log")).read()
        early = log.index("(early: target and profile from cargo's command line or `kache "
                          "prefetch`)")
        # the compile's hint came while the early session ran (or, on a machine
        # too busy to hand the early one to the worker first, replaced it)
        replaced = pf["hints_dropped_why"]["replaced"]
        self.assertEqual(pf["hints_served_early"] + replaced, 1, pf)
        if not replaced:
            self.assertGreater(log.index("served by its early session"), early, log)
        self.assertEqual(b.compiled(), [])
        self.assertEqual(b.run_app(), out)
        # the next command of the job: a session under way, no hint at all
        b.cargo("clean")
        b.cargo("build")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["hints"], 2, pf)
        self.assertEqual(b.compiled(), [])

    def kache_in(self, ws, *args, cwd=None, **env):
        """`kache args` run in ws's workspace (or cwd), env added."""
        return subprocess.run([kh.KACHE, *args], env=dict(ws.env, **env),
                              cwd=cwd or ws.dir, capture_output=True, text=True,
                              timeout=180)

    def test_kache_prefetch_warms_the_store_before_cargo_runs(self):
        """A CI job's first step, before any cargo command: `kache prefetch
        --wait` starts the supervisor, leaves the early hint for the
        workspace's exact session manifest and follows the session to its
        end; the build then reaches rustc for nothing and fetches nothing on
        a miss, and its first compile's hint is served by that session."""
        out = self.populate()
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), b.dir)  # committed
        self.assertIsNone(status(b), "a supervisor ran before the command")
        p = self.kache_in(b, "prefetch", "--wait", "--timeout", "2m",
                          cwd=os.path.join(b.dir, "core"))  # found upwards
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("prefetch: session started for %s (target host, profile debug)"
                      % os.path.realpath(b.dir), p.stdout)
        m = re.search(r"prefetch: (\d+) packs imported \(.*\) in [\d.]+ s; 0 already here, "
                      r"0 rejected, 0 failed\n", p.stdout)
        # (once in CI's sanitizer pass: "no session manifest of this fingerprint")
        self.assertIsNotNone(m, p.stdout + self.session_clues(b))
        self.assertGreaterEqual(int(m.group(1)), len(CRATES), p.stdout)
        pf = status(b)["prefetch"]  # over, as the command said: no waiting here
        self.assertEqual((pf["hints"], pf["hints_early"], pf["sessions_done"],
                          pf["sessions_queued"]), (1, 1, 1, 0), pf)
        self.assertEqual(pf["packs"], int(m.group(1)), pf)
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        self.assertIn("guess=1\n", self.early_marker(b))
        self.assert_served(b, out)
        pf = wait_prefetch(self, b, lambda p: p["hints"] == 2)
        self.assertEqual(pf["hints_served_early"], 1, pf)  # the compile's hint
        self.assertEqual(pf["sessions"], 1, pf)
        self.assertGreater(stats(b)["prefetched_hits"], 0)
        # the next step of the job: a session is under way, none is started
        p = self.kache_in(b, "prefetch", "--wait")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("prefetch: a session is under way for", p.stdout)
        self.assertIn("prefetch: no session running now", p.stdout)
        self.assertEqual(status(b)["prefetch"]["sessions"], 1)

    def test_a_check_job_and_a_build_job_keep_their_own_session_manifests(self):
        """Two CI jobs of one workspace (one Cargo.lock) over one remote: a
        `cargo check` job's session (its compiles emit metadata only, of no
        use to a build) is saved under a fingerprint of its own (profile
        debug.check), not over the build job's (before, its keys replaced
        the build's for every crate it named, and the next build job
        prefetched check results and fetched its own on each miss). With no
        check session yet, a check job is served by the build's. The next
        build job (`kache prefetch --wait`, then the build) and the next check
        job (`kache prefetch --check --wait`, then the check) are served
        each by its own session: nothing compiled, nothing fetched on a
        miss."""
        out = self.populate()
        self.check_job_saves_a_check_session("check")

        for name, step, cmd in (("b", [], "build"), ("d", ["--check"], "check")):
            r = self.runner(name, os.path.join(self.tmp, name, "runner"))
            shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), r.dir)
            p = self.kache_in(r, "prefetch", *step, "--wait", "--timeout", "2m")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("profile debug%s)" % (".check" if step else ""), p.stdout)
            self.assertRegex(p.stdout, r"prefetch: \d+ packs imported", p.stdout)
            before = stats(r)
            r.cargo(cmd)
            self.assertEqual(r.compiled(), [], "%s: compiles reached rustc" % cmd)
            after = stats(r)
            self.assertEqual(after["remote_hits"], before["remote_hits"],
                             "%s: fetched on a miss: its session was not prefetched" % cmd)
            self.assertEqual(after["misses"], before["misses"], cmd)
            if cmd == "build":
                self.assertEqual(r.run_app(), out)

    @staticmethod
    def manifest_keys(body):
        """The result keys a session manifest lists."""
        return set(re.findall(rb"(?m)^\S+ ([0-9a-f]{64}) ", body))

    def populate_build_and_check(self):
        """A build job (runner a) and a check job (runner c) of one Cargo.lock,
        each ended by its stop: the remote holds a build session and a check
        session. Returns the app's output and the two objects' names."""
        out = self.populate()
        built = self.sessions()
        self.assertEqual(len(built), 1, built.keys())
        build_name = next(iter(built))
        c = self.runner("c", os.path.join(self.tmp, "checker", "runner"))
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), c.dir)
        c.cargo("check")
        wait_prefetch(self, c, session_and_compile_hint)
        p = kache(c, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ss = self.sessions()
        self.assertEqual(len(ss), 2, ss.keys())
        return out, build_name, [n for n in ss if n != build_name][0]

    def test_a_job_of_both_modes_prefetches_both_before_cargo_runs(self):
        """The README's first step for a job that lints and then builds:
        `kache prefetch --check` and `kache prefetch`, two sessions (one per
        mode) queued at once; then `cargo check` and `cargo build` compile
        nothing and fetch nothing on a miss."""
        out, _, _ = self.populate_build_and_check()
        e = self.runner("e", os.path.join(self.tmp, "e", "runner"))
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), e.dir)
        for step in (["--check"], []):
            p = self.kache_in(e, "prefetch", *step, "--wait", "--timeout", "2m")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertRegex(p.stdout, r"prefetch: \d+ packs imported", p.stdout)
        self.assertEqual(status(e)["prefetch"]["sessions"], 2)
        before = stats(e)
        for cmd in ("check", "build"):
            e.cargo(cmd)
            self.assertEqual(e.compiled(), [], "%s: compiles reached rustc" % cmd)
        after = stats(e)
        self.assertEqual(after["remote_hits"], before["remote_hits"], "fetched on a miss")
        self.assertEqual(after["misses"], before["misses"])
        self.assertEqual(e.run_app(), out)

    def test_an_alias_of_check_is_a_check_session(self):
        """`cargo ck`, with `ck = "check"` in the workspace's .cargo/config.toml,
        is a check job: cargo expands the alias and leaves its command line
        as typed, so the wrapper reads the alias where cargo does. Its session
        is saved as a check session beside the build job's, which it leaves
        alone (before, `ck` was read as a build: its metadata-only keys
        replaced the build's of each crate they named, and the next build job
        prefetched check results)."""
        self.populate()

        def alias(c):
            os.makedirs(os.path.join(c.dir, ".cargo"))
            with open(os.path.join(c.dir, ".cargo", "config.toml"), "w") as f:
                f.write("[alias]\nck = [\"check\", \"--quiet\"]\n")

        c = self.check_job_saves_a_check_session("ck", alias)
        self.assertFalse(os.path.exists(os.path.join(c.dir, "target/debug/fixture-app")),
                         "cargo ck built the app: not a check")

    def check_job_saves_a_check_session(self, cmd, setup=lambda c: None):
        """After populate: a check job of runner c (`cargo <cmd>`, after
        setup(c)) with no check session in the remote yet is served by the
        build's session manifest and saves its own (profile debug.check),
        leaving the build's as it was. Returns the runner."""
        built = self.sessions()
        self.assertEqual(len(built), 1, built.keys())
        c = self.runner("c", os.path.join(self.tmp, "checker", "runner"))
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), c.dir)
        setup(c)
        c.cargo(cmd)
        pf = wait_prefetch(self, c, session_and_compile_hint)
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        self.assertRegex(self.prefetch_log(c), r"no session manifest of check sessions "
                         r"\(profile debug.check\): the build's of profile debug")
        p = kache(c, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ss = self.sessions()
        self.assertEqual(len(ss), 2, ss.keys())
        for name, body in built.items():
            self.assertEqual(ss[name], body, "the check job replaced the build's session")
        checked = [n for n in ss if n not in built]
        self.assertIn(b"\nprofile debug.check\n", ss[checked[0]])
        return c

    def test_a_check_then_a_build_in_one_job_prefetch_and_save_each_session(self):
        """The common CI job: `cargo check` (or clippy), then `cargo build`
        (or test) within prefetch.cooldown, over a remote that holds a build
        session (runner a's job) and a check session (runner c's). Each
        command has the session of its mode: the build's compiles hint a
        build session (before, the check session's marker was fresh, so the
        build got no prefetch and its results were fetched on their miss),
        and the job's stop saves the check's keys as the check session and
        the build's as the build session (before, the union went to the
        check session: the next check job prefetched every build result)."""
        out, build_name, check_name = self.populate_build_and_check()
        ss = self.sessions()
        build_keys = self.manifest_keys(ss[build_name])
        check_keys = self.manifest_keys(ss[check_name])

        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), b.dir)
        b.cargo("check")
        pf = wait_prefetch(self, b, session_and_compile_hint)
        self.assertEqual((pf["sessions"], pf["sources"]["exact_session"]), (1, 1), pf)
        hints, walked = pf["hints"], considered(pf)
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "the build's compiles reached rustc")
        self.assertEqual(b.run_app(), out)
        pf = wait_prefetch(self, b, lambda p: p["hints"] > hints and p["sessions_done"] >= 2,
                           timeout=60)
        self.assertEqual((pf["sessions"], pf["sources"]["exact_session"]), (2, 2), pf)
        # The build session's manifest was walked: each of its keys imported
        # or found present. Which of the two races the build (its misses
        # fetch too; in CI once, every one was fetched on its miss before
        # the prefetch got to it), so neither is asserted alone.
        self.assertGreater(considered(pf), walked, pf)
        p = kache(b, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ss = self.sessions()
        self.assertEqual(sorted(ss), sorted([build_name, check_name]))
        self.assertEqual(self.manifest_keys(ss[build_name]), build_keys)
        self.assertEqual(self.manifest_keys(ss[check_name]), check_keys,
                         "the check session took the build's results")

    def test_kache_prefetch_wait_is_right_whenever_the_hint_is_taken(self):
        """`kache prefetch --wait` looks at its hint file and asks the status,
        in that order, each round; the supervisor takes the file (and counts
        the hint) whenever its loop gets to it. Here (test builds) the
        supervisor leaves a hint file alone for its first 500 ms
        (KACHE_TEST_HINT_TAKE_AFTER_MS) and the command pauses 2 s between its
        look and its question (KACHE_TEST_PREFETCH_WAIT_PAUSE_MS): the file is
        taken in between. The command still follows the session and says what
        it imported (asked the other way round, the hint taken in between read
        as a session over before it began: "no session manifest", once in
        CI's sanitizer pass)."""
        self.populate()
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), b.dir)
        p = self.kache_in(b, "prefetch", "--wait", "--timeout", "2m",
                          KACHE_TEST_PREFETCH_WAIT_PAUSE_MS="2000",
                          KACHE_TEST_HINT_TAKE_AFTER_MS="500")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = re.search(r"prefetch: (\d+) packs imported \(.*\) in [\d.]+ s; 0 already here, "
                      r"0 rejected, 0 failed\n", p.stdout)
        self.assertIsNotNone(m, p.stdout + self.session_clues(b))
        self.assertGreaterEqual(int(m.group(1)), len(CRATES), p.stdout)
        self.assertEqual(status(b)["prefetch"]["packs"], int(m.group(1)))

    def test_kache_prefetch_of_another_profile_imports_nothing_and_says_so(self):
        """--release where runner a built debug: no session manifest of that
        fingerprint, nothing imported, said; exit 0 (the build would plan at
        its first compile). The early marker names the profile asked for."""
        self.populate()
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), b.dir)
        p = self.kache_in(b, "prefetch", "--release", "--target=x86_64-unknown-linux-gnu",
                          "--wait")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("(target x86_64-unknown-linux-gnu, profile release)", p.stdout)
        self.assertIn("prefetch: no session manifest of this fingerprint", p.stdout)
        self.assertIn("\ntarget=x86_64-unknown-linux-gnu\nprofile=release\n",
                      self.early_marker(b))
        self.assertEqual(status(b)["prefetch"]["packs"], 0)

    def test_kache_prefetch_says_the_remote_failed_when_the_manifest_cannot_be_read(self):
        """The session manifest of the fingerprint exists but cannot be read
        (a directory stands at its name in the directory remote): not "no
        session manifest", but the remote's failure, said by the command,
        logged by the worker and counted as a failed listing."""
        self.populate()
        sessions = os.path.join(self.remote, "sessions")
        names = os.listdir(sessions)
        self.assertEqual(len(names), 1, names)
        os.unlink(os.path.join(sessions, names[0]))
        os.mkdir(os.path.join(sessions, names[0]))
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), b.dir)
        p = self.kache_in(b, "prefetch", "--wait", "--timeout", "2m")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("prefetch: the remote could not be read; nothing imported", p.stdout)
        self.assertNotIn("no session manifest", p.stdout)
        pf = status(b)["prefetch"]
        self.assertEqual((pf["packs"], pf["skipped"]["listings_failed"]), (0, 1), pf)
        log = self.prefetch_log(b)
        self.assertIn("session manifest sessions/%s not read: the remote failed" % names[0],
                      log)

    def test_kache_prefetch_says_what_to_do_when_it_cannot_start(self):
        """No hint, a clear line and exit 1: no remote; no Cargo.lock at or
        above here; a rustc that does not answer. Exit 2 on a usage error.
        None of them leaves a hint or starts a supervisor. Then a supervisor
        running with another configuration (no remote) drops the hint: exit
        0, and said."""
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        with open(os.path.join(b.dir, "Cargo.lock"), "w") as f:
            f.write("version = 3\n")
        cases = [
            (dict(KACHE_REMOTE="none"), b.dir, 1, "no remote configured"),
            (dict(KACHE_PREFETCH_MAX_BYTES="0"), b.dir, 1, "prefetch is off"),
            ({}, self.tmp, 1, "no Cargo.lock at or above %s" % self.tmp),
            (dict(RUSTC="/bin/false"), b.dir, 1, "`/bin/false -vV` in %s did not answer"
             % os.path.realpath(b.dir)),
        ]
        for env, cwd, rc, said in cases:
            p = self.kache_in(b, "prefetch", cwd=cwd, **env)
            self.assertEqual(p.returncode, rc, (env, p.stdout, p.stderr))
            self.assertIn(said, p.stderr)
        p = self.kache_in(b, "prefetch", "--target=my/spec.json")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("target 'my/spec.json' or profile 'debug' cannot name a session",
                      p.stderr)
        for args in (["--bogus"], ["--target"], ["--timeout", "1m"], ["--profile="]):
            p = self.kache_in(b, "prefetch", *args)
            self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))
            self.assertIn("usage: kache prefetch", p.stderr)
        p = self.kache_in(b, "prefetch", "--wait", "--timeout", "soon")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("bad --timeout 'soon'", p.stderr)
        self.assertIsNone(status(b))
        hints = os.path.join(b.env["KACHE_DIR"], "run", "hints")
        self.assertEqual(os.listdir(hints) if os.path.isdir(hints) else [], [])
        # a supervisor running without the remote (started with another
        # configuration): the command's hint is dropped by it, and said so
        p = self.kache_in(b, "supervisor", "start", KACHE_REMOTE="none")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.kache_in(b, "prefetch", "--wait", "--timeout", "1m")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("the running supervisor took no session", p.stdout)

    def test_kache_prefetch_and_status_say_why_a_worker_cannot_run(self):
        """An S3 remote and no credentials anywhere: the supervisor's prefetch
        worker exits with a configuration error, and `kache prefetch --wait`
        says so with the worker's own reason (before, it said the supervisor
        had "no remote in its configuration", which was not the cause), first
        and again within the cooldown; exit 0 all the same (the build's misses
        are compiled: a CI step is not failed for it). `kache supervisor
        status` names each worker that does not run with its exit and its
        log's last warning (before, only the exit: "configuration error")."""
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        with open(os.path.join(b.dir, "Cargo.lock"), "w") as f:
            f.write("version = 3\n")
        nothing = os.path.join(self.tmp, "no-such-file")
        env = dict(KACHE_REMOTE="s3", KACHE_S3_BUCKET="bench",
                   KACHE_S3_ENDPOINT="http://127.0.0.1:9", AWS_EC2_METADATA_DISABLED="true",
                   AWS_SHARED_CREDENTIALS_FILE=nothing, AWS_CONFIG_FILE=nothing)
        for k in list(b.env):
            if k.startswith("AWS_") or k.startswith("KACHE_S3_") or k == "KACHE_REMOTE_PATH":
                del b.env[k]
        for _ in range(2):
            p = self.kache_in(b, "prefetch", "--wait", "--timeout", "1m", **env)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("prefetch: no session: the prefetch worker cannot run (exit 78 "
                          "(configuration error))", p.stdout)
            self.assertIn("Its log says: s3: no S3 credentials", p.stdout)
            self.assertNotIn("no remote in its configuration", p.stdout)
        p = self.kache_in(b, "supervisor", "status", **env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for worker in ("prefetch.0", "fetcher.0"):
            self.assertRegex(p.stdout, r"\n%s does not run: exit 78 \(configuration error\); "
                             r"its log's last warning: s3: no S3 credentials" % worker)
        kh.supervisor_stop(kh.KACHE, dict(b.env, **env))

    def test_an_alias_is_expanded_by_the_early_hint(self):
        """`cargo rel`, an alias of `build --release` in the workspace's
        .cargo/config.toml: cargo's first question already hints the release
        session (the alias read where cargo reads it), and that early session
        serves the compile's hint: one session, nothing compiled. (Before the
        aliases were read, the early hint guessed debug, imported nothing,
        and the compile's hint ran a second session.)"""
        def with_alias(ws):
            os.makedirs(os.path.join(ws.dir, ".cargo"))
            with open(os.path.join(ws.dir, ".cargo", "config.toml"), "w") as f:
                f.write('[alias]\nrel = "build --release -j2"\n')
            return ws

        a = with_alias(self.runner("a", self.tmp, start=True))
        a.cargo("rel")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(b"\nprofile release\n", next(iter(self.sessions().values())))
        b = with_alias(self.runner("b", os.path.join(self.tmp, "b", "runner"), start=True))
        shutil.copy(os.path.join(a.dir, "Cargo.lock"), b.dir)  # committed, as in CI
        b.cargo("rel")
        pf = wait_prefetch(self, b, lambda p: p["hints"] == 2 and p["sessions_done"] >= 1)
        self.assertEqual((pf["hints_early"], pf["hints_served_early"], pf["sessions"]),
                         (1, 1, 1), pf)
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        self.assertIn("\ntarget=\nprofile=release\n", self.early_marker(b))
        self.assertEqual(b.compiled(), [])

    def test_a_wrong_early_guess_is_followed_by_the_compiles_hint(self):
        """A job whose first step is `kache prefetch` (the debug profile) and
        whose build is `cargo build --release`: the early session finds no
        session manifest of its fingerprint and imports nothing, and the
        first compile's hint (release) runs after it and takes the exact
        one."""
        a = self.runner("a", self.tmp, start=True)
        a.cargo("build", "--release")
        self.assertTrue(CRATES.issubset(set(a.compiled())))
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(b"\nprofile release\n", next(iter(self.sessions().values())))
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"), start=True)
        shutil.copy(os.path.join(a.dir, "Cargo.lock"), b.dir)  # committed, as in CI
        p = self.kache_in(b, "prefetch")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        b.cargo("build", "--release")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["hints_early"], 1, pf)  # cargo's question left none
        self.assertEqual(pf["hints_served_early"], 0, pf)
        replaced = pf["hints_dropped_why"]["replaced"]
        self.assertEqual(pf["sessions"] + replaced, 2, pf)
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        self.assertEqual(pf["sources"]["packs"] + pf["sources"]["closest_session"], 0, pf)
        self.assertIn("\ntarget=\nprofile=debug\n", self.early_marker(b))
        if not replaced:
            self.assertRegex(self.prefetch_log(b), r"early hint \(target \"\", profile "
                             r"\"debug\" guessed\): no session manifest [0-9a-f]{16} in the "
                             r"remote")
        self.assertRegex(self.prefetch_log(b), r"packs imported .* from exact session manifest")
        self.assertEqual(b.compiled(), [])

    def test_a_cross_build_names_its_session_by_the_target_cargo_was_asked_for(self):
        """With --target, build scripts and proc-macros compile for the host,
        without --target: whichever compile hints first, the session's marker
        (and so the session manifest's fingerprint) names the target cargo
        was asked for, as the early hint does."""
        triple = re.search(r"^host: (\S+)$", subprocess.check_output(
            [kh.real_rustc(), "-vV"], text=True), re.M).group(1)
        ws = self.runner("x", self.tmp, start=True)
        ws.cargo("build", "--target", triple)
        d = os.path.join(ws.env["KACHE_DIR"], "run", "sessions")
        markers = [n for n in os.listdir(d) if re.match(r"^[0-9a-f]{16}$", n)]
        self.assertEqual(len(markers), 1, os.listdir(d))
        marker = open(os.path.join(d, markers[0])).read()
        self.assertIn("\ntarget=%s\nprofile=debug\n" % triple, marker)
        p = kache(ws, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        body = next(iter(self.sessions().values())).decode()
        self.assertIn("\ntarget %s\nprofile debug\n" % triple, body)

    def test_a_partial_job_keeps_the_other_crates_of_the_object(self):
        """Runner A builds the workspace and stops; runner B, same Cargo.lock,
        builds one package alone (`cargo build -p tiny-vendored`) and stops:
        the object of that fingerprint still names every crate A used (it used
        to name B's one key: the next full build's prefetch took that), and a
        fresh runner C is served by its prefetch."""
        out = self.populate()
        (name, body), = self.sessions().items()
        first = self.key_lines(body)
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        b.cargo("build", "-p", "tiny-vendored")
        p = kache(b, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        (name2, body), = self.sessions().items()
        self.assertEqual(name2, name, "another fingerprint")
        last = self.key_lines(body)
        self.assertIn(b"\nkeys %d\n" % len(last), body)
        self.assertTrue(CRATES.issubset({k.split()[0] for k in last}), last)
        self.assertEqual({k for k in first if k.split()[0] != "tiny"},
                         {k for k in last if k.split()[0] != "tiny"}, "A's other keys kept")
        c, pf = self.second_runner("c")
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        self.assert_served(c, out)

    def test_exact_session_byte_cap_counts_pack_bytes(self):
        """prefetch.max_bytes set to the bytes of the packs the session names:
        all of them fit, although their outputs (the manifest's sizes) do not."""
        out = self.populate()
        (name, body), = self.sessions().items()
        keys = [l.split() for l in self.key_lines(body)]
        packs = sum(os.path.getsize(os.path.join(self.remote, "packs", c, r + ".pack"))
                    for c, r, *_ in keys)
        outputs = sum(int(k[2]) for k in keys)
        self.assertGreater(outputs, packs, "the packs are not smaller: no test")
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        b.env["KACHE_PREFETCH_MAX_BYTES"] = str(packs)
        b.cargo("check")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        self.assertEqual(pf["skipped"]["over_max_bytes"], 0, pf)
        self.assertEqual(pf["packs"] + pf["skipped"]["present"], len(keys), pf)
        self.assertLessEqual(pf["bytes"], packs, pf)
        self.assert_served(b, out)

    def test_a_bundle_part_that_is_garbage_or_gone_is_said_once_and_its_packs_fetched(self):
        """The part the session manifest names is cut short (another writer's
        bytes, a damaged disk: its frame is not whole): the prefetch says so
        once, imports nothing of it, and fetches its packs one by one; the
        build is served. Then the
        part is gone (a lifecycle rule took it): the same."""
        out = self.populate()
        (name, body), = self.sessions().items()
        lines = body.decode().split("\n")
        at = [i for i, l in enumerate(lines) if l.startswith("parts ")][0]
        self.assertEqual(lines[at], "parts 1", lines)
        path = os.path.join(self.remote, "bundles", lines[at + 1])
        whole = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(whole[:-1])
        for runner, what in (("b", "is not valid (its frame does not inflate whole to "),
                             ("c", "is missing")):
            b, pf = self.second_runner(runner)
            self.assertEqual(pf["sources"]["exact_session"], 1, pf)
            self.assertEqual(pf["bundle_parts"], 0, pf)
            self.assertEqual(pf["packs_from_bundle_parts"], 0, pf)
            self.assertGreaterEqual(pf["packs"] + pf["skipped"]["present"], len(CRATES), pf)
            log = self.prefetch_log(b)
            # once per session that wanted its packs (an early session and the
            # compile's: the second may find them all present and read nothing)
            self.assertGreaterEqual(log.count("bundle part "), 1, log)
            self.assertLessEqual(log.count("bundle part "), pf["sessions"], log)
            self.assertIn(what, log)
            self.assertIn("its packs are fetched one by one", log)
            self.assert_served(b, out)
            if runner == "b":
                os.unlink(path)

    def test_garbage_session_manifest_is_ignored_once_and_packs_are_used(self):
        out = self.populate()
        (name,) = self.sessions()
        path = os.path.join(self.remote, "sessions", name)
        body = open(path, "rb").read()
        # a truncated object: every line but the closing one is valid
        with open(path, "wb") as f:
            f.write(body[:-4])
        b, pf = self.second_runner("b")
        # the compile's session; and an early one when cargo wrote Cargo.lock
        # before it asked `rustc -vV` (it may, on a busy machine), which reads
        # the same object: each session ignores it once
        self.assertEqual(pf["hints"] - pf["hints_early"], 1, pf)
        self.assertEqual(pf["sources"]["exact_session"], 0, pf)
        self.assertEqual(pf["sources"]["packs"], 1, pf)
        self.assertEqual(pf["sources"]["sessions_not_valid"], pf["sessions"], pf)
        log = self.prefetch_log(b)
        self.assertEqual(log.count("is not valid"), pf["sessions"], log)
        self.assert_served(b, out)

    def test_garbage_session_manifest_read_by_an_early_hint_is_said_by_it(self):
        """An early session (`kache prefetch --check`, as at cargo's first
        question) has no check session manifest, takes the build's of the
        same profile (the garbage object) and says so, as the compile's
        session does: each session that counts the object says it once, and
        `kache prefetch` does not say there is none. (The early session
        counted it and said nothing: CI of 38e8ee0.)"""
        out = self.populate()
        (name,) = self.sessions()
        path = os.path.join(self.remote, "sessions", name)
        with open(path, "rb") as f:
            body = f.read()
        with open(path, "wb") as f:
            f.write(body[:-4])
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"), start=True)
        shutil.copy(os.path.join(self.a_dir, "Cargo.lock"), b.dir)
        p = self.kache_in(b, "prefetch", "--check", "--wait")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("is not valid", p.stdout)
        self.assertNotIn("no session manifest", p.stdout)
        pf = status(b)["prefetch"]
        self.assertEqual((pf["hints_early"], pf["sessions"], pf["sessions_done"]), (1, 1, 1), pf)
        self.assertEqual(pf["sources"]["sessions_not_valid"], 1, pf)
        self.assertEqual(self.prefetch_log(b).count("is not valid"), 1, self.prefetch_log(b))
        b.cargo("check")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] == 2)
        self.assertEqual(pf["sources"]["exact_session"], 0, pf)
        self.assertEqual(pf["sources"]["packs"], 1, pf)
        self.assertEqual(pf["sources"]["sessions_not_valid"], 2, pf)
        log = self.prefetch_log(b)
        self.assertEqual(log.count("is not valid"), 2, log)
        self.assertNotIn("no session manifest", log)  # there is one, not valid
        self.assert_served(b, out)

    def test_another_cargo_lock_takes_the_closest_session(self):
        out = self.populate()
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        with open(os.path.join(b.dir, "Cargo.lock"), "a") as f:
            f.write("# another lock: no exact session manifest\n")
        b.cargo("check")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["sources"]["closest_session"], 1, pf)
        self.assertGreaterEqual(pf["sources"]["last_shared_crates"], len(CRATES), pf)
        self.assertRegex(self.prefetch_log(b),
                         r"from closest session \(\d+ crates shared\)")
        self.assert_served(b, out)

    def test_save_manifest_by_hand(self):
        a = self.runner("a", self.tmp, start=True)
        self.assertEqual(self.sessions(), {})
        a.cargo("build")
        p = kache(a, "flush", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = kache(a, "save-manifest", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 session manifest saved", p.stdout)
        self.assertEqual(len(self.sessions()), 1)
        # nothing new since: nothing to save
        p = kache(a, "save-manifest", timeout=120)
        self.assertIn("0 session manifests saved", p.stdout)

    @staticmethod
    def key_lines(body):
        """The key lines as "<crate> <res> <bytes>[ <version>]", whatever the
        version of the object (3 adds the version or "-", and the part)."""
        out = set()
        for l in body.decode().split("\n"):
            if re.match(r"^[A-Za-z0-9_-]+ [0-9a-f]{64} \d+( [A-Za-z0-9_.+-]+)?$", l):
                out.add(l)
            elif re.match(r"^[A-Za-z0-9_-]+ [0-9a-f]{64} \d+ [A-Za-z0-9_.+-]+ (\d+|-)$", l):
                f = l.split()[:4]
                out.add(" ".join(f[:3] if f[3] == "-" else f))
        return out

    def wait_build_saved(self):
        """Waits for the idle save that follows the build: the one session
        object naming every crate. (Under load a pause of more than the 1 s
        cooldown can come in the middle of the build: an idle save then, of
        part of it, and the one after the build adds the rest.)"""
        def saved():
            ss = self.sessions()
            return len(ss) == 1 and CRATES.issubset(
                {k.split()[0] for k in self.key_lines(list(ss.values())[0])})
        kh.wait_for(saved, timeout=60, step=0.5)

    def test_idle_save_mid_job_keeps_the_earlier_keys(self):
        """`cargo build`, a pause past prefetch.cooldown (the idle save writes
        sessions/<fp>), `cargo test --no-run` (cargo reuses the libraries: only
        the test targets reach the wrapper), then the job's stop: the object of
        that one fingerprint names both sessions' keys."""
        a = self.runner("a", self.tmp)
        a.env["KACHE_PREFETCH_COOLDOWN"] = "1"
        self.assertEqual(kache(a, "supervisor", "start").returncode, 0)
        a.cargo("build")
        self.wait_build_saved()
        ss = self.sessions()
        self.assertEqual(len(ss), 1, "no idle save: %s" % ss.keys())
        (name, first), = ss.items()
        first = self.key_lines(first)
        self.assertTrue(CRATES.issubset({k.split()[0] for k in first}), first)
        a.cargo("test", "--no-run")
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ss = self.sessions()
        self.assertEqual(list(ss), [name], "another fingerprint")
        body = ss[name]
        last = self.key_lines(body)
        self.assertIn(b"\nkeys %d\n" % len(last), body)
        self.assertEqual(first - last, set(),
                         "the later save dropped keys an earlier one recorded")
        self.assertGreater(len(last), len(first), "the test targets are not in")
        # the stop ended the job: the next job's first save starts afresh
        rs = os.path.join(a.env["KACHE_DIR"], "run", "sessions")
        self.assertEqual([n for n in os.listdir(rs) if n.endswith(".saved")], [])

    def test_a_stop_during_an_idle_save_waits_for_it_and_ends_the_job(self):
        """The job's `supervisor stop` comes while the prefetch worker's idle
        save is under way (held, in test builds, by KACHE_TEST_SAVE_GATE right
        after it took the session's lines): the stop's save waits for it (one
        save at a time per store), then ends the job. The object names every
        crate and no .saved record is left. Before, the stop found the lines
        taken, saved nothing, ended the job before the idle save had recorded
        it, and the record it then wrote outlived the job."""
        a = self.runner("a", self.tmp)
        a.env["KACHE_PREFETCH_COOLDOWN"] = "1"
        gate = os.path.join(self.tmp, "save-gate")
        p = subprocess.run([kh.KACHE, "supervisor", "start"], capture_output=True, text=True,
                           env=dict(a.env, KACHE_TEST_SAVE_GATE=gate), timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        a.cargo("build")
        self.assertTrue(kh.wait_for(lambda: os.path.exists(gate + ".held"), 60),
                        "no idle save began")
        stop = subprocess.Popen([kh.KACHE, "supervisor", "stop"], env=a.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(1.5)  # the stop reaches its save while the idle one is held
            open(gate, "w").close()
            out, _ = stop.communicate(timeout=120)
        finally:
            if stop.poll() is None:
                stop.kill()
        self.assertEqual(stop.returncode, 0, out)
        ss = self.sessions()
        self.assertEqual(len(ss), 1, ss.keys())
        self.assertTrue(CRATES.issubset({k.split()[0] for k in self.key_lines(*ss.values())}),
                        ss)
        rs = os.path.join(a.env["KACHE_DIR"], "run", "sessions")
        self.assertEqual([n for n in os.listdir(rs) if n.endswith(".saved")], [], out)

    def test_stop_whose_save_fails_keeps_the_job_for_the_next_try(self):
        """The stop's save fails (the remote's sessions/ is a file): the stop
        still ends well, and the next save (by hand, the remote mended) writes
        the whole job, the idle save's keys included."""
        a = self.runner("a", self.tmp)
        a.env["KACHE_PREFETCH_COOLDOWN"] = "1"
        self.assertEqual(kache(a, "supervisor", "start").returncode, 0)
        a.cargo("build")
        self.wait_build_saved()
        (name, first), = self.sessions().items()
        first = self.key_lines(first)
        a.cargo("test", "--no-run")
        d = os.path.join(self.remote, "sessions")
        os.rename(d, d + ".aside")
        open(d, "w").close()
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        os.unlink(d)
        os.rename(d + ".aside", d)
        p = kache(a, "save-manifest", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 session manifest saved", p.stdout)
        last = self.key_lines(self.sessions()[name])
        self.assertEqual(first - last, set(), "the failed stop ended the job's record")
        self.assertGreater(len(last), len(first), "the test targets are not in")

    @staticmethod
    def features_digest(cargo_stderr):
        """docs/remote-layout.md's features digest, from what `cargo -v` says it
        ran: each compile of a path package (its source a relative path),
        "<crate> <feature>,..." (sorted; "-" for none), each line once."""
        lines = set()
        for run in re.findall(r"Running `([^`]*--crate-name [^`]*)`", cargo_stderr):
            args = run.split()
            crate = args[args.index("--crate-name") + 1]
            src = [a for a in args if a.endswith(".rs")][0]
            if src.startswith("/"):
                continue
            feats = sorted(re.findall(r"feature=\\?\"([^\"\\]+)\\?\"", run))
            lines.add("%s %s" % (crate, ",".join(feats) or "-"))
        h = hashlib.blake2b(digest_size=32)
        for x in [b"kache-features-v1"] + sorted(l.encode() for l in lines):
            h.update(len(x).to_bytes(8, "little") + x)
        return h.hexdigest()[:16], lines

    def test_session_manifest_records_the_features_seen(self):
        """Two jobs of one fingerprint with other features: the first object
        says (version 2, `features`) the digest of what its job compiled the
        workspace's own packages with, as `cargo -v` shows it; the second job
        built fixture-core alone, so its object keeps the first job's key of
        fixture_app and says `mixed`."""
        a = self.runner("a", self.tmp, start=True)
        p = a.cargo("build", "-v")
        want, lines = self.features_digest(p.stderr)
        self.assertIn("fixture_core default,loud,polite", lines)
        self.assertEqual(kache(a, "supervisor", "stop", timeout=120).returncode, 0)
        (name, body), = self.sessions().items()
        self.assertTrue(body.startswith(b"kache-session 3\n"), body[:200])
        self.assertIn(b"\nfeatures %s\n" % want.encode(), body)
        a.cargo("clean")
        self.assertEqual(kache(a, "supervisor", "start").returncode, 0)
        p = a.cargo("build", "-v", "-p", "fixture-core", "--no-default-features")
        other, lines = self.features_digest(p.stderr)
        self.assertIn("fixture_core -", lines)
        self.assertNotEqual(other, want)
        self.assertEqual(kache(a, "supervisor", "stop", timeout=120).returncode, 0)
        self.assertEqual(list(self.sessions()), [name], "another fingerprint")
        last = self.sessions()[name]
        self.assertIn(b"\nfeatures mixed\n", last)
        app = [k for k in self.key_lines(body) if k.startswith("fixture_app ")]
        self.assertEqual(len(app), 1, body)
        self.assertIn(app[0], self.key_lines(last))
        core = [k for k in self.key_lines(last) if k.startswith("fixture_core ")]
        self.assertEqual(len(core), 1, last)
        self.assertNotIn(core[0], self.key_lines(body), "job 2's own fixture_core key")

    def test_recache_replaces_the_remotes_result_and_its_bundle_part(self):
        def runner(name, **env):
            ws = self.runner(name, os.path.join(self.tmp, name, "runner"), **env)
            ws.edit("greet-macro/src/lib.rs", *SHOUT_UNTRACKED)
            return ws

        def packs(crate):
            d = os.path.join(self.remote, "packs", crate)
            out = []
            for n in sorted(os.listdir(d)):
                if not n.startswith("."):
                    with open(os.path.join(d, n), "rb") as f:
                        out.append(kh.zstd_inflate(f.read()))
            return out

        check_recache_replaces_the_remotes_result(self, runner, packs)

    def test_save_manifest_off_writes_none(self):
        a = self.runner("a", self.tmp)
        a.env["KACHE_PREFETCH_SAVE_MANIFEST"] = "false"
        self.assertEqual(kache(a, "supervisor", "start").returncode, 0)
        a.cargo("build")
        # a recache replaces the remote's packs and marks their keys for the
        # job's saves (run/sessions/<res>.replaced): the stop ends the job
        # even when it saves nothing
        a.cargo("clean")
        a.cargo("build", KACHE_RECACHE="1")
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.sessions(), {})
        # and neither the wrapper nor the index kept lines that no save would
        # take (features, results used, replaced marks): they would only grow
        rs = os.path.join(a.env["KACHE_DIR"], "run", "sessions")
        kache(a, "stats")  # folds the journal in, as a running index would
        self.assertEqual([n for n in os.listdir(rs) if n.endswith(".features") or
                          n.endswith(".used") or n.endswith(".replaced")], [])


    # ---- crate names, newest first (workers/prefetch/prefetch_meta.c) ----

    def populate_packs_only(self):
        """runner a fills the remote; its session manifest is removed, so that
        a fresh runner takes the packs source."""
        out = self.populate()
        shutil.rmtree(os.path.join(self.remote, "sessions"), ignore_errors=True)
        return out

    def test_lib_named_otherwise_is_prefetched_from_packs(self):
        """vendor/tiny is the package tiny-vendored whose [lib] is tiny: cargo
        metadata names it as rustc does, so its pack is prefetched too."""
        out = self.populate_packs_only()
        self.assertTrue(os.path.isdir(os.path.join(self.remote, "packs", "tiny")))
        b, pf = self.second_runner("b")
        self.assertEqual(pf["sources"]["packs"], 1, pf)
        log = self.prefetch_log(b)
        self.assertRegex(log, r"[1-9]\d* crates, [1-9]\d* packs imported \(\d+ bytes\) in \d+ "
                              r"ms from packs; names: cargo metadata; phases: names \d+ ms, "
                              r"plan \d+ ms, import \d+ ms;")
        self.assertNotIn("Cargo.lock's package names", log)
        self.assert_served(b, out)

    def test_without_cargo_metadata_cargo_lock_names_are_used_and_said_once(self):
        out = self.populate_packs_only()
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        # the supervisor (and so the prefetch worker) cannot find cargo
        env = dict(b.env, PATH="/usr/bin:/bin")
        env.pop("CARGO", None)
        self.assertFalse(shutil.which("cargo", path=env["PATH"]), "cargo in /usr/bin")
        p = subprocess.run([kh.KACHE, "supervisor", "start"], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        b.cargo("check")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["sources"]["packs"], 1, pf)
        self.assertGreater(pf["packs"], 0, pf)
        log = self.prefetch_log(b)
        self.assertEqual(log.count("cargo metadata gave no crate names"), 1, log)
        self.assertIn("cargo was not found", log)
        self.assertRegex(log, r"[1-9]\d* packs imported .* names: Cargo.lock;")
        # served: tiny (named tiny-vendored in Cargo.lock) is fetched on its miss
        b.cargo("build")
        self.assertEqual(b.compiled(), [], "compiles reached rustc")
        self.assertEqual(b.run_app(), out)

    def test_newest_pack_of_a_crate_is_taken_under_the_byte_cap(self):
        a = self.runner("a", self.tmp, start=True)
        a.cargo("build")
        a.edit("vendor/tiny/src/lib.rs", "x * 2\n}", "x * 2\n}\npub fn two() -> u32 { 2 }")
        a.cargo("build")
        self.assertIn("tiny", a.compiled())
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        shutil.rmtree(os.path.join(self.remote, "sessions"), ignore_errors=True)
        packs = os.path.join(self.remote, "packs")
        for crate in os.listdir(packs):  # only tiny's packs stay
            if crate != "tiny":
                shutil.rmtree(os.path.join(packs, crate))
        d = os.path.join(packs, "tiny")
        names = [n for n in os.listdir(d) if n.endswith(".pack")]  # listing order
        self.assertEqual(len(names), 2, names)
        # the one listed first is the older: listing order would take it
        old, new = names
        now = time.time()
        os.utime(os.path.join(d, old), (now - 7200, now - 7200))
        os.utime(os.path.join(d, new), (now - 60, now - 60))
        cap = max(os.path.getsize(os.path.join(d, n)) for n in names)
        b = self.runner("b", os.path.join(self.tmp, "b", "runner"))
        b.env["KACHE_PREFETCH_MAX_BYTES"] = str(cap)
        b.cargo("check")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["packs"], 1, pf)
        self.assertEqual(pf["skipped"]["over_max_bytes"], 1, pf)
        keys = kh.entry_keys(b.env["KACHE_DIR"])
        self.assertIn(new[:64], keys)
        self.assertNotIn(old[:64], keys)


class PrefetchS3(unittest.TestCase):
    """The hung remote, over moto behind the fault proxy (test_s3's fixtures)."""

    def setUp(self):
        import test_s3_scenarios as t
        self.s3 = t.S3Scenarios("test_slow_responses")
        t.S3Scenarios.setUpClass()
        self.addCleanup(t.S3Scenarios.tearDownClass)
        self.s3.setUp()
        self.addCleanup(self.s3.tearDown)

    def test_hanging_remote_never_stalls_the_build(self):
        s3 = self.s3
        a, out = s3.first_machine()
        self.assertTrue(s3.drained(a))
        s3.fault({"mode": "hang", "delay": 60, "methods": ["GET"]})
        b = s3.machine("b", os.path.join(s3.tmp, "b"), port=s3.pport,
                       KACHE_FETCH_TIMEOUT_MS="1500")
        b.cargo("build")
        self.assertEqual(b.run_app(), out)
        pf = wait_prefetch(self, b, lambda p: p["sessions"] >= 1, timeout=30, settled=False)
        # the build finished while the session was still stuck on the remote
        self.assertEqual(pf["sessions_done"], 0, pf)
        self.assertEqual(pf["packs"], 0, pf)


    def test_s3_newest_pack_of_a_crate_is_taken_under_the_byte_cap(self):
        """Over moto: two packs of tiny, the one S3 lists first written first;
        a cap that admits one: the newer (LastModified) is imported."""
        s3 = self.s3
        a, _ = s3.first_machine()
        a.edit("vendor/tiny/src/lib.rs", "x * 2\n}", "x * 2\n}\npub fn two() -> u32 { 2 }")
        a.cargo("build")
        self.assertTrue(s3.drained(a))
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        bucket, pre = BUCKET_OF(s3), s3.prefix + "/"
        keys = [o["Key"] for page in s3.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=pre) for o in page.get("Contents", [])]
        for k in keys:  # only tiny's packs stay, and no session manifest
            if k.startswith(pre + "sessions/") or (k.startswith(pre + "packs/") and
                                                   not k.startswith(pre + "packs/tiny/")):
                s3.s3.delete_object(Bucket=bucket, Key=k)
        old, new = sorted(k for k in keys if k.startswith(pre + "packs/tiny/"))
        bodies = {k: s3.s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in (old, new)}
        # S3 lists by name: the first listed is written again first, the other
        # a second later (LastModified has a second's precision)
        s3.s3.put_object(Bucket=bucket, Key=old, Body=bodies[old])
        time.sleep(1.5)
        s3.s3.put_object(Bucket=bucket, Key=new, Body=bodies[new])
        cap = max(len(b) for b in bodies.values())
        b = s3.machine("b", os.path.join(s3.tmp, "b"), KACHE_PREFETCH_MAX_BYTES=str(cap))
        b.cargo("check")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["packs"], 1, pf)
        self.assertEqual(pf["skipped"]["over_max_bytes"], 1, pf)
        got = kh.entry_keys(b.store)
        self.assertIn(os.path.basename(new)[:64], got)
        self.assertNotIn(os.path.basename(old)[:64], got)


class SessionManifestS3(unittest.TestCase):
    """Session manifests over S3 (moto), checked with boto3."""

    setUp = PrefetchS3.setUp

    def session_objects(self):
        s3 = self.s3
        listed = s3.s3.list_objects_v2(Bucket=BUCKET_OF(s3), Prefix=s3.prefix + "/sessions/")
        return {o["Key"]: s3.s3.get_object(Bucket=BUCKET_OF(s3), Key=o["Key"])["Body"].read()
                for o in listed.get("Contents", [])}

    def test_s3_session_manifest_exact_and_none_from_a_read_only_runner(self):
        s3 = self.s3
        a, out = s3.first_machine()
        p = kache(a, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        objs = self.session_objects()
        self.assertEqual(len(objs), 1, objs.keys())
        (key, body), = objs.items()
        self.assertRegex(key, r"/sessions/[0-9a-f]{64}$")
        self.assertTrue(body.startswith(b"kache-session 3\n"), body[:80])
        self.assertTrue(body.endswith(b"\nend\n"))
        # the parts it names, as boto3 reads them: each named by its bytes'
        # BLAKE2b-256, holding the packs as uploaded, inflated
        lines = body.decode().split("\n")
        at = lines.index([l for l in lines if l.startswith("parts ")][0])
        parts = lines[at + 1:at + 1 + int(lines[at].split()[1])]
        self.assertGreaterEqual(len(parts), 1, lines)
        prefix = key[:-len("sessions/") - 64]
        for pid in parts:
            data = s3.s3.get_object(Bucket=BUCKET_OF(s3), Key=prefix + "bundles/" + pid)[
                "Body"].read()
            self.assertEqual(hashlib.blake2b(data, digest_size=32).hexdigest(), pid)
            self.assertTrue(data.startswith(b"kache-bundle 2\n"), data[:40])
            for crate, res, doc in kh.bundle_part_packs(data):
                pack = s3.s3.get_object(Bucket=BUCKET_OF(s3),
                                        Key="%spacks/%s/%s.pack" % (prefix, crate, res))
                self.assertEqual(doc, kh.zstd_inflate(pack["Body"].read()), res)
        b = s3.machine("b", os.path.join(s3.tmp, "elsewhere", "b"))
        b.cargo("check")
        pf = wait_prefetch(self, b, lambda p: p["sessions_done"] >= 1)
        self.assertEqual(pf["sources"]["exact_session"], 1, pf)
        before = stats(b)
        b.cargo("build")
        self.assertEqual(b.compiled(), [])
        self.assertEqual(b.run_app(), out)
        self.assertEqual(stats(b)["remote_hits"], before["remote_hits"])
        # a read-only runner with another Cargo.lock writes no session manifest
        c = s3.machine("c", os.path.join(s3.tmp, "ro", "c"), KACHE_S3_READ_ONLY="true")
        with open(os.path.join(c.dir, "Cargo.lock"), "a") as f:
            f.write("# read-only runner\n")
        c.cargo("build")
        self.assertEqual(c.run_app(), out)
        p = kache(c, "supervisor", "stop", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = kache(c, "save-manifest", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("read-only", p.stdout)
        self.assertEqual(self.session_objects(), objs)

    def test_s3_recache_replaces_the_remotes_result_and_its_bundle_part(self):
        s3 = self.s3

        def runner(name, **env):
            ws = s3.machine(name, os.path.join(s3.tmp, name, "ws"), **env)
            ws.edit("greet-macro/src/lib.rs", *SHOUT_UNTRACKED)
            return ws

        def packs(crate):
            pre = "%s/packs/%s/" % (s3.prefix, crate)
            listed = s3.s3.list_objects_v2(Bucket=BUCKET_OF(s3), Prefix=pre)
            return [kh.zstd_inflate(s3.s3.get_object(Bucket=BUCKET_OF(s3), Key=o["Key"])[
                "Body"].read()) for o in listed.get("Contents", [])]

        check_recache_replaces_the_remotes_result(self, runner, packs)


def BUCKET_OF(s3):
    import test_s3_scenarios as t
    return t.BUCKET

if __name__ == "__main__":
    kh.take_kache_arg()
    unittest.main()
