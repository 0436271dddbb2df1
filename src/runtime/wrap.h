/* SPDX-License-Identifier: MIT */
/* Shared by the wrapper files: exported symbols and small helpers. */
#ifndef CAPCR_WRAP_H
#define CAPCR_WRAP_H

#include <errno.h>

#include "rt.h"
#include "rt_real.h"

#define WRAP __attribute__((visibility("default")))

/* Record a descriptor made by a creating call (not open, not dup). */
static inline int rt_record_new(int fd, int kind, int origin, int flags,
				int64_t arg0)
{
	struct capcr_cap_entry *e;

	if (fd < 0 || !rt_active())
		return fd;
	e = rt_new(fd, kind, origin);
	if (e) {
		e->flags = flags;
		e->arg[0] = arg0;
		rt_done(e, 0);
	}
	return fd;
}

/* Record a pair made together (pipe, socketpair): each names the other. */
static inline void rt_record_pair(const int fds[2], int kind, int origin,
				  int flags, int domain, int type, int protocol)
{
	struct capcr_cap_entry *e[2];
	uint64_t b[2];

	if (!rt_active())
		return;
	b[0] = rt_badge_new();
	b[1] = rt_badge_new();
	for (int i = 0; i < 2; i++) {
		e[i] = rt_new(fds[i], kind, origin);
		if (!e[i])
			continue;
		e[i]->flags = flags;
		e[i]->domain = domain;
		e[i]->type = type;
		e[i]->protocol = protocol;
		e[i]->arg[0] = i; /* pipe: 0 read end, 1 write end */
		e[i]->peer_badge = b[1 - i];
	}
	for (int i = 0; i < 2; i++)
		rt_done(e[i], b[i]);
}

/* After a failed replace (dup2 onto an open newfd that then failed): if
 * the kernel still has fd, enter it again; its provenance is lost. */
RT_HIDDEN void rt_recheck(int fd);
/* The application wants to use the number of the runtime's own session:
 * move the session out of the way first. */
RT_HIDDEN void rt_move_own_fd(void);

#endif
