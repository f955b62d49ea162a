/* Files: whole reads, atomic writes (temp + rename), directories, clones. */
#ifndef KACHE_FS_H
#define KACHE_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/util.h"

/* Opens a file kache keeps (in the store or a target dir) without following a
 * symlink and without blocking (a FIFO or a device never hangs the caller): the fd
 * (O_CLOEXEC) only when path is a regular file. -1 otherwise: errno ENOENT when
 * absent, ELOOP for a symlink, EINVAL for any other kind of file. mode is used
 * with O_CREAT. */
int fs_open_regular(const char *path, int flags, mode_t mode);
/* The same for an input (a source file): symlinks are followed, as cargo
 * workspaces use them, but it still never blocks and yields regular files only. */
int fs_open_input(const char *path);
/* Why path (a file the user named: a CA bundle) is not a regular file this
 * process can read, symlinks followed; NULL when it is. */
const char *fs_unreadable_why(const char *path);
/* Reads a whole regular file into b (appending), as fs_open_regular opens it.
 * Fails past max bytes. 0 / -1 (errno set). */
int fs_read_file(const char *path, struct buf *b, size_t max);
/* The same from an open descriptor, from its offset to the end; fd stays open. */
int fs_read_fd(int fd, struct buf *b, size_t max);
/* Writes data under path via a temporary in the same directory and rename(2).
 * Nothing half-written is ever visible under path. */
int fs_write_atomic(const char *path, const void *data, size_t n, mode_t mode);
/* Creates path, which must not exist (O_EXCL, no symlink followed), with data:
 * one file made, no temporary and no rename. A reader may see it half-written:
 * only for a file nothing trusts before its writer has exited well (a hit's
 * dep-info: cargo reads it after the compiler's success). Removed on failure. */
int fs_write_new(const char *path, const void *data, size_t n, mode_t mode);
/* fs_write_new with O_DIRECT: the bytes go to the device without passing
 * through the page cache (written whole blocks at a time from an aligned
 * buffer; the last n % 4096 bytes through the cache, which reads nothing back
 * from the disk). -1 with errno EINVAL, nothing made, where
 * the filesystem or device refuses direct I/O: write it the usual way then.
 * Removed on any other failure. */
int fs_write_new_direct(const char *path, const void *data, size_t n, mode_t mode);
/* Asks the kernel to read path's bytes into the page cache, without waiting
 * for them (posix_fadvise WILLNEED): a file written past the cache that will
 * soon be run or read. Best effort: nothing is said when it cannot. */
void fs_read_ahead(const char *path);
/* Writes all of data to fd, retrying short writes. */
int fs_write_all(int fd, const void *data, size_t n);
/* Reads fd to its end into buf, at most cap bytes; *n: how many. -1 with
 * errno (EFBIG: more than cap bytes were there). fs_read_fd's twin for a
 * buffer the caller owns. */
int fs_read_into(int fd, void *buf, size_t cap, size_t *n);
/* Creates dir and its parents with mode (existing ones are fine). */
int fs_mkdir_p(const char *dir, mode_t mode);
/* A unique temporary name beside path: "<dir>/.<base>.tmp.<pid>.<n>". */
char *fs_tmp_beside(const char *path);
/* Copies src to dst's temporary and renames it over dst. Tries a reflink
 * (FICLONE) first, then copy_file_range, then read/write. The result has mode. */
int fs_copy_atomic(const char *src, const char *dst, mode_t mode);
/* The process's umask, read once: from /proc/self/status (umask(2) cannot
 * read it without setting it, for a moment, under other threads that create
 * files); where /proc is not mounted, by umask(2). */
mode_t fs_umask(void);
/* Same, into an open destination fd. *cloned says whether a reflink worked. */
int fs_clone_or_copy_fd(int in, int out, int *cloned);
/* Removes a tree; missing is fine. */
int fs_remove_tree(const char *path);
/* Takes an exclusive flock on fd, trying again every poll_ms until deadline
 * (clock_ms; a deadline already past: one try). 0 taken; -2 another holder
 * kept it to the deadline; -1 flock failed otherwise (errno says why). */
int fs_flock_wait(int fd, int64_t deadline, int poll_ms);
/* Total size of regular files under a directory. */
uint64_t fs_tree_size(const char *path);

#endif
