/* Unit tests for the wrapper: argument parser, roots folding, dep-info, keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cargo_cfg.h"
#include "common/fs.h"
#include "common/path.h"
#include "wrapper/wrapper.h"

static const char *const cargo_lib[] = { "--crate-name", "bench_model", "--edition=2021",
	"crates/model/src/lib.rs", "--error-format=json",
	"--json=diagnostic-rendered-ansi,artifacts,future-incompat", "--crate-type", "lib",
	"--emit=dep-info,metadata,link", "-C", "embed-bitcode=no", "-C", "debuginfo=2", "--cfg",
	"feature=\"default\"", "-C", "metadata=fa5ae44921176810", "-C",
	"extra-filename=-4753626e81d88325", "--out-dir", "/ws/target/debug/deps", "-C",
	"incremental=/ws/target/debug/incremental", "-L", "dependency=/ws/target/debug/deps",
	"--extern", "serde=/ws/target/debug/deps/libserde-0d7b.rmeta", NULL };

static void
parse(struct rustc_args *a, const char *const *v)
{
	int n = 0;

	while (v[n])
		n++;
	args_parse(a, n, (char **)v);
}

static void
test_args_cargo_lib(void **state)
{
	struct rustc_args a;
	struct strv out;

	(void)state;
	parse(&a, cargo_lib);
	assert_null(a.pass_reason);
	assert_string_equal(a.crate_name, "bench_model");
	assert_string_equal(a.src, "crates/model/src/lib.rs");
	assert_string_equal(a.out_dir, "/ws/target/debug/deps");
	assert_string_equal(a.extra_filename, "-4753626e81d88325");
	assert_int_equal(a.emit, EMIT_LINK | EMIT_METADATA | EMIT_DEPINFO);
	assert_true(a.incremental);
	assert_true(a.json_artifacts);
	assert_int_equal(a.externs.n, 1);
	strv_init(&out);
	args_expected_outputs(&a, &out);
	assert_int_equal(out.n, 3);
	assert_string_equal(out.v[0], "bench_model-4753626e81d88325.d");
	assert_string_equal(out.v[1], "libbench_model-4753626e81d88325.rmeta");
	assert_string_equal(out.v[2], "libbench_model-4753626e81d88325.rlib");
	strv_free(&out);
	args_free(&a);
}

static void
test_args_kinds(void **state)
{
	static const char *const bin[] = { "--crate-name", "app", "src/main.rs", "--crate-type",
		"bin", "--emit=dep-info,link", "--out-dir", "o", NULL };
	static const char *const pm[] = { "--crate-name", "m", "src/lib.rs", "--crate-type",
		"proc-macro", "--emit=dep-info,link", "--out-dir", "o", "--extern", "proc_macro",
		NULL };
	static const char *const test[] = { "--crate-name", "t", "src/lib.rs", "--test",
		"--emit=dep-info,link", "--out-dir", "o", "-Cextra-filename=-x", NULL };
	struct rustc_args a;
	struct strv out;

	(void)state;
	parse(&a, bin);
	assert_null(a.pass_reason);
	strv_init(&out);
	args_expected_outputs(&a, &out);
	assert_string_equal(out.v[1], "app");
	strv_free(&out);
	args_free(&a);
	parse(&a, pm);
	assert_null(a.pass_reason);
	args_expected_outputs(&a, &out);
	assert_string_equal(out.v[1], "libm.so");
	strv_free(&out);
	args_free(&a);
	parse(&a, test);
	assert_null(a.pass_reason);
	args_expected_outputs(&a, &out);
	assert_string_equal(out.v[1], "t-x");
	strv_free(&out);
	args_free(&a);
}

/* Code for the host CPU, in each way rustc takes the option; not a -L
 * native= search path, nor a named CPU. */
static void
test_args_native_cpu(void **state)
{
	static const char *const native[][11] = {
		{ "--crate-name", "c", "src/lib.rs", "--out-dir", "o", "--emit=dep-info,link", "-C",
		    "target-cpu=native", NULL },
		{ "--crate-name", "c", "src/lib.rs", "--out-dir", "o", "--emit=dep-info,link",
		    "-Ctarget-cpu=native", NULL },
		{ "--crate-name", "c", "src/lib.rs", "--out-dir", "o", "--emit=dep-info,link",
		    "--codegen=target-cpu=native", NULL },
		{ "--crate-name", "c", "src/lib.rs", "--out-dir", "o", "--emit=dep-info,link", "-Z",
		    "tune-cpu=native", NULL },
	};
	static const char *const other[][11] = {
		{ "--crate-name", "c", "src/lib.rs", "--out-dir", "o", "--emit=dep-info,link", "-L",
		    "native=/usr/lib", "-l", "native=z", NULL },
		{ "--crate-name", "c", "src/lib.rs", "--out-dir", "o", "--emit=dep-info,link", "-C",
		    "target-cpu=znver3", NULL },
	};
	struct rustc_args a;

	(void)state;
	for (size_t i = 0; i < sizeof native / sizeof native[0]; i++) {
		parse(&a, native[i]);
		assert_null(a.pass_reason);
		assert_true(a.native_cpu);
		args_free(&a);
	}
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		parse(&a, other[i]);
		assert_false(a.native_cpu);
		args_free(&a);
	}
}

/* hostcpu_id over a cpuinfo file with the given text: its return, the id
 * and label into id, label. */
static int
cpu_of(const char *text, struct buf *id, char *label, size_t n)
{
	char path[] = "/tmp/kache-cpuinfo-XXXXXX";
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("KACHE_TEST_CPUINFO", path, 1);
	buf_reset(id);
	rc = hostcpu_id(id, label, n);
	unsetenv("KACHE_TEST_CPUINFO");
	unlink(path);
	return rc;
}

