/* SPDX-License-Identifier: MIT */
/* Scheduling and the smaller process attributes: recorded at dump, given
 * back at restore (attrs.c). */
#ifndef CAPCR_ATTRS_H
#define CAPCR_ATTRS_H

#include <stddef.h>
#include <sys/types.h>

#include "capcr.pb-c.h"

struct dump_ctx;

/* The process's: oom_score_adj, transparent huge pages refused (from
 * status, the text of /proc/PID/status), child subreaper (an injected
 * prctl).  0, or -1 with the context's reason. */
int attrs_dump(struct dump_ctx *ctx, Capcr__Task *t, const char *status);
/* A thread's scheduling policy, real-time priority and nice value. */
void attrs_dump_thread(pid_t tid, Capcr__Thread *th);
/* Whether an image owned by uid owner may ask for these: root's any;
 * anyone else's only what that user could set (no real-time policy, no
 * nice below 0, no oom_score_adj below 0).  0, or -1 with why. */
int attrs_check(const Capcr__Task *t, uid_t owner, char *why, size_t wl);
/* In the new process, before its memory is replaced: the process-wide
 * ones.  0, or -1 with why. */
int attrs_restore_prelude(const Capcr__Task *t, char *why, size_t wl);
/* From capcr restore, every thread made, just before the processes run:
 * each thread's scheduling.  0, or -1 with why. */
int attrs_restore_threads(const Capcr__Task *t, char *why, size_t wl);

#endif
