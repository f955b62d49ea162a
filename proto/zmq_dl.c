#include "proto/zmq_dl.h"

#include <dlfcn.h>
#include <string.h>

#include "common/log.h"

static struct zmq_dl zdl;
static int zdl_state; /* 0: not tried, 1: loaded, -1: failed */

static int resolve(void *h, const char *name, void *slot);

/* dlsym into a function-pointer slot; memcpy avoids the object/function cast. */
static int
resolve(void *h, const char *name, void *slot)
{
	void *f = dlsym(h, name);

	if (f == NULL) {
		log_warnx("libzmq.so.5 lacks %s", name);
		return -1;
	}
	memcpy(slot, &f, sizeof f);
	return 0;
}

const struct zmq_dl *
zmq_dl_load(void)
{
	void *h;

	if (zdl_state != 0)
		return zdl_state == 1 ? &zdl : NULL;
	zdl_state = -1;
	if ((h = dlopen("libzmq.so.5", RTLD_NOW | RTLD_LOCAL)) == NULL) {
		log_warnx("cannot load libzmq.so.5: %s", dlerror());
		return NULL;
	}
	if (resolve(h, "zmq_ctx_new", &zdl.ctx_new) || resolve(h, "zmq_ctx_term", &zdl.ctx_term) ||
	    resolve(h, "zmq_socket", &zdl.socket) || resolve(h, "zmq_close", &zdl.close) ||
	    resolve(h, "zmq_setsockopt", &zdl.setsockopt) ||
	    resolve(h, "zmq_getsockopt", &zdl.getsockopt) ||
	    resolve(h, "zmq_connect", &zdl.connect) || resolve(h, "zmq_send", &zdl.send) ||
	    resolve(h, "zmq_recv", &zdl.recv) || resolve(h, "zmq_poll", &zdl.poll) ||
	    resolve(h, "zmq_errno", &zdl.errno_) || resolve(h, "zmq_strerror", &zdl.strerror))
		return NULL; /* the handle stays: harmless, and dlclose could race */
	zdl_state = 1;
	return &zdl;
}