static void
test_hostcpu_id(void **state)
{
	static const char x86[] =
	    "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
	    "model\t\t: 17\nmodel name\t: AMD EPYC 9R14\ncpu MHz\t\t: 2600.0\n"
	    "flags\t\t: fpu sse2 avx2 avx512f\nbogomips\t: 5200.00\n\n"
	    "processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: fpu\n\n";
	static const char arm[] =
	    "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve\n"
	    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\n"
	    "CPU part\t: 0xd40\n";
	char label[128];
	struct buf id, first;

	(void)state;
	buf_init(&id);
	buf_init(&first);
	assert_int_equal(cpu_of(x86, &id, label, sizeof label), 0);
	assert_string_equal(label, "AuthenticAMD 25 17");
	assert_int_equal(id.len,
	    strlen("vendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
	           "model\t\t: 17\nflags\t\t: fpu sse2 avx2 avx512f\n"));
	assert_non_null(memmem(id.p, id.len, "avx512f", 7));
	buf_add(&first, id.p, id.len);
	/* the clock and bogomips move; what code the CPU runs does not */
	assert_int_equal(cpu_of("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
	                        "cpu MHz\t\t: 3100.5\nflags\t\t: fpu sse2 avx2 avx512f\n",
	                     &id, label, sizeof label),
	    0);
	assert_int_equal(id.len, first.len);
	assert_memory_equal(id.p, first.p, id.len);
	/* another feature set is another CPU */
	assert_int_equal(cpu_of("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
	                        "flags\t\t: fpu sse2 avx2\n",
	                     &id, label, sizeof label),
	    0);
	assert_false(id.len == first.len && memcmp(id.p, first.p, id.len) == 0);
	assert_int_equal(cpu_of(arm, &id, label, sizeof label), 0);
	assert_string_equal(label, "0x41 8 0x1 0xd40");
	assert_non_null(memmem(id.p, id.len, "sve", 3));
	/* nothing that tells the CPU: not cached */
	assert_int_equal(cpu_of("processor\t: 0\nbogomips\t: 1.0\n", &id, label, sizeof label), -1);
	assert_int_equal(cpu_of("", &id, label, sizeof label), -1);
	buf_free(&id);
	buf_free(&first);
}

static void
expect_pass(const char *const *v, const char *reason)
{
	struct rustc_args a;

	parse(&a, v);
	assert_non_null(a.pass_reason);
	assert_string_equal(a.pass_reason, reason);
	args_free(&a);
}

static void
test_args_pass_through(void **state)
{
	static const char *const vv[] = { "-vV", NULL };
	static const char *const print[] = { "-", "--crate-name", "___", "--print=file-names",
		NULL };
	static const char *const stdin_src[] = { "--crate-name", "x", "-", "--out-dir", "o", NULL };
	static const char *const two[] = { "--crate-name", "x", "a.rs", "b.rs", NULL };
	static const char *const argfile[] = { "@args.txt", NULL };
	static const char *const unpretty[] = { "--crate-name", "x", "a.rs", "-Zunpretty=expanded",
		"--out-dir", "o", NULL };
	static const char *const emit_path[] = { "--crate-name", "x", "a.rs", "--emit=link=/tmp/x",
		"--out-dir", "o", NULL };
	static const char *const out[] = { "--crate-name", "x", "a.rs", "-o", "x", NULL };
	static const char *const nodep[] = { "--crate-name", "x", "a.rs", "--emit=link",
		"--out-dir", "o", NULL };
	static const char *const missing[] = { "--crate-name", "x", "a.rs", "--out-dir", NULL };
	/* Found by fuzz_args: names that would make kache unlink outside the out-dir. */
	static const char *const slash_name[] = { "--crate-name", "../../x", "a.rs",
		"--emit=dep-info,link", "--out-dir", "o", NULL };
	static const char *const slash_extra[] = { "--crate-name", "x", "a.rs",
		"--emit=dep-info,link", "--out-dir", "o", "-Cextra-filename=/../../y", NULL };

	(void)state;
	expect_pass(vv, "version-or-help");
	expect_pass(print, "print");
	expect_pass(stdin_src, "stdin");
	expect_pass(two, "multiple-sources");
	expect_pass(argfile, "argfile");
	expect_pass(unpretty, "unpretty");
	expect_pass(emit_path, "emit-to-path");
	expect_pass(out, "explicit-output");
	expect_pass(nodep, "no-dep-info");
	expect_pass(missing, "missing-value");
	expect_pass(slash_name, "unusual-output-name");
	expect_pass(slash_extra, "unusual-output-name");
}

static void
test_roots_fold_expand(void **state)
{
	struct roots r = { .cwd = "/home/a/ws",
		.target = "/home/a/ws/target",
		.home = "/home/a/.cargo" };
	struct roots other = { .cwd = "/srv/b/checkout",
		.target = "/srv/b/checkout/target",
		.home = "/opt/cargo" };
	const char *text = "/home/a/ws/target/debug/deps/x.d: src/lib.rs /home/a/ws2/y.rs "
	                   "/home/a/.cargo/registry/src/z.rs /home/a/ws\n";
	struct buf f, e;

	(void)state;
	buf_init(&f);
	buf_init(&e);
	roots_fold(&r, text, strlen(text), &f);
	assert_string_equal(f.p,
	    "@@KACHE_T@@/debug/deps/x.d: src/lib.rs /home/a/ws2/y.rs "
	    "@@KACHE_H@@/registry/src/z.rs @@KACHE_W@@\n");
	roots_expand(&other, f.p, f.len, &e);
	assert_string_equal(e.p,
	    "/srv/b/checkout/target/debug/deps/x.d: src/lib.rs "
	    "/home/a/ws2/y.rs /opt/cargo/registry/src/z.rs /srv/b/checkout\n");
	buf_free(&f);
	buf_free(&e);
}

