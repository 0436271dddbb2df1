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

static __thread int rt_in_critical RT_TLS;
static __thread unsigned rt_ndefer RT_TLS;
static __thread uint32_t rt_defer[RT_DEFER_MAX] RT_TLS;

static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}

/* The lock word once the region's cannot be trusted, and the one this
 * thread holds (the region's may be given up while a thread holds it). */
static uint32_t rt_lock_fallback;
static __thread uint32_t *rt_held RT_TLS;

/*
 * The target's own code may scribble over its region (a stray write, a
 * hostile library).  A lock word that is neither 0 nor 1, or that stays
 * taken for far longer than any holder takes (a few stores), is given up:
 * the region is flagged lost, so the monitor trusts the kernel's table,
 * and the runtime goes on with a private lock instead of spinning for
 * ever.
 */
static void give_up_region_lock(void)
{
	if (rt_att->region)
		__atomic_or_fetch(&rt_att->region->flags, CAPCR_CAPINFO_F_LOST,
				  __ATOMIC_RELAXED);
	__atomic_store_n(&rt_att->lockw, &rt_lock_fallback, __ATOMIC_RELEASE);
}

void rt_lock(void)
{
	unsigned spins = 0, yields = 0;

	for (;;) {
		uint32_t *w = __atomic_load_n(&rt_att->lockw, __ATOMIC_ACQUIRE);
		uint32_t old = __atomic_exchange_n(w, 1, __ATOMIC_ACQUIRE);
		if (old == 0) {
			rt_held = w;
			return;
		}
		if (old != 1) {
			give_up_region_lock();
			continue;
		}
		while (__atomic_load_n(w, __ATOMIC_RELAXED) == 1 &&
		       w == __atomic_load_n(&rt_att->lockw, __ATOMIC_RELAXED)) {
			/* The holder may be preempted: let it run. */
			if (++spins <= 256) {
				cpu_relax();
				continue;
			}
			RT_SYS0(SYS_sched_yield);
			spins = 0;
			if (++yields > (1u << 20)) {
				give_up_region_lock();
				yields = 0;
				break;
			}
		}
	}
}

void rt_unlock(void)
{
	__atomic_store_n(rt_held, 0, __ATOMIC_RELEASE);
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
		h->updates++;
		__atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELEASE);
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

/* Take the array's element idx out, moving the last into its place. */
static void remove_slot(uint32_t idx)
{
	struct capcr_capinfo_header *h = rt_att->region;
	uint32_t last = h->count - 1;

	if (idx != last) {
		rt_att->slots[idx] = rt_att->slots[last];
		uint32_t *moved = rt_slot_of(rt_att->slots[idx].kcap);
		if (moved)
			*moved = idx + 1;
	}
	h->count--;
}

/*
 * Make the region (or the monitor's copy, in ipc mode) agree with the cap
 * map for fd: fd is reported exactly when its entry has a badge.  It looks
 * only at the state now, not at what happened, so a change queued by a
 * signal handler may be applied late, twice, or after later ones, and the
 * result is the same.  Lock held.
 */
void rt_sync_locked(int fd)
{
	struct capcr_capinfo_header *h = rt_att->region;
	struct capcr_cap_entry *e = rt_entry(fd, 0);
	uint32_t *slot = rt_slot_of(fd);
	int live;

	if (!e || !slot)
		return;
	live = __atomic_load_n(&e->badge, __ATOMIC_ACQUIRE) && e->kcap == fd;
	if (!h) {
		/* ipc: the monitor holds kcap and badge; refresh both. */
		if (*slot)
			ipc_call(CAPCR_PD_REMOVE, fd, e);
		*slot = live && ipc_call(CAPCR_PD_INSERT, fd, e) == 0;
		return;
	}
	if (*slot && (*slot > h->count || rt_att->slots[*slot - 1].kcap != fd))
		*slot = 0; /* not ours any more: never trust a stale index */
	if (!live) {
		if (*slot)
			remove_slot(*slot - 1);
		*slot = 0;
		return;
	}
	if (*slot) {
		rt_att->slots[*slot - 1].kind = e->kind; /* kind may change */
		return;
	}
	if (h->count >= h->capacity) {
		__atomic_or_fetch(&h->flags, CAPCR_CAPINFO_F_OVERFLOW,
				  __ATOMIC_RELAXED);
		return;
	}
	struct capcr_cap_info *ci = &rt_att->slots[h->count];
	ci->kcap = fd;
	ci->kind = e->kind;
	ci->reserved = 0;
	ci->badge_ptr = (uintptr_t)&e->badge;
	*slot = h->count + 1;
	h->count++;
}

