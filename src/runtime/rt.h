/* SPDX-License-Identifier: MIT */
/*
 * Internals of libcapcr, the target runtime.  Nothing here is exported:
 * the library is built with hidden visibility and only the libc wrappers
 * and the public API in include/capcr/ are visible.
 *
 * The runtime never calls a libc function it wraps (that would recurse
 * through its own wrappers); it uses raw system calls for its own work and
 * the real libc functions (rt_real.h) on behalf of the application.
 */
#ifndef CAPCR_RT_H
#define CAPCR_RT_H

#include <stdint.h>
#include <sys/types.h>

#include "capcr/capinfo.h"

#define RT_HIDDEN __attribute__((visibility("hidden")))
#define RT_TLS __attribute__((tls_model("initial-exec")))
#define RT_LIKELY(x) __builtin_expect(!!(x), 1)
#define RT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * Per-process state that a forked child must not inherit.  It lives in one
 * private anonymous page marked MADV_WIPEONFORK, so any child made without
 * CLONE_VM (fork, _Fork, a raw clone) finds it zeroed and knows that it has
 * no region of its own yet, whatever path created it.
 */
struct rt_attach {
	struct capcr_capinfo_header *region; /* shm: mapped region */
	struct capcr_cap_info *slots;        /* shm: region's array */
	uint32_t *lockw;   /* the lock word: region's, or ipc_lock */
	uint32_t ipc_lock;
	int ipc_fd;        /* ipc: session socket, else -1 */
	int mode;          /* enum capcr_pd_mode; 0 = not attached */
	int attaching;     /* guards against re-entry during attach */
	int pid;           /* the process this was attached for */
	uint64_t badge_base;
	uint64_t badge_next;
};

/* Set once at startup when a PD channel is named; inherited by forks.
 * 0 means "core": every wrapper falls straight through. */
extern int rt_monitored RT_HIDDEN;
extern struct rt_attach *rt_att RT_HIDDEN;
extern char rt_pd_name[] RT_HIDDEN;
extern int rt_ipc_fd_any RT_HIDDEN;

/* The runtime's own descriptor (the ipc session), which the application
 * must neither see nor close. */
static inline int rt_is_own_fd(int fd)
{
	return RT_UNLIKELY(fd >= 0 && fd == rt_ipc_fd_any);
}
/* Non-zero in the thread (and its vfork child) between vfork and the
 * parent's return from it: the child shares our memory and must not
 * report anything. */
extern __thread int rt_in_vfork RT_HIDDEN RT_TLS;

/* attach.c */
RT_HIDDEN int rt_attach_slow(void);
RT_HIDDEN void rt_init(void);

/*
 * Should this call report?  One load and a compare when not monitored
 * (the "costs nothing" promise); attaches lazily in a child made behind
 * our back.
 */
static inline int rt_active(void)
{
	if (RT_LIKELY(!rt_monitored))
		return 0;
	if (RT_UNLIKELY(rt_in_vfork))
		return 0;
	if (RT_LIKELY(rt_att->mode))
		return 1;
	return rt_attach_slow();
}

/* capmap.c: the private cap map, one capcr_cap_entry per descriptor. */
RT_HIDDEN struct capcr_cap_entry *rt_entry(int fd, int create);
/* fd's index in the region + 1, or 0; changed only with the lock held. */
RT_HIDDEN uint32_t *rt_slot_of(int fd);
RT_HIDDEN uint64_t rt_badge_new(void);
RT_HIDDEN void rt_capmap_clear_all(void);
typedef void (*rt_entry_fn)(struct capcr_cap_entry *e, void *arg);
RT_HIDDEN void rt_capmap_each(rt_entry_fn fn, void *arg);

/* report.c: the region (or ipc session) updates. */
RT_HIDDEN void rt_publish(int fd);
RT_HIDDEN void rt_unpublish(int fd);
RT_HIDDEN void rt_unpublish_range(unsigned first, unsigned last);
RT_HIDDEN void rt_modify_begin(void);
RT_HIDDEN void rt_modify_end(void);
RT_HIDDEN void rt_lock(void);
RT_HIDDEN void rt_unlock(void);
/* Make the region agree with the cap map for fd; lock held. */
RT_HIDDEN void rt_sync_locked(int fd);

/* record.c: what wrappers call. */
/* Start a new entry for fd (which the kernel just gave us): returns the
 * zeroed entry with kcap, kind, origin set and badge 0, or NULL. */
RT_HIDDEN struct capcr_cap_entry *rt_new(int fd, int kind, int origin);
/* Finish it: give it a badge (0: a new one) and publish it. */
RT_HIDDEN void rt_done(struct capcr_cap_entry *e, uint64_t badge);
/* newfd is a duplicate of oldfd (same open file description). */
RT_HIDDEN void rt_dup(int oldfd, int newfd, int cloexec);
/* fd is about to be closed (or replaced): take it out of the region. */
RT_HIDDEN void rt_closing(int fd);
/* Copy a C string into an entry's path, marking truncation. */
RT_HIDDEN void rt_set_path(struct capcr_cap_entry *e, const char *path);
RT_HIDDEN int rt_kind_of_fd(int fd, char *target, size_t size);

/* Raw system calls, so the runtime never enters its own wrappers. */
RT_HIDDEN long rt_sys(long nr, long a, long b, long c, long d, long e,
		      long f);
#define RT_SYS0(n) rt_sys(n, 0, 0, 0, 0, 0, 0)
#define RT_SYS1(n, a) rt_sys(n, (long)(a), 0, 0, 0, 0, 0)
#define RT_SYS2(n, a, b) rt_sys(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define RT_SYS3(n, a, b, c) rt_sys(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define RT_SYS4(n, a, b, c, d)                                               \
	rt_sys(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define RT_SYS6(n, a, b, c, d, e, f)                                         \
	rt_sys(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e),      \
	       (long)(f))

#endif