static void
test_roots_remap_order(void **state)
{
	struct roots r = { .cwd = "/w", .target = "/w/target", .home = "/h/.cargo" };
	struct strv v;

	(void)state;
	strv_init(&v);
	roots_remap_args(&r, &v);
	assert_int_equal(v.n, 3);
	/* rustc applies the last match: the innermost root must come last */
	assert_string_equal(v.v[0], "--remap-path-prefix=/w=.");
	assert_string_equal(v.v[2], "--remap-path-prefix=/w/target=/kache/target");
	strv_free(&v);
}

static void
test_depinfo(void **state)
{
	const char *d = "/o/x.d: src/lib.rs src/a\\ b.rs /t/out/gen.rs\n\n"
	                "/o/libx.rlib: src/lib.rs src/a\\ b.rs /t/out/gen.rs\n\n"
	                "src/lib.rs:\nsrc/a\\ b.rs:\n/t/out/gen.rs:\n\n"
	                "# env-dep:ZED=z\\nline\n# env-dep:OUT_DIR=/t/out\n# env-dep:UNSET\n";
	struct depinfo di;

	(void)state;
	assert_int_equal(depinfo_parse(d, strlen(d), &di), 0);
	assert_int_equal(di.files.n, 3);
	assert_string_equal(di.files.v[0], "src/lib.rs");
	assert_string_equal(di.files.v[1], "src/a b.rs");
	assert_string_equal(di.files.v[2], "/t/out/gen.rs");
	assert_int_equal(di.env_names.n, 3);
	assert_string_equal(di.env_names.v[0], "OUT_DIR");
	assert_string_equal(di.env_values.v[0], "/t/out");
	assert_string_equal(di.env_names.v[1], "UNSET");
	assert_null(di.env_values.v[1]);
	assert_string_equal(di.env_values.v[2], "z\nline");
	depinfo_free(&di);
}

/* Writes text to dir/name. */
static void
put_file(const char *dir, const char *name, const char *text)
{
	char *p = path_join(dir, name);

	assert_int_equal(fs_write_atomic(p, text, strlen(text), 0644), 0);
	free(p);
}

/* Two wrappers over one store in dir, as two checkouts at roots one and two
 * (workspace and target alike) would compute keys; their args are the
 * caller's to parse. */
static void
two_wrappers(struct wrapper *w1, struct wrapper *w2, const char *dir, const char *one,
    const char *two)
{
	const char *rustc = getenv("KACHE_TEST_RUSTC") ? getenv("KACHE_TEST_RUSTC") : "rustc";

	memset(w1, 0, sizeof *w1);
	memset(w2, 0, sizeof *w2);
	w1->cfg = w2->cfg = config_load(NULL);
	w1->store = w2->store = store_open(dir);
	w1->rustc = w2->rustc = rustc;
	w1->roots = (struct roots){ xstrdup(one), xstrdup(one), xstrdup("/h1") };
	w2->roots = (struct roots){ xstrdup(two), xstrdup(two), xstrdup("/h2") };
}

static void
two_wrappers_free(struct wrapper *w1, struct wrapper *w2, const char *dir)
{
	strv_free(&w1->key_files);
	strv_free(&w2->key_files);
	buf_free(&w1->key_hashes);
	buf_free(&w2->key_hashes);
	args_free(&w1->args);
	args_free(&w2->args);
	roots_free(&w1->roots);
	roots_free(&w2->roots);
	store_free(&w1->store);
	config_free(&w1->cfg);
	fs_remove_tree(dir);
}

/* The file name in each of two checkouts (one/ and two/ under dir), the
 * same bytes in both, and wrappers for them. */
struct two_files {
	char *one, *two, *f1, *f2;
};

static void
same_file_in_two_checkouts(struct wrapper *w1, struct wrapper *w2, const char *dir,
    const char *name, const char *text, struct two_files *t)
{
	t->one = xasprintf("%s/one", dir);
	t->two = xasprintf("%s/two", dir);
	t->f1 = xasprintf("%s/%s", t->one, name);
	t->f2 = xasprintf("%s/%s", t->two, name);
	assert_int_equal(fs_mkdir_p(t->one, 0700), 0);
	assert_int_equal(fs_mkdir_p(t->two, 0700), 0);
	assert_int_equal(fs_write_atomic(t->f1, text, strlen(text), 0644), 0);
	assert_int_equal(fs_write_atomic(t->f2, text, strlen(text), 0644), 0);
	two_wrappers(w1, w2, dir, t->one, t->two);
}

/* Keys both wrappers over argv a: one key (the file's path is folded),
 * then another once the second checkout's file holds other bytes. */
static void
keys_follow_the_content(struct wrapper *w1, struct wrapper *w2, const char *const *a,
    const struct two_files *t, const char *other)
{
	unsigned char k1[HASH_LEN], k2[HASH_LEN];

	parse(&w1->args, a);
	parse(&w2->args, a);
	assert_int_equal(key_invocation(w1, k1), 0);
	assert_int_equal(key_invocation(w2, k2), 0);
	assert_memory_equal(k1, k2, HASH_LEN); /* the same bytes, other checkout */
	assert_int_equal(fs_write_atomic(t->f2, other, strlen(other), 0644), 0);
	assert_int_equal(key_invocation(w2, k2), 0);
	assert_memory_not_equal(k1, k2, HASH_LEN);
}

static void
two_files_free(struct wrapper *w1, struct wrapper *w2, char *dir, struct two_files *t)
{
	two_wrappers_free(w1, w2, dir);
	free(t->one);
	free(t->two);
	free(t->f1);
	free(t->f2);
}

/* A PGO profile (-C profile-use=) is read by LLVM and named in no dep-info:
 * the key takes its content (a new profile made the same key: the code
 * optimized for the old one was served), under its folded name. */
