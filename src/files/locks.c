/* SPDX-License-Identifier: MIT */
/*
 * File locks: flock(2), POSIX record locks (F_SETLK) and OFD locks
 * (F_OFD_SETLK), found at the dump and taken again at restore
 * (--file-locks; without it a dump of a process holding one fails, as
 * CRIU's does).  See locks.h.
 *
 * Where they are found.  The kernel shows a lock in
 * /proc/PID/fdinfo/FD when the lock's file is that open file description
 * and its owner is either the process's descriptor table (POSIX) or the
 * description itself (OFD, flock): exactly the locks that descriptor
 * carries, with their ranges, and POSIX locks with the PID that owns them.
 * A POSIX lock's file is always a description open in its owner (closing
 * any descriptor of the file drops the lock), so reading the fdinfo of
 * every descriptor finds them all.  /proc/locks is not read at the dump:
 * reading it takes the kernel's global file-lock rwsem for writing, an RCU
 * grace period (10 ms measured here) spent while the tree is frozen.
 *
 * Where they go.  FdTable.locks of the process: a POSIX lock in that of
 * its owner, on the first descriptor of the description it was taken
 * through; an OFD or flock lock once for the whole image, in that of the
 * first process holding the description.
 *
 * How they come back.  A POSIX lock belongs to the descriptor table of the
 * process that takes it and goes as soon as that process closes ANY
 * descriptor of the same file.  The restored process holds, until the end
 * of its takeover, capcr's service descriptors: the files its areas map
 * (a database that maps the file it locks, as SQLite's WAL index) among
 * them.  So the locks are taken last, by the process itself (injected
 * fcntl and flock calls, takeover.c), after those are closed and before
 * it runs an instruction of its own: the POSIX locks are its own, with its
 * PID, and nothing closes a descriptor after them.
 */
#define _GNU_SOURCE
#include "locks.h"
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

/* One line of /proc/locks or a "lock:" line of fdinfo, without its
 * prefix: "1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 0 EOF". */
struct lk_line {
	int kind; /* CAPCR__LOCK_KIND__*, or -1: one capcr cannot take */
	char name[16]; /* the kernel's word for the kind: POSIX, LEASE... */
	int waiter; /* "->": a request blocked on a lock, not a lock */
	int type; /* F_RDLCK, F_WRLCK, or -1 */
	pid_t pid;
	uint64_t ino;
	int64_t start, end; /* end -1: EOF */
};

static int parse_line(const char *s, struct lk_line *l)
{
	char copy[512], *save = NULL, *tok[10];
	int n = 0;

	snprintf(copy, sizeof(copy), "%s", s);
	for (char *t = strtok_r(copy, " \t\n", &save); t && n < 10;
	     t = strtok_r(NULL, " \t\n", &save))
		tok[n++] = t;
	memset(l, 0, sizeof(*l));
	if (n < 1)
		return -1;
	int i = 1; /* tok[0] is "N:" */
	if (i < n && !strcmp(tok[i], "->")) {
		l->waiter = 1;
		i++;
	}
	if (n - i < 7)
		return -1;
	snprintf(l->name, sizeof(l->name), "%s", tok[i]);
	l->kind = !strcmp(tok[i], "POSIX")  ? CAPCR__LOCK_KIND__LOCK_POSIX :
		  !strcmp(tok[i], "OFDLCK") ? CAPCR__LOCK_KIND__LOCK_OFD :
		  !strcmp(tok[i], "FLOCK")  ? CAPCR__LOCK_KIND__LOCK_FLOCK :
		  !strcmp(tok[i], "LEASE")  ? CAPCR__LOCK_KIND__LOCK_LEASE :
					      -1;
	/* Mandatory locks are gone since Linux 5.15; a lock that says
	 * otherwise is one capcr does not know.  A lease is ACTIVE, or
	 * BREAKING/BREAKER while an open of the file waits for it: that
	 * one is on its way out and refused. */
	if (l->kind == CAPCR__LOCK_KIND__LOCK_LEASE) {
		if (strcmp(tok[i + 1], "ACTIVE")) {
			snprintf(l->name, sizeof(l->name), "LEASE %s",
				 tok[i + 1]);
			l->kind = -1;
		}
	} else if (l->kind >= 0 && strcmp(tok[i + 1], "ADVISORY")) {
		l->kind = -1;
	}
	l->type = !strcmp(tok[i + 2], "WRITE") ? F_WRLCK :
		  !strcmp(tok[i + 2], "READ")  ? F_RDLCK :
						 -1;
	l->pid = (pid_t)strtol(tok[i + 3], NULL, 10);
	/* MAJ:MIN:INO, in hex, hex and decimal */
	const char *c = strrchr(tok[i + 4], ':');
	if (!c)
		return -1;
	l->ino = strtoull(c + 1, NULL, 10);
	l->start = strtoll(tok[i + 5], NULL, 10);
	l->end =
		!strcmp(tok[i + 6], "EOF") ? -1 : strtoll(tok[i + 6], NULL, 10);
	return 0;
}

