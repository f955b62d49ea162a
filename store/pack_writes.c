/* How an import writes its blobs: through the page cache or straight to the
 * device, chosen by measuring both (store/pack.h, cache.import_writes). One
 * choice per process, shared by the prefetch pool's threads under a mutex:
 * a write takes milliseconds, the lock a few instructions. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "store/pack.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct pack_writes_state st;
static uint64_t since_other; /* bytes of large blobs written the best way since the
                              * other way last had one */

static uint64_t runq_wait_us(void);
static uint64_t write_us(int64_t t0, uint64_t wait0);

int
pack_writes_parse(const char *s, enum pack_writes *out)
{
	static const char *const names[] = { "auto", "buffered", "direct" };

	for (int i = 0; i < 3; i++)
		if (s != NULL && strcmp(s, names[i]) == 0) {
			*out = (enum pack_writes)i;
			return 0;
		}
	return -1;
}

const char *
pack_writes_name(enum pack_writes w)
{
	return w == PACK_WRITES_DIRECT ? "direct" : w == PACK_WRITES_BUFFERED ? "buffered" : "auto";
}

void
pack_writes_set(enum pack_writes how)
{
	pthread_mutex_lock(&mu);
	st.how = how;
	pthread_mutex_unlock(&mu);
	pack_writes_reprobe();
}

void
pack_writes_reprobe(void)
{
	pthread_mutex_lock(&mu);
	memset(st.us_per_mib, 0, sizeof st.us_per_mib);
	since_other = 0;
	pthread_mutex_unlock(&mu);
}

void
pack_writes_state(struct pack_writes_state *out)
{
	pthread_mutex_lock(&mu);
	*out = st;
	pthread_mutex_unlock(&mu);
}

/* The way auto believes in: direct until measured otherwise (first of all,
 * since it is the likely winner), then by the slack; a way not measured yet
 * is tried as soon as a blob fits the exploration share. */
enum store_put_how
pack_writes_pick(size_t n)
{
	enum store_put_how how, best, other;
	const uint64_t *a = st.us_per_mib;

	pthread_mutex_lock(&mu);
	if (st.how == PACK_WRITES_BUFFERED || st.direct_refused)
		how = STORE_PUT_BUFFERED;
	else if (st.how == PACK_WRITES_DIRECT)
		how = STORE_PUT_DIRECT; /* whatever the size: as asked */
	else if (n < PACK_WRITES_MIN)
		how = STORE_PUT_BUFFERED;
	else {
		best = a[STORE_PUT_DIRECT] == 0 || a[STORE_PUT_BUFFERED] == 0 ||
		        a[STORE_PUT_DIRECT] <= a[STORE_PUT_BUFFERED] * PACK_WRITES_DIRECT_SLACK ?
		    STORE_PUT_DIRECT :
		    STORE_PUT_BUFFERED;
		other = best == STORE_PUT_DIRECT ? STORE_PUT_BUFFERED : STORE_PUT_DIRECT;
		if (a[best] != 0 && (uint64_t)n * PACK_WRITES_EXPLORE_SHARE <= since_other) {
			how = other;
			since_other = 0;
		} else {
			how = best;
			since_other += n;
		}
	}
	pthread_mutex_unlock(&mu);
	return how;
}

void
pack_writes_note(enum store_put_how how, uint64_t n, uint64_t us)
{
	uint64_t x, *avg = &st.us_per_mib[how];

	pthread_mutex_lock(&mu);
	st.bytes[how] += n;
	if (n >= PACK_WRITES_MIN && us > 0 && st.how == PACK_WRITES_AUTO) {
		x = us * (1u << 20) / n;
		*avg = *avg == 0 ? x : (*avg * 3 + x) / 4;
		if (*avg == 0)
			*avg = 1;
	}
	pthread_mutex_unlock(&mu);
}

/* Microseconds this thread has waited for a core so far (the second field
 * of /proc/thread-self/schedstat); 0 where the kernel does not say. */
static uint64_t
runq_wait_us(void)
{
	char b[96], *end;
	unsigned long long wait;
	int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, b, sizeof b - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	b[n] = '\0';
	(void)strtoull(b, &end, 10); /* the time it ran */
	if (end == b || *end != ' ')
		return 0;
	errno = 0;
	wait = strtoull(end + 1, &end, 10);
	return errno == 0 && (*end == ' ' || *end == '\n') ? wait / 1000 : 0;
}

/* A write's time: its wall time less what the thread spent waiting for a
 * core. A niced import beside a build that fills every core waits long
 * after each direct write's I/O before it runs again; that wait says
 * nothing of the disk. */
static uint64_t
write_us(int64_t t0, uint64_t wait0)
{
	int64_t wall = clock_us() - t0;
	uint64_t waited = runq_wait_us() - wait0;

	return wall > 0 && (uint64_t)wall > waited ? (uint64_t)wall - waited : 1;
}

int
pack_writes_put(struct store *s, const void *data, size_t n, int exec,
    const unsigned char h[HASH_LEN])
{
	enum store_put_how how = pack_writes_pick(n);
	/* st.how changes only in pack_writes_set, before any import thread runs */
	int timed = n >= PACK_WRITES_MIN && st.how == PACK_WRITES_AUTO;
	uint64_t wait0 = timed ? runq_wait_us() : 0;
	int64_t t0 = clock_us();
	int rc = store_blob_put_bytes(s, data, n, exec, h, how);

	if (rc < 0 && how == STORE_PUT_DIRECT && errno == EINVAL) {
		pthread_mutex_lock(&mu);
		if (!st.direct_refused)
			log_info("imports write buffered: %s refuses direct I/O", store_dir(s));
		st.direct_refused = 1;
		pthread_mutex_unlock(&mu);
		how = STORE_PUT_BUFFERED;
		timed = 0;
		rc = store_blob_put_bytes(s, data, n, exec, h, how);
	}
	if (rc == 0)
		pack_writes_note(how, n, timed ? write_us(t0, wait0) : 0);
	return rc;
}