static void
test_key_profile_use_by_content(void **state)
{
	char dir[] = "/tmp/kache-pgo-XXXXXX";
	struct wrapper w1, w2;
	struct two_files t;
	const char *a[] = { "--crate-name", "x", "src/lib.rs", "--out-dir", "target/deps", "-C",
		"profile-use=p.profdata", "--emit=dep-info,link", NULL };

	(void)state;
	assert_non_null(mkdtemp(dir));
	same_file_in_two_checkouts(&w1, &w2, dir, "p.profdata", "profile A", &t);
	keys_follow_the_content(&w1, &w2, a, &t, "profile B!");
	two_files_free(&w1, &w2, dir, &t);
}

/* A custom target's spec (nightly: `--target my-os.json`, or a name found in
 * RUST_TARGET_PATH) is read by rustc and named in no dep-info: by content,
 * under the folded path. */
static void
test_key_target_spec_by_content(void **state)
{
	char dir[] = "/tmp/kache-spec-XXXXXX", *specs;
	struct wrapper w1, w2;
	struct two_files t;
	unsigned char k2[HASH_LEN], k3[HASH_LEN];
	const char *a[] = { "--crate-name", "x", "src/lib.rs", "--out-dir", "target/deps",
		"--target", "my-os.json", "--emit=dep-info,link", NULL };

	(void)state;
	assert_non_null(mkdtemp(dir));
	same_file_in_two_checkouts(&w1, &w2, dir, "my-os.json", "{\"cpu\": \"a\"}", &t);
	keys_follow_the_content(&w1, &w2, a, &t, "{\"cpu\": \"b\"}");
	/* by name, in a RUST_TARGET_PATH dir: the spec found there */
	a[6] = "my-os";
	args_free(&w2.args);
	parse(&w2.args, a);
	specs = xasprintf("%s/nowhere:%s", dir, t.two);
	setenv("RUST_TARGET_PATH", specs, 1);
	assert_int_equal(key_invocation(&w2, k2), 0);
	assert_int_equal(fs_write_atomic(t.f2, "{\"cpu\": \"c\"}", 12, 0644), 0);
	assert_int_equal(key_invocation(&w2, k3), 0);
	assert_memory_not_equal(k2, k3, HASH_LEN);
	unsetenv("RUST_TARGET_PATH");
	assert_int_equal(key_invocation(&w2, k2), 0); /* a built-in name: no file */
	assert_memory_not_equal(k2, k3, HASH_LEN);
	free(specs);
	two_files_free(&w1, &w2, dir, &t);
}

/* A linking compile takes the files of its build's native -L dirs (a build
 * script's OUT_DIR, under the target dir) by content; a dir outside the
 * workspace and the target dir (a system dir a pkg-config crate names,
 * thousands of libraries) is the system's and is not read. An rlib takes
 * neither. */
static void
test_key_link_inputs(void **state)
{
	char dir[] = "/tmp/kache-link-XXXXXX", *ws, *out, *sys, *l_out, *l_sys, *src;
	struct wrapper w1, w2;
	unsigned char k1[HASH_LEN], k2[HASH_LEN];
	const char *a[] = { "--crate-name", "app", "--crate-type", "bin", NULL, "--out-dir",
		"target/deps", "-L", NULL, "-L", NULL, "--emit=dep-info,link", NULL };

	(void)state;
	assert_non_null(mkdtemp(dir));
	ws = xasprintf("%s/ws", dir);
	out = xasprintf("%s/ws/target/debug/build/app-1/out", dir);
	sys = xasprintf("%s/system-lib", dir);
	src = xasprintf("%s/src/main.rs", ws);
	l_out = xasprintf("native=%s", out);
	l_sys = xasprintf("native=%s", sys);
	assert_int_equal(fs_mkdir_p(out, 0700), 0);
	assert_int_equal(fs_mkdir_p(sys, 0700), 0);
	put_file(out, "memory.x", "A");
	put_file(out, "gen.o", "O");
	put_file(sys, "libbig.so", "S");
	two_wrappers(&w1, &w2, dir, ws, ws);
	free(w1.roots.target);
	w1.roots.target = xasprintf("%s/target", ws);
	a[4] = src;
	a[8] = l_out;
	a[10] = l_sys;
	parse(&w1.args, a);
	assert_int_equal(key_invocation(&w1, k1), 0);
	assert_int_equal(w1.key_files.n, 1); /* memory.x: not the object, not the system's */
	assert_non_null(strstr(w1.key_files.v[0], "/out/memory.x"));
	put_file(out, "memory.x", "BB");
	assert_int_equal(key_invocation(&w1, k2), 0);
	assert_memory_not_equal(k1, k2, HASH_LEN);
	args_free(&w1.args);
	a[3] = "rlib";
	parse(&w1.args, a);
	strv_free(&w1.key_files);
	strv_init(&w1.key_files);
	buf_free(&w1.key_hashes);
	buf_init(&w1.key_hashes);
	assert_int_equal(key_invocation(&w1, k1), 0);
	assert_int_equal(w1.key_files.n, 0);
	two_wrappers_free(&w1, &w2, dir);
	free(ws);
	free(out);
	free(sys);
	free(src);
	free(l_out);
	free(l_sys);
}

