/* libFuzzer target: a rustc command line as cargo (or anyone setting
 * RUSTC_WRAPPER) passes it (wrapper/args.c). The input is the arguments
 * separated by NUL bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wrapper/wrapper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct rustc_args a;
	struct strv outs;
	char *copy = xmalloc(n + 1), **argv;
	int argc = 0;

	memcpy(copy, data, n);
	copy[n] = '\0';
	argv = xcalloc(n + 2, sizeof *argv);
	for (size_t i = 0; i <= n; i++)
		if (i == 0 || copy[i - 1] == '\0')
			argv[argc++] = copy + i;
	if (argc > 0 && n > 0 && copy[n - 1] == '\0')
		argc--; /* a trailing NUL ends the last argument, it does not start one */
	argv[argc] = NULL;
	memset(&a, 0, sizeof a);
	args_parse(&a, argc, argv);
	strv_init(&outs);
	if (a.pass_reason == NULL)
		args_expected_outputs(&a, &outs);
	for (size_t i = 0; i < outs.n; i++)
		if (strchr(outs.v[i], '/') != NULL)
			abort(); /* a name we would unlink outside the out-dir */
	strv_free(&outs);
	args_free(&a);
	free(argv);
	free(copy);
	return 0;
}
