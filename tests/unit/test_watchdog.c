/* Unit tests for supervisor/sup_watchdog.c's decision: the supervisor is
 * ended only after limit ms of on-time ticks without a turn of its loop; a
 * tick seconds late (the process was frozen: SIGSTOP, a debugger) starts the
 * count again, and any turn of the loop does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "supervisor/sup_internal.h"

static void
test_a_loop_standing_still_is_ended_after_the_limit(void **state)
{
	struct sup_watch w = { 3000, 0, 7, 0 };

	(void)state;
	assert_int_equal(sup_watchdog_step(&w, 1000, 7), 0);
	assert_int_equal(sup_watchdog_step(&w, 2001, 7), 0);
	assert_int_equal(sup_watchdog_step(&w, 3002, 7), 1);
}

static void
test_a_turn_of_the_loop_starts_the_count_again(void **state)
{
	struct sup_watch w = { 3000, 0, 7, 0 };

	(void)state;
	assert_int_equal(sup_watchdog_step(&w, 1000, 7), 0);
	assert_int_equal(sup_watchdog_step(&w, 2000, 7), 0);
	assert_int_equal(sup_watchdog_step(&w, 3000, 8), 0); /* it went round */
	assert_int_equal(sup_watchdog_step(&w, 4000, 8), 0);
	assert_int_equal(sup_watchdog_step(&w, 5000, 8), 0);
	assert_int_equal(sup_watchdog_step(&w, 6000, 8), 1);
}

static void
test_the_seconds_a_frozen_process_slept_do_not_count(void **state)
{
	struct sup_watch w = { 3000, 0, 7, 0 };

	(void)state;
	assert_int_equal(sup_watchdog_step(&w, 1000, 7), 0);
	/* stopped for 60 s; on SIGCONT the watchdog may run before the loop */
	assert_int_equal(sup_watchdog_step(&w, 61000, 7), 0);
	assert_int_equal(w.still, 0);
	/* the loop then really stands still: ended after the limit again */
	assert_int_equal(sup_watchdog_step(&w, 62000, 7), 0);
	assert_int_equal(sup_watchdog_step(&w, 63000, 7), 0);
	assert_int_equal(sup_watchdog_step(&w, 64000, 7), 1);
}

static void
test_a_limit_of_zero_never_ends_it(void **state)
{
	struct sup_watch w = { 0, 0, 7, 0 };

	(void)state;
	for (int64_t t = 1000; t <= 600000; t += 1000)
		assert_int_equal(sup_watchdog_step(&w, t, 7), 0);
	w.limit = 2000; /* a reload turned it on: counted from then */
	assert_int_equal(sup_watchdog_step(&w, 601000, 7), 0);
	assert_int_equal(sup_watchdog_step(&w, 602000, 7), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_loop_standing_still_is_ended_after_the_limit),
		cmocka_unit_test(test_a_turn_of_the_loop_starts_the_count_again),
		cmocka_unit_test(test_the_seconds_a_frozen_process_slept_do_not_count),
		cmocka_unit_test(test_a_limit_of_zero_never_ends_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