/* The invocation key ignores where things live, and sees what matters. */
static void
test_key_location_independent(void **state)
{
	char dir[] = "/tmp/kache-key-XXXXXX";
	struct wrapper w1, w2;
	unsigned char k1[HASH_LEN], k2[HASH_LEN];
	static const char *const a1[] = { "--crate-name", "x", "/one/ws/src/lib.rs", "--out-dir",
		"/one/ws/target/debug/deps", "-L", "dependency=/one/ws/target/debug/deps", "-C",
		"incremental=/one/ws/target/debug/incremental", "--emit=dep-info,link", NULL };
	static const char *const a2[] = { "--crate-name", "x", "/two/ws/src/lib.rs", "--out-dir",
		"/two/ws/target/debug/deps", "-L", "dependency=/two/ws/target/debug/deps", "-C",
		"incremental=/two/ws/target/debug/incremental", "--emit=dep-info,link", NULL };
	static const char *const a3[] = { "--crate-name", "x", "/two/ws/src/lib.rs", "--out-dir",
		"/two/ws/target/debug/deps", "-L", "dependency=/two/ws/target/debug/deps", "--cfg",
		"feature=\"extra\"", "--emit=dep-info,link", NULL };

	(void)state;
	assert_non_null(mkdtemp(dir));
	two_wrappers(&w1, &w2, dir, "/one/ws", "/two/ws");
	free(w1.roots.target);
	free(w2.roots.target);
	w1.roots.target = xstrdup("/one/ws/target");
	w2.roots.target = xstrdup("/two/ws/target");
	parse(&w1.args, a1);
	parse(&w2.args, a2);
	assert_int_equal(key_invocation(&w1, k1), 0);
	assert_int_equal(key_invocation(&w2, k2), 0);
	assert_memory_equal(k1, k2, HASH_LEN);
	args_free(&w2.args);
	parse(&w2.args, a3);
	assert_int_equal(key_invocation(&w2, k2), 0);
	assert_memory_not_equal(k1, k2, HASH_LEN);
	two_wrappers_free(&w1, &w2, dir);
}

/* What a guess of the session takes from cargo's command line (argv as
 * /proc/<pid>/cmdline holds it: each argument ended by a NUL). */
static int
guess(const char *cmdline, size_t n, struct proto_hint *h, char *manifest)
{
	return session_guess_cargo(cmdline, n, NULL, h, manifest, 256);
}

#define GUESS(lit, h, m) guess(lit, sizeof(lit) - 1, h, m)

static void
test_session_guess_cargo(void **state)
{
	struct proto_hint h;
	char m[256];

	(void)state;
	unsetenv("CARGO_BUILD_TARGET");
	assert_int_equal(GUESS("cargo\0build\0", &h, m), 0);
	assert_string_equal(h.target, "");
	assert_string_equal(h.profile, "debug");
	assert_string_equal(m, "");
	assert_int_equal(h.guess, 0); /* the caller says it is one */
	assert_int_equal(GUESS("/usr/bin/cargo\0build\0--release\0-p\0bench\0", &h, m), 0);
	assert_string_equal(h.profile, "release");
	assert_int_equal(GUESS("cargo\0+stable\0test\0-r\0", &h, m), 0);
	assert_string_equal(h.profile, "release");
	assert_int_equal(GUESS("cargo\0bench\0", &h, m), 0);
	assert_string_equal(h.profile, "release");
	assert_int_equal(GUESS("cargo\0bench\0--profile\0dev\0", &h, m), 0);
	assert_string_equal(h.profile, "debug");
	assert_int_equal(GUESS("cargo\0check\0--profile=test\0", &h, m), 0);
	assert_string_equal(h.profile, "debug.check"); /* builds no code: a session of its own */
	assert_int_equal(GUESS("/t/bin/cargo\0check\0--message-format=json\0", &h, m), 0);
	assert_string_equal(h.profile, "debug.check"); /* cargo clippy's own cargo */
	assert_int_equal(GUESS("cargo\0doc\0--release\0", &h, m), 0);
	assert_string_equal(h.profile, "release.check");
	assert_int_equal(GUESS("cargo\0clippy\0", &h, m), 0);
	assert_string_equal(h.profile, "debug.check");
	assert_int_equal(GUESS("cargo\0check\0--profile\0"
	                       "p23456789012345678901234567890123456789012345678901234567890\0",
	                     &h, m),
	    0); /* too long for the mark: the build's (a wider prefetch, never a wrong one) */
	assert_string_equal(h.profile,
	    "p23456789012345678901234567890123456789012345678901234567890");
	assert_int_equal(GUESS("cargo\0build\0--profile=ci-fast\0--target\0"
	                       "aarch64-unknown-linux-gnu\0--manifest-path=sub/Cargo.toml\0",
	                     &h, m),
	    0);
	assert_string_equal(h.profile, "ci-fast");
	assert_string_equal(h.target, "aarch64-unknown-linux-gnu");
	assert_string_equal(m, "sub/Cargo.toml");
	assert_int_equal(GUESS("cargo\0build\0--manifest-path\0/w/Cargo.toml\0", &h, m), 0);
	assert_string_equal(m, "/w/Cargo.toml");
	/* the program's own arguments, and the values of cargo's own options */
	assert_int_equal(GUESS("cargo\0run\0--\0--release\0--target\0x\0", &h, m), 0);
	assert_string_equal(h.profile, "debug");
	assert_string_equal(h.target, "");
	assert_int_equal(GUESS("cargo\0--config\0profile.release.lto=true\0bench\0", &h, m), 0);
	assert_string_equal(h.profile, "release");
	assert_int_equal(GUESS("cargo\0--color\0always\0test\0", &h, m), 0);
	assert_string_equal(h.profile, "debug");
	setenv("CARGO_BUILD_TARGET", "x86_64-unknown-linux-musl", 1);
	assert_int_equal(GUESS("cargo\0build\0", &h, m), 0);
	assert_string_equal(h.target, "x86_64-unknown-linux-musl");
	assert_int_equal(GUESS("cargo\0build\0--target=wasm32-unknown-unknown\0", &h, m), 0);
	assert_string_equal(h.target, "wasm32-unknown-unknown");
	unsetenv("CARGO_BUILD_TARGET");
	/* no guess: not cargo, no subcommand, install, another directory, two
	 * targets, a value missing, a line not whole */
	assert_int_equal(GUESS("rustc\0-vV\0", &h, m), -1);
	assert_int_equal(GUESS("sh\0-c\0cargo build\0", &h, m), -1);
	assert_int_equal(GUESS("cargo\0--release\0", &h, m), -1);
	assert_int_equal(GUESS("cargo\0install\0ripgrep\0", &h, m), -1);
	assert_int_equal(GUESS("cargo\0-C\0/elsewhere\0build\0", &h, m), -1);
	assert_int_equal(GUESS("cargo\0build\0--target\0a\0--target\0b\0", &h, m), -1);
	assert_int_equal(GUESS("cargo\0build\0--profile\0", &h, m), -1);
	assert_int_equal(guess("cargo\0build", 11, &h, m), -1);
	assert_int_equal(guess("", 0, &h, m), -1);
}

