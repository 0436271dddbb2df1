/* SPDX-License-Identifier: MIT */
/* Wrappers: pipes and the anonymous-inode descriptors. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "wrap.h"

WRAP int pipe(int fds[2])
{
	int r = RT_REAL(pipe)(fds);

	if (r == 0)
		rt_record_pair(fds, CAPCR_KIND_PIPE, CAPCR_ORIGIN_PIPE, 0, 0, 0,
			       0);
	return r;
}

WRAP int pipe2(int fds[2], int flags)
{
	int r = RT_REAL(pipe2)(fds, flags);

	if (r == 0)
		rt_record_pair(fds, CAPCR_KIND_PIPE, CAPCR_ORIGIN_PIPE, flags,
			       0, 0, 0);
	return r;
}

WRAP int eventfd(unsigned int initval, int flags)
{
	return rt_record_new(RT_REAL(eventfd)(initval, flags),
			     CAPCR_KIND_EVENTFD, CAPCR_ORIGIN_CREATE, flags,
			     initval);
}

WRAP int epoll_create(int size)
{
	return rt_record_new(RT_REAL(epoll_create)(size), CAPCR_KIND_EPOLL,
			     CAPCR_ORIGIN_CREATE, 0, size);
}

WRAP int epoll_create1(int flags)
{
	return rt_record_new(RT_REAL(epoll_create1)(flags), CAPCR_KIND_EPOLL,
			     CAPCR_ORIGIN_CREATE, flags, 0);
}

WRAP int timerfd_create(int clockid, int flags)
{
	return rt_record_new(RT_REAL(timerfd_create)(clockid, flags),
			     CAPCR_KIND_TIMERFD, CAPCR_ORIGIN_CREATE, flags,
			     clockid);
}

WRAP int signalfd(int fd, const sigset_t *mask, int flags)
{
	int r = RT_REAL(signalfd)(fd, mask, flags);
	int64_t bits = 0;

	if (fd != -1) /* changed the mask of an existing one */
		return r;
	if (mask)
		memcpy(&bits, mask, sizeof(bits));
	return rt_record_new(r, CAPCR_KIND_SIGNALFD, CAPCR_ORIGIN_CREATE,
			     flags, bits);
}

WRAP int memfd_create(const char *name, unsigned int flags)
{
	int fd = RT_REAL(memfd_create)(name, flags);
	struct capcr_cap_entry *e;

	if (fd < 0 || !rt_active())
		return fd;
	e = rt_new(fd, CAPCR_KIND_MEMFD, CAPCR_ORIGIN_CREATE);
	if (e) {
		e->flags = (int)flags;
		rt_set_path(e, name);
		rt_done(e, 0);
	}
	return fd;
}

WRAP int inotify_init(void)
{
	return rt_record_new(RT_REAL(inotify_init)(), CAPCR_KIND_INOTIFY,
			     CAPCR_ORIGIN_CREATE, 0, 0);
}

WRAP int inotify_init1(int flags)
{
	return rt_record_new(RT_REAL(inotify_init1)(flags), CAPCR_KIND_INOTIFY,
			     CAPCR_ORIGIN_CREATE, flags, 0);
}

WRAP int pidfd_open(pid_t pid, unsigned int flags)
{
	return rt_record_new(RT_REAL(pidfd_open)(pid, flags), CAPCR_KIND_PIDFD,
			     CAPCR_ORIGIN_CREATE, (int)flags, pid);
}
