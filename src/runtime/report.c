/* SPDX-License-Identifier: MIT */
/*
 * Reporting cap-map changes: the region's array (shm) or one request per
 * change on the PD session (ipc, the seed's alternative).
 *
 * The lock.  Writers in the target take the lock word (the region's, or a
 * private one in ipc mode) and bracket every change with two increments of
 * the region's sequence counter, so the monitor can read a consistent copy
 * without ever taking the lock.  The lock is held for a handful of stores.
 *
 * Signal handlers.  A handler that opens or closes a descriptor may have
 * interrupted its own thread inside the critical section; spinning would
 * then deadlock.  Each thread marks itself "in critical" before it even
 * tries to take the lock; a handler that finds the mark queues its change
 * in a small per-thread queue, and the interrupted owner applies the queue
 * before it lets go of the lock.  Handlers run to completion before the code
 * they interrupted resumes, so the queue has a single writer at a time.
 * If the queue overflows the region is flagged CAPCR_CAPINFO_F_LOST and the
 * monitor trusts the kernel's table instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "../common/pd_proto.h"
#include "rt.h"

#define RT_DEFER_MAX 16
#define RT_DEFER_REMOVE 0x80000000u

static __thread int rt_in_critical RT_TLS;
static __thread unsigned rt_ndefer RT_TLS;
static __thread uint32_t rt_defer[RT_DEFER_MAX] RT_TLS;

static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}

void rt_lock(void)
{
	unsigned spins = 0;

	while (__atomic_exchange_n(rt_att->lockw, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(rt_att->lockw, __ATOMIC_RELAXED)) {
			/* The holder may be preempted: let it run. */
			if (++spins > 256) {
				RT_SYS0(SYS_sched_yield);
				spins = 0;
			} else {
				cpu_relax();
			}
		}
	}
}

void rt_unlock(void)
{
	__atomic_store_n(rt_att->lockw, 0, __ATOMIC_RELEASE);
}

static void seq_begin(void)
{
	struct capcr_capinfo_header *h = rt_att->region;

	if (h) {
		__atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_RELEASE);
	}
}

static void seq_end(void)
{
	struct capcr_capinfo_header *h = rt_att->region;

	if (h) {
		__atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELEASE);
		h->updates++;
	}
}

/* ipc mode: one synchronous request/reply.  The session is ours alone
 * (each process connects its own) and we hold the lock, so replies
 * cannot interleave. */
static int ipc_call(uint16_t op, int fd, const struct capcr_cap_entry *e)
{
	struct capcr_pd_request rq = {
		.magic = CAPCR_PD_MAGIC,
		.op = op,
		.kind = e ? e->kind : 0,
		.kcap = fd,
		.badge = e ? e->badge : 0,
		.badge_ptr = (uintptr_t)e,
	};
	struct capcr_pd_reply rp;
	long n;

	do
		n = RT_SYS6(SYS_sendto, rt_att->ipc_fd, &rq, sizeof(rq),
			    MSG_NOSIGNAL, 0, 0);
	while (n == -EINTR);
	if (n != sizeof(rq))
		return -1;
	do
		n = RT_SYS6(SYS_recvfrom, rt_att->ipc_fd, &rp, sizeof(rp), 0, 0,
			    0);
	while (n == -EINTR);
	return n == sizeof(rp) && rp.status == 0 ? 0 : -1;
}

/* Both with the lock held. */
int rt_publish_locked(int fd)
{
	struct capcr_capinfo_header *h = rt_att->region;
	struct capcr_cap_entry *e = rt_entry(fd, 0);

	if (!e || !e->badge || e->slot)
		return 0;
	if (!h) {
		if (ipc_call(CAPCR_PD_INSERT, fd, e) == 0)
			e->slot = 1;
		return 0;
	}
	if (h->count >= h->capacity) {
		__atomic_or_fetch(&h->flags, CAPCR_CAPINFO_F_OVERFLOW,
				  __ATOMIC_RELAXED);
		return -1;
	}
	struct capcr_cap_info *ci = &rt_att->slots[h->count];
	ci->kcap = fd;
	ci->kind = e->kind;
	ci->reserved = 0;
	ci->badge_ptr = (uintptr_t)&e->badge;
	e->slot = h->count + 1;
	h->count++;
	return 0;
}

