/* `kache report` (one build session's story from the journal) and
 * `kache why-miss` (why a crate's last compile missed), read from the store
 * alone: no supervisor needed. */
#ifndef KACHE_CLI_REPORT_H
#define KACHE_CLI_REPORT_H

int cmd_report(int argc, char **argv);
int cmd_why_miss(int argc, char **argv);

#endif
