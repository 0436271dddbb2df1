/* SPDX-License-Identifier: MIT */
/*
 * Scheduling and the smaller process attributes.  Per thread, the kernel
 * keeps the scheduling policy, its real-time priority and the nice value:
 * read and set from outside by thread id (sched_getscheduler,
 * getpriority(PRIO_PROCESS, tid)).  Per process: oom_score_adj (in /proc),
 * "THP_enabled" (status), and the child-subreaper flag, which only the
 * process itself can read (an injected prctl) and set (in the prelude).
 * Scheduling goes back last, just before the processes run, so that a
 * process that ran at idle priority does not slow its own restore.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/proc.h"
#include "../dump/dump.h"
#include "attrs.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

int attrs_dump(struct dump_ctx *ctx, Capcr__Task *t, const char *status)
{
	char path[64], buf[32];

	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", ctx->pid);
	if (proc_read_small(path, buf, sizeof(buf)) > 0) {
		t->has_oom_score_adj = 1;
		t->oom_score_adj = atoi(buf);
	}
	const char *p = strstr(status, "\nTHP_enabled:");
	if (p && atoi(p + 13) == 0)
		t->has_thp_disabled = t->thp_disabled = 1;
	/* PR_GET_CHILD_SUBREAPER writes an int at the address it is given. */
	int sub = 0;
	long r = dump_syscall(ctx, SYS_prctl, PR_GET_CHILD_SUBREAPER,
			      (long)ctx->scratch, 0, 0, 0, 0);
	if (r < 0 || dump_peek(ctx, ctx->scratch, &sub, sizeof(sub)) < 0)
		return DUMP_FAIL(ctx, "cannot read the child-subreaper flag of "
				      "process %d: %s",
				 ctx->pid, strerror(r < 0 ? (int)-r : EIO));
	if (sub)
		t->has_child_subreaper = t->child_subreaper = 1;
	return 0;
}

void attrs_dump_thread(pid_t tid, Capcr__Thread *th)
{
	struct sched_param sp = { 0 };
	int pol = sched_getscheduler(tid);

	if (pol >= 0 && sched_getparam(tid, &sp) == 0) {
		th->has_sched_policy = th->has_sched_priority = 1;
		th->sched_policy = (uint32_t)pol;
		th->sched_priority = (uint32_t)sp.sched_priority;
	}
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, (id_t)tid);
	if (!errno) {
		th->has_nice = 1;
		th->nice = nice;
	}
}

static int realtime(uint32_t policy)
{
	policy &= ~(uint32_t)SCHED_RESET_ON_FORK;
	return policy == SCHED_FIFO || policy == SCHED_RR;
}

int attrs_check(const Capcr__Task *t, uid_t owner, char *why, size_t wl)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		const Capcr__Thread *th = t->threads[i];
		uint32_t pol = th->sched_policy & ~(uint32_t)SCHED_RESET_ON_FORK;
		if (th->has_sched_policy &&
		    ((pol != SCHED_OTHER && pol != SCHED_BATCH &&
		      pol != SCHED_IDLE && !realtime(pol)) ||
		     th->sched_priority > 99 ||
		     (!realtime(pol) && th->sched_priority)))
			return snprintf(why, wl, "thread %d: scheduling policy "
						 "%u with priority %u is not one "
						 "capcr restores",
					th->tid, th->sched_policy,
					th->sched_priority),
			       -1;
		if (th->has_nice && (th->nice < -20 || th->nice > 19))
			return snprintf(why, wl, "thread %d: nice %d", th->tid,
					th->nice),
			       -1;
		if (owner && ((th->has_sched_policy && realtime(pol)) ||
			      (th->has_nice && th->nice < 0)))
			return snprintf(why, wl,
					"thread %d ran with a real-time policy "
					"or a nice value below 0, which only "
					"root may give: the image belongs to "
					"uid %u (docs/security.md)",
					th->tid, (unsigned)owner),
			       -1;
	}
	if (t->has_oom_score_adj &&
	    (t->oom_score_adj < -1000 || t->oom_score_adj > 1000))
		return snprintf(why, wl, "oom_score_adj %d", t->oom_score_adj),
		       -1;
	if (owner && t->has_oom_score_adj && t->oom_score_adj < 0)
		return snprintf(why, wl,
				"process %d had oom_score_adj %d, below 0, "
				"which only root may give: the image belongs "
				"to uid %u (docs/security.md)",
				t->pid, t->oom_score_adj, (unsigned)owner),
		       -1;
	return 0;
}

int attrs_restore_prelude(const Capcr__Task *t, char *why, size_t wl)
{
	if (t->has_oom_score_adj) {
		char v[16];
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		int n = snprintf(v, sizeof(v), "%d", t->oom_score_adj);
		if (fd < 0 || write(fd, v, (size_t)n) != n) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return snprintf(why, wl, "cannot set oom_score_adj %d: "
						 "%s", t->oom_score_adj,
					strerror(e)),
			       -1;
		}
		close(fd);
	}
	if (t->child_subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return snprintf(why, wl, "cannot become a child subreaper: %s",
				strerror(errno)),
		       -1;
	if (t->thp_disabled && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0)
		return snprintf(why, wl, "cannot refuse transparent huge pages: "
					 "%s", strerror(errno)),
		       -1;
	return 0;
}

int attrs_restore_threads(const Capcr__Task *t, char *why, size_t wl)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		const Capcr__Thread *th = t->threads[i];
		if (th->has_sched_policy) {
			struct sched_param sp = {
				.sched_priority = (int)th->sched_priority
			};
			if (sched_setscheduler(th->tid, (int)th->sched_policy,
					       &sp) < 0)
				return snprintf(why, wl,
						"cannot give thread %d its "
						"scheduling policy %u (priority "
						"%u): %s",
						th->tid, th->sched_policy,
						th->sched_priority,
						strerror(errno)),
				       -1;
		}
		if (th->has_nice &&
		    setpriority(PRIO_PROCESS, (id_t)th->tid, th->nice) < 0)
			return snprintf(why, wl, "cannot give thread %d its nice "
						 "value %d: %s",
					th->tid, th->nice, strerror(errno)),
			       -1;
	}
	return 0;
}
