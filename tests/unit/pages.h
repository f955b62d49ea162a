/* What the page cache holds of a file, for the unit tests that check which
 * writes pass it by (O_DIRECT) and which reads are made ahead. */
#ifndef KACHE_TESTS_UNIT_PAGES_H
#define KACHE_TESTS_UNIT_PAGES_H

#include <stddef.h>

/* Pages of the first n bytes of the file at path in the page cache, or -1
 * when it cannot tell. */
long resident_pages(const char *path, size_t n);

#endif