/* Writes text into dir/file, dir made first (a .cargo directory). */
static void
put(const char *dir, const char *sub, const char *file, const char *text)
{
	char *d = path_join(dir, sub), *f = path_join(d, file);

	assert_int_equal(fs_mkdir_p(d, 0755), 0);
	assert_int_equal(fs_write_atomic(f, text, strlen(text), 0644), 0);
	free(f);
	free(d);
}

#define GUESS_IN(cwd, lit, h, m) session_guess_cargo(lit, sizeof(lit) - 1, cwd, h, m, 256)

/* cargo's aliases, expanded as cargo would: config files from cargo's
 * directory up (the nearest first), CARGO_HOME's, CARGO_ALIAS_*, --config,
 * the built-in ones; cargo's own commands are never aliases. */
static void
test_session_guess_cargo_alias(void **state)
{
	char top[] = "/tmp/kache-alias-XXXXXX", *sub, *home;
	struct proto_hint h;
	char m[256];

	(void)state;
	assert_non_null(mkdtemp(top));
	sub = path_join(top, "ws/crates/x");
	home = path_join(top, "home/.cargo"); /* CARGO_HOME: below, not above, cargo's */
	assert_int_equal(fs_mkdir_p(sub, 0755), 0);
	put(top, ".cargo", "config.toml",
	    "[alias]\nck = \"check\"\nbr = \"build --release\"\n"
	    "lint = [\"clippy\", # the linter\n  \"--all-targets\",\n]\nbuild = \"check\"\n");
	put(sub, ".cargo", "config", "alias.ck = 'build'\n[build]\njobs = 2\n");
	put(home, ".", "config.toml", "alias = { hm = \"doc\" }\n");
	setenv("CARGO_HOME", home, 1);
	unsetenv("CARGO_BUILD_TARGET");
	assert_int_equal(GUESS_IN(top, "cargo\0ck\0", &h, m), 0);
	assert_string_equal(h.profile, "debug.check");
	assert_int_equal(GUESS_IN(sub, "cargo\0ck\0", &h, m), 0);
	assert_string_equal(h.profile, "debug"); /* the nearest file's */
	assert_int_equal(GUESS_IN(sub, "cargo\0br\0-p\0x\0", &h, m), 0);
	assert_string_equal(h.profile, "release"); /* the words after the command */
	assert_int_equal(GUESS_IN(top, "cargo\0lint\0--release\0", &h, m), 0);
	assert_string_equal(h.profile, "release.check"); /* an array over lines */
	assert_int_equal(GUESS_IN(top, "cargo\0build\0", &h, m), 0);
	assert_string_equal(h.profile, "debug"); /* cargo's own: shadows the alias */
	assert_int_equal(GUESS_IN(top, "cargo\0hm\0", &h, m), 0);
	assert_string_equal(h.profile, "debug.check"); /* CARGO_HOME's inline table */
	assert_int_equal(GUESS_IN(top, "cargo\0c\0", &h, m), 0);
	assert_string_equal(h.profile, "debug.check"); /* built in */
	assert_int_equal(GUESS_IN(top, "cargo\0b\0", &h, m), 0);
	assert_string_equal(h.profile, "debug");
	assert_int_equal(GUESS_IN(top, "cargo\0--config\0alias.ck=\"build\"\0ck\0", &h, m), 0);
	assert_string_equal(h.profile, "debug"); /* --config first */
	put(top, "ci", "cfg.toml", "[alias]\nck = \"build --release\"\n");
	assert_int_equal(GUESS_IN(top, "cargo\0--config\0ci/cfg.toml\0ck\0", &h, m), 0);
	assert_string_equal(h.profile, "release"); /* a file, from cargo's directory */
	setenv("CARGO_ALIAS_CK", "build --profile ci", 1);
	assert_int_equal(GUESS_IN(top, "cargo\0ck\0", &h, m), 0);
	assert_string_equal(h.profile, "ci"); /* the environment before the files */
	unsetenv("CARGO_ALIAS_CK");
	/* split at white space as cargo does, whatever else is in the words */
	setenv("CARGO_ALIAS_QC", "check --features=it's \"a\" \\t", 1);
	assert_int_equal(GUESS_IN(top, "cargo\0qc\0", &h, m), 0);
	assert_string_equal(h.profile, "debug.check"); /* was: not read, a build */
	unsetenv("CARGO_ALIAS_QC");
	/* cargo refuses an alias of itself; here its expansion stops after a few
	 * rounds and the line is read as an unknown command's: a build */
	setenv("CARGO_ALIAS_LOOP", "loop", 1);
	assert_int_equal(GUESS_IN(top, "cargo\0loop\0", &h, m), 0);
	assert_string_equal(h.profile, "debug");
	unsetenv("CARGO_ALIAS_LOOP");
	/* an external command (cargo-foo) stays as it was */
	assert_int_equal(GUESS_IN(top, "cargo\0nextest\0run\0", &h, m), 0);
	assert_string_equal(h.profile, "debug");
	unsetenv("CARGO_HOME");
	free(sub);
	free(home);
	fs_remove_tree(top);
}

