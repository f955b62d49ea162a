/* Unit tests for common/: paths, sizes, hashes, atomic files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/path.h"
#include "common/run.h"
#include "common/util.h"
#include "pages.h"

static void
check_clean(const char *in, const char *want)
{
	char *p = xstrdup(in);

	path_clean(p);
	assert_string_equal(p, want);
	free(p);
}

static void
test_path_clean(void **state)
{
	(void)state;
	check_clean("/a/b/../c", "/a/c");
	check_clean("/a//b/./c/", "/a/b/c");
	check_clean("/../a", "/a");
	check_clean("a/../../b", "../b");
	check_clean("./", ".");
	check_clean("/", "/");
	check_clean("src/lib.rs", "src/lib.rs");
	check_clean("/usr/share/cargo/registry/a-1.0/src/date.rs",
	    "/usr/share/cargo/registry/a-1.0/src/date.rs");
	check_clean("/a/b/../../c/d", "/c/d");
}

/* path_find_program: what execvp would run, in PATH's order; a file that is
 * not executable, or a directory, is passed over; an empty entry is ".". */
static void
test_path_find_program(void **state)
{
	char dir[] = "/tmp/kache-path-XXXXXX", *a, *b, *exe, *path, *found, *old, cwd[4096];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_non_null(mkdtemp(dir));
	a = path_join(dir, "a");
	b = path_join(dir, "b");
	assert_int_equal(mkdir(a, 0700), 0);
	assert_int_equal(mkdir(b, 0700), 0);
	path = path_join(a, "tool"); /* not executable: passed over */
	assert_int_equal(fs_write_atomic(path, "x", 1, 0600), 0);
	free(path);
	path = path_join(a, "sub"); /* a directory of that name: passed over */
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	exe = path_join(b, "tool");
	assert_int_equal(fs_write_atomic(exe, "#!/bin/sh\n", 10, 0700), 0);
	path = path_join(b, "sub");
	assert_int_equal(fs_write_atomic(path, "#!/bin/sh\n", 10, 0700), 0);
	free(path);
	old = getenv("PATH") ? xstrdup(getenv("PATH")) : NULL;
	path = xasprintf("%s:%s", a, b);
	setenv("PATH", path, 1);
	free(path);
	found = path_find_program("tool");
	assert_non_null(found);
	assert_string_equal(found, exe);
	free(found);
	found = path_find_program("sub");
	assert_non_null(found);
	assert_true(str_starts_with(found, b));
	free(found);
	assert_null(path_find_program("kache-no-such-program"));
	found = path_find_program(exe); /* a path: that file */
	assert_non_null(found);
	assert_string_equal(found, exe);
	free(found);
	path = path_join(a, "tool");
	assert_null(path_find_program(path));
	free(path);
	assert_int_equal(chdir(b), 0);
	setenv("PATH", "/nonexistent::", 1); /* the empty entry: the working directory */
	found = path_find_program("tool");
	assert_non_null(found);
	assert_string_equal(found, "./tool");
	free(found);
	assert_int_equal(chdir(cwd), 0);
	if (old != NULL)
		setenv("PATH", old, 1);
	free(old);
	fs_remove_tree(dir);
	free(a);
	free(b);
	free(exe);
}

static void
test_path_absolute_and_under(void **state)
{
	char *p = path_absolute("src/../src/main.rs", "/ws/app");

	(void)state;
	assert_string_equal(p, "/ws/app/src/main.rs");
	assert_string_equal(path_under(p, "/ws"), "app/src/main.rs");
	assert_string_equal(path_under("/ws", "/ws"), "");
	assert_null(path_under("/wsx/a", "/ws"));
	free(p);
}

