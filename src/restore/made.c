/* SPDX-License-Identifier: MIT */
/*
 * The processes a restore has made, and how a failed restore ends them.
 *
 * capcr restore is the child subreaper of everything it makes, so a
 * process whose parent died comes to it instead of to init: after a
 * failure it can kill and reap every last one, and tell a process that
 * died by itself from one that is still on its way.  A traced thread that
 * dies stays a zombie until its tracer reaps it with __WALL, and its
 * leader cannot be reaped before it: every wait here uses __WALL, and
 * none is without a deadline.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/proc.h"
#include "made.h"

int made_add(struct made *m, pid_t pid)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		pid_t *p = realloc(m->pid, cap * sizeof(*p));
		if (!p)
			return -1;
		m->pid = p;
		m->cap = cap;
	}
	m->pid[m->n++] = pid;
	return 0;
}

void made_free(struct made *m)
{
	free(m->pid);
	memset(m, 0, sizeof(*m));
}

/* How pid ended, if it is our child or tracee and has ended: "was killed
 * by signal 9", "exited with status 1"; the status stays to be reaped. */
static int ended_how(pid_t pid, char *buf, size_t len)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) <
		    0 ||
	    si.si_pid != pid)
		return 0;
	/* A tracee's stops are reported without WSTOPPED: not an end. */
	if (si.si_code != CLD_EXITED && si.si_code != CLD_KILLED &&
	    si.si_code != CLD_DUMPED)
		return 0;
	if (si.si_code == CLD_EXITED)
		snprintf(buf, len, "exited with status %d", si.si_status);
	else
		snprintf(buf, len, "was killed by signal %d (%s)", si.si_status,
			 strsignal(si.si_status));
	return 1;
}

int made_check(const struct made *m, char *why, size_t wl)
{
	for (size_t i = 0; i < m->n; i++) {
		char how[96];
		char st = proc_state(m->pid[i], NULL);
		if (ended_how(m->pid[i], how, sizeof(how)) ||
		    (proc_gone(st) &&
		     snprintf(how, sizeof(how), "was killed") > 0)) {
			snprintf(why, wl, "process %d %s during the restore",
				 m->pid[i], how);
			return -1;
		}
		if (st == 'T') {
			snprintf(why, wl, "process %d was stopped by a signal "
					  "from outside during the restore",
				 m->pid[i]);
			return -1;
		}
	}
	return 0;
}

/* Kill every child we have now (orphans of the tree come to us). */
static void kill_children(void)
{
	char path[300], buf[32];
	DIR *d = opendir("/proc/self/task");

	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children",
			 e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		while (fscanf(f, "%31s", buf) == 1) {
			long pid = strtol(buf, NULL, 10);
			if (pid > 0)
				kill((pid_t)pid, SIGKILL);
		}
		fclose(f);
	}
	closedir(d);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

size_t made_kill_all(const struct made *m, double seconds)
{
	double end = now_s() + seconds;

	for (;;) {
		for (size_t i = 0; i < m->n; i++)
			kill(m->pid[i], SIGKILL);
		kill_children();
		for (;;) {
			pid_t w = waitpid(-1, NULL, __WALL | WNOHANG);
			if (w > 0)
				continue;
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				goto reaped; /* ECHILD: no child, no tracee */
			break;
		}
		if (now_s() > end)
			break;
		usleep(2000);
	}
reaped:;
	size_t left = 0;
	for (size_t i = 0; i < m->n; i++)
		left += !proc_gone(proc_state(m->pid[i], NULL));
	return left;
}

int made_become_reaper(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1);
}
