/* libFuzzer target: XML bodies from an S3 endpoint (s3/s3_xml.c): list pages
 * and error documents, from a server kache does not control. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static const char *const names[] = { "Code", "Message", "UploadId", "ETag", "Key" };
	struct s3_list_page page;

	memset(&page, 0, sizeof page);
	if (s3_xml_parse_list((const char *)data, n, &page) == 0)
		for (size_t i = 0; i < page.n; i++)
			if (page.obj[i].key == NULL || page.obj[i].mtime_ms < 0 ||
			    page.obj[i].mtime_ms > 253402300799999LL)
				abort();
	s3_list_page_clear(&page);
	{
		int64_t ms;

		/* a time is either refused or within 1970..9999 */
		if (s3_xml_parse_time((const char *)data, n, &ms) == 0 &&
		    (ms < 0 || ms > 253402300799999LL))
			abort();
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		free(s3_xml_text((const char *)data, n, names[i]));
	return 0;
}
