/* SPDX-License-Identifier: MIT */
/*
 * crt_sub: run a command as a child subreaper that reaps everything
 * (t_cr_tree*.sh, bench section tree).
 *
 *   crt_sub CMD [ARG...]
 *
 * Runs CMD as its child with itself the child subreaper, and reaps every
 * process that ends below it: CMD, and every orphan that is reparented to
 * it.  It exits once it has no child left, with CMD's status (128+N when
 * signal N ended it); 125 when crt_sub itself failed.
 *
 * Why: capcr dump kills the whole tree; the root is reaped by its parent,
 * but its children are orphans, and this machine's init reaps orphans only
 * every second or two, while a restore needs every PID free.  Under
 * crt_sub the orphans are reaped at once, and the test knows the whole
 * tree is gone when crt_sub has exited.  SIGTERM, SIGINT and SIGHUP are
 * passed on to CMD.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;

static void pass_on(int sig)
{
	if (child > 0)
		kill(child, sig);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	int st = 0, have = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: crt_sub CMD [ARG...]\n");
		return 125;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("crt_sub: PR_SET_CHILD_SUBREAPER");
		return 125;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pass_on;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	pid_t c = fork();
	if (c < 0) {
		perror("crt_sub: fork");
		return 125;
	}
	if (c == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "crt_sub: cannot run %s: %s\n", argv[1],
			strerror(errno));
		_exit(127);
	}
	child = c;
	for (;;) {
		int s;
		pid_t w = waitpid(-1, &s, __WALL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: nothing left */
		}
		if (w == c) {
			st = s;
			have = 1;
			child = 0;
		}
	}
	if (!have)
		return 125;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}