static void describe(int kind, int type, int64_t start, int64_t len, char *buf,
		     size_t n)
{
	const char *t = type == F_WRLCK ? "write" :
			type == F_RDLCK ? "read" :
					  "?";
	char range[80];

	if (kind == CAPCR__LOCK_KIND__LOCK_FLOCK) {
		snprintf(buf, n, "a%s flock lock",
			 type == F_WRLCK ? "n exclusive" : " shared");
		return;
	}
	if (kind == CAPCR__LOCK_KIND__LOCK_LEASE) {
		snprintf(buf, n, "a %s lease", t);
		return;
	}
	if (len == 0)
		snprintf(range, sizeof(range), "bytes %" PRId64 " to the end",
			 start);
	else
		snprintf(range, sizeof(range), "bytes %" PRId64 "-%" PRId64,
			 start, start + len - 1);
	snprintf(buf, n, "%s %s lock on %s",
		 kind == CAPCR__LOCK_KIND__LOCK_OFD ? "an OFD" : "a POSIX", t,
		 range);
}

void locks_describe(const Capcr__FileLock *l, char *buf, size_t len)
{
	describe(l->kind, (int)l->type, l->start, l->len, buf, len);
}

/* ---- dump ---- */

int locks_dump_fd(struct locks_dump *ld, struct arena *a, Capcr__FdTable *fdt,
		  pid_t pid, int fd, int locked, const char *path, int posix,
		  int shared, char *why, size_t wl)
{
	char line[512], what[160];
	int r = 0;

	if ((!posix && !shared) || !locked)
		return 0;
	FILE *f = files_fdinfo_open(pid, fd, why, wl);
	if (!f)
		return -1;
	while (!r && fgets(line, sizeof(line), f)) {
		struct lk_line l;
		if (strncmp(line, "lock:", 5) || parse_line(line + 5, &l) < 0 ||
		    l.waiter)
			continue;
		if (l.kind < 0 || l.type < 0) {
			r = files_fail(
				why, wl,
				"process %d holds a lock of kind %s on "
				"descriptor %d (%s): capcr cannot "
				"checkpoint %s",
				pid, l.name, fd, path,
				!strncmp(l.name, "LEASE", 5) ?
					"a lease being broken" :
					"it");
			break;
		}
		if (l.kind == CAPCR__LOCK_KIND__LOCK_POSIX ? !posix : !shared)
			continue;
		int ranged = l.kind == CAPCR__LOCK_KIND__LOCK_POSIX ||
			     l.kind == CAPCR__LOCK_KIND__LOCK_OFD;
		int64_t len = !ranged || l.end < 0 ? 0 : l.end - l.start + 1;
		describe(l.kind, l.type, l.start, len, what, sizeof(what));
		/* A POSIX lock shown here belongs to this descriptor table;
		 * another PID means a table shared with another process
		 * (clone with CLONE_FILES), which a restore does not make. */
		if (l.kind == CAPCR__LOCK_KIND__LOCK_POSIX && l.pid != pid) {
			r = files_fail(why, wl,
				       "%s on descriptor %d (%s) of process %d "
				       "belongs to process %d, which shares "
				       "its descriptor table: capcr cannot "
				       "checkpoint it",
				       what, fd, path, pid, l.pid);
			break;
		}
		if (!ld->enabled) {
			r = files_fail(why, wl,
				       "process %d holds %s on descriptor %d "
				       "(%s); use --file-locks to checkpoint "
				       "file locks",
				       pid, what, fd, path);
			break;
		}
		Capcr__FileLock *k = ARENA_NEW(a, Capcr__FileLock);
		capcr__file_lock__init(k);
		k->kind = (Capcr__LockKind)l.kind;
		k->fd = fd;
		k->type = (uint32_t)l.type;
		if (ranged) {
			k->has_start = k->has_len = 1;
			k->start = l.start;
			k->len = len;
		}
		arena_push(a, (void ***)&fdt->locks, &fdt->n_locks, k);
	}
	fclose(f);
	return r;
}