/* Apply what handlers queued.  A handler that queues while we drain makes
 * the final compare-and-swap fail, and everything is synced again, which
 * is harmless: syncing is idempotent. */
static void drain_deferred_locked(void)
{
	unsigned n;

	do {
		n = __atomic_load_n(&rt_ndefer, __ATOMIC_ACQUIRE);
		for (unsigned i = 0; i < n && i < RT_DEFER_MAX; i++)
			rt_sync_locked((int)rt_defer[i]);
	} while (!__atomic_compare_exchange_n(&rt_ndefer, &n, 0, 0,
					      __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
}

static void enter_critical(void)
{
	__atomic_store_n(&rt_in_critical, 1, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rt_lock();
	seq_begin();
}

static void leave_critical(void)
{
	if (RT_UNLIKELY(__atomic_load_n(&rt_ndefer, __ATOMIC_RELAXED)))
		drain_deferred_locked();
	seq_end();
	rt_unlock();
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&rt_in_critical, 0, __ATOMIC_RELAXED);
	/* A handler may have queued between the drain and here. */
	if (RT_UNLIKELY(__atomic_load_n(&rt_ndefer, __ATOMIC_RELAXED))) {
		__atomic_store_n(&rt_in_critical, 1, __ATOMIC_RELAXED);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		rt_lock();
		seq_begin();
		drain_deferred_locked();
		seq_end();
		rt_unlock();
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		__atomic_store_n(&rt_in_critical, 0, __ATOMIC_RELAXED);
	}
}

/* fd's entry changed: report it, now or, inside a handler that interrupted
 * this thread's own critical section, when that section ends. */
static void changed(int fd)
{
	if (RT_UNLIKELY(rt_in_critical)) {
		unsigned n = __atomic_fetch_add(&rt_ndefer, 1, __ATOMIC_RELAXED);
		if (n < RT_DEFER_MAX)
			rt_defer[n] = (uint32_t)fd;
		else if (rt_att->region)
			__atomic_or_fetch(&rt_att->region->flags,
					  CAPCR_CAPINFO_F_LOST, __ATOMIC_RELAXED);
		return;
	}
	enter_critical();
	rt_sync_locked(fd);
	leave_critical();
}

void rt_publish(int fd)
{
	changed(fd);
}

void rt_unpublish(int fd)
{
	struct capcr_cap_entry *e = rt_entry(fd, 0);

	if (!e)
		return;
	/* Dead at once, whether the report is made now or queued. */
	__atomic_store_n(&e->badge, 0, __ATOMIC_RELEASE);
	changed(fd);
}

void rt_unpublish_range(unsigned first, unsigned last)
{
	struct capcr_capinfo_header *h = rt_att->region;

	if (last >= (1u << 20))
		last = (1u << 20) - 1;
	if (rt_in_critical) { /* in a handler inside our own section */
		for (unsigned fd = first; fd <= last && fd < (1u << 20); fd++) {
			struct capcr_cap_entry *e = rt_entry((int)fd, 0);
			if (e && e->badge)
				rt_unpublish((int)fd);
			if (fd == last)
				break;
		}
		return;
	}
	enter_critical();
	/* With a region, walking its array beats walking a huge range. */
	if (h && last - first > h->count) {
		for (uint32_t i = 0; i < h->count;) {
			int k = rt_att->slots[i].kcap;
			struct capcr_cap_entry *e = rt_entry(k, 0);
			if ((unsigned)k >= first && (unsigned)k <= last && e) {
				__atomic_store_n(&e->badge, 0, __ATOMIC_RELEASE);
				rt_sync_locked(k); /* moves the last into i */
			} else {
				i++;
			}
		}
	} else {
		for (unsigned fd = first; fd <= last; fd++) {
			struct capcr_cap_entry *e = rt_entry((int)fd, 0);
			if (e && e->badge) {
				__atomic_store_n(&e->badge, 0, __ATOMIC_RELEASE);
				rt_sync_locked((int)fd);
			}
			if (fd == last)
				break;
		}
	}
	leave_critical();
}

/* Changing a published entry in place (connect, bind, listen): readers must
 * see the old or the new entry, never half of each. */
void rt_modify_begin(void)
{
	enter_critical();
}

void rt_modify_end(void)
{
	leave_critical();
}
