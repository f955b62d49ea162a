/* What a compile's proc macros read, as the tracing library loaded into rustc
 * writes it down (preload/trace.c) and the wrapper reads it back
 * (wrapper/trace.c).
 *
 * rustc's dep-info names the files and variables a crate's source asks for
 * (include_str!, env!) and those a proc macro declares (nightly's tracked_*),
 * never what a proc macro reads by itself with std::fs or std::env. A miss
 * that may load a proc macro (any compile with an --extern or a -L) runs rustc
 * with this library preloaded: calls of open, opendir, getenv, exec,
 * posix_spawn and connect made from inside a shared object loaded from one of
 * the compile's crate directories (the caller's return address lies in it:
 * a proc macro) are written to the trace file, one record each: a kind byte,
 * the path or name, a NUL. Calls from rustc itself, from its other libraries
 * and from any other process (the linker) are not. */
#ifndef KACHE_PRELOAD_TRACE_H
#define KACHE_PRELOAD_TRACE_H

/* The descriptor the records are appended to, a file the wrapper opened and
 * rustc inherits: "FD:DEV:INO", the number and the file's device and inode,
 * so that a process of rustc's tree (rustup's proxy, the toolchain's rustc
 * it execs, a script in RUSTC that runs rustc as its child, the linker) writes
 * only to that very file, never to whatever else took the number. */
#define TRACE_ENV_FD "KACHE_TRACE_FD"
/* The directories rustc loads crates from, one per line: each --extern
 * file's and each -L directory. A proc macro is loaded from one of them
 * (named by --extern, or found there through a crate that re-exports it:
 * serde's derive, tokio's main); rustc's own libraries, the system's and the
 * toolchain's never are. */
#define TRACE_ENV_DIRS "KACHE_TRACE_DIRS"

enum trace_kind {
	TRACE_LOADED = 'L',     /* the library is active in the traced process (no path) */
	TRACE_READ = 'R',       /* a file opened for reading */
	TRACE_ABSENT = 'A',     /* a file or directory looked for and not found */
	TRACE_DIR = 'D',        /* a directory listed */
	TRACE_ENV = 'E',        /* a variable read */
	TRACE_WRITE = 'W',      /* a file opened for writing: a side effect a hit does not redo */
	TRACE_EXEC = 'X',       /* a program run: what it answers is not an input kache can key */
	TRACE_CONNECT = 'N',    /* a socket connected (a database): neither */
	TRACE_UNREADABLE = '?', /* a call it could not write down (a path too long, a
	                           directory descriptor it could not name) */
};

#endif