/* ---- restore ---- */

/* Who else holds a lock on the inode of descriptor fd of process pid that
 * conflicts with one of type over [start, end] (end -1: EOF), from
 * /proc/locks; "" if none is found. */
static void holder(pid_t pid, int fd, int kind, int type, int64_t start,
		   int64_t end, char *buf, size_t n)
{
	char path[64], *line = NULL, what[160];
	size_t ll = 0;
	struct stat st;
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	if (stat(path, &st) < 0 || !(f = fopen("/proc/locks", "re")))
		return;
	while (!buf[0] && getline(&line, &ll, f) > 0) {
		struct lk_line l;
		if (parse_line(line, &l) < 0 || l.waiter || l.ino != st.st_ino)
			continue;
		/* flock and POSIX/OFD locks do not conflict with each
		 * other; two read locks never do. */
		if ((kind == CAPCR__LOCK_KIND__LOCK_FLOCK) !=
			    (l.kind == CAPCR__LOCK_KIND__LOCK_FLOCK) ||
		    (type == F_RDLCK && l.type == F_RDLCK))
			continue;
		if (kind != CAPCR__LOCK_KIND__LOCK_FLOCK &&
		    ((end >= 0 && l.start > end) ||
		     (l.end >= 0 && l.end < start)))
			continue;
		if (kind == CAPCR__LOCK_KIND__LOCK_POSIX &&
		    l.kind == CAPCR__LOCK_KIND__LOCK_POSIX && l.pid == pid)
			continue; /* its own */
		describe(l.kind, l.type, l.start,
			 l.end < 0 ? 0 : l.end - l.start + 1, what,
			 sizeof(what));
		if (l.pid > 0)
			snprintf(buf, n, "; process %d holds %s", l.pid, what);
		else
			snprintf(buf, n,
				 "; another open file description "
				 "holds %s",
				 what);
	}
	free(line);
	fclose(f);
}

int locks_restore(const Capcr__FdTable *fdt, const Capcr__Files *files,
		  pid_t pid, const struct locks_caller *c, char *why, size_t wl)
{
	char what[160], who[256];

	for (size_t i = 0; i < fdt->n_locks; i++) {
		const Capcr__FileLock *l = fdt->locks[i];
		const char *path = "";
		long r;

		for (size_t d = 0; d < fdt->n_fds; d++)
			if (fdt->fds[d]->fd == l->fd) {
				const Capcr__File *f =
					files->files[fdt->fds[d]->file];
				path = f->path ? f->path : "";
			}
		if (l->kind == CAPCR__LOCK_KIND__LOCK_FLOCK) {
			r = c->flock(c->arg, l->fd,
				     (l->type == F_WRLCK ? LOCK_EX : LOCK_SH) |
					     LOCK_NB);
		} else if (l->kind == CAPCR__LOCK_KIND__LOCK_LEASE) {
			/* Taken by the process itself: the lease's break
			 * signal goes to the one that set it. */
			r = c->setlease(c->arg, l->fd, (int)l->type);
		} else {
			struct flock fl = {
				.l_type = (short)l->type,
				.l_whence = SEEK_SET,
				.l_start = l->start,
				.l_len = l->len,
			};
			r = c->fcntl_lock(
				c->arg, l->fd,
				l->kind == CAPCR__LOCK_KIND__LOCK_OFD ?
					F_OFD_SETLK :
					F_SETLK,
				&fl);
		}
		if (r >= 0)
			continue;
		locks_describe(l, what, sizeof(what));
		who[0] = 0;
		if (r == -EAGAIN || r == -EACCES)
			holder(pid, l->fd, l->kind, (int)l->type, l->start,
			       l->len ? l->start + l->len - 1 : -1, who,
			       sizeof(who));
		return files_fail(why, wl,
				  "cannot take back %s on descriptor %d (%s): "
				  "%s%s",
				  what, l->fd, path, strerror((int)-r), who);
	}
	return 0;
}
