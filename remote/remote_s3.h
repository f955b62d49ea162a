/* `[remote] type = "s3"`: the layout of remote/layout.h in an S3 bucket (AWS,
 * MinIO, Ceph, R2, ...), through s3/. */
#ifndef KACHE_REMOTE_S3_H
#define KACHE_REMOTE_S3_H

#include <stddef.h>

#include "common/config.h"
#include "proto/remote.h"

/* NULL with one sentence of advice in err on a configuration error. */
struct remote *remote_s3_open(const struct config *cfg, char *err, size_t errlen);

#endif
