/* SPDX-License-Identifier: MIT */
/*
 * crr_reaper: run a command as a child subreaper and report what it left.
 *
 *   crr_reaper CMD [ARG...]
 *
 * Runs CMD (capcr restore, in t_cr_robust.sh) as its child, with itself
 * the child subreaper, so every process CMD leaves behind when it exits
 * becomes a child of crr_reaper instead of init.  Once CMD has ended, each
 * such process is reported on stderr as
 *
 *   crr_reaper: stray process PID (COMM) left behind
 *
 * then killed (by its PID) and reaped; a child that ends by itself within
 * 2 s is not one.  The exit status is CMD's (128+N
 * when signal N ended it); 125 when crr_reaper itself failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(buf, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* Children that are on their way out by themselves (a process capcr
 * restore made notices that its maker died, or gets its parent-death
 * signal) are reaped, not counted: up to 2 s, until none is left. */
static void grace(const char *path)
{
	char buf[64];

	for (int i = 0; i < 200; i++) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (len <= 0)
			return;
		usleep(10000);
	}
}

/* Kill and reap every child left; returns how many there were. */
static int sweep(void)
{
	char path[64], buf[4096];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", getpid());
	grace(path);
	for (int round = 0; round < 50; round++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (len <= 0) {
			/* none listed: reap any zombie child, then done */
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			return n;
		}
		buf[len] = 0;
		for (char *p = buf, *e; *p; p = e) {
			long pid = strtol(p, &e, 10);
			if (e == p)
				break;
			if (pid <= 0)
				continue;
			char comm[64];
			comm_of((pid_t)pid, comm, sizeof(comm));
			fprintf(stderr,
				"crr_reaper: stray process %ld (%s) left "
				"behind\n",
				pid, comm);
			kill((pid_t)pid, SIGCONT);
			kill((pid_t)pid, SIGKILL);
			waitpid((pid_t)pid, NULL, 0);
			n++;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	int st;
	pid_t child;

	if (argc < 2) {
		fprintf(stderr, "usage: crr_reaper CMD [ARG...]\n");
		return 125;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("crr_reaper: PR_SET_CHILD_SUBREAPER");
		return 125;
	}
	child = fork();
	if (child < 0) {
		perror("crr_reaper: fork");
		return 125;
	}
	if (child == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "crr_reaper: cannot run %s: %s\n", argv[1],
			strerror(errno));
		_exit(127);
	}
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR) {
			perror("crr_reaper: waitpid");
			return 125;
		}
	sweep();
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}
