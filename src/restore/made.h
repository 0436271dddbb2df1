/* SPDX-License-Identifier: MIT */
/* The processes a restore has made, and how a failed restore ends them
 * (made.c). */
#ifndef CAPCR_RESTORE_MADE_H
#define CAPCR_RESTORE_MADE_H

#include <stddef.h>
#include <sys/types.h>

struct made {
	pid_t *pid;
	size_t n, cap;
	size_t ready;
};

int made_add(struct made *m, pid_t pid);
void made_free(struct made *m);
/* -1 with why set if a process made has ended or was stopped from
 * outside (say how: "was killed by signal 9"), else 0. */
int made_check(const struct made *m, char *why, size_t wl);
/* Kill every process made and every orphan that came to us, reap them all
 * (tracees with __WALL), for at most seconds; the number still there. */
size_t made_kill_all(const struct made *m, double seconds);
/* Make the orphans of everything we make come to us. */
int made_become_reaper(void);

#endif
