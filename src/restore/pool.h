/* SPDX-License-Identifier: MIT */
/*
 * Taking the processes of a restore over on several threads (pool.c):
 * each process's takeover (takeover.c) is a long run of injected calls,
 * each a stop and a wake-up, and one process's run is independent of
 * another's.  The thread that seizes a process is its tracer until it lets
 * it go, so the same thread that took a process over lets it go, when
 * capcr restore's main thread says so.
 */
#ifndef CAPCR_RESTORE_POOL_H
#define CAPCR_RESTORE_POOL_H

#include <stddef.h>

#include "made.h"
#include "restore.h"

struct takeover_pool;

/*
 * Take every process of t over (not its zombies), on up to as many threads
 * as there are processors, watching meanwhile that every process made is
 * still there.  *out is the pool, to be ended with pool_end even on
 * failure.  0, or -1 with why set: then the caller kills and reaps every
 * process made (made_kill_all) BEFORE pool_end, which waits for the threads.
 */
int pool_takeover(struct takeover_pool **out, struct restore_tree *t,
		  const struct made *made, char *why, size_t wl);
/* Let process i go, by its tracer: 0 or -errno. */
int pool_let_go(struct takeover_pool *pl, size_t i);
/* The pool's threads end (what they traced was let go, or killed). */
void pool_end(struct takeover_pool *pl);

#endif
