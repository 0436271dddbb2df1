/* SPDX-License-Identifier: MIT */
/*
 * Recording capabilities in the cap map: the few steps every wrapper shares.
 *
 * Order matters because descriptor numbers are reused at once: a removal is
 * reported before the kernel closes the descriptor, an insertion after the
 * kernel created it.  Between the two, no other thread can be handed the
 * same number, so the region never names one number twice.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "../common/fdkind.h"
#include "rt.h"

struct capcr_cap_entry *rt_new(int fd, int kind, int origin)
{
	struct capcr_cap_entry *e = rt_entry(fd, 1);

	if (!e)
		return NULL;
	/* A badge here is stale (closed behind our back, or in a signal
	 * handler whose report is queued): the entry is dead from now on,
	 * and the report of the new one brings the region in line. */
	__atomic_store_n(&e->badge, 0, __ATOMIC_RELEASE);
	/* The badge stays 0 while the rest is written; it goes in last. */
	memset((char *)e + sizeof(e->badge), 0, sizeof(*e) - sizeof(e->badge));
	e->kcap = fd;
	e->kind = (uint16_t)kind;
	e->origin = (uint16_t)origin;
	e->dirfd = AT_FDCWD;
	return e;
}

void rt_done(struct capcr_cap_entry *e, uint64_t badge)
{
	if (!e)
		return;
	__atomic_store_n(&e->badge, badge ? badge : rt_badge_new(),
			 __ATOMIC_RELEASE);
	rt_publish(e->kcap);
}

void rt_set_path(struct capcr_cap_entry *e, const char *path)
{
	size_t n;

	if (!e || !path)
		return;
	n = strnlen(path, sizeof(e->path));
	if (n == sizeof(e->path)) {
		e->state |= CAPCR_ENTRY_TRUNCATED;
		n = sizeof(e->path) - 1;
	}
	memcpy(e->path, path, n);
	e->path[n] = 0;
}

void rt_dup(int oldfd, int newfd, int cloexec)
{
	struct capcr_cap_entry *old = rt_entry(oldfd, 0);
	struct capcr_cap_entry *e;
	uint64_t badge = old ? old->badge : 0;

	if (oldfd == newfd)
		return;
	e = rt_new(newfd, old && badge ? old->kind : CAPCR_KIND_UNKNOWN,
		   CAPCR_ORIGIN_DUP);
	if (!e)
		return;
	if (old && badge) {
		/* Same open file description: same badge, same provenance. */
		memcpy((char *)e + 16, (char *)old + 16, sizeof(*e) - 16);
		e->kcap = newfd;
		e->origin = CAPCR_ORIGIN_DUP;
		e->state &= ~CAPCR_ENTRY_STDIO;
		e->peer_badge = old->peer_badge;
	} else {
		e->kind = (uint16_t)rt_kind_of_fd(newfd, e->path,
						  sizeof(e->path));
	}
	if (cloexec)
		e->flags |= O_CLOEXEC;
	else
		e->flags &= ~O_CLOEXEC;
	rt_done(e, badge);
}

void rt_closing(int fd)
{
	struct capcr_cap_entry *e = rt_entry(fd, 0);

	if (e && e->badge)
		rt_unpublish(fd);
}

/* What the kernel says fd is, for descriptors the runtime did not see being
 * made (inherited ones).  target receives the link text. */
int rt_kind_of_fd(int fd, char *target, size_t size)
{
	char link[32] = "/proc/self/fd/";
	char buf[256];
	struct stat st;
	long n;
	int i = 14;

	/* itoa without libc's locale-aware printf */
	char digits[12];
	int d = 0;
	unsigned v = (unsigned)fd;
	do
		digits[d++] = (char)('0' + v % 10);
	while ((v /= 10) && d < 11);
	while (d)
		link[i++] = digits[--d];
	link[i] = 0;

	n = RT_SYS4(SYS_readlinkat, AT_FDCWD, link, buf, sizeof(buf) - 1);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	if (target && size) {
		size_t c = (size_t)n < size - 1 ? (size_t)n : size - 1;
		memcpy(target, buf, c);
		target[c] = 0;
	}
	int k = capcr_kind_of_link(buf);
	if (k >= 0)
		return k;
	if (RT_SYS2(SYS_fstat, fd, &st) < 0)
		return CAPCR_KIND_UNKNOWN;
	return (int)capcr_kind_of_mode(st.st_mode);
}
