/* SPDX-License-Identifier: MIT */
/* Wrappers: opening by path, closing, duplicating. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wrap.h"

/* Fortified variants glibc's headers only declare under _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int record_open(int fd, int dirfd, const char *path, int flags,
		       mode_t mode, int origin)
{
	struct capcr_cap_entry *e;

	if (fd < 0 || !rt_active())
		return fd;
	e = rt_new(fd, CAPCR_KIND_PATH, origin);
	if (e) {
		e->dirfd = dirfd;
		e->flags = flags;
		e->mode = mode;
		rt_set_path(e, path);
		rt_done(e, 0);
	}
	return fd;
}

static int needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define MODE_ARG(flags, mode)                                                \
	do {                                                                 \
		if (needs_mode(flags)) {                                     \
			va_list ap;                                          \
			va_start(ap, flags);                                 \
			mode = (mode_t)va_arg(ap, unsigned int);             \
			va_end(ap);                                          \
		}                                                            \
	} while (0)

WRAP int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return record_open(RT_REAL(open)(path, flags, mode), AT_FDCWD, path,
			   flags, mode, CAPCR_ORIGIN_OPEN);
}

WRAP int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return record_open(RT_REAL(open64)(path, flags, mode), AT_FDCWD, path,
			   flags, mode, CAPCR_ORIGIN_OPEN);
}

WRAP int __open_2(const char *path, int flags)
{
	return record_open(RT_REAL(__open_2)(path, flags), AT_FDCWD, path,
			   flags, 0, CAPCR_ORIGIN_OPEN);
}

WRAP int __open64_2(const char *path, int flags)
{
	return record_open(RT_REAL(__open64_2)(path, flags), AT_FDCWD, path,
			   flags, 0, CAPCR_ORIGIN_OPEN);
}

WRAP int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return record_open(RT_REAL(openat)(dirfd, path, flags, mode), dirfd,
			   path, flags, mode, CAPCR_ORIGIN_OPEN);
}

WRAP int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return record_open(RT_REAL(openat64)(dirfd, path, flags, mode), dirfd,
			   path, flags, mode, CAPCR_ORIGIN_OPEN);
}

WRAP int __openat_2(int dirfd, const char *path, int flags)
{
	return record_open(RT_REAL(__openat_2)(dirfd, path, flags), dirfd,
			   path, flags, 0, CAPCR_ORIGIN_OPEN);
}

WRAP int __openat64_2(int dirfd, const char *path, int flags)
{
	return record_open(RT_REAL(__openat64_2)(dirfd, path, flags), dirfd,
			   path, flags, 0, CAPCR_ORIGIN_OPEN);
}

WRAP int creat(const char *path, mode_t mode)
{
	return record_open(RT_REAL(creat)(path, mode), AT_FDCWD, path,
			   O_CREAT | O_WRONLY | O_TRUNC, mode,
			   CAPCR_ORIGIN_OPEN);
}

WRAP int creat64(const char *path, mode_t mode)
{
	return record_open(RT_REAL(creat64)(path, mode), AT_FDCWD, path,
			   O_CREAT | O_WRONLY | O_TRUNC, mode,
			   CAPCR_ORIGIN_OPEN);
}

WRAP int shm_open(const char *name, int flags, mode_t mode)
{
	return record_open(RT_REAL(shm_open)(name, flags, mode), AT_FDCWD,
			   name, flags, mode, CAPCR_ORIGIN_OPEN);
}

WRAP int posix_openpt(int flags)
{
	return record_open(RT_REAL(posix_openpt)(flags), AT_FDCWD,
			   "/dev/ptmx", flags, 0, CAPCR_ORIGIN_OPEN);
}

static int record_temp(int fd, const char *tmpl, int flags)
{
	return record_open(fd, AT_FDCWD, tmpl, O_RDWR | O_CREAT | O_EXCL | flags,
			   0600, CAPCR_ORIGIN_TEMP);
}

WRAP int mkstemp(char *tmpl)
{
	return record_temp(RT_REAL(mkstemp)(tmpl), tmpl, 0);
}

WRAP int mkstemp64(char *tmpl)
{
	return record_temp(RT_REAL(mkstemp64)(tmpl), tmpl, 0);
}

WRAP int mkostemp(char *tmpl, int flags)
{
	return record_temp(RT_REAL(mkostemp)(tmpl, flags), tmpl, flags);
}

WRAP int mkostemp64(char *tmpl, int flags)
{
	return record_temp(RT_REAL(mkostemp64)(tmpl, flags), tmpl, flags);
}

WRAP int close(int fd)
{
	if (rt_is_own_fd(fd)) {
		errno = EBADF; /* the application never had it */
		return -1;
	}
	if (rt_active())
		rt_closing(fd);
	return RT_REAL(close)(fd);
}

