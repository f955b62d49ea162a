#!/usr/bin/env python3
"""kache why-miss and kache report over real cargo builds of tests/fixtures/ws.

why-miss: after each kind of change (a source file, an env! variable,
RUSTFLAGS, an upstream crate, the compiler), the crate's last miss is
explained by naming that change. report: its counts equal what the build did
(the crates that reached rustc), its JSON is valid against
docs/report.schema.json, --since takes older sessions in.

usage: test_report.py <path to kache> [unittest args]
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import kache_harness as kh  # noqa: E402
from kache_harness import Workspace  # noqa: E402

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                      "report.schema.json")


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = kh.make_tmp("kache-why-")
        self.store = os.path.join(self.tmp, "store")
        self.ws = Workspace(self.tmp, self.store)
        # a short session gap, so that two builds are two sessions
        self.ws.env.update(KACHE_CONFIG=os.path.join(self.tmp, "none.toml"),
                           KACHE_PREFETCH_COOLDOWN="2s")

    def tearDown(self):
        kh.remove_tmp(self.tmp)

    def settle(self):
        """Waits (bounded) for the background stores of the last build."""
        tmp = os.path.join(self.store, "tmp")
        ok = kh.wait_for(lambda: not [n for n in os.listdir(tmp) if n.startswith("pending-")]
                         if os.path.isdir(tmp) else True, 60, 0.1)
        self.assertTrue(ok, "background stores did not finish")

    def build(self, **env):
        self.ws.cargo("build", **env)
        self.settle()
        return self.ws.compiled()

    def kache(self, *args, rc=0):
        p = subprocess.run([kh.KACHE, *args], env=self.ws.env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, rc, p.stdout + p.stderr)
        return p.stdout

    def why(self, crate):
        out = self.kache("why-miss", crate)
        print("\n$ kache why-miss %s\n%s" % (crate, out), end="")
        doc = json.loads(self.kache("why-miss", crate, "--json"))
        self.assertEqual(doc["schema"], 1)
        self.assertEqual(doc["crate"], crate)
        return out, doc


class WhyMiss(Base):
    def test_edited_source_file_is_named(self):
        self.build()
        self.ws.edit("core/src/lib.rs", "{} {} {} {} {}", "{} {} {} {} {}!")
        self.assertIn("fixture_core", self.build())
        out, doc = self.why("fixture_core")
        self.assertIn("source file changed: core/src/lib.rs", out)
        self.assertEqual(doc["cause"], "source")
        out, doc = self.why("fixture_app")
        self.assertIn("dependency fixture_core changed", out)
        self.assertIn("  fixture_core: source file changed: core/src/lib.rs", out)

    def test_env_dep_is_named(self):
        self.build()
        self.assertIn("fixture_core", self.build(KACHE_FIXTURE_GREETING="bonjour"))
        out, doc = self.why("fixture_core")
        self.assertIn("environment variable KACHE_FIXTURE_GREETING (read by env! or a proc macro) changed", out)
        self.assertEqual(doc["cause"], "env-dep")

    def test_rustflags_is_named_as_arguments(self):
        self.build()
        self.assertIn("tiny", self.build(RUSTFLAGS="--cfg kache_why"))
        out, doc = self.why("tiny")
        self.assertIn("argument added: --cfg kache_why", out)
        self.assertEqual(doc["cause"], "arguments")

    def test_upstream_crate_is_named(self):
        self.build()
        self.ws.edit("vendor/tiny/src/lib.rs", "x * 2", "2 * x")
        self.assertIn("tiny", self.build())
        out, doc = self.why("fixture_core")
        self.assertIn("dependency tiny changed (--extern tiny)", out)
        self.assertIn("  tiny: source file changed: vendor/tiny/src/lib.rs", out)
        self.assertEqual(doc["cause"], "dependency")
        up = [c for c in doc["causes"] if c["depth"] == 1]
        self.assertEqual({c["crate"] for c in up}, {"tiny"})

    def test_toolchain_swap_names_the_compiler(self):
        self.build()
        other = os.path.join(self.tmp, "other-rustc")
        with open(other, "w") as f:
            f.write("#!/bin/sh\n"
                    "if [ \"$1\" = -vV ]; then '%s' -vV | sed '1s/$/ kache-swapped/'; exit; fi\n"
                    "exec '%s' \"$@\"\n" % (kh.real_rustc(), self.ws.shim))
        os.chmod(other, 0o755)
        self.build(RUSTC=other)
        out, doc = self.why("tiny")
        self.assertRegex(out, r"compiler changed: rustc \S+ .*-> rustc \S+ .*kache-swapped")
        self.assertEqual(doc["cause"], "compiler")

    def test_code_for_the_host_cpu_is_keyed_by_the_cpu(self):
        # RUSTFLAGS=-Ctarget-cpu=native: what rustc makes may use instructions
        # another CPU lacks, so a store (or a remote) two machines share must
        # give each its own (was: served across CPUs). Two CPUs of one model,
        # one with AVX-512 (as a VM may mask it), stand in cpuinfo files.
        cpu = {}
        for name, flags in (("a", "fpu sse2 avx2 avx512f"), ("b", "fpu sse2 avx2")):
            cpu[name] = os.path.join(self.tmp, "cpuinfo-" + name)
            with open(cpu[name], "w") as f:
                f.write("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
                        "model\t\t: 17\nflags\t\t: %s\n\n" % flags)
        native = dict(RUSTFLAGS="-C target-cpu=native")
        every = set(self.build(KACHE_TEST_CPUINFO=cpu["a"], **native))
        self.assertIn("tiny", every)
        first = self.ws.run_app()
        self.ws.cargo("clean")
        self.assertEqual(self.build(KACHE_TEST_CPUINFO=cpu["a"], **native), [])
        self.ws.cargo("clean")
        self.assertEqual(set(self.build(KACHE_TEST_CPUINFO=cpu["b"], **native)), every)
        self.assertEqual(self.ws.run_app(), first)
        out, doc = self.why("tiny")
        self.assertIn("host CPU changed (-C target-cpu=native): AuthenticAMD 25 17, "
                      "other features", out)
        self.assertEqual(doc["cause"], "host-cpu")
        # code for any CPU does not depend on the host's
        self.build()
        self.ws.cargo("clean")
        self.assertEqual(self.build(KACHE_TEST_CPUINFO=cpu["b"]), [])

    def test_unknown_crate_says_so(self):
        self.build()
        err = subprocess.run([kh.KACHE, "why-miss", "no_such_crate"], env=self.ws.env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(err.returncode, 1)
        self.assertIn("no miss of no_such_crate is recorded", err.stderr)


class Report(Base):
    def report(self, *args):
        return self.kache("report", *args)

    def check_schema(self, doc):
        import jsonschema
        with open(SCHEMA) as f:
            jsonschema.validate(doc, json.load(f))

    def test_report_counts_a_cold_then_a_warm_session(self):
        cold = self.build()
        self.assertTrue(cold)
        doc = json.loads(self.report("--format", "json"))
        self.check_schema(doc)
        self.assertEqual(doc["misses"]["total"], len(cold))
        self.assertEqual(doc["misses"]["by_cause"], {"new": len(cold)})
        self.assertEqual(doc["hits"]["local"], 0)
        self.assertEqual(len(doc["slowest_misses"]), min(10, len(cold)))
        self.assertGreater(doc["bytes"]["stored"], 0)
        time.sleep(3)  # longer than the session gap (prefetch.cooldown: 2s)
        self.ws.cargo("clean")  # so that cargo asks for every crate again
        self.ws.edit("vendor/tiny/src/lib.rs", "x * 2", "2 * x")
        warm = self.build()
        doc = json.loads(self.report("--format", "json"))
        self.check_schema(doc)
        self.assertEqual(doc["misses"]["total"], len(warm))
        self.assertEqual(doc["hits"]["local"], len(cold) - len(warm))
        self.assertEqual(doc["misses"]["by_cause"].get("source"), warm.count("tiny"))
        self.assertEqual(doc["misses"]["by_cause"].get("dependency"),
                         len(warm) - warm.count("tiny"))
        self.assertGreater(doc["time_saved_ms"], 0)
        text = self.report()
        self.assertIn("misses: %d\n" % len(warm), text)
        self.assertIn("hits: %d local, 0 prefetched, 0 remote\n" % (len(cold) - len(warm)), text)
        both = json.loads(self.report("--since", "1h", "--format", "json"))
        self.check_schema(both)
        self.assertEqual(both["misses"]["total"], len(cold) + len(warm))
        md = self.report("--format", "markdown")
        print("\n--- kache report --format markdown ---\n" + md)
        self.assertIn("| misses | %d |" % len(warm), md)

    def test_bad_arguments_are_refused(self):
        for args in (["--since", "soon"], ["--format", "xml"], ["extra"]):
            p = subprocess.run([kh.KACHE, "report", *args], env=self.ws.env,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("usage: kache report", p.stderr)


if __name__ == "__main__":
    kh.take_kache_arg()
    unittest.main()
