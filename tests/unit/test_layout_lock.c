/* Unit tests for remote/layout_lock.c: the import lock of a result is one
 * byte of tmp/import.locks, exclusive across open files (so across the
 * threads of one process too), free again when its holder closes, and never
 * a file per result. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/path.h"
#include "common/util.h"
#include "remote/layout.h"

static const char res_a[] = "aa00000000000000000000000000000000000000000000000000000000000001";
static const char res_b[] = "bb00000000000000000000000000000000000000000000000000000000000002";

static int
setup(void **state)
{
	char tmpl[] = "/tmp/kache-layout-lock-XXXXXX";
	char *dir = mkdtemp(tmpl) ? xstrdup(tmpl) : NULL;
	char *tmp;

	if (dir == NULL)
		return -1;
	tmp = path_join(dir, "tmp");
	mkdir(tmp, 0700);
	free(tmp);
	*state = dir;
	return 0;
}

static int
teardown(void **state)
{
	fs_remove_tree(*state);
	free(*state);
	return 0;
}

/* Entries of dir/tmp. */
static int
tmp_entries(const char *dir)
{
	char *tmp = path_join(dir, "tmp");
	DIR *d = opendir(tmp);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	free(tmp);
	return n;
}

static void
test_one_holder_per_result(void **state)
{
	const char *dir = *state;
	int a, a2, b;

	assert_int_equal(layout_lock_take(dir, res_a, clock_ms(), &a), 0);
	assert_true(a >= 0);
	/* a second open of the same file (another thread would do the same) waits, then gives up */
	assert_int_equal(layout_lock_take(dir, res_a, clock_ms() + 30, &a2), 1);
	assert_int_equal(a2, -1);
	/* another result is not held back */
	assert_int_equal(layout_lock_take(dir, res_b, clock_ms(), &b), 0);
	layout_lock_release(a);
	assert_int_equal(layout_lock_take(dir, res_a, clock_ms(), &a2), 0);
	layout_lock_release(a2);
	layout_lock_release(b);
	assert_int_equal(tmp_entries(dir), 1); /* import.locks, whatever the results */
}

static void
test_not_a_key_is_an_error(void **state)
{
	int fd;

	assert_int_equal(layout_lock_take(*state, "zz", clock_ms(), &fd), -1);
	assert_int_equal(fd, -1);
	layout_lock_release(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_holder_per_result, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_key_is_an_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
