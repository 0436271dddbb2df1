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

/* vfork.S lands here on failure, with -errno. */
RT_HIDDEN long rt_vfork_error(long err);
long rt_vfork_error(long err)
{
	errno = (int)-err;
	return -1;
}
