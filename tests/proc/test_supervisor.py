#!/usr/bin/env python3
"""Multi-process tests of the supervisor over real sockets and the real kached
binary. Each test has its own KACHE_DIR and kills what it started in tearDown.
Environment: KACHED (path of kached), POKE (path of proto_poke)."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import KACHED, POKE, alive, wait_for  # noqa: E402

KEY = "ab" * 32


class SupervisorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp("kache-proc-")
        self.dir = os.path.join(self.tmp, "store")
        self.env = kh.store_env(self.tmp, self.dir,
                                drop=("KACHE_FAULT", "KACHE_RESTART_LIMIT", "KACHE_UPLOADERS"))
        # the uploaders start with the supervisor, as these tests expect (the
        # wait for a first upload has tests of its own)
        self.env["KACHE_UPLOADERS_WAIT"] = "0"

    def tearDown(self):
        # kill every process serving a store of this test (supervisors and workers)
        reports = kh.end_test_processes(self.tmp, self.dir)
        self.assertEqual(reports, [], "sanitizer reports in the logs")

    def store_pids(self, prefix=None):
        """Processes serving this test's store, or with prefix, any store under it."""
        return kh.store_pids(prefix or self.dir, under=bool(prefix))

    def kached(self, *args, check=True, timeout=30):
        p = subprocess.run([KACHED, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check:
            self.assertEqual(p.returncode, 0, f"{args}: {p.stdout}{p.stderr}")
        return p

    def poke(self, *args):
        p = subprocess.run([POKE, *args], env=self.env, capture_output=True, text=True, timeout=30)
        return p.stdout.strip()

    def status(self):
        p = self.kached("supervisor", "status", "--json", check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def workers(self, role=None):
        st = self.status() or {"workers": []}
        return [w for w in st["workers"] if role is None or w["role"] == role]

    def all_ready(self, n=None):
        ws = self.workers()
        return ws and all(w["state"] == "ready" for w in ws) and (n is None or len(ws) == n)

    def start(self):
        out = self.kached("supervisor", "start").stdout
        self.assertIn("started", out)
        self.assertTrue(wait_for(self.all_ready), self.status())
        return self.status()["pid"]

    def workspaces(self, *names):
        """A directory remote, and a workspace root per name with a Cargo.lock:
        [(root, lock)] for prefetch hints."""
        remote = os.path.join(self.tmp, "remote")
        os.makedirs(remote)
        self.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=remote)
        out = []
        for name in names:
            root = os.path.join(self.tmp, name)
            os.makedirs(root)
            with open(os.path.join(root, "Cargo.lock"), "w") as f:
                f.write("version = 3\n")
            out.append((root, os.path.join(root, "Cargo.lock")))
        return out

    def test_start_status_stop(self):
        pid = self.start()
        text = self.kached("supervisor", "status").stdout
        self.assertIn(f"supervisor: pid {pid}", text)
        self.assertRegex(text, r"uploader\s+0\s+\d+\s+ready")
        self.assertRegex(text, r"fetcher\s+0\s+\d+\s+ready")
        st = self.status()
        self.assertEqual(st["version"], self.kached("version").stdout.split()[1])
        self.assertRegex(text, r"indexer\s+0\s+\d+\s+ready")
        self.assertEqual(sorted(w["role"] for w in st["workers"]),
                         ["fetcher", "indexer", "uploader"])
        self.assertIn("already running", self.kached("supervisor", "start").stdout)
        self.kached("daemon", "status")  # the alias
        self.assertIn("stopped", self.kached("supervisor", "stop").stdout)
        self.assertTrue(wait_for(lambda: not self.store_pids()), self.store_pids())
        p = self.kached("supervisor", "status", check=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn("not running", p.stdout)
        self.assertIn("supervising", self.kached("supervisor", "log", "-n", "50").stdout)

    def test_kill9_worker_restarts(self):
        self.start()
        old = self.workers("uploader")[0]["pid"]
        os.kill(old, signal.SIGKILL)
        def back():
            ws = self.workers("uploader")
            return ws and ws[0]["state"] == "ready" and ws[0]["pid"] != old and ws[0]
        w = wait_for(back, 10)
        self.assertTrue(w, self.workers())
        self.assertEqual(w["restarts"], 1)
        self.assertIn("signal 9", w["last_exit"])
        self.assertEqual(self.poke("fetch", KEY, "500").split()[0], "miss")

    def test_workers_are_forked_by_a_zygote_and_exec_d_when_it_fails(self):
        """The supervisor execs one `kached __zygote` and forks each worker
        from it (no exec of 51 libraries per worker): each is the supervisor's
        own child as an exec'd one is (handed over as a subreaper's orphan),
        runs the kached binary, and shows its own command line. With the
        zygote killed, a worker's restart is exec'd and a new zygote takes
        over ZYGOTE_RETRY_MS (5 s) later; workers.zygote = false execs all.
        `kache supervisor start` is run holding a pipe (as from a shell, a CI
        runner, cargo's jobserver): neither the supervisor, the zygote nor a
        worker may hold it."""
        pipe_r, pipe_w = os.pipe()

        def start_with_a_pipe():
            p = subprocess.run([KACHED, "supervisor", "start"], env=self.env, pass_fds=(pipe_w,),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertTrue(wait_for(self.all_ready), self.status())
            return self.status()["pid"]

        sup = start_with_a_pipe()
        st = self.status()
        n = len(st["workers"])
        self.assertEqual((st["spawned"]["forked"], st["spawned"]["exec"]), (n, 0), st)
        zyg = st["spawned"]["zygote_pid"]

        def ppid(pid):
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])

        self.assertEqual(ppid(zyg), sup)
        # nothing the supervisor holds is forked into the zygote (only its
        # stdin, stdout, stderr and socket), nor into a worker (the pipe
        # reached every worker before)
        self.assertEqual(sorted(os.listdir(f"/proc/{zyg}/fd")), ["0", "1", "2", "3"])

        def no_pipes(pid):
            fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            self.assertEqual([f for f in fds if f.startswith("pipe:")], [], pid)

        no_pipes(sup)  # nor the supervisor itself, a daemon
        for w in st["workers"]:
            no_pipes(w["pid"])
            self.assertEqual(ppid(w["pid"]), sup, w)
            self.assertEqual(os.readlink(f"/proc/{w['pid']}/exe"), os.path.realpath(KACHED))
            with open(f"/proc/{w['pid']}/cmdline", "rb") as f:
                want = b"kached\0__worker\0%s\0%d\0" % (w["role"].encode(), w["index"])
                self.assertEqual(f.read().rstrip(b"\0") + b"\0", want)
        os.kill(zyg, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: self.status()["spawned"]["zygote_pid"] == -1, 10))
        with open(os.path.join(self.dir, "logs", "supervisor.log")) as f:
            self.assertIn("zygote (pid %d): exited" % zyg, f.read())  # was: pid -1
        self.assertTrue(self.all_ready(n), self.workers())  # not the zygote's children

        def restart(role):
            old = self.workers(role)[0]["pid"]
            os.kill(old, signal.SIGKILL)
            self.assertTrue(wait_for(lambda: [w for w in self.workers(role)
                                              if w["pid"] != old and w["state"] == "ready"],
                                     10), self.workers())
            return self.status()["spawned"]

        self.assertEqual(restart("fetcher"), {"forked": n, "exec": 1, "zygote_pid": -1})
        self.assertEqual(self.poke("fetch", KEY, "500").split()[0], "miss")
        time.sleep(5.5)
        sp = restart("fetcher")
        self.assertEqual((sp["forked"], sp["exec"]), (n + 1, 1), sp)
        self.assertNotIn(sp["zygote_pid"], (-1, zyg))
        self.assertEqual(ppid(sp["zygote_pid"]), sup)
        self.kached("supervisor", "stop")
        self.assertTrue(wait_for(lambda: not self.store_pids()), self.store_pids())

        self.env["KACHE_ZYGOTE"] = "false"
        start_with_a_pipe()
        os.close(pipe_r)
        os.close(pipe_w)
        sp = self.status()["spawned"]
        self.assertEqual(sp, {"forked": 0, "exec": n, "zygote_pid": -1})
        for w in self.workers():
            no_pipes(w["pid"])
        p = self.kached("__zygote", check=False)  # by hand: no socket from a supervisor
        self.assertEqual(p.returncode, 2)
        self.assertIn("started by the supervisor only", p.stderr)

    def test_stalled_worker_is_replaced(self):
        self.env["KACHE_FAULT"] = "fetcher:stall_after=3"
        self.kached("supervisor", "start")
        def replaced():
            ws = self.workers("fetcher")
            return ws and "silent" in ws[0]["last_exit"] and ws[0]
        self.assertTrue(wait_for(replaced, 15), self.workers())

    def test_crash_loop_backs_off_and_fails(self):
        self.env.update(KACHE_FAULT="uploader:crash_after=0", KACHE_RESTART_LIMIT="3")
        self.kached("supervisor", "start")
        def failed():
            ws = self.workers("uploader")
            return ws and ws[0]["state"] == "failed" and ws[0]
        t0 = time.monotonic()
        w = wait_for(failed, 30)
        self.assertTrue(w, self.workers())
        # 3 deaths with >= 1 s, then 2 s between them: not a restart storm
        self.assertGreaterEqual(time.monotonic() - t0, 2.5)
        self.assertEqual(w["restarts"], 2)
        self.assertIn("signal 6", w["last_exit"])
        time.sleep(1.5)
        self.assertEqual(self.workers("uploader")[0]["restarts"], 2)
        self.assertEqual(self.workers("fetcher")[0]["state"], "ready")
        pid = self.status()["pid"]
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().split(") ")[1].split()
        ticks = int(fields[11]) + int(fields[12])
        self.assertLess(ticks / os.sysconf("SC_CLK_TCK"), 1.0)

    def test_config_error_worker_not_restarted(self):
        self.env["KACHE_REMOTE"] = "s3"  # not available in this phase: exit 78
        self.kached("supervisor", "start")
        def failed():  # the remote's workers; the indexer needs no remote
            ws = [w for w in self.workers() if w["role"] != "indexer"]
            return ws and all(w["state"] == "failed" for w in ws) and ws
        ws = wait_for(failed, 10)
        self.assertTrue(ws, self.workers())
        self.assertIn("configuration error", ws[0]["last_exit"])
        self.assertEqual(ws[0]["restarts"], 0)

    def test_sigstop_supervisor_client_times_out(self):
        pid = self.start()
        os.kill(pid, signal.SIGSTOP)
        try:
            res, ms = self.poke("fetch", KEY, "50").split()
            self.assertEqual(res, "timeout")
            self.assertLess(int(ms), 1000)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(self.poke("fetch", KEY, "1000").split()[0], "miss")

    def test_a_stuck_loop_is_ended_by_the_watchdog_and_a_fresh_one_serves(self):
        # a supervisor whose loop stopped going round still held the store's
        # lock: nothing could replace it, and every first miss paid its deadline
        self.env.update(KACHE_FAULT="supervisor:hang_on=FETCH", KACHE_WATCHDOG="2")
        pid = self.start()
        wpids = [w["pid"] for w in self.workers()]
        self.assertEqual(self.poke("fetch", KEY, "300").split()[0], "timeout")
        self.assertTrue(wait_for(lambda: not alive(pid), 15), "the stuck supervisor lives on")
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in wpids), 10))
        log = open(os.path.join(self.dir, "logs", "supervisor.log")).read()
        self.assertIn("fault injection: the loop hangs on FETCH", log)
        self.assertIn("has not moved for", log)
        del self.env["KACHE_FAULT"]
        pid2 = self.start()
        self.assertNotEqual(pid, pid2)
        self.assertEqual(self.poke("fetch", KEY, "1000").split()[0], "miss")

    def test_the_watchdog_takes_its_limit_from_a_reload(self):
        cfg = self.env["KACHE_CONFIG"]
        with open(cfg, "w") as f:
            f.write("[supervisor]\nwatchdog = 0\n")
        self.env["KACHE_FAULT"] = "supervisor:hang_on=FETCH"
        pid = self.start()
        with open(cfg, "w") as f:
            f.write("[supervisor]\nwatchdog = 2\n")
        os.utime(cfg, (time.time() + 5, time.time() + 5))
        log = os.path.join(self.dir, "logs", "supervisor.log")
        self.assertTrue(wait_for(lambda: "configuration changed" in open(log).read(), 10))
        self.assertEqual(self.poke("fetch", KEY, "300").split()[0], "timeout")
        self.assertTrue(wait_for(lambda: not alive(pid), 15), "the reload's limit was not taken")
        self.assertIn("has not moved for", open(log).read())

    def test_a_frozen_process_is_not_taken_for_a_stuck_loop(self):
        # SIGSTOP freezes the watchdog too: after SIGCONT the loop is given its
        # time again, not ended for the seconds it was stopped
        self.env["KACHE_WATCHDOG"] = "2"
        pid = self.start()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(5)
        os.kill(pid, signal.SIGCONT)
        time.sleep(4)
        self.assertTrue(alive(pid))
        self.assertEqual(self.status()["pid"], pid)
        self.assertEqual(self.poke("fetch", KEY, "1000").split()[0], "miss")

    def test_kill9_supervisor_no_orphans_and_recovery(self):
        pid = self.start()
        wpids = [w["pid"] for w in self.workers()]
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: not any(alive(p) for p in wpids), 10))
        # the dead supervisor's lock goes with its last file descriptor, which the
        # kernel may close a moment after its workers saw it die
        self.assertTrue(wait_for(
            lambda: self.poke("fetch", KEY, "50").split()[0] == "unavailable", 5))
        self.assertTrue(os.path.exists(os.path.join(self.dir, "run", "ctl")))  # stale socket
        pid2 = self.start()
        self.assertNotEqual(pid, pid2)

    def test_two_starts_one_supervisor(self):
        procs = [subprocess.Popen([KACHED, "supervisor", "start"], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(4)]
        for p in procs:
            self.assertEqual(p.wait(30), 0)
        self.assertTrue(wait_for(self.all_ready))
        sups = [p for p in self.store_pids()
                if b"supervisor\0run" in open(f"/proc/{p}/cmdline", "rb").read()]
        self.assertEqual(len(sups), 1, sups)
        self.assertEqual(len(self.workers()), 3)  # uploader, fetcher, indexer

    def test_ensure_many_wrappers_one_supervisor(self):
        procs = [subprocess.Popen([POKE, "ensure", os.path.abspath(KACHED)], env=self.env)
                 for _ in range(32)]
        for p in procs:
            self.assertEqual(p.wait(30), 0)
        self.assertTrue(wait_for(lambda: self.status() is not None))
        time.sleep(1)
        sups = [p for p in self.store_pids()
                if b"supervisor\0run" in open(f"/proc/{p}/cmdline", "rb").read()]
        self.assertEqual(len(sups), 1, sups)

    def test_malformed_messages(self):
        pid = self.start()
        cases = {"garbage": "reply ERROR 1", "empty": "reply ERROR 1", "frames": "reply ERROR 1",
                 "truncated": "reply ERROR 1", "array32": "reply ERROR 1",
                 "version": "reply ERROR 2", "unknown": "reply ERROR 3", "oversize": "noreply"}
        for case, want in cases.items():
            self.assertEqual(self.poke("raw", case), want, case)
        self.assertEqual(self.status()["pid"], pid)
        self.assertIn("malformed", self.kached("supervisor", "log", "-n", "100").stdout)

    def test_unsafe_socket_dir_refused(self):
        os.makedirs(os.path.join(self.dir, "run"))
        os.chmod(os.path.join(self.dir, "run"), 0o777)
        p = self.kached("supervisor", "start", check=False)
        self.assertEqual(p.returncode, 78)
        self.assertIn("unsafe socket directory", p.stderr)
        self.assertIn("chmod 700", p.stderr)
        p = self.kached("supervisor", "run", check=False)
        self.assertEqual(p.returncode, 78)
        self.assertEqual(self.store_pids(), [])

    def test_long_store_path_gets_short_socket_dir(self):
        self.dir = os.path.join(self.tmp, "x" * 120, "store")
        self.env["KACHE_DIR"] = self.dir
        self.start()
        self.assertEqual(self.poke("fetch", KEY, "500").split()[0], "miss")

    def test_scale(self):
        self.start()
        self.assertIn("uploader = 4", self.kached("supervisor", "scale", "uploader=4").stdout)
        self.assertTrue(wait_for(lambda: len([w for w in self.workers("uploader")
                                               if w["state"] == "ready"]) == 4))
        self.assertEqual(sorted(w["index"] for w in self.workers("uploader")), [0, 1, 2, 3])
        self.kached("supervisor", "scale", "uploader=2")
        self.assertTrue(wait_for(lambda: len(self.workers("uploader")) == 2))
        p = self.kached("supervisor", "scale", "bogus=2", check=False)
        self.assertNotEqual(p.returncode, 0)

    def test_fetcher_count_survives_reload(self):
        """scale fetcher=3 holds across a configuration reload (the supervisor
        re-reads the file when its mtime changes)."""
        cfg = self.env["KACHE_CONFIG"]
        with open(cfg, "w") as f:
            f.write("[supervisor]\nidle_timeout = 0\n")
        self.start()
        self.assertIn("fetcher = 3", self.kached("supervisor", "scale", "fetcher=3").stdout)
        self.assertTrue(wait_for(lambda: len([w for w in self.workers("fetcher")
                                               if w["state"] == "ready"]) == 3), self.workers())
        with open(cfg, "a") as f:
            f.write("# touched\n")
        os.utime(cfg, (time.time() + 5, time.time() + 5))
        log = os.path.join(self.dir, "logs", "supervisor.log")
        self.assertTrue(wait_for(lambda: "configuration changed" in open(log).read(), 10))
        time.sleep(1.0)  # a resize to 1 would retire two fetchers at once
        self.assertEqual(sorted(w["index"] for w in self.workers("fetcher")), [0, 1, 2],
                         self.workers())

    def scale_file(self):
        p = os.path.join(self.dir, "run", "scale")
        return open(p).read() if os.path.exists(p) else None

    def counts(self):
        ws = self.workers()
        return {r: len([w for w in ws if w["role"] == r and w["state"] == "ready"])
                for r in ("uploader", "fetcher")}

    def test_scale_survives_restart_and_reexec(self):
        """A run-time scale is kept in run/scale: `supervisor restart` and a
        binary-update re-exec come back with it; scaling back to the configured
        count clears it."""
        exe = os.path.join(self.tmp, "bin", "kached")  # a copy, so it can be "updated"
        os.makedirs(os.path.dirname(exe))
        subprocess.run(["cp", KACHED, exe], check=True)
        run = lambda *a: subprocess.run([exe, *a], env=self.env, capture_output=True,
                                        text=True, timeout=30, check=True)
        run("supervisor", "start")
        self.assertTrue(wait_for(self.all_ready), self.status())
        self.assertEqual(self.counts(), {"uploader": 1, "fetcher": 1})  # no remote: one fetcher
        run("supervisor", "scale", "fetcher=3")
        run("supervisor", "scale", "uploader=2")
        self.assertEqual(self.scale_file(), "uploader=2\nfetcher=3\n")
        want = {"uploader": 2, "fetcher": 3}
        self.assertTrue(wait_for(lambda: self.counts() == want, 15), self.workers())
        run("supervisor", "restart")
        self.assertTrue(wait_for(lambda: self.counts() == want, 15), self.workers())
        pid = self.status()["pid"]
        later = time.time() + 10
        os.utime(exe, (later, later))  # a newer binary on disk: the supervisor re-execs
        log = os.path.join(self.dir, "logs", "supervisor.log")
        self.assertTrue(wait_for(lambda: open(log).read().count("binary on disk is newer") == 1
                                 and open(log).read().count("supervising") == 3, 20))
        self.assertTrue(wait_for(lambda: self.counts() == want and self.all_ready(), 15),
                        self.workers())
        self.assertEqual(self.status()["pid"], pid)  # the same process, re-executed
        run("supervisor", "scale", "fetcher=1")  # the configured count: cleared
        self.assertEqual(self.scale_file(), "uploader=2\n")
        run("supervisor", "scale", "uploader=1")
        self.assertIsNone(self.scale_file())
        run("supervisor", "restart")
        self.assertTrue(wait_for(lambda: self.counts() == {"uploader": 1, "fetcher": 1}
                                 and self.all_ready(), 15), self.workers())

    def test_damaged_scale_file_is_ignored(self):
        os.makedirs(os.path.join(self.dir, "run"), mode=0o700)
        for bad in ("fetcher=3\nuploader=x\n", "fetcher=99\n", "indexer=2\n", "fetcher=3",
                    "\x00" * 3000):
            with open(os.path.join(self.dir, "run", "scale"), "w") as f:
                f.write(bad)
            self.start()
            self.assertEqual(self.counts(), {"uploader": 1, "fetcher": 1}, bad)
            log = open(os.path.join(self.dir, "logs", "supervisor.log")).read()
            self.assertIn("run/scale", log)
            self.kached("supervisor", "stop")
            self.assertTrue(wait_for(lambda: not self.store_pids()), self.store_pids())

    def test_uploaders_from_environment(self):
        self.env["KACHE_UPLOADERS"] = "3"
        self.start()
        self.assertEqual(len(self.workers("uploader")), 3)

    def test_slow_fetch_is_acknowledged_then_answered(self):
        """A fetch slower than the short deadline still succeeds once the supervisor
        has acknowledged it; without the acknowledgement the short deadline rules."""
        sink = os.path.join(self.dir, "sink")
        os.makedirs(sink)
        self.env.update(KACHE_REMOTE="testsink", KACHE_REMOTE_PATH=sink,
                        KACHE_TEST_SINK_DELAY_MS="1500")
        open(os.path.join(sink, KEY), "w").close()
        self.start()
        self.assertTrue(wait_for(self.all_ready))
        # longer than three heartbeats (200 ms here): a busy worker is not "silent"
        res, ms = self.poke("fetch", KEY, "100", "5000").split()
        self.assertEqual(res, "ok")
        self.assertGreaterEqual(int(ms), 1500)
        self.assertEqual([w["restarts"] for w in self.workers("fetcher")], [0, 0])
        res, ms = self.poke("fetch", KEY, "100").split()
        self.assertEqual(res, "timeout")

    def test_the_prefetch_yields_the_cpu_to_the_build_and_the_others_do_not(self):
        """The prefetch worker runs in a session of its own whose scheduling group
        is niced: with autogroups (the default of Debian's kernels), the CPU is
        shared between sessions first, and a nice value weighs only within one,
        so a prefetch niced inside the supervisor's session took as much CPU from
        cargo's session as an un-niced one. The supervisor and the workers a
        build waits on keep their priority."""
        self.workspaces("r")
        sup = self.start()

        def sid_nice(pid):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[3]), int(fields[16])  # session, nice

        pf = self.workers("prefetch")[0]["pid"]
        self.assertEqual(sid_nice(pf), (pf, 10))  # leads its own session, niced
        if os.path.exists(f"/proc/{pf}/autogroup"):
            with open(f"/proc/{pf}/autogroup") as f:
                self.assertTrue(f.read().strip().endswith(" nice 10"))
        sup_sid = sid_nice(sup)[0]
        for w in self.workers():
            if w["role"] != "prefetch":
                self.assertEqual(sid_nice(w["pid"]), (sup_sid, 0), w)

    def test_a_busy_worker_stopped_past_its_heartbeats_goes_on(self):
        """A worker that did not run for longer than three heartbeats (stopped,
        or starved of CPU) finds the supervisor's messages waiting when it runs
        again: it reads them before it judges the supervisor silent, and its job
        is done, not lost. (It exited, losing the session: CI, sanitizer pass.)"""
        [(root, lock)] = self.workspaces("r")
        self.start()
        pid = self.workers("prefetch")[0]["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            self.assertEqual(self.poke("hint", root, lock, "release"), "ok")
            self.assertTrue(wait_for(lambda: self.status()["prefetch"]["sessions"] == 1))
            time.sleep(1.5)  # seven heartbeats of 200 ms; the job's limit is minutes
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: self.status()["prefetch"]["sessions_done"] == 1),
                        self.status()["prefetch"])
        pf = self.status()["prefetch"]
        self.assertEqual(pf["sessions_lost"], 0, pf)
        w = self.workers("prefetch")[0]
        self.assertEqual((w["pid"], w["restarts"]), (pid, 0), w)
        log = open(os.path.join(self.dir, "logs", "prefetch.0.log")).read()
        self.assertNotIn("silent", log)

    def test_upload_and_fetch_plumbing(self):
        sink = os.path.join(self.tmp, "sink")
        os.makedirs(sink)
        self.env.update(KACHE_REMOTE="testsink", KACHE_REMOTE_PATH=sink)
        intents = os.path.join(self.dir, "intents")
        os.makedirs(intents)
        early = "cd" * 32
        open(os.path.join(intents, early), "w").close()  # replayed at start-up
        self.start()
        self.assertTrue(wait_for(lambda: os.path.exists(os.path.join(sink, early))))
        self.assertTrue(wait_for(lambda: not os.path.exists(os.path.join(intents, early))))
        open(os.path.join(intents, KEY), "w").close()
        self.poke("notify", KEY)
        self.assertTrue(wait_for(lambda: not os.path.exists(os.path.join(intents, KEY))))
        self.assertTrue(os.path.exists(os.path.join(sink, KEY)))
        self.assertEqual(self.poke("fetch", KEY, "1000").split()[0], "ok")
        self.assertEqual(self.poke("fetch", "ef" * 32, "1000").split()[0], "miss")
        self.assertEqual(sum(w["jobs_done"] for w in self.workers("uploader")), 2)

    def sink_remote(self, **env):
        """A test sink remote, this store's intents directory, and env set."""
        sink = os.path.join(self.tmp, "sink")
        intents = os.path.join(self.dir, "intents")
        os.makedirs(sink)
        os.makedirs(intents)
        self.env.update(KACHE_REMOTE="testsink", KACHE_REMOTE_PATH=sink, **env)
        return sink, intents

    def test_uploaders_wait_for_the_first_upload(self):
        """A build that only hits uploads nothing: the uploaders wait for the
        first upload queued (workers.uploaders_wait: at most 120 s here), then
        start at once and upload it."""
        sink, intents = self.sink_remote(KACHE_UPLOADERS_WAIT="120", KACHE_UPLOADERS="2")
        self.kached("supervisor", "start")
        self.assertTrue(wait_for(lambda: self.workers("fetcher") and all(
            w["state"] == "ready" for w in self.workers() if w["role"] != "uploader")))
        time.sleep(1)
        self.assertEqual([(w["state"], w["pid"]) for w in self.workers("uploader")],
                         [("waiting", 0)] * 2)
        self.assertRegex(self.kached("supervisor", "status").stdout, r"uploader\s+1\s+0\s+waiting")
        def cmdline(pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    return f.read().split(b"\0")
            except OSError:
                return []
        self.assertEqual([p for p in self.store_pids() if b"uploader" in cmdline(p)], [])
        open(os.path.join(intents, KEY), "w").close()
        self.poke("notify", KEY)
        self.assertTrue(wait_for(lambda: os.path.exists(os.path.join(sink, KEY)), 20))
        self.assertTrue(wait_for(lambda: all(w["state"] == "ready"
                                             for w in self.workers("uploader"))), self.workers())
        self.assertIn("stopped", self.kached("supervisor", "stop").stdout)

    def test_uploaders_start_at_once_for_an_upload_left_from_before(self):
        sink, intents = self.sink_remote(KACHE_UPLOADERS_WAIT="120")
        open(os.path.join(intents, KEY), "w").close()  # a build's upload no supervisor took
        self.kached("supervisor", "start")
        self.assertTrue(wait_for(lambda: os.path.exists(os.path.join(sink, KEY)), 20))
        self.assertTrue(wait_for(lambda: not os.path.exists(os.path.join(intents, KEY))))

    def test_uploaders_start_when_the_wait_ends_or_when_scaled(self):
        self.sink_remote(KACHE_UPLOADERS_WAIT="1")
        self.kached("supervisor", "start")
        self.assertTrue(wait_for(lambda: [w["state"] for w in self.workers("uploader")]
                                 == ["ready"]), self.workers())
        self.kached("supervisor", "stop")
        self.assertTrue(wait_for(lambda: not self.store_pids()), self.store_pids())
        self.env["KACHE_UPLOADERS_WAIT"] = "120"
        self.kached("supervisor", "start")
        time.sleep(0.5)
        self.assertEqual([w["state"] for w in self.workers("uploader")], ["waiting"])
        self.kached("supervisor", "scale", "uploader=2")  # asked for: no more waiting
        self.assertTrue(wait_for(lambda: [w["state"] for w in self.workers("uploader")]
                                 == ["ready", "ready"]), self.workers())

    def test_no_remote_queues_nothing(self):
        intents = os.path.join(self.dir, "intents")
        os.makedirs(intents)
        open(os.path.join(intents, KEY), "w").close()
        self.start()
        self.poke("notify", KEY)
        time.sleep(0.5)
        self.assertEqual(self.status()["queue"]["uploads"], 0)
        self.assertTrue(os.path.exists(os.path.join(intents, KEY)))
        res, ms = self.poke("fetch", KEY, "1000").split()
        self.assertEqual(res, "miss")

    def test_a_compile_hint_waits_for_its_early_session_or_replaces_it_queued(self):
        """An early hint (cargo's first question, target and profile guessed)
        never displaces a session; a compile's hint for the same workspace
        waits for a running early session and runs after it (this one found
        no session manifest), or replaces an early hint still queued. The
        prefetch worker is stopped (SIGSTOP) so that each state holds."""
        roots = self.workspaces("r1", "r2")
        self.start()
        pid = self.workers("prefetch")[0]["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            (r1, l1), (r2, l2) = roots
            hint = lambda *a: self.assertEqual(self.poke("hint", *a), "ok")  # noqa: E731
            hint(r1, l1, "debug", "guess")  # sent: the worker holds it
            self.assertTrue(wait_for(lambda: self.status()["prefetch"]["sessions"] == 1))
            hint(r1, l1, "release")         # waits for the early session
            hint(r2, l2, "debug", "guess")  # queued: the one worker is busy
            hint(r2, l2, "release")         # replaces it
            hint(r1, l1, "debug", "guess")  # a guess never displaces anything
            pf = self.status()["prefetch"]
            self.assertEqual((pf["hints"], pf["hints_early"]), (5, 3), pf)
            self.assertEqual(pf["hints_dropped_why"]["replaced"], 1, pf)
            self.assertEqual(pf["hints_dropped_why"]["session_running"], 1, pf)
            self.assertEqual(pf["sessions_queued"], 3, pf)  # r1, its next, r2
            self.assertEqual(pf["sessions"], 1, pf)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: self.status()["prefetch"]["sessions_queued"] == 0,
                                 timeout=60), self.status()["prefetch"])
        pf = self.status()["prefetch"]
        self.assertEqual((pf["sessions"], pf["sessions_done"]), (3, 3), pf)
        self.assertEqual(pf["hints_served_early"], 0, pf)
        log = open(os.path.join(self.dir, "logs", "supervisor.log")).read()
        self.assertIn("prefetch hint for %s (after its early session)" % r1, log)
        self.assertIn("prefetch hint for %s dropped: its early hint, by the compile's" % r2,
                      log)
        plog = open(os.path.join(self.dir, "logs", "prefetch.0.log")).read()
        self.assertEqual(plog.count("early hint (target \"\", profile \"debug\" guessed)"), 1,
                         plog)

    def test_a_session_queued_when_no_prefetch_worker_can_run_any_more_is_dropped(self):
        """A session waits in the queue (the one prefetch worker is stopped,
        busy with another); then the role is scaled to 0: nothing will ever
        take the waiting one, so it is dropped (said, counted under
        no_prefetch) instead of staying queued, which kept an idle supervisor
        from ever exiting."""
        roots = self.workspaces("r1", "r2")
        self.start()
        pid = self.workers("prefetch")[0]["pid"]
        pf = lambda: self.status()["prefetch"]  # noqa: E731
        os.kill(pid, signal.SIGSTOP)
        try:
            for root, lock in roots:
                self.assertEqual(self.poke("hint", root, lock, "debug"), "ok")
            self.assertTrue(wait_for(lambda: pf()["sessions_queued"] == 2), pf())
            self.assertEqual(pf()["sessions"], 1, pf())  # r1 went to the stopped worker
            self.kached("supervisor", "scale", "prefetch=0")
            self.assertTrue(wait_for(lambda: pf()["hints_dropped_why"]["no_prefetch"] == 1),
                            pf())
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: pf()["sessions_queued"] == 0, timeout=30), pf())
        got = pf()
        self.assertEqual((got["hints"], got["hints_dropped"], got["sessions"]), (2, 1, 1), got)
        self.assertEqual(got["sessions_done"] + got["sessions_lost"], 1, got)
        log = open(os.path.join(self.dir, "logs", "supervisor.log")).read()
        self.assertIn("prefetch hint for %s dropped: no prefetch worker can run" % roots[1][0],
                      log)

    def test_a_hint_file_a_dead_supervisor_had_claimed_is_taken_at_start(self):
        """A supervisor claims a hint file by renaming it to NAME.taking
        before reading it; one that died in between left it there. The next
        supervisor takes it as the hint it is."""
        [(root, lock)] = self.workspaces("r")
        name = "0123456789abcdef"
        p = subprocess.run([POKE, "hintfile", name, root, lock],
                           env=self.env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        hints = os.path.join(self.dir, "run", "hints")
        os.rename(os.path.join(hints, name), os.path.join(hints, name + ".taking"))
        self.start()
        pf = lambda: self.status()["prefetch"]  # noqa: E731
        self.assertTrue(wait_for(lambda: pf()["sessions_done"] == 1), pf())
        self.assertEqual((pf()["hints"], pf()["hints_malformed"]), (1, 0), pf())
        self.assertEqual(os.listdir(hints), [])
        log = open(os.path.join(self.dir, "logs", "supervisor.log")).read()
        self.assertIn("prefetch hint for %s" % root, log)

    def test_an_early_session_that_ended_serves_the_compile_hint_after_it(self):
        """An early session that used the exact session manifest of its
        fingerprint and ended before the compile's hint came serves that
        hint (not run again); one of another fingerprint still runs."""
        import hashlib
        remote = os.path.join(self.tmp, "remote")
        os.makedirs(os.path.join(remote, "sessions"))
        self.env.update(KACHE_REMOTE="dir", KACHE_REMOTE_PATH=remote)
        lock_hash = "5a" * 32
        h = hashlib.blake2b(digest_size=32)
        for part in ("kache-session-v1", lock_hash, "", "", "debug"):
            h.update(len(part).to_bytes(8, "little") + part.encode())
        with open(os.path.join(remote, "sessions", h.hexdigest()), "w") as f:
            f.write("kache-session 1\nlock %s\ntoolchain -\ntarget -\nprofile debug\n"
                    "created 1\nkeys 0\nend\n" % lock_hash)
        root = os.path.join(self.tmp, "r")
        os.makedirs(root)
        lock = os.path.join(root, "Cargo.lock")
        open(lock, "w").close()
        self.start()
        hint = lambda *a: self.assertEqual(self.poke("hint", root, lock, *a), "ok")  # noqa: E731
        pf = lambda: self.status()["prefetch"]  # noqa: E731
        hint("debug", "guess", lock_hash)
        self.assertTrue(wait_for(lambda: pf()["sessions_done"] == 1, timeout=30), pf())
        self.assertEqual(pf()["sources"]["exact_session"], 1, pf())
        hint("debug", "compile", lock_hash)  # the same fingerprint: served
        hint("debug", "compile", lock_hash)  # one compile's hint per early session
        hint("release", "compile", lock_hash)
        self.assertTrue(wait_for(lambda: pf()["sessions_done"] == 3 and
                                 pf()["sessions_queued"] == 0, timeout=30), pf())
        got = pf()
        self.assertEqual(got["hints_served_early"], 1, got)
        self.assertEqual((got["hints"], got["sessions"]), (4, 3), got)
        log = open(os.path.join(self.dir, "logs", "supervisor.log")).read()
        self.assertEqual(log.count("prefetch hint for %s served by its early session" % root),
                         1, log)

    def test_install_without_systemd(self):
        if os.path.exists("/run/systemd/system"):
            self.skipTest("systemd present")
        p = self.kached("supervisor", "install", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("systemd is not running", p.stderr)

    def test_client_does_not_link_libzmq(self):
        out = subprocess.run(["readelf", "-d", POKE], capture_output=True, text=True).stdout
        self.assertNotIn("libzmq", out)
        self.assertIn("libc.so", out)
        # with no supervisor: unavailable at once, without waiting for the deadline
        res, ms = self.poke("fetch", KEY, "5000").split()
        self.assertEqual(res, "unavailable")
        self.assertLess(int(ms), 1000)

    def test_two_runs_at_once_loser_exits_0_naming_the_winner(self):
        """With systemd's Restart=on-failure, a loser that exits 1 is a restart loop."""
        procs = [subprocess.Popen([KACHED, "supervisor", "run"], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        try:
            self.assertTrue(wait_for(lambda: any(p.poll() is not None for p in procs), 20))
            loser = [p for p in procs if p.poll() is not None][0]
            winner = [p for p in procs if p is not loser][0]
            self.assertIsNone(winner.poll(), "one supervisor must keep running")
            err = loser.stderr.read()
            self.assertEqual(loser.returncode, 0, err)
            self.assertIn(f"already running (pid {winner.pid})", err)
            self.assertTrue(wait_for(lambda: self.status() is not None))
            self.assertEqual(self.status()["pid"], winner.pid)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait(10)

    def test_flood_of_bad_messages_is_rate_limited(self):
        """One line for the first bad message, then at most a summary line an
        interval with the count of those suppressed, not a line each."""
        pid = self.start()
        log = os.path.join(self.dir, "logs", "supervisor.log")
        before = len(open(log).read().splitlines())
        self.assertEqual(self.poke("flood", "garbage", "3000"), "sent 3000")
        self.assertEqual(self.poke("flood", "unknown", "3000"), "sent 3000")
        self.assertEqual(self.poke("flood", "garbage", "3000", "workers"), "sent 3000")
        self.assertEqual(self.poke("flood", "frames", "2000"), "sent 2000")
        self.assertEqual(self.status()["pid"], pid)
        self.assertEqual(self.poke("raw", "garbage"), "reply ERROR 1")
        lines = open(log).read().splitlines()[before:]
        bad = [l for l in lines if "socket" in l]
        self.assertGreaterEqual(len(bad), 1, lines[-20:])
        self.assertLessEqual(len(bad), 10, bad[:20])
        # the count of what was not logged is said, once it is due
        self.assertTrue(wait_for(lambda: "suppressed" in open(log).read(), 15),
                        open(log).read()[-2000:])

    def test_stop_as_another_user_names_the_owner(self):
        """A user who cannot see another user's supervisor is told whose it is,
        not that it is not running."""
        os.chmod(self.tmp, 0o755)
        self.start()
        os.chmod(self.dir, 0o755)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        p = subprocess.run(nobody + [os.path.abspath(KACHED), "supervisor", "stop"],
                           env=self.env, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("not running", p.stdout + p.stderr)
        self.assertIn("another user (uid 0", p.stderr)
        self.assertIsNotNone(self.status(), "the supervisor must still run")


if __name__ == "__main__":
    unittest.main()
