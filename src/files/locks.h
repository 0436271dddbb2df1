/* SPDX-License-Identifier: MIT */
/*
 * File locks (--file-locks): flock(2) locks, POSIX record locks (fcntl
 * F_SETLK, owned by the process) and OFD locks (F_OFD_SETLK, owned by the
 * open file description), dump side and restore side (locks.c).
 *
 * Found through /proc/PID/fdinfo/FD ("lock:" lines: the locks whose file
 * is that description and whose owner is the process (POSIX) or the
 * description (OFD, flock)), read again only for descriptors whose fdinfo
 * had such lines when the table was listed (procfd.c).
 * Stored in FdTable.locks; taken again by the process itself (injected
 * calls, takeover.c) once it closed its last descriptor of capcr's own.
 */
#ifndef CAPCR_LOCKS_H
#define CAPCR_LOCKS_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/arena.h"
#include "../image/image.h"

/* ---- dump ---- */

struct locks_dump {
	int enabled; /* --file-locks */
};
/* The locks on descriptor fd of process pid (link text path; locked: its
 * fdinfo showed locks)
 * into fdt->locks: its POSIX locks if posix (the first descriptor of its
 * open file description in this process), the description's OFD and
 * flock locks if shared (the first descriptor of it in the image).
 * Without --file-locks, any lock fails the dump, naming it.  0 or -1 with
 * why. */
int locks_dump_fd(struct locks_dump *ld, struct arena *a, Capcr__FdTable *fdt,
		  pid_t pid, int fd, int locked, const char *path, int posix,
		  int shared, char *why, size_t wl);
/* ---- both ---- */

/* "a POSIX write lock on bytes 0-9", "an exclusive flock lock" */
void locks_describe(const Capcr__FileLock *l, char *buf, size_t len);

/* ---- restore ---- */

/* How a call is made by the process being restored itself (so that a
 * POSIX lock it takes is its own): the call's result, or -errno. */
struct locks_caller {
	void *arg;
	/* fcntl(fd, cmd, fl); fl is copied into the process */
	long (*fcntl_lock)(void *arg, int fd, int cmd, const struct flock *fl);
	long (*flock)(void *arg, int fd, int op);
	/* fcntl(fd, F_SETLEASE, type) */
	long (*setlease)(void *arg, int fd, int type);
};

/* Take every lock of fdt again in process pid, which holds every
 * descriptor of fdt and nothing of capcr's any more.  0, or -1 with why
 * naming the lock, the descriptor, the file and, when another process
 * holds a conflicting lock, that process. */
int locks_restore(const Capcr__FdTable *fdt, const Capcr__Files *files,
		  pid_t pid, const struct locks_caller *c, char *why,
		  size_t wl);

#endif
