#include "proto/zio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "common/log.h"
#include "proto/paths.h"

int
zio_recv(void *sock, struct zio_frames *f)
{
	zmq_msg_t part;
	int more = 1;
	size_t ml = sizeof more;

	memset(f, 0, sizeof *f);
	while (more) {
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&part);
			return f->n ? 0 : -1;
		}
		if (f->n < ZIO_MAX_FRAMES) {
			size_t n = zmq_msg_size(&part);
			if (n > MSG_MAX_SIZE)
				f->truncated = 1, n = 0;
			f->data[f->n] = xmalloc(n + 1);
			memcpy(f->data[f->n], zmq_msg_data(&part), n);
			f->len[f->n] = n;
		}
		f->n++;
		zmq_msg_close(&part);
		more = 0;
		zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
	}
	return 0;
}

void
zio_frames_free(struct zio_frames *f)
{
	for (int i = 0; i < ZIO_MAX_FRAMES; i++)
		free(f->data[i]);
	memset(f, 0, sizeof *f);
}

int
zio_send(void *sock, const void *ident, size_t identlen, const struct msg *m)
{
	struct buf b;
	int rc = -1;

	buf_init(&b);
	if (msg_encode(m, &b) == -1) {
		log_warnx("cannot encode %s", msg_type_name(m->type));
		goto out;
	}
	if (ident != NULL && zmq_send(sock, ident, identlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
		goto out;
	if (zmq_send(sock, b.p, b.len, ZMQ_DONTWAIT) == -1)
		goto out;
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

void *
zio_bind(void *ctx, int type, const char *endpoint)
{
	int linger = 0;
	int64_t maxsize = MSG_MAX_SIZE;
	void *s = zmq_socket(ctx, type);

	if (s == NULL) {
		log_warnx("zmq_socket: %s", zmq_strerror(zmq_errno()));
		return NULL;
	}
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsize, sizeof maxsize);
	if (unlink(proto_endpoint_file(endpoint)) == -1 && errno != ENOENT)
		log_warn("unlink stale %s", endpoint);
	if (zmq_bind(s, endpoint) == -1) {
		log_warnx("bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
		zmq_close(s);
		return NULL;
	}
	return s;
}
