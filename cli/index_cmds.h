/* Commands over the index (index/): stats, gc, list, purge, verify. */
#ifndef KACHE_CLI_INDEX_CMDS_H
#define KACHE_CLI_INDEX_CMDS_H

#include <jansson.h>
#include <stddef.h>

int cmd_stats(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_verify(int argc, char **argv);
/* The one line `kache gc` ends with, from index_json_gc's doc, into out. */
void gc_summary(const json_t *doc, char *out, size_t n);

#endif