/* What an alias is in a config.toml (common/cargo_cfg.h). */
static void
test_cargo_cfg_alias(void **state)
{
	char out[64];
	size_t n;

	(void)state;
#define ALIAS(text, name) cargo_cfg_alias(text, strlen(text), name, out, sizeof out, &n)
	assert_int_equal(ALIAS("[alias]\nck = \"check --all\"\n", "ck"), 1);
	assert_int_equal(n, 12);
	assert_memory_equal(out, "check\0--all\0", 12);
	assert_int_equal(ALIAS("[alias]\nck = \"check\"\n", "c"), 0);
	assert_int_equal(ALIAS("[build]\nck = \"check\"\n", "ck"), 0);
	assert_int_equal(ALIAS("\"alias\".'ck' = [ 'check', \"-q\" ]\n", "ck"), 1);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "check\0-q\0", 9);
	assert_int_equal(ALIAS("[alias]\nck = 3\n", "ck"), -1);
	assert_int_equal(n, 0);
	assert_int_equal(ALIAS("[alias]\nck = [\"check\"\n", "ck"), -1); /* not closed */
	assert_int_equal(ALIAS("[alias]\nck = \"check \" \"\n", "ck"), 1);
	assert_int_equal(ALIAS("[alias]\nck = \"a very long alias of more words than "
	                       "the sixty four bytes of this test's buffer hold\"\n",
	                     "ck"),
	    -1);
	assert_int_equal(ALIAS("x = \"\"\"\n[alias]\nck = 'check'\n\"\"\"\n", "ck"), 0);
#undef ALIAS
}

/* The profile of a check session and back (proto/hint.h). */
static void
test_check_profile(void **state)
{
	struct proto_hint h;
	char out[PROTO_HINT_NAME_MAX + 1];

	(void)state;
	assert_true(proto_hint_check_like("check") && proto_hint_check_like("clippy") &&
	    proto_hint_check_like("doc") && proto_hint_check_like("fix"));
	assert_false(proto_hint_check_like("build") || proto_hint_check_like("test") ||
	    proto_hint_check_like("run") || proto_hint_check_like("bench"));
	memset(&h, 0, sizeof h);
	snprintf(h.profile, sizeof h.profile, "debug");
	proto_hint_mark_check(&h);
	assert_string_equal(h.profile, "debug.check");
	proto_hint_mark_check(&h); /* once */
	assert_string_equal(h.profile, "debug.check");
	assert_int_equal(proto_hint_build_profile(h.profile, out, sizeof out), 1);
	assert_string_equal(out, "debug");
	assert_int_equal(proto_hint_build_profile("debug", out, sizeof out), 0);
	assert_int_equal(proto_hint_build_profile(".check", out, sizeof out), 0);
	assert_int_equal(proto_hint_build_profile("release.check", out, 4), 0); /* no room */
	h.profile[0] = '\0'; /* no profile seen: nothing to mark */
	proto_hint_mark_check(&h);
	assert_string_equal(h.profile, "");
}

/* Which command lines are a workspace wrapper's (driver.c). */
static void
test_driver_kind(void **state)
{
	char *clippy[] = { "/t/bin/clippy-driver", "/t/bin/rustc", "-vV", NULL };
	char *bare_rustc[] = { "/t/bin/clippy-driver", "rustc", "--crate-name", "a", NULL };
	char *exe[] = { "/t/bin/clippy-driver", "/t/bin/rustc.exe", "-", NULL };
	char *other[] = { "/t/bin/tool", "/t/bin/rustc", "--crate-name", "a", NULL };
	char *on_path[] = { "sh", "rustc", "-vV", NULL };
	char *command[] = { "why-miss-no-such-program", "rustc", "--json", NULL };
	char *plain[] = { "/t/bin/rustc", "--crate-name", "rustc", NULL };
	char *two[] = { "/t/bin/clippy-driver", "/t/bin/rustc", NULL };
	char *source[] = { "/t/bin/rustc", "rustc.rs", "--crate-name", NULL };

	(void)state;
	assert_int_equal(driver_kind(3, clippy, NULL), DRIVER_CLIPPY);
	assert_int_equal(driver_kind(4, bare_rustc, NULL), DRIVER_CLIPPY);
	assert_int_equal(driver_kind(3, exe, NULL), DRIVER_CLIPPY);
	assert_int_equal(driver_kind(4, other, NULL), DRIVER_OTHER);
	assert_int_equal(driver_kind(3, on_path, NULL), DRIVER_OTHER); /* sh is on PATH */
	assert_int_equal(driver_kind(3, command, NULL), DRIVER_NONE);  /* a kache command's words */
	assert_int_equal(driver_kind(3, plain, NULL), DRIVER_NONE);
	assert_int_equal(driver_kind(2, two, NULL), DRIVER_NONE); /* no argument after rustc */
	/* rustc given a source file named rustc.rs first: its file stem is rustc,
	 * as clippy-driver would read it too; run untouched, never cached wrong */
	assert_int_equal(driver_kind(3, source, NULL), DRIVER_OTHER);
}

/* A trace file holding recs (n bytes) read into a wrapper's trace. */
static void
collect(struct wrapper *w, const char *recs, size_t n)
{
	char name[] = "/tmp/kache-trace-test-XXXXXX";
	int fd = mkstemp(name);

	assert_true(fd >= 0);
	unlink(name);
	assert_int_equal(write(fd, recs, n), (ssize_t)n);
	trace_free(w);
	memset(&w->trace, 0, sizeof w->trace);
	w->trace.wanted = 1;
	w->trace.fd = fd;
	trace_collect(w);
	assert_int_equal(w->trace.fd, -1);
}

