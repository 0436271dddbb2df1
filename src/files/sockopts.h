/* SPDX-License-Identifier: MIT */
/*
 * Socket options (sockopts.c): saved by every socket kind's dump from its
 * copy of the socket, set again by every kind's restore on the new one.
 *
 * Dump: each option capcr knows that applies to the socket's family, type
 * and protocol is read, and kept (in a Capcr__SockOpts) only when it
 * differs from what a new socket of the same domain, type and protocol
 * has.
 *
 * Restore, in phases, since some options must come before bind/listen/
 * connect and some after:
 *
 *   fd = socket(...);
 *   sockopts_restore(fd, o, SOCKOPTS_BEFORE_BIND, ...);
 *   bind / listen / connect, or TCP repair ...;
 *   sockopts_restore(fd, o, SOCKOPTS_AFTER_CONNECT, ...);
 *   put back what was queued on it;
 *   sockopts_restore(fd, o, SOCKOPTS_FILTER, ...);
 *
 * (or SOCKOPTS_ALL at once where no bind or queue comes between).  The
 * options are set with the rights of the image's owner: for an image root
 * does not own, the calling thread has no effective capability meanwhile,
 * so the kernel refuses what that user could not set (SO_MARK, SO_PRIORITY
 * above 6, IP_TRANSPARENT, SO_*BUFFORCE: the plain SO_*BUF is used, which
 * the kernel caps) and the restore fails, naming the option.
 */
#ifndef CAPCR_SOCKOPTS_H
#define CAPCR_SOCKOPTS_H

#include <linux/capability.h>
#include <stddef.h>
#include <sys/types.h>

#include "../common/arena.h"
#include "capcr.pb-c.h"

enum {
	/* SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY, IP_FREEBIND,
	 * IP_TRANSPARENT, SO_BINDTODEVICE, buffer sizes, SO_MARK, IP_TOS,
	 * SO_PRIORITY, SO_DONTROUTE, TCP_CONGESTION, TCP_FASTOPEN: what bind,
	 * listen or connect (its route, its SYN) uses */
	SOCKOPTS_BEFORE_BIND = 1,
	/* every other option but the filter */
	SOCKOPTS_AFTER_CONNECT = 2,
	/* the socket filter and its lock: last, once any queue is back (the
	 * filter would judge the restored data again) */
	SOCKOPTS_FILTER = 4,
	SOCKOPTS_ALL = 7,
	/* modifier: SO_BINDTODEVICE with SOCKOPTS_AFTER_CONNECT rather than
	 * SOCKOPTS_BEFORE_BIND (a queue is put back through the loopback
	 * first, which a socket bound to another device would not take) */
	SOCKOPTS_DEVICE_LATE = 8,
};

/* sockopts_dump flags */
enum {
	/* leave the buffer sizes out (an established TCP connection whose
	 * sizes the kernel tuned itself, not the program) */
	SOCKOPTS_DUMP_NO_BUFS = 1,
};

/* The options of sock (domain family, type, protocol as SO_DOMAIN,
 * SO_TYPE, SO_PROTOCOL give them) that differ from a new socket's, into
 * *out (from arena a; an empty message when none differ, which tells the
 * restore the options were saved).  what names the socket in messages.
 * 0, or -1 with why. */
int sockopts_dump(int sock, int family, int type, int protocol,
		  unsigned flags, struct arena *a, Capcr__SockOpts **out,
		  const char *what, char *why, size_t wl);

/* Set the options of o (may be NULL: nothing to do) that belong to the
 * given phases on sock, with the rights of owner (the image's owner:
 * uid 0 keeps root's).  what names the socket in messages.  0, or -1
 * with why naming the option, its value, the socket and the cause. */
int sockopts_restore(int sock, const Capcr__SockOpts *o, unsigned phases,
		     uid_t owner, const char *what, char *why, size_t wl);

/* The calling thread with the file-system ids of owner/group and no
 * effective capability, until sockopts_rights_back: sockets made
 * meanwhile belong to owner (SO_REUSEPORT groups, SO_PEERCRED), and
 * binding, options and the like are decided by the kernel as for that
 * user.  Nothing changes for owner 0.  0, or -1 with errno. */
struct sockopts_rights {
	int dropped;
	int fsuid, fsgid;
	struct __user_cap_data_struct caps[2];
};
int sockopts_rights_drop(uid_t owner, gid_t group, struct sockopts_rights *r);
void sockopts_rights_back(struct sockopts_rights *r);

#endif
