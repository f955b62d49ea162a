/* Commands over the index (index/): stats, gc, list, purge, verify. */
#ifndef KACHE_CLI_INDEX_CMDS_H
#define KACHE_CLI_INDEX_CMDS_H

int cmd_stats(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif
