#include "pages.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

long
resident_pages(const char *path, size_t n)
{
	long page = sysconf(_SC_PAGESIZE), count = 0;
	size_t pages = (n + (size_t)page - 1) / (size_t)page;
	unsigned char *vec = malloc(pages + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *m = fd < 0 || n == 0 ? MAP_FAILED : mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);

	if (vec == NULL || m == MAP_FAILED || mincore(m, n, vec) < 0)
		count = -1;
	for (size_t i = 0; count >= 0 && i < pages; i++)
		count += vec[i] & 1;
	if (m != MAP_FAILED)
		munmap(m, n);
	if (fd >= 0)
		close(fd);
	free(vec);
	return count;
}
