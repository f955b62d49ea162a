/* Unit tests for workers/prefetch/prefetch_planner.c: kache-planner's answer
 * checked field by field before any candidate is used; an answer with one bad
 * field is refused whole, with a reason naming it. And prefetch_plan.c's
 * choice of the bundle parts worth reading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
	assert_string_equal(a.p[0].part, "");
	prefetch_planner_free(&a);
	/* a candidate's bundle part, and one that names none (null) */
	assert_int_equal(parse("{\"disposition\":\"execute\",\"candidates\":[{\"key\":\"" K64
	                       "\",\"crate\":\"a\",\"size\":1,\"part\":\"" K64 "\"},{\"key\":\"" K64
	                       "\",\"crate\":\"b\",\"size\":1,\"part\":null}]}",
	                     &a, why),
	    0);
	assert_string_equal(a.p[0].part, K64);
	assert_string_equal(a.p[1].part, "");
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
		{ "{\"disposition\":\"execute\",\"candidates\":[{\"key\":\"" K64
		  "\",\"crate\":\"a\","
		  "\"size\":1,\"part\":\"../../etc\"}]}",
		    "candidates[0]: 'part'" },
		{ "{\"disposition\":\"execute\",\"candidates\":[{\"key\":\"" K64
		  "\",\"crate\":\"a\","
		  "\"size\":1,\"part\":7}]}",
		    "candidates[0]: 'part'" },
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

#define P0 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define P1 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

/* A plan of the keys of s named in take (indices), each with its part. */
static void
plan_of(struct prefetch_plan *plan, const struct remote_session *s, const int *take, size_t n)
{
	memset(plan, 0, sizeof *plan);
	plan->p = calloc(n, sizeof *plan->p);
	for (size_t i = 0; i < n; i++) {
		const struct remote_session_key *k = &s->k[take[i]];

		snprintf(plan->p[i].crate, sizeof plan->p[i].crate, "%s", k->crate);
		snprintf(plan->p[i].res, sizeof plan->p[i].res, "%s", k->res);
		if (k->part >= 0)
			snprintf(plan->p[i].part, sizeof plan->p[i].part, "%s", s->parts[k->part]);
	}
	plan->n = n;
}

static void
test_thin_parts(void **state)
{
	struct remote_session s = { 0 };
	struct prefetch_plan plan;
	char res[HASH_HEX_LEN + 1];
	static const int two_of_five[] = { 0, 3, 5 }, three_of_five[] = { 0, 1, 4 };

	(void)state;
	for (int i = 0; i < 6; i++) {
		snprintf(res, sizeof res, "%063d%d", 0, i);
		remote_session_add(&s, "c", res, 10, NULL);
		s.k[i].part = remote_session_part_add(&s, i < 5 ? P0 : P1);
	}
	/* two of P0's five planned: P0 not read; P1's one kept (its one pack) */
	plan_of(&plan, &s, two_of_five, 3);
	prefetch_plan_thin_parts(&plan, 0, &s);
	assert_string_equal(plan.p[0].part, "");
	assert_string_equal(plan.p[1].part, "");
	assert_string_equal(plan.p[2].part, P1);
	prefetch_plan_free(&plan);
	/* three of five: worth the part */
	plan_of(&plan, &s, three_of_five, 3);
	prefetch_plan_thin_parts(&plan, 0, &s);
	for (int i = 0; i < 3; i++)
		assert_string_equal(plan.p[i].part, P0);
	/* items before `from` are another source's: left alone */
	plan.p[0].part[0] = '\0';
	snprintf(plan.p[0].part, sizeof plan.p[0].part, "%s", P1);
	prefetch_plan_thin_parts(&plan, 1, &s);
	assert_string_equal(plan.p[0].part, P1);
	prefetch_plan_free(&plan);
	remote_session_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thin_parts),
		cmocka_unit_test(test_execute),
		cmocka_unit_test(test_bad_fields_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
