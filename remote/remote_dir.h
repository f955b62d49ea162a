/* Remote backends behind proto/remote.h's remote_ops. */
#ifndef KACHE_REMOTE_DIR_H
#define KACHE_REMOTE_DIR_H

#include <stddef.h>

#include "common/config.h"
#include "proto/remote.h"

/* `[remote] type = "dir"`: a directory (a shared disk, NFS) with the layout of
 * remote/layout.h. NULL with a sentence in err on a configuration error. */
struct remote *remote_dir_open(const struct config *cfg, char *err, size_t errlen);

#endif
