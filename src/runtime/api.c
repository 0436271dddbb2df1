/* SPDX-License-Identifier: MIT */
/* The runtime's public API (include/capcr/capcr.h). */
#define _GNU_SOURCE
#include <errno.h>

#include "capcr/capcr.h"
#include "rt.h"

#define API __attribute__((visibility("default")))

API int capcr_monitored(void)
{
	return rt_active();
}

API uint64_t capcr_badge(int fd)
{
	struct capcr_cap_entry *e;

	if (!rt_active() || !(e = rt_entry(fd, 0)))
		return 0;
	return __atomic_load_n(&e->badge, __ATOMIC_ACQUIRE);
}

API int capcr_allow_reconnect(int fd)
{
	struct capcr_cap_entry *e;

	if (!rt_active()) {
		errno = ENOSYS;
		return -1;
	}
	e = rt_entry(fd, 0);
	if (!e || !e->badge) {
		errno = EBADF;
		return -1;
	}
	if (e->kind != CAPCR_KIND_SOCKET || !(e->state & CAPCR_ENTRY_CONNECTED) ||
	    !e->peer_len) {
		errno = ENOTCONN;
		return -1;
	}
	rt_modify_begin();
	e->state |= CAPCR_ENTRY_RECONNECT;
	rt_modify_end();
	return 0;
}

/* vfork.S lands here on failure, with -errno. */
RT_HIDDEN long rt_vfork_error(long err);
long rt_vfork_error(long err)
{
	errno = (int)-err;
	return -1;
}
