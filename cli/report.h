/* `kache report` (one build session's story from the journal) and
 * `kache why-miss` (why a crate's last compile missed), read from the store
 * alone: no supervisor needed. */
#ifndef KACHE_CLI_REPORT_H
#define KACHE_CLI_REPORT_H

#include <jansson.h>

#include "store/journal.h"

int cmd_report(int argc, char **argv);
/* Follows prefetch's imports through journal events in order, as the index
 * does: a result a prefetch imported (kept in pre, an object by hex key) makes
 * its first local hit "prefetched". For a hit: "local", "prefetched" or
 * "remote"; NULL for anything else (an import is noted in pre). */
const char *report_hit_kind(json_t *pre, const struct journal_event *ev);
int cmd_why_miss(int argc, char **argv);

#endif
