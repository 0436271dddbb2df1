/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore test of cgroups (tests/t_cgroups.sh): a parent with
 * a second thread and a child, which play a round every 20 ms through a
 * pair of pipes (the parent sends n, the child answers n + 1), so the
 * test can put each process in a cgroup of its own and see that both
 * still work after a restore.  Prints "ready pid=P kid=C tid=T" (T: the
 * parent's second thread); on SIGUSR1 the parent plays three more rounds
 * and prints "works rounds=N", or "FAIL ..." when an answer is wrong.
 * The child ends when the parent's pipe closes.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t asked;
static volatile pid_t thread_tid;

static void on_usr1(int sig)
{
	(void)sig;
	asked = 1;
}

static void *idle(void *arg)
{
	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		sleep(1);
	return NULL;
}

static int full(ssize_t r, size_t n)
{
	return r == (ssize_t)n;
}

int main(void)
{
	int down[2], up[2];
	uint64_t n = 0, m;

	if (pipe(down) < 0 || pipe(up) < 0)
		return perror("pipe"), 1;
	pid_t kid = fork();
	if (kid < 0)
		return perror("fork"), 1;
	if (kid == 0) {
		close(down[1]);
		close(up[0]);
		while (full(read(down[0], &m, sizeof(m)), sizeof(m))) {
			m++;
			if (!full(write(up[1], &m, sizeof(m)), sizeof(m)))
				return 1;
		}
		return 0;
	}
	close(down[0]);
	close(up[1]);
	pthread_t th;
	if (pthread_create(&th, NULL, idle, NULL))
		return fprintf(stderr, "pthread_create failed\n"), 1;
	while (!thread_tid)
		usleep(1000);
	signal(SIGUSR1, on_usr1);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready pid=%d kid=%d tid=%d\n", getpid(), kid, thread_tid);
	int after = -1;
	for (;;) {
		struct timespec step = { 0, 20 * 1000 * 1000 };
		nanosleep(&step, NULL);
		if (!full(write(down[1], &n, sizeof(n)), sizeof(n)) ||
		    !full(read(up[0], &m, sizeof(m)), sizeof(m))) {
			printf("FAIL the child is gone after %llu rounds\n",
			       (unsigned long long)n);
			return 1;
		}
		if (m != n + 1) {
			printf("FAIL round %llu: answer %llu\n",
			       (unsigned long long)n, (unsigned long long)m);
			return 1;
		}
		n++;
		if (asked) {
			asked = 0;
			after = 3;
		}
		if (after > 0 && --after == 0)
			printf("works rounds=%llu\n", (unsigned long long)n);
	}
}
