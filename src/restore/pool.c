/* SPDX-License-Identifier: MIT */
/*
 * The takeover pool (pool.h).
 *
 * Waiting.  The main thread waits for a tracee's stop with SIGCHLD and a
 * timed sigtimedwait; two tracer threads doing so would take each other's
 * SIGCHLD (one signal for the whole process) and sleep out their tick.  A
 * pool thread waits in a blocking waitpid for its own tracee instead
 * (tracee_wait_blocking), which wakes exactly when that tracee stops.
 * That wait has no way out of its own where a killed leader waits to be
 * reported until its other threads are reaped; the main thread is that
 * way out: it watches every process made while the pool works, and on a
 * death or a failure the caller kills and reaps them all (waitpid works
 * from any thread of the tracer's process), which ends every such wait.
 */
#define _GNU_SOURCE
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"

#define POOL_MAX 8

struct takeover_pool {
	struct restore_tree *t;
	int *taker;     /* per process: the thread that took it, or -1 */
	int nthreads;   /* 0: everything on the calling thread */
	pthread_t th[POOL_MAX];
	struct pool_thread {
		struct takeover_pool *pl;
		int id;
	} who[POOL_MAX];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t next;    /* the next process to take (atomic) */
	size_t done;    /* processes taken over, or given up */
	size_t failed;  /* index + 1 of the first that failed */
	int abort, quit;
	long req;       /* process to let go, or -1 */
	int req_done, req_result;
};

/* Seize process p and take it over: 0, or -1 with p->why set. */
static int take_one(struct restore_ctx *p)
{
	int r = tracee_seize(&p->t, p->pid, PTRACE_O_EXITKILL);

	if (r < 0) {
		snprintf(p->why, sizeof(p->why), "cannot take it over: %s",
			 strerror(-r));
		return -1;
	}
	p->seized = 1;
	return restore_takeover(p) < 0 || restore_update_capspace(p) < 0 ? -1
									 : 0;
}

/* Its threads, then its leader; a process stopped by a signal when it was
 * dumped stops again at once, as the signal makes it (group-stop). */
static int let_go_one(struct restore_ctx *p)
{
	int stop = p->task->has_stop_signal ? (int)p->task->stop_signal : 0;

	for (size_t k = 0; k < p->nthreads; k++) {
		/* A thread that cannot be let go but is there would stay
		 * stopped for ever: the restore fails instead. */
		if (ptrace(PTRACE_DETACH, p->threads[k].tid, 0, 0) == 0)
			continue;
		int e = errno;
		if (syscall(SYS_tgkill, p->pid, p->threads[k].tid, 0) == 0)
			return -e;
	}
	if (p->seized && ptrace(PTRACE_DETACH, p->pid, 0, stop) < 0)
		return -errno;
	return 0;
}

static void *worker(void *arg)
{
	const struct pool_thread *me = arg;
	struct takeover_pool *pl = me->pl;
	const int *id = &me->id;

	tracee_wait_blocking(1);
	for (;;) {
		size_t i = __atomic_fetch_add(&pl->next, 1, __ATOMIC_SEQ_CST);
		if (i >= pl->t->nprocs || __atomic_load_n(&pl->abort,
							  __ATOMIC_SEQ_CST))
			break;
		struct restore_ctx *p = &pl->t->procs[i];
		int bad = 0;
		if (!p->task->zombie) {
			pl->taker[i] = *id;
			bad = take_one(p) < 0;
		}
		pthread_mutex_lock(&pl->mu);
		if (bad && !pl->failed)
			pl->failed = i + 1;
		if (bad)
			pl->abort = 1;
		pl->done++;
		pthread_cond_broadcast(&pl->cv);
		pthread_mutex_unlock(&pl->mu);
	}
	/* Then let go what it took, when told. */
	pthread_mutex_lock(&pl->mu);
	for (;;) {
		if (pl->req >= 0 && pl->taker[pl->req] == *id) {
			size_t i = (size_t)pl->req;
			pl->req = -1;
			pthread_mutex_unlock(&pl->mu);
			int r = let_go_one(&pl->t->procs[i]);
			pthread_mutex_lock(&pl->mu);
			pl->req_result = r;
			pl->req_done = 1;
			pthread_cond_broadcast(&pl->cv);
			continue;
		}
		if (pl->quit)
			break;
		pthread_cond_wait(&pl->cv, &pl->mu);
	}
	pthread_mutex_unlock(&pl->mu);
	return NULL;
}

