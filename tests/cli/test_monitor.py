#!/usr/bin/env python3
"""kache monitor in a real terminal (tmux: new-session, send-keys, capture-pane):
the Build tab fills during a real cargo build; `daemon: offline` when the
supervisor is stopped or hung, with the Store tab still showing the store; the
terminal restored after q and after SIGTERM (no alternate screen, the shell
prompt back). Environment: KACHED, KACHE, FIXTURE. Each test has its own
store and its own tmux server (-L)."""
import os
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import KACHED, wait_for  # noqa: E402

PROMPT = "MONPROMPT$ "


class Monitor(kh.IndexedStore, unittest.TestCase):
    def setUp(self):
        if shutil.which("tmux") is None:
            self.fail("tmux is not installed (scripts/deps.sh installs it)")
        self.tmp = kh.make_tmp("kache-mon-")
        self.store = os.path.join(self.tmp, "store")
        self.env = kh.store_env(self.tmp, self.store, HOME=self.tmp, TERM="xterm-256color",
                                drop=("KACHE_MAX_SIZE", "KACHE_FAULT", "KACHE_GC_INTERVAL"))
        self.sock = "kache-mon-%d" % os.getpid()
        self.started = False

    def tearDown(self):
        if self.started:
            self.tmux("kill-server", check=False)
        reports = kh.end_test_processes(self.tmp, self.store)
        self.assertEqual(reports, [], "sanitizer reports in the logs")

    def tmux(self, *args, check=True):
        p = subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True,
                           timeout=20, env=self.env)
        if check:
            self.assertEqual(p.returncode, 0, f"tmux {args}: {p.stderr}")
        return p.stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "mon")

    def see(self, text, timeout=20):
        ok = wait_for(lambda: text in self.screen(), timeout=timeout, step=0.2)
        self.assertTrue(ok, f"'{text}' not on the screen:\n{self.screen()}")

    def open_monitor(self):
        """A shell in a 120x40 terminal running kached monitor, then the shell's
        prompt again (with the exit status) when it ends."""
        self.tmux("new-session", "-d", "-s", "mon", "-x", "120", "-y", "40",
                  "env", "PS1=" + PROMPT, "sh", "-i")
        self.started = True
        self.see(PROMPT.strip())
        self.tmux("send-keys", "-t", "mon",
                  f"{os.path.abspath(KACHED)} monitor; echo MONITOR-EXIT=$?", "Enter")
        self.see("kache monitor")

    def monitor_pid(self):
        shell = int(self.tmux("display", "-p", "-t", "mon", "#{pane_pid}").strip())
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        fields = f.read().split(")")[-1].split()
                    with open(f"/proc/{d}/cmdline", "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if int(fields[1]) == shell and b"monitor" in cmd:
                    return int(d)
        return None

    def alternate(self):
        return self.tmux("display", "-p", "-t", "mon", "#{alternate_on}").strip()

    def assert_restored(self, status):
        self.see("MONITOR-EXIT=%d" % status)
        self.assertEqual(self.alternate(), "0")
        lines = [l for l in self.screen().splitlines() if l.strip()]
        self.assertTrue(lines[-1].startswith(PROMPT.strip()), self.screen())
        self.assertNotIn("kache monitor  store", self.screen())

    def start_supervisor(self):
        self.run_k("supervisor", "start")
        with open(os.path.join(self.store, "run", "supervisor.pid")) as f:
            return int(f.read())

    def test_build_tab_fills_during_cargo_build(self):
        ws = kh.Workspace(self.tmp, self.store)
        ws.env.update({k: v for k, v in self.env.items() if k.startswith("KACHE_")})
        self.start_supervisor()
        self.open_monitor()
        self.see("daemon: online")
        ws.cargo("build")
        for crate in ("fixture_core", "fixture_app", "tiny"):
            self.see(crate)
        self.see("miss")
        shutil.rmtree(os.path.join(ws.dir, "target"))
        ws.cargo("build")
        self.see(" hit ")
        self.assertRegex(self.screen(), r"this session: [1-9]\d* hits")
        self.tmux("send-keys", "-t", "mon", "f")
        self.tmux("send-keys", "-t", "mon", "-l", "tiny")
        self.tmux("send-keys", "-t", "mon", "Enter")
        self.see("filter: tiny")
        self.assertNotIn("fixture_core", self.screen())
        self.tmux("send-keys", "-t", "mon", "q")
        self.assert_restored(0)

    def test_build_tab_counts_by_language(self):
        """C and C++ compiles through kache show with their language."""
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        for name, text in (("a.c", "int a(void) { return 1; }\n"),
                           ("b.cpp", "int b() { return 2; }\n")):
            with open(os.path.join(src, name), "w") as f:
                f.write(text)
        self.open_monitor()
        for cc, name in (("gcc", "a.c"), ("gcc", "a.c"), ("g++", "b.cpp")):
            subprocess.run([os.path.abspath(kh.KACHE), cc, "-c", name, "-o", name + ".o"],
                           cwd=src, env=self.env, check=True, timeout=120)
        self.see("by language: c 1 hits 1 misses  c++ 0 hits 1 misses")
        # outside cargo (no CARGO_PKG_NAME) a C compile's crate is _kache_cc
        self.assertRegex(self.screen(), r"_kache_cc +c\+\+ +miss")
        self.tmux("send-keys", "-t", "mon", "q")
        self.assert_restored(0)

    def test_offline_when_stopped_store_tab_still_shows(self):
        self.fx("entry", "serde", 4000, kh.FUTURE_MS - 3000)
        self.fx("entry", "libc", 3000, kh.FUTURE_MS - 2000)
        self.start_supervisor()
        self.open_monitor()
        self.see("daemon: online")
        self.run_k("supervisor", "stop")
        self.see("daemon: offline (not running")
        self.tmux("send-keys", "-t", "mon", "2")
        self.see("serde")
        self.see("2 entries")
        self.tmux("send-keys", "-t", "mon", "3")
        self.see("no supervisor runs")
        self.tmux("send-keys", "-t", "mon", "q")
        self.assert_restored(0)

    def test_offline_when_hung(self):
        pid = self.start_supervisor()
        self.open_monitor()
        self.see("daemon: online")
        os.kill(pid, signal.SIGSTOP)
        try:
            self.see("daemon: offline (hung")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.see("daemon: online")
        self.tmux("send-keys", "-t", "mon", "Escape")
        self.assert_restored(0)

    def test_sigterm_restores_terminal(self):
        self.open_monitor()
        self.see("daemon: offline")
        self.assertEqual(self.alternate(), "1")
        pid = self.monitor_pid()
        self.assertIsNotNone(pid)
        os.kill(pid, signal.SIGTERM)
        self.assert_restored(0)

    def test_resize_redraws(self):
        self.open_monitor()
        self.tmux("resize-window", "-t", "mon", "-x", "90", "-y", "20")
        self.see("kache monitor")
        self.tmux("send-keys", "-t", "mon", "4")
        self.see("since the monitor started")
        self.tmux("send-keys", "-t", "mon", "q")
        self.assert_restored(0)


if __name__ == "__main__":
    unittest.main()
