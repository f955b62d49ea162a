/* libFuzzer target: the journal the index owner ingests (store/journal.c),
 * appended to by any wrapper, so possibly torn or garbage. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

static void on_event(const struct journal_event *ev, void *arg);

/* Strings handed to the index must be terminated inside their arrays. */
static void
on_event(const struct journal_event *ev, void *arg)
{
	size_t *count = arg;

	if (strnlen(ev->crate, sizeof ev->crate) == sizeof ev->crate ||
	    strnlen(ev->reason, sizeof ev->reason) == sizeof ev->reason)
		abort();
	(void)journal_type_name(ev->type);
	(*count)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	size_t count = 0, used;

	used = journal_parse((const char *)data, n, on_event, &count);
	if (used > n)
		abort();
	return 0;
}