static void unpublish_locked(int fd)
{
	struct capcr_capinfo_header *h = rt_att->region;
	struct capcr_cap_entry *e = rt_entry(fd, 0);

	if (!e)
		return;
	if (e->slot && !h) {
		ipc_call(CAPCR_PD_REMOVE, fd, e);
	} else if (e->slot && e->slot <= h->count) {
		uint32_t idx = e->slot - 1, last = h->count - 1;
		if (idx != last) {
			struct capcr_cap_info *moved = &rt_att->slots[last];
			struct capcr_cap_entry *me = rt_entry(moved->kcap, 0);
			rt_att->slots[idx] = *moved;
			if (me)
				me->slot = idx + 1;
		}
		h->count--;
	}
	e->slot = 0;
	e->badge = 0;
}

static void apply(uint32_t op)
{
	if (op & RT_DEFER_REMOVE)
		unpublish_locked((int)(op & ~RT_DEFER_REMOVE));
	else
		rt_publish_locked((int)op);
}

static void drain_deferred_locked(void)
{
	/* Handlers may add while we drain: re-read the count each time. */
	for (unsigned i = 0; i < __atomic_load_n(&rt_ndefer, __ATOMIC_RELAXED);
	     i++)
		apply(rt_defer[i]);
	rt_ndefer = 0;
}

static void change(uint32_t op)
{
	if (RT_UNLIKELY(rt_in_critical)) {
		unsigned n = __atomic_fetch_add(&rt_ndefer, 1, __ATOMIC_RELAXED);
		if (n < RT_DEFER_MAX) {
			rt_defer[n] = op;
		} else if (rt_att->region) {
			__atomic_or_fetch(&rt_att->region->flags,
					  CAPCR_CAPINFO_F_LOST, __ATOMIC_RELAXED);
		}
		return;
	}
	__atomic_store_n(&rt_in_critical, 1, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rt_lock();
	seq_begin();
	apply(op);
	if (RT_UNLIKELY(rt_ndefer))
		drain_deferred_locked();
	seq_end();
	rt_unlock();
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&rt_in_critical, 0, __ATOMIC_RELAXED);
	/* A handler may have queued between the drain and here. */
	if (RT_UNLIKELY(rt_ndefer)) {
		rt_in_critical = 1;
		rt_lock();
		seq_begin();
		drain_deferred_locked();
		seq_end();
		rt_unlock();
		rt_in_critical = 0;
	}
}

void rt_publish(int fd)
{
	change((uint32_t)fd);
}

void rt_unpublish(int fd)
{
	change((uint32_t)fd | RT_DEFER_REMOVE);
}

void rt_unpublish_range(unsigned first, unsigned last)
{
	struct capcr_capinfo_header *h = rt_att->region;

	if (last >= (1u << 20))
		last = (1u << 20) - 1;
	/* With a region, walking its array beats walking a huge range. */
	if (h && last - first > h->count) {
		rt_in_critical = 1;
		rt_lock();
		seq_begin();
		for (uint32_t i = 0; i < h->count;) {
			unsigned k = (unsigned)rt_att->slots[i].kcap;
			if (k >= first && k <= last)
				unpublish_locked((int)k); /* moves last into i */
			else
				i++;
		}
		if (RT_UNLIKELY(rt_ndefer))
			drain_deferred_locked();
		seq_end();
		rt_unlock();
		rt_in_critical = 0;
		return;
	}
	for (unsigned fd = first; fd <= last; fd++) {
		struct capcr_cap_entry *e = rt_entry((int)fd, 0);
		if (e && e->badge)
			rt_unpublish((int)fd);
		if (fd == last)
			break;
	}
}

/* Changing a published entry in place (connect, bind, listen): readers must
 * see the old or the new entry, never half of each. */
void rt_modify_begin(void)
{
	rt_in_critical = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rt_lock();
	seq_begin();
}

void rt_modify_end(void)
{
	if (RT_UNLIKELY(rt_ndefer))
		drain_deferred_locked();
	seq_end();
	rt_unlock();
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rt_in_critical = 0;
}
