/* The host CPU as a compiler asked for code "native" to it sees it (rustc's
 * -C target-cpu=native, gcc's -march=native): the identity and feature lines
 * of the first processor in /proc/cpuinfo. What such a compile makes may use
 * instructions another CPU lacks (an illegal instruction there), so its key
 * takes them: a remote shared by runners of other CPUs gives each its own. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "wrapper/wrapper.h"

/* The first processor's block fits in this on any machine; the lines past it
 * (the other processors) are not read. */
#define CPUINFO_HEAD (64u << 10)
/* Read a page at a time: the kernel makes the text of as many processors as
 * a read has room for (for each, its "cpu MHz" asks that processor), and the
 * first block is in the first page or two. */
#define CPUINFO_READ 4096u

static int wanted(const char *key, size_t n, int *label);
static void take_line(const char *line, size_t n, struct buf *id, char *label, size_t label_n);
static int read_head(struct buf *b);

/* 1 when key (n bytes, trimmed) is one of the lines that tell what code the
 * CPU runs; *label: whether it names the CPU (the rest are feature lists). */
static int
wanted(const char *key, size_t n, int *label)
{
	static const struct {
		const char *key;
		int label;
	} keys[] = { { "vendor_id", 1 }, { "cpu family", 1 }, { "model", 1 }, { "flags", 0 },
		{ "CPU implementer", 1 }, { "CPU architecture", 1 }, { "CPU variant", 1 },
		{ "CPU part", 1 }, { "Features", 0 }, { "isa", 0 }, { "uarch", 1 }, { "cpu", 1 } };

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strlen(keys[i].key) == n && memcmp(keys[i].key, key, n) == 0) {
			*label = keys[i].label;
			return 1;
		}
	return 0;
}

/* One "key<tabs>: value" line: into id when wanted, its value into label too
 * when it names the CPU. */
static void
take_line(const char *line, size_t n, struct buf *id, char *label, size_t label_n)
{
	const char *colon = memchr(line, ':', n), *v;
	size_t k, vn, used = strlen(label);
	int is_label;

	if (colon == NULL)
		return;
	v = colon + 1;
	vn = n - (size_t)(v - line);
	if (vn > 0 && *v == ' ')
		v++, vn--;
	for (k = (size_t)(colon - line); k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t'); k--)
		;
	if (!wanted(line, k, &is_label))
		return;
	buf_add(id, line, n);
	buf_addch(id, '\n');
	if (is_label && used + 2 < label_n)
		snprintf(label + used, label_n - used, "%s%.*s", used ? " " : "", (int)vn, v);
}

/* The head of the cpuinfo file (KACHE_TEST_CPUINFO in test builds): up to the
 * first blank line, at most CPUINFO_HEAD. 0 / -1. */
static int
read_head(struct buf *b)
{
	const char *path = "/proc/cpuinfo";
	ssize_t got;
	int fd;

#ifdef KACHE_FAULT_INJECTION
	if (getenv("KACHE_TEST_CPUINFO") != NULL)
		path = getenv("KACHE_TEST_CPUINFO");
#endif
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	buf_grow(b, CPUINFO_HEAD);
	while (b->len + CPUINFO_READ <= CPUINFO_HEAD &&
	    (got = read(fd, b->p + b->len, CPUINFO_READ)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		b->len += (size_t)got;
		if (memmem(b->p, b->len, "\n\n", 2) != NULL)
			break;
	}
	close(fd);
	return b->len > 0 ? 0 : -1;
}

int
hostcpu_id(struct buf *id, char *label, size_t label_n)
{
	struct buf head;
	const char *p, *end, *nl;

	label[0] = '\0';
	buf_init(&head);
	if (read_head(&head) < 0) {
		buf_free(&head);
		return -1;
	}
	end = head.p + head.len;
	for (p = head.p; p < end && *p != '\n'; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		take_line(p, (size_t)(nl - p), id, label, label_n);
	}
	buf_free(&head);
	return id->len > 0 ? 0 : -1;
}

int
hostcpu_hash(struct hash_ctx *c, const char *what, const char *flag, char *label, size_t label_n,
    unsigned char digest[HASH_LEN])
{
	char none[2];
	struct buf id;
	int rc;

	buf_init(&id);
	rc = hostcpu_id(&id, label ? label : none, label ? label_n : sizeof none);
	if (rc < 0) {
		log_warnx("%s: %s, and the host CPU cannot be read from /proc/cpuinfo: not cached",
		    what, flag);
	} else {
		hash_str(c, "host-cpu");
		hash_update(c, id.p, id.len);
		if (label != NULL)
			hash_buffer(id.p, id.len, digest);
	}
	buf_free(&id);
	return rc;
}
