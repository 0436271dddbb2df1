/* SPDX-License-Identifier: MIT */
/*
 * crr_zombie: keep an exited child as a zombie (t_cr_robust.sh).
 *
 *   crr_zombie
 *
 * Forks a child that exits at once and does not reap it: prints
 * "zombie PID" once the child is a zombie, then waits.  On SIGTERM (or
 * after 40 s) it reaps the child and exits 0, so no zombie outlives it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(void)
{
	struct sigaction sa;
	siginfo_t si;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0)
		_exit(0);
	/* Wait for it to be a zombie, without reaping it. */
	memset(&si, 0, sizeof(si));
	waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT);
	printf("zombie %d\n", child);
	fflush(stdout);
	for (int i = 0; i < 400 && !stop; i++) {
		struct timespec ts = { 0, 100000000 };
		nanosleep(&ts, NULL);
	}
	waitpid(child, NULL, 0);
	return 0;
}
