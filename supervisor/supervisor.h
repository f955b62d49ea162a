/* The supervisor: one per store. It forks and execs its own binary with a
 * role argument for each worker, reaps and restarts them with back-off, owns
 * the ROUTER socket wrappers and the CLI talk to, and the upload/fetch job
 * queues. See docs/supervisor.md. */
#ifndef KACHE_SUPERVISOR_H
#define KACHE_SUPERVISOR_H

#include <stdint.h>

#include "proto/msg.h"

struct config;

struct supervisor;

/* A request handler for a message type the supervisor does not serve itself
 * (index/ plugs its stats, gc and list requests in here). It fills rep (a
 * reply message, already msg_init'ed as MSG_ERROR with the request id) and
 * returns 0, or -1 to fall through to the built-in handling. */
typedef int (*supervisor_handler)(void *arg, const struct msg *req, struct msg *rep);
/* A periodic callback run from the main loop (index/ ingests the wrappers'
 * journal and runs gc from here). It must return quickly. */
typedef void (*supervisor_tick)(void *arg, int64_t now_ms);

/* 0, or -1 when the table is full or type is already served. */
int supervisor_add_handler(struct supervisor *s, uint32_t type, supervisor_handler fn, void *arg);
int supervisor_add_tick(struct supervisor *s, int64_t interval_ms, supervisor_tick fn, void *arg);
/* Runs fn(arg) when the supervisor stops (after the workers, before the
 * sockets close), in the reverse order of registration. */
int supervisor_add_exit(struct supervisor *s, void (*fn)(void *arg), void *arg);
/* The current configuration (replaced on reload: do not keep the pointer). */
const struct config *supervisor_config(const struct supervisor *s);
/* Publishes an event (enum msg_event) on the PUB socket for live monitors. */
void supervisor_publish(struct supervisor *s, int event, const char *key);
/* The store directory this supervisor serves. */
const char *supervisor_kache_dir(const struct supervisor *s);

/* `kached supervisor <start|stop|restart|run|status|log|install|uninstall|scale>` */
int supervisor_cmd(int argc, char **argv);
/* `kache flush [--timeout DURATION]`: upload every intent now (docs/cli.md). */
int supervisor_flush_cmd(int argc, char **argv);
/* `kached __worker <role> <index>`: the hidden command a worker is exec'd as. */
int supervisor_worker_cmd(int argc, char **argv);

#endif
