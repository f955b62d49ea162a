/* Unit tests for workers/prefetch/prefetch_planner.c: kache-planner's answer
 * checked field by field before any candidate is used; an answer with one bad
 * field is refused whole, with a reason naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "workers/prefetch/prefetch_internal.h"

#define K64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int
parse(const char *s, struct prefetch_planner_answer *a, char *why)
{
	return prefetch_planner_parse(s, strlen(s), a, why, 200);
}

static void
test_execute(void **state)
{
	struct prefetch_planner_answer a;
	char why[200];

	(void)state;
	assert_int_equal(parse("{\"disposition\":\"execute\",\"candidates\":[{\"key\":\"" K64
	                       "\",\"crate\":\"serde_json\",\"size\":12,\"order\":0}]}",
	                     &a, why),
	    0);
	assert_int_equal(a.disposition, PREFETCH_PLANNER_EXECUTE);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.p[0].res, K64);
	assert_string_equal(a.p[0].crate, "serde_json");
	assert_int_equal(a.p[0].size, 12);
	prefetch_planner_free(&a);
	assert_int_equal(parse("{\"disposition\":\"use_fallback\"}", &a, why), 0);
	assert_int_equal(a.disposition, PREFETCH_PLANNER_FALLBACK);
	assert_int_equal(parse("{\"disposition\":\"do_nothing\",\"candidates\":[]}", &a, why), 0);
	assert_int_equal(a.disposition, PREFETCH_PLANNER_NOTHING);
	assert_int_equal(a.n, 0);
}

static void
test_bad_fields_refused(void **state)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{ "", "disposition" },
		{ "[1]", "disposition" },
		{ "{\"disposition\":\"maybe\"}", "unknown disposition" },
		{ "{\"disposition\":\"execute\"}", "'candidates'" },
		{ "{\"disposition\":\"execute\",\"candidates\":[{\"key\":\"../../"
		  "etc\",\"crate\":\"a\","
		  "\"size\":1}]}",
		    "candidates[0]: 'key'" },
		{ "{\"disposition\":\"execute\",\"candidates\":[{\"key\":\"" K64
		  "\",\"crate\":\"a\","
		  "\"size\":1},{\"key\":\"" K64 "\",\"crate\":\"a/../b\",\"size\":1}]}",
		    "candidates[1]: 'crate'" },
		{ "{\"disposition\":\"execute\",\"candidates\":[{\"key\":\"" K64
		  "\",\"crate\":\"a\","
		  "\"size\":-1}]}",
		    "'size'" },
		{ "{\"disposition\":\"execute\",\"candidates\":[{\"key\":\"" K64
		  "\",\"crate\":\"a\","
		  "\"size\":\"1\"}]}",
		    "'size'" },
	};
	struct prefetch_planner_answer a;
	char why[200];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_int_equal(parse(bad[i].json, &a, why), -1);
		assert_non_null(strstr(why, bad[i].why));
		assert_null(a.p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_execute),
		cmocka_unit_test(test_bad_fields_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