static void
test_safe_relative(void **state)
{
	(void)state;
	assert_true(path_is_safe_relative("libfoo-1.rlib"));
	assert_true(path_is_safe_relative("out/gen.rs"));
	assert_false(path_is_safe_relative("/etc/passwd"));
	assert_false(path_is_safe_relative("../x"));
	assert_false(path_is_safe_relative("a/../../x"));
	assert_false(path_is_safe_relative("a//b"));
	assert_false(path_is_safe_relative("a/"));
	assert_false(path_is_safe_relative(""));
	assert_false(path_is_safe_relative("a\nb"));
}

/* One duration parser for flush timeouts and the prefetch cooldown. */
static void
test_durations(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(parse_duration("90", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(parse_duration("1500ms", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(parse_duration("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(parse_duration("1.5h", &ms), 0);
	assert_int_equal(ms, 5400000);
	assert_int_equal(parse_duration("", &ms), -1);
	assert_int_equal(parse_duration("-1s", &ms), -1);
	assert_int_equal(parse_duration("10 parsecs", &ms), -1);
	assert_int_equal(parse_duration("nan", &ms), -1);
	assert_int_equal(parse_duration("inf", &ms), -1);
	assert_int_equal(parse_duration("1e80", &ms), -1);
}

static void
test_sizes(void **state)
{
	(void)state;
	assert_int_equal(parse_size("10G"), 10LL << 30);
	assert_int_equal(parse_size("512MiB"), 512LL << 20);
	assert_int_equal(parse_size("1024"), 1024);
	assert_int_equal(parse_size("1.5K"), 1536);
	assert_int_equal(parse_size("ten"), -1);
	assert_int_equal(parse_size("10Q"), -1);
	/* Found by fuzz_config: sizes past int64 were undefined behaviour. */
	assert_int_equal(parse_size("1e80"), -1);
	assert_int_equal(parse_size("99999999999T"), -1);
	assert_int_equal(parse_size("1e999"), -1);
}

static void
test_hash_hex_roundtrip(void **state)
{
	unsigned char h[HASH_LEN], back[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	(void)state;
	hash_buffer("abc", 3, h);
	hash_to_hex(h, hex);
	assert_int_equal(strlen(hex), 64);
	assert_int_equal(hash_from_hex(hex, back), 0);
	assert_memory_equal(h, back, HASH_LEN);
	hex[3] = 'G';
	assert_int_equal(hash_from_hex(hex, back), -1);
}

/* XXH3-128 as xxhsum -H2 prints it (big-endian), whatever the parts' cut. */
static void
test_checksum_known_answer(void **state)
{
	static const unsigned char want[CHECKSUM_LEN] = { 0xdf, 0x8d, 0x09, 0xe9, 0x3f, 0x87, 0x49,
		0x00, 0xa9, 0x9b, 0x87, 0x75, 0xcc, 0x15, 0xb6, 0xc7 };
	const struct checksum_part whole[] = { { "hello world", 11 } };
	const struct checksum_part cut[] = { { "hel", 3 }, { "", 0 }, { "lo world", 8 } };
	unsigned char a[CHECKSUM_LEN], b[CHECKSUM_LEN];

	(void)state;
	checksum(whole, 1, a);
	checksum(cut, 3, b);
	assert_memory_equal(a, want, CHECKSUM_LEN);
	assert_memory_equal(b, want, CHECKSUM_LEN);
	checksum(whole, 0, a);
	assert_memory_not_equal(a, want, CHECKSUM_LEN);
}

static void
test_atomic_write(void **state)
{
	char dir[] = "/tmp/kache-test-XXXXXX";
	struct buf b;
	char *path, *copy;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/a/b/file", dir);
	copy = xasprintf("%s/a/b/copy", dir);
	assert_int_equal(fs_mkdir_p(dir, 0700), 0);
	char *sub = xasprintf("%s/a/b", dir);
	assert_int_equal(fs_mkdir_p(sub, 0700), 0);
	assert_int_equal(fs_write_atomic(path, "hello", 5, 0644), 0);
	assert_int_equal(fs_copy_atomic(path, copy, 0444), 0);
	buf_init(&b);
	assert_int_equal(fs_read_file(copy, &b, 100), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.p, "hello", 5);
	buf_reset(&b);
	assert_int_equal(fs_read_file(copy, &b, 2), -1);
	buf_free(&b);
	assert_int_equal(fs_remove_tree(dir), 0);
	assert_int_equal(access(dir, F_OK), -1);
	free(sub);
	free(path);
	free(copy);
}

/* Whole reads of every size around the buffer's steps, appended to what the
 * buffer holds; the cap on bytes; the same into a buffer of the caller's
 * (fs_read_into), from a pipe too; a file of unknown size (/proc) read to its end. */
static void
test_read_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, 63, 4095, 65535, 65536, 65537, 131071, 131072,
		200003 };
	char dir[] = "/tmp/kache-test-XXXXXX";
	struct buf b;
	char *path, *data = xmalloc(200003), *into = xmalloc(200010);
	size_t got;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/f", dir);
	for (size_t i = 0; i < 200003; i++)
		data[i] = (char)('a' + i % 23);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];

		assert_int_equal(fs_write_atomic(path, data, n, 0644), 0);
		buf_init(&b);
		assert_int_equal(fs_read_file(path, &b, n), 0); /* max == size: fine */
		assert_int_equal(b.len, n);
		assert_non_null(b.p);
		assert_int_equal(b.p[n], '\0');
		assert_memory_equal(b.p, data, n);
		buf_addstr(&b, "<"); /* appends after what is there (max: the whole) */
		assert_int_equal(fs_read_file(path, &b, 2 * n + 1), 0);
		assert_int_equal(b.len, 2 * n + 1);
		assert_memory_equal(b.p + n + 1, data, n);
		buf_free(&b);
		/* into a buffer of the caller's: a cap of the size is fine, one less is not */
		assert_true((fd = open(path, O_RDONLY)) >= 0);
		memset(into, 0, 200003);
		got = 1;
		assert_int_equal(fs_read_into(fd, into, n, &got), 0);
		assert_int_equal(got, n);
		assert_memory_equal(into, data, n);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		assert_int_equal(fs_read_into(fd, into, n + 7, &got), 0);
		assert_int_equal(got, n);
		if (n > 0) {
			assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
			assert_int_equal(fs_read_into(fd, into, n - 1, &got), -1);
			assert_int_equal(errno, EFBIG);
		}
		close(fd);
		if (n > 0) {
			buf_init(&b);
			assert_int_equal(fs_read_file(path, &b, n - 1), -1);
			assert_int_equal(errno, EFBIG);
			buf_free(&b);
			/* from an offset, on an open descriptor */
			assert_true((fd = open(path, O_RDONLY)) >= 0);
			assert_int_equal(lseek(fd, (off_t)(n / 2), SEEK_SET), (off_t)(n / 2));
			buf_init(&b);
			assert_int_equal(fs_read_fd(fd, &b, n), 0);
			close(fd);
			assert_int_equal(b.len, n - n / 2);
			assert_memory_equal(b.p, data + n / 2, n - n / 2);
			buf_free(&b);
		}
	}
	/* st_size 0 but not empty: read until read(2) says the end */
	assert_true((fd = open("/proc/self/maps", O_RDONLY)) >= 0);
	buf_init(&b);
	assert_int_equal(fs_read_fd(fd, &b, 1 << 24), 0);
	close(fd);
	assert_true(b.len > 0);
	assert_int_equal(strlen(b.p), b.len);
	buf_free(&b);
	/* a pipe: short reads, and the end only when the writer closes */
	{
		int p[2];

		assert_int_equal(pipe(p), 0);
		assert_int_equal(write(p[1], data, 100), 100);
		assert_int_equal(write(p[1], data + 100, 50), 50);
		close(p[1]);
		assert_int_equal(fs_read_into(p[0], into, 150, &got), 0);
		assert_int_equal(got, 150);
		assert_memory_equal(into, data, 150);
		close(p[0]);
	}
	/* a read that fails is said, not taken for the end */
	{
		int p[2];

		assert_int_equal(pipe(p), 0);
		close(p[0]);
		assert_int_equal(fs_read_into(p[1], into, 10, &got), -1); /* its write end */
		assert_int_equal(errno, EBADF);
		close(p[1]);
	}
	assert_int_equal(fs_remove_tree(dir), 0);
	free(path);
	free(data);
	free(into);
}

/* fs_write_new makes a file that was absent, and never touches one that is
 * there (nor follows a symlink there): EEXIST, the file as it was. */
static void
test_write_new(void **state)
{
	char dir[] = "/tmp/kache-test-XXXXXX";
	char *path, *link, *target;
	struct buf b;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/new", dir);
	link = xasprintf("%s/link", dir);
	target = xasprintf("%s/target", dir);
	assert_int_equal(fs_write_new(path, "first", 5, 0640), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(fs_write_new(path, "second", 6, 0644), -1);
	assert_int_equal(errno, EEXIST);
	buf_init(&b);
	assert_int_equal(fs_read_file(path, &b, 100), 0);
	assert_string_equal(b.p, "first");
	buf_free(&b);
	assert_int_equal(symlink(target, link), 0); /* dangling */
	assert_int_equal(fs_write_new(link, "x", 1, 0644), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(access(target, F_OK), -1);
	assert_int_equal(fs_remove_tree(dir), 0);
	free(path);
	free(link);
	free(target);
}

/* Bytes this process has had read from a disk so far (/proc/self/io's
 * read_bytes); -1 when the kernel does not say. */
static long long
disk_read_bytes(void)
{
	char line[128];
	long long n = -1;
	FILE *f = fopen("/proc/self/io", "r");

	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "read_bytes: %lld", &n) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return n;
}

/* fs_write_new_direct: the bytes whole, the mode asked, an existing file
 * never touched, and past the page cache: at most the last page (the tail
 * of a size that is not whole blocks, written through the cache) is cached
 * after the write, and nothing was read from the disk on the way (cutting a
 * padded last block to size read it back first: one synchronous read per
 * blob). Where the filesystem refuses O_DIRECT: EINVAL and nothing made. */
static void
test_write_new_direct(void **state)
{
	static const size_t sizes[] = { 0, 1, 4095, 4096, 4097, (1u << 20) + 3, 3u << 20 };
	char dir[] = "/tmp/kache-test-XXXXXX";
	char *data = xmalloc(3u << 20), *path;
	struct statfs fs;
	struct stat st;
	struct buf b;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(statfs(dir, &fs), 0);
	for (size_t i = 0; i < 3u << 20; i++)
		data[i] = (char)(i * 2654435761u >> 11);
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		long long read = 0;
		int made = 0;

		/* ext4 reads a block bitmap it does not have cached when it
		 * allocates from a new group (a metadata read, counted too):
		 * with cold caches the first write of a size may read one. A
		 * write's own read-back happens on every write, so of three
		 * writes of a size, one reads nothing. */
		for (int attempt = 0; attempt < 3; attempt++) {
			long long read0 = disk_read_bytes();

			path = xasprintf("%s/f%zu-%d", dir, k, attempt);
			made = fs_write_new_direct(path, data, sizes[k], 0640) == 0;
			if (!made) {
				assert_int_equal(errno, EINVAL); /* refused: nothing made */
				assert_int_equal(access(path, F_OK), -1);
				free(path);
				break;
			}
			read = read0 >= 0 ? disk_read_bytes() - read0 : 0;
			if (read == 0 || fs.f_type == TMPFS_MAGIC || attempt == 2)
				break;
			assert_int_equal(unlink(path), 0);
			free(path);
		}
		if (!made)
			continue;
		if (fs.f_type != TMPFS_MAGIC)
			assert_int_equal(read, 0);
		if (sizes[k] >= 8192 && fs.f_type != TMPFS_MAGIC) /* tmpfs is all cache */
			assert_in_range(resident_pages(path, sizes[k]), 0, 1);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0640);
		buf_init(&b);
		assert_int_equal(fs_read_file(path, &b, 4u << 20), 0);
		assert_int_equal(b.len, sizes[k]);
		assert_memory_equal(b.p ? b.p : "", data, sizes[k]);
		buf_free(&b);
		assert_int_equal(fs_write_new_direct(path, "x", 1, 0644), -1);
		assert_int_equal(errno, EEXIST);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, sizes[k]);
		free(path);
	}
	assert_int_equal(fs_remove_tree(dir), 0);
	free(data);
}

/* A FIFO never blocks and is never opened; a symlink is refused where kache
 * keeps its files and followed (to a regular file only) for an input. */
static void
test_open_regular(void **state)
{
	char dir[] = "/tmp/kache-test-XXXXXX";
	char *file, *fifo, *link, *fifolink;
	struct buf b;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	file = xasprintf("%s/file", dir);
	fifo = xasprintf("%s/fifo", dir);
	link = xasprintf("%s/link", dir);
	fifolink = xasprintf("%s/fifolink", dir);
	assert_int_equal(fs_write_atomic(file, "x", 1, 0644), 0);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(symlink(file, link), 0);
	assert_int_equal(symlink(fifo, fifolink), 0);
	assert_true((fd = fs_open_regular(file, O_RDONLY, 0)) >= 0);
	close(fd);
	assert_int_equal(fs_open_regular(fifo, O_RDONLY, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(fs_open_regular(fifo, O_WRONLY | O_APPEND | O_CREAT, 0644), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(fs_open_regular(link, O_RDONLY, 0), -1);
	assert_int_equal(errno, ELOOP);
	assert_true((fd = fs_open_input(link)) >= 0);
	/* cppcheck-suppress doubleFree ; fd was opened anew on the line above */
	close(fd);
	assert_int_equal(fs_open_input(fifolink), -1);
	buf_init(&b);
	assert_int_equal(fs_read_file(fifo, &b, 100), -1);
	assert_int_equal(fs_read_file(link, &b, 100), -1);
	buf_free(&b);
	assert_int_equal(fs_remove_tree(dir), 0);
	free(file);
	free(fifo);
	free(link);
	free(fifolink);
}

/* A duration setting in ms; a malformed one reads as the key's default. */
static void
test_config_duration(void **state)
{
	struct config *cfg;

	(void)state;
	setenv("KACHE_CONFIG", "/nonexistent/kache.toml", 1);
	unsetenv("KACHE_PREFETCH_COOLDOWN");
	cfg = config_load(NULL);
	assert_int_equal(config_get_duration(cfg, "prefetch.cooldown"), 300000);
	config_set(cfg, "prefetch.cooldown", "90s");
	assert_int_equal(config_get_duration(cfg, "prefetch.cooldown"), 90000);
	config_set(cfg, "prefetch.cooldown", "2m");
	assert_int_equal(config_get_duration(cfg, "prefetch.cooldown"), 120000);
	config_set(cfg, "prefetch.cooldown", "soon");
	assert_int_equal(config_get_duration(cfg, "prefetch.cooldown"), 300000);
	config_free(&cfg);
}

/* Values are checked as the settings load: one that is not of its key's
 * kind is said (its variable or file, its key, what it takes) and the default
 * used in its place, by every reader alike; an empty one is unset; a time
 * takes its unit (a plain number is the key's own: seconds, or ms for a _ms
 * key); a choice is taken in any case. (A gc interval of "10m" was read as 10
 * seconds, "2s" for an ms key as 2 ms, "maybe" as false, each silently.) */
static void
test_config_values_checked(void **state)
{
	static const char *const vars[] = { "KACHE_GC_INTERVAL", "KACHE_DEADLINE_MS", "KACHE_REMAP",
		"KACHE_MAX_SIZE", "KACHE_RESTORE", "KACHE_REMOTE", "KACHE_FETCHERS",
		"KACHE_IDLE_TIMEOUT", "KACHE_SHARED", "KACHE_FETCH_TIMEOUT_MS" };
	char dir[] = "/tmp/kache-cfg-XXXXXX", *file;
	struct config *cfg;
	struct buf w;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	file = xasprintf("%s/config.toml", dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fputs("[cache]\nmax_size = lots\nrestore = HardLink\n[workers]\nfetchers = -1\n"
	      "[supervisor]\nidle_timeout = 1.5m\n",
	    f);
	fclose(f);
	setenv("KACHE_CONFIG", file, 1);
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	setenv("KACHE_GC_INTERVAL", "10m", 1);
	setenv("KACHE_DEADLINE_MS", "2s", 1);
	setenv("KACHE_FETCH_TIMEOUT_MS", "750", 1);
	setenv("KACHE_REMAP", "maybe", 1);
	setenv("KACHE_SHARED", "", 1);
	buf_init(&w);
	cfg = config_load(&w);
	buf_addstr(&w, "");
	assert_int_equal(config_get_duration(cfg, "supervisor.gc_interval"), 600000);
	assert_int_equal(config_get_int(cfg, "supervisor.gc_interval"), 600);
	assert_int_equal(config_get_int(cfg, "wrapper.deadline_ms"), 2000);
	assert_int_equal(config_get_int(cfg, "wrapper.fetch_timeout_ms"), 750);
	assert_int_equal(config_get_duration(cfg, "supervisor.idle_timeout"), 90000);
	assert_true(config_get_bool(cfg, "cache.remap")); /* the default */
	assert_string_equal(config_get(cfg, "cache.remap"), "true");
	assert_false(config_get_bool(cfg, "cache.shared")); /* empty: unset, silently */
	assert_int_equal(config_get_size(cfg, "cache.max_size"), 10LL << 30);
	assert_string_equal(config_get(cfg, "cache.restore"), "hardlink");
	assert_int_equal(config_get_int(cfg, "workers.fetchers"), 2);
	assert_non_null(strstr(w.p,
	    "KACHE_REMAP=maybe (cache.remap) is not true or false; "
	    "the default, true, is used\n"));
	assert_non_null(strstr(w.p, "config.toml: cache.max_size = lots is not a size"));
	assert_non_null(strstr(w.p, "config.toml: workers.fetchers = -1 is not a whole number"));
	assert_null(strstr(w.p, "gc_interval"));
	assert_null(strstr(w.p, "restore"));
	assert_null(strstr(w.p, "KACHE_SHARED"));
	config_free(&cfg);
	/* below the least: a gc every 0 s is not an interval */
	setenv("KACHE_GC_INTERVAL", "0", 1);
	buf_free(&w);
	buf_init(&w);
	cfg = config_load(&w);
	buf_addstr(&w, "");
	assert_int_equal(config_get_duration(cfg, "supervisor.gc_interval"), 600000);
	assert_non_null(strstr(w.p, "KACHE_GC_INTERVAL=0 (supervisor.gc_interval) is below"));
	config_free(&cfg);
	/* a remote's type in any case is the type (S3 was refused where the
	 * remote opened: workers exit 78); another word is kept as written, for
	 * the remote to refuse where it opens (intents kept, doctor says it) */
	unsetenv("KACHE_GC_INTERVAL");
	for (int k = 0; k < 3; k++) {
		static const char *const in[] = { "S3", "None", "sss" },
		                         *const out[] = { "s3", "none", "sss" };

		setenv("KACHE_REMOTE", in[k], 1);
		buf_free(&w);
		buf_init(&w);
		cfg = config_load(&w);
		buf_addstr(&w, "");
		assert_string_equal(config_get(cfg, "remote.type"), out[k]);
		assert_int_equal(config_has_remote(cfg), k != 1);
		assert_null(strstr(w.p, "KACHE_REMOTE"));
		config_free(&cfg);
	}
	unsetenv("KACHE_REMOTE");
	buf_free(&w);
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	unlink(file);
	rmdir(dir);
	free(file);
}

/* A stamp's age: a time ahead of now by more than a second (the clock set
 * back since) reads as long ago; within a second, as it is. */
static void
test_clock_age(void **state)
{
	int64_t now = clock_wall_ms();
	struct timespec ago = { (now - 5000) / 1000, 0 }, ahead = { now / 1000 + 3600, 0 };
	struct timespec near = { (now + 400) / 1000, (now + 400) % 1000 * 1000000 };

	(void)state;
	assert_in_range(clock_age_ms(&ago), 4000, 60000);
	assert_true(clock_age_ms(&near) > -1000 && clock_age_ms(&near) < 60000);
	assert_true(clock_age_ms(&ahead) == INT64_MAX);
}

/* strv_sort_unique: sorted, each string once, the repeats freed (the
 * sanitizer build sees a leak or a double free), NULL after the last. */
static void
test_strv_sort_unique(void **state)
{
	static const char *in[] = { "b", "a", "b", "c", "a", "a" };
	struct strv s;

	(void)state;
	strv_init(&s);
	strv_sort_unique(&s); /* empty: nothing to do */
	assert_int_equal(s.n, 0);
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
		strv_push(&s, in[i]);
	strv_sort_unique(&s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.v[0], "a");
	assert_string_equal(s.v[1], "b");
	assert_string_equal(s.v[2], "c");
	assert_null(s.v[3]);
	strv_free(&s);
}

/* buf_detach gives a string even when nothing was added: an env-dep set to
 * the empty string (env!("CARGO_PKG_DESCRIPTION") of a package without one)
 * was stored as whatever the fresh allocation held, so the crate never hit. */
static void
test_buf_detach_empty(void **state)
{
	struct buf b;
	char *p;
	size_t n = 7;

	(void)state;
	for (int i = 0; i < 64; i++) { /* a reused chunk holds old bytes */
		p = xmalloc(64);
		memset(p, 'x', 64);
		free(p);
		buf_init(&b);
		p = buf_detach(&b, &n);
		assert_non_null(p);
		assert_int_equal(n, 0);
		assert_string_equal(p, "");
		free(p);
	}
}

/* Secret-looking variable names: whole words of the name (any case, split
 * at anything not a letter or digit), KEY only after ACCESS, API, SIGNING,
 * ENCRYPTION or MASTER; a "NAME=value" form is judged by its name alone. */
static void
test_config_secret_env(void **state)
{
	static const char *const yes[] = { "MY_API_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
		"AWS_ACCESS_KEY_ID", "DB_PASSWORD", "db_pass", "SMTP_PASSWD", "GPG_PASSPHRASE",
		"GOOGLE_APPLICATION_CREDENTIALS", "NPM_AUTH", "AWS_SESSION_TOKEN",
		"SSH_PRIVATE_KEY", "STRIPE_API_KEY", "MAPBOX_APIKEY", "COSIGN_SIGNING_KEY",
		"x-secret", "SECRETS", "CARGO_REGISTRIES_MY_REG_TOKEN", "TOKEN=plain" };
	static const char *const no[] = { "CARGO_PKG_AUTHORS", "AUTHOR", "OUT_DIR",
		"CARGO_PKG_VERSION", "KEYBOARD", "MONKEY_ID", "PASSAGE", "BYPASS_CHECKS",
		"SESSIONS_DIR_X", "TOKENIZER", "HOTKEY", "CACHE_KEY", "PUBLIC_KEY", "KEY",
		"RUSTFLAGS=-C secret=1", "" };

	(void)state;
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (!config_is_secret_env(yes[i]))
			fail_msg("%s should read as a secret", yes[i]);
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (config_is_secret_env(no[i]))
			fail_msg("%s should not read as a secret", no[i]);
}

/* run_capture: the output (kept up to the buffer, the rest read and
 * dropped), the exit status, a command that is not there, a directory to run
 * in, and a command that prints and then hangs past the timeout: killed, -1,
 * and what it printed kept once (the doctor's copy counted its last read
 * twice when the timeout came). */
static void
test_run_capture(void **state)
{
	char out[8], big[256];
	char *echo[] = { "sh", "-c", "printf 'abcdefghij'; exit 3", NULL };
	char *pwd[] = { "pwd", NULL };
	char *none[] = { "/nonexistent/kache-no-such-command", NULL };
	char *hang[] = { "sh", "-c", "printf 'abc'; exec sleep 30", NULL };
	int64_t t0;

	(void)state;
	assert_int_equal(run_capture(echo, NULL, out, sizeof out, 10000), 3);
	assert_string_equal(out, "abcdefg");
	assert_int_equal(run_capture(pwd, "/", big, sizeof big, 10000), 0);
	assert_string_equal(big, "/\n");
	assert_int_equal(run_capture(none, NULL, big, sizeof big, 10000), 127);
	assert_string_equal(big, "");
	t0 = clock_ms();
	memset(big, 'x', sizeof big);
	assert_int_equal(run_capture(hang, NULL, big, sizeof big, 300), -1);
	assert_true(clock_ms() - t0 < 10000);
	assert_string_equal(big, "abc");
}

/* log_last_line: the last line holding the marker, from the marker on, within
 * the file's last 16 KiB; "" when none holds it or the file is missing.
 * log_last_warning: that line's text after " warn: ". */
static void
test_log_last_line(void **state)
{
	char dir[] = "/tmp/kache-log-XXXXXX", *path, out[64];
	struct buf b;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/w.0.log", dir);
	log_last_line(path, " warn: ", out, sizeof out);
	assert_string_equal(out, "");
	buf_init(&b);
	buf_addstr(&b, "t w.0[1] warn: far back\n");
	for (int i = 0; i < 2000; i++) /* 20 KB: the line above is out of the window */
		buf_addstr(&b, "t w.0[1] info: filler\n");
	buf_addstr(&b, "t w.0[1] warn: first\nt w.0[1] warn: second one\nt w.0[1] info: after\n");
	assert_int_equal(fs_write_atomic(path, b.p, b.len, 0600), 0);
	log_last_line(path, " warn: ", out, sizeof out);
	assert_string_equal(out, " warn: second one");
	log_last_line(path, " warn: ", out, 8); /* bounded by n */
	assert_string_equal(out, " warn: ");
	log_last_line(path, "far back", out, sizeof out);
	assert_string_equal(out, "");
	log_last_warning(path, out, sizeof out); /* the text after the tag */
	assert_string_equal(out, "second one");
	log_last_warning(path, out, 4);
	assert_string_equal(out, "");
	buf_free(&b);
	unlink(path);
	free(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_clean),
		cmocka_unit_test(test_path_absolute_and_under),
		cmocka_unit_test(test_safe_relative),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_strv_sort_unique),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_hash_hex_roundtrip),
		cmocka_unit_test(test_checksum_known_answer),
		cmocka_unit_test(test_atomic_write),
		cmocka_unit_test(test_open_regular),
		cmocka_unit_test(test_read_sizes),
		cmocka_unit_test(test_write_new),
		cmocka_unit_test(test_write_new_direct),
		cmocka_unit_test(test_config_duration),
		cmocka_unit_test(test_config_values_checked),
		cmocka_unit_test(test_clock_age),
		cmocka_unit_test(test_config_secret_env),
		cmocka_unit_test(test_buf_detach_empty),
		cmocka_unit_test(test_run_capture),
		cmocka_unit_test(test_log_last_line),
		cmocka_unit_test(test_path_find_program),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