/* What proc macros read (wrapper/trace.c): the records as the preloaded
 * library writes them, the forms a candidate keeps, the hashes of a file, a
 * directory and an absent path. */
static void
test_trace(void **state)
{
	struct wrapper w1, w2;
	char dir[] = "/tmp/kache-trace-unit-XXXXXX", *one, *two, *f, *d, *a, *x, *y;
	static const char ok[] = "L\0Rsrc/b\0Rsrc/a\0Rsrc/a\0EZED\0EKACHE_TRACE_FD\0ELD_PRELOAD\0"
	                         "R/proc/self/maps\0Dsome\0Anone\0W/dev/null\0";
	unsigned char h[HASH_LEN], h2[HASH_LEN], h3[HASH_LEN];
	int kind;

	(void)state;
	assert_non_null(mkdtemp(dir));
	one = xasprintf("%s/one", dir);
	two = xasprintf("%s/two", dir);
	two_wrappers(&w1, &w2, dir, one, two);
	collect(&w1, ok, sizeof ok - 1);
	assert_null(w1.trace.refuse);
	assert_int_equal(w1.trace.inputs.n, 4); /* sorted, once each, /proc left out */
	assert_string_equal(w1.trace.inputs.v[0], "Anone");
	assert_string_equal(w1.trace.inputs.v[1], "Dsome");
	assert_string_equal(w1.trace.inputs.v[2], "Rsrc/a");
	assert_string_equal(w1.trace.inputs.v[3], "Rsrc/b");
	assert_int_equal(w1.trace.envs.n, 1); /* kache's own variables left out */
	assert_string_equal(w1.trace.envs.v[0], "ZED");
	collect(&w1, "L\0Wout.txt\0", 11);
	assert_string_equal(w1.trace.refuse, "proc-macro-wrote-a-file");
	collect(&w1, "L\0Xgit\0", 7);
	assert_string_equal(w1.trace.refuse, "proc-macro-ran-a-program");
	collect(&w1, "L\0N\0", 4);
	assert_string_equal(w1.trace.refuse, "proc-macro-connected");
	collect(&w1, "L\0Rsrc/a\0Rsrc/b", 15); /* the last record torn */
	assert_string_equal(w1.trace.refuse, "trace-incomplete");
	collect(&w1, "L\0?\0", 4);
	assert_string_equal(w1.trace.refuse, "trace-incomplete");
	collect(&w1, "L\0!x\0", 5);
	assert_string_equal(w1.trace.refuse, "trace-malformed");
	collect(&w1, "Rsrc/a\0", 7); /* the library never said it was active */
	assert_string_equal(w1.trace.refuse, "trace-not-loaded");
	trace_free(&w1);

	/* a variable: only a hash, of the value with the roots folded; a secret's
	 * as an env-dep's */
	x = depinfo_env_form_traced(&w1.roots, "CARGO_MANIFEST_DIR", one);
	y = depinfo_env_form_traced(&w2.roots, "CARGO_MANIFEST_DIR", two);
	assert_true(str_starts_with(x, "blake2b:"));
	assert_string_equal(x, y);
	assert_null(strstr(x, "one"));
	free(y);
	y = depinfo_env_form_traced(&w2.roots, "CARGO_MANIFEST_DIR", "/elsewhere");
	assert_string_not_equal(x, y);
	free(x);
	free(y);
	x = depinfo_env_form_traced(&w1.roots, "DB_PASSWORD", "hunter2");
	y = depinfo_env_form(&w1.roots, "DB_PASSWORD", "hunter2");
	assert_string_equal(x, y);
	free(x);
	free(y);

	/* a file by content, a directory by its names, an absent path by a tag */
	f = xasprintf("%s/f", dir);
	d = xasprintf("%s/d", dir);
	a = xasprintf("%s/absent", dir);
	assert_int_equal(fs_write_atomic(f, "x", 1, 0644), 0);
	assert_int_equal(fs_mkdir_p(d, 0700), 0);
	assert_int_equal(trace_input_hash(&w1, f, h, NULL, &kind), 0);
	assert_int_equal(kind, 'R');
	assert_int_equal(trace_input_hash(&w1, a, h, NULL, &kind), 0);
	assert_int_equal(kind, 'A');
	assert_int_equal(trace_input_hash(&w1, d, h, NULL, &kind), 0);
	assert_int_equal(kind, 'D');
	put_file(d, "m.sql", "");
	assert_int_equal(trace_input_hash(&w1, d, h2, NULL, &kind), 0);
	assert_memory_not_equal(h, h2, HASH_LEN); /* a name more */
	assert_int_equal(trace_input_hash(&w1, a, h3, NULL, NULL), 0);
	assert_memory_not_equal(h2, h3, HASH_LEN);
	free(f);
	free(d);
	free(a);
	free(one);
	free(two);
	two_wrappers_free(&w1, &w2, dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_cargo_lib),
		cmocka_unit_test(test_args_kinds),
		cmocka_unit_test(test_args_pass_through),
		cmocka_unit_test(test_args_native_cpu),
		cmocka_unit_test(test_hostcpu_id),
		cmocka_unit_test(test_roots_fold_expand),
		cmocka_unit_test(test_roots_remap_order),
		cmocka_unit_test(test_depinfo),
		cmocka_unit_test(test_key_location_independent),
		cmocka_unit_test(test_key_profile_use_by_content),
		cmocka_unit_test(test_key_target_spec_by_content),
		cmocka_unit_test(test_key_link_inputs),
		cmocka_unit_test(test_session_guess_cargo),
		cmocka_unit_test(test_session_guess_cargo_alias),
		cmocka_unit_test(test_cargo_cfg_alias),
		cmocka_unit_test(test_check_profile),
		cmocka_unit_test(test_driver_kind),
		cmocka_unit_test(test_trace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