WRAP int close_range(unsigned int first, unsigned int last, int flags)
{
	int own = rt_ipc_fd_any;

	if (rt_active() && !(flags & CLOSE_RANGE_CLOEXEC))
		rt_unpublish_range(first, last);
	if (own >= 0 && (unsigned)own >= first && (unsigned)own <= last) {
		/* Close around the runtime's own session. */
		int r = 0;
		if ((unsigned)own > first)
			r = RT_REAL(close_range)(first, (unsigned)own - 1,
						 flags);
		if (r == 0 && (unsigned)own < last)
			r = RT_REAL(close_range)((unsigned)own + 1, last,
						 flags);
		return r;
	}
	return RT_REAL(close_range)(first, last, flags);
}

WRAP int dup(int oldfd)
{
	int fd = RT_REAL(dup)(oldfd);

	if (fd >= 0 && rt_active())
		rt_dup(oldfd, fd, 0);
	return fd;
}

static int dup_onto(int oldfd, int newfd, int flags, int three)
{
	int active = rt_active(), r;

	if (rt_is_own_fd(newfd))
		rt_move_own_fd();
	if (active && oldfd != newfd)
		rt_closing(newfd);
	r = three ? RT_REAL(dup3)(oldfd, newfd, flags)
		  : RT_REAL(dup2)(oldfd, newfd);
	if (!active || oldfd == newfd)
		return r;
	if (r >= 0)
		rt_dup(oldfd, newfd, flags & O_CLOEXEC);
	else
		rt_recheck(newfd);
	return r;
}

WRAP int dup2(int oldfd, int newfd)
{
	return dup_onto(oldfd, newfd, 0, 0);
}

WRAP int dup3(int oldfd, int newfd, int flags)
{
	return dup_onto(oldfd, newfd, flags, 1);
}

static int fcntl_common(int fd, int cmd, void *arg, int is64)
{
	int r = is64 ? RT_REAL(fcntl64)(fd, cmd, arg)
		     : RT_REAL(fcntl)(fd, cmd, arg);

	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) &&
	    rt_active())
		rt_dup(fd, r, cmd == F_DUPFD_CLOEXEC);
	return r;
}

WRAP int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg, 0);
}

WRAP int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg, 1);
}

void rt_recheck(int fd)
{
	struct capcr_cap_entry *e;

	if (RT_SYS2(SYS_fcntl, fd, F_GETFD) < 0)
		return;
	e = rt_new(fd, CAPCR_KIND_UNKNOWN, CAPCR_ORIGIN_UNKNOWN);
	if (e) {
		e->kind = (uint16_t)rt_kind_of_fd(fd, e->path, sizeof(e->path));
		rt_done(e, 0);
	}
}

void rt_move_own_fd(void)
{
	int own = rt_ipc_fd_any;
	long hi = RT_SYS3(SYS_fcntl, own, F_DUPFD_CLOEXEC, own + 1);

	if (hi < 0)
		return;
	rt_modify_begin(); /* no ipc call may use the old number meanwhile */
	rt_att->ipc_fd = (int)hi;
	rt_ipc_fd_any = (int)hi;
	rt_modify_end();
	RT_SYS1(SYS_close, own);
}