/* How many threads: one per processor, no more than there are processes
 * to take over; none (the calling thread alone) for one process. */
static int threads_for(const struct restore_tree *t)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	const char *cap = getenv("CAPCR_RESTORE_THREADS");
	size_t live = 0;

	/* For tests whose tracer sees the main thread only (strace without
	 * -f: tests/faults). */
	if (cap && atoi(cap) > 0 && atoi(cap) < cpus)
		cpus = atoi(cap);

	for (size_t i = 0; i < t->nprocs; i++)
		live += !t->procs[i].task->zombie;
	if (cpus > POOL_MAX)
		cpus = POOL_MAX;
	if (cpus < 2 || live < 2)
		return 0;
	return (int)(live < (size_t)cpus ? live : (size_t)cpus);
}

static int fail_of(struct takeover_pool *pl, char *why, size_t wl)
{
	const struct restore_ctx *p = &pl->t->procs[pl->failed - 1];

	snprintf(why, wl, "process %d: %s", p->pid, p->why);
	return -1;
}

int pool_takeover(struct takeover_pool **out, struct restore_tree *t,
		  const struct made *made, char *why, size_t wl)
{
	struct takeover_pool *pl = calloc(1, sizeof(*pl));

	*out = pl;
	if (!pl || !(pl->taker = malloc((t->nprocs + 1) * sizeof(int))))
		return snprintf(why, wl, "out of memory"), -1;
	pl->t = t;
	pl->req = -1;
	for (size_t i = 0; i < t->nprocs; i++)
		pl->taker[i] = -1;
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->cv, NULL);
	int want = threads_for(t);
	for (int k = 0; k < want; k++) {
		pl->who[k] = (struct pool_thread){ pl, k };
		if (pthread_create(&pl->th[k], NULL, worker, &pl->who[k]) != 0)
			break;
		pl->nthreads++;
	}
	if (!pl->nthreads) {
		/* On this thread, in order, as before there was a pool. */
		for (size_t i = 0; i < t->nprocs; i++) {
			struct restore_ctx *p = &t->procs[i];
			if (p->task->zombie)
				continue;
			if (take_one(p) < 0) {
				/* A process killed under us is the cause,
				 * not the call that found it gone. */
				pl->failed = i + 1;
				if (made_check(made, why, wl) == 0)
					fail_of(pl, why, wl);
				return -1;
			}
		}
		return 0;
	}
	pthread_mutex_lock(&pl->mu);
	while (pl->done < t->nprocs && !pl->abort) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		if (pthread_cond_timedwait(&pl->cv, &pl->mu, &until) !=
		    ETIMEDOUT)
			continue;
		/* Every process made must stay alive meanwhile: one that
		 * dies may hold a pool thread in its wait until we reap. */
		pthread_mutex_unlock(&pl->mu);
		int gone = made_check(made, why, wl) < 0;
		pthread_mutex_lock(&pl->mu);
		if (gone) {
			pl->abort = 1;
			pthread_mutex_unlock(&pl->mu);
			return -1;
		}
	}
	int failed = pl->abort;
	pthread_mutex_unlock(&pl->mu);
	if (!failed)
		return 0;
	/* Each thread ends the process it is on first: then the failure
	 * is known, and what made it. */
	if (made_check(made, why, wl) == 0)
		fail_of(pl, why, wl);
	return -1;
}

int pool_let_go(struct takeover_pool *pl, size_t i)
{
	int r;

	if (!pl->nthreads || pl->taker[i] < 0)
		return let_go_one(&pl->t->procs[i]);
	pthread_mutex_lock(&pl->mu);
	pl->req = (long)i;
	pl->req_done = 0;
	pthread_cond_broadcast(&pl->cv);
	while (!pl->req_done)
		pthread_cond_wait(&pl->cv, &pl->mu);
	r = pl->req_result;
	pthread_mutex_unlock(&pl->mu);
	return r;
}

void pool_end(struct takeover_pool *pl)
{
	if (!pl)
		return;
	if (pl->taker) {
		pthread_mutex_lock(&pl->mu);
		pl->quit = pl->abort = 1;
		pthread_cond_broadcast(&pl->cv);
		pthread_mutex_unlock(&pl->mu);
		for (int k = 0; k < pl->nthreads; k++)
			pthread_join(pl->th[k], NULL);
		pthread_mutex_destroy(&pl->mu);
		pthread_cond_destroy(&pl->cv);
	}
	free(pl->taker);
	free(pl);
}
