/* The supervisor: one per store. It forks and execs its own binary with a
 * role argument for each worker (uploaders, fetchers, the indexer), reaps and
 * restarts them with back-off, owns the ROUTER socket wrappers and the CLI
 * talk to, the upload/fetch job queues, and routes the CLI's index requests to
 * the indexer. It opens no index itself. See docs/supervisor.md. */
#ifndef KACHE_SUPERVISOR_H
#define KACHE_SUPERVISOR_H

/* `kached supervisor <start|stop|restart|run|status|log|install|uninstall|scale>` */
int supervisor_cmd(int argc, char **argv);
/* `kache flush [--timeout DURATION]`: upload every intent now (docs/cli.md). */
int supervisor_flush_cmd(int argc, char **argv);
/* `kache save-manifest`: the store's build sessions become session manifests
 * in the remote (docs/cli.md). */
int supervisor_save_manifest_cmd(int argc, char **argv);
/* `kache prefetch [...]`: a build session's prefetch before any cargo
 * command (docs/cli.md). */
int supervisor_prefetch_cmd(int argc, char **argv);
/* `kached __worker <role> <index>`: the hidden command a worker is exec'd as. */
int supervisor_worker_cmd(int argc, char **argv);
/* `kached __zygote`: the hidden command the supervisor execs once, with a
 * socket as fd 3, to fork its workers from (supervisor/sup_zygote.c). */
int supervisor_zygote_cmd(int argc, char **argv);

#endif
