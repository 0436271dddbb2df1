/* SPDX-License-Identifier: MIT */
/*
 * The libc functions the runtime wraps, found with dlsym(RTLD_NEXT) so the
 * same code works preloaded and linked.  Every pointer is resolved in the
 * library constructor (rt_real_resolve_all), because dlsym is not safe in a
 * signal handler or in a child forked from a threaded parent; the lazy path
 * in RT_REAL covers calls made by other libraries' constructors that run
 * before ours.
 */
#ifndef CAPCR_RT_REAL_H
#define CAPCR_RT_REAL_H

#include "rt.h"

/* X-macro of every wrapped symbol.  Adding a wrapper adds a line here. */
#define RT_REAL_SYMBOLS(X)                                                   \
	X(open) X(open64) X(__open_2) X(__open64_2) X(openat) X(openat64)       \
	X(__openat_2) X(__openat64_2) X(creat) X(creat64) X(close)             \
	X(close_range) X(dup) X(dup2) X(dup3) X(fcntl) X(fcntl64) X(pipe)      \
	X(pipe2) X(socket) X(socketpair) X(accept) X(accept4) X(connect)       \
	X(bind) X(listen) X(recvmsg) X(recvmmsg) X(eventfd) X(epoll_create)     \
	X(epoll_create1) X(timerfd_create) X(signalfd) X(memfd_create)         \
	X(inotify_init) X(inotify_init1) X(pidfd_open) X(fopen) X(fopen64)     \
	X(fdopen) X(freopen) X(freopen64) X(fclose) X(opendir) X(fdopendir)     \
	X(closedir) X(popen) X(pclose) X(mkstemp) X(mkostemp) X(mkstemp64)      \
	X(mkostemp64) X(tmpfile) X(tmpfile64) X(shm_open) X(posix_openpt)

#define RT_REAL_DECLARE(name) extern void *rt_real_##name RT_HIDDEN;
RT_REAL_SYMBOLS(RT_REAL_DECLARE)
#undef RT_REAL_DECLARE

RT_HIDDEN void *rt_real_lookup(const char *name);
RT_HIDDEN void rt_real_resolve_all(void);

static inline void *rt_real_get(void **slot, const char *name)
{
	void *p = *slot;

	if (RT_LIKELY(p != 0))
		return p;
	return *slot = rt_real_lookup(name);
}

#define RT_REAL(name)                                                        \
	((__typeof__(&name))rt_real_get(&rt_real_##name, #name))

#endif
