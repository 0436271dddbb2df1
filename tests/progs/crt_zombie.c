/* SPDX-License-Identifier: MIT */
/*
 * crt_zombie: zombies in a tree, reaped after the restore (t_cr_tree2.sh).
 *
 *   CR_GO=FILE crt_zombie
 *
 * The root makes three children: A exits with status 42, B is killed by
 * SIGTERM (its own kill), C lives.  C makes D, which exits with status 7.
 * Nobody reaps yet: A, B and D stay zombies (waitid with WNOWAIT says
 * when).  Then the root prints "ready pid=R a=A b=B c=C d=D" and waits for
 * the go file.  Then each parent checks that its zombie children are still
 * zombies (state Z in /proc, its own PID as their parent) and reaps them,
 * checking how they ended (A: exit 42; B: killed by SIGTERM; D: exit 7);
 * C then exits 0, and the root checks that too, and that no other child
 * is left.  Ends with "PASS crt_zombie" or "FAIL crt_zombie (N failures)".
 *
 * C also sets a parent-death signal (SIGHUP) and, after the go file, prints
 * "C: parent-death signal N" with the one it has then: reported, not
 * counted in the verdict (the test checks that line on its own).
 */
#define _GNU_SOURCE
#include "crtest.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static char state_of(pid_t pid, pid_t *ppid)
{
	char path[64], buf[512];
	FILE *f;
	char st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');
		int pp = 0;
		if (p && sscanf(p + 2, "%c %d", &st, &pp) == 2 && ppid)
			*ppid = pp;
	}
	fclose(f);
	return st;
}

static void wait_zombie(pid_t p)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	SETUP(waitid(P_PID, (id_t)p, &si, WEXITED | WNOWAIT) == 0, "waitid");
}

static void check_zombie(const char *what, pid_t p)
{
	pid_t pp = 0;
	char st = state_of(p, &pp);
	CHECK(st == 'Z', "%s (%d) is in state %c, not a zombie", what, p,
	      st ? st : '-');
	CHECK(pp == getpid(), "%s (%d) has parent %d, not %d", what, p, pp,
	      getpid());
}

/* Reap p; check it exited with code (sig 0) or was killed by sig. */
static void reap(const char *what, pid_t p, int code, int sig)
{
	int st = 0;
	pid_t w = waitpid(p, &st, WNOHANG);
	if (!CHECK(w == p, "waitpid(%s %d) returned %d (%s)", what, p, w,
		   w < 0 ? strerror(errno) : "not ended"))
		return;
	if (sig)
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sig,
		      "%s: status %#x, expected killed by signal %d", what, st,
		      sig);
	else
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == code,
		      "%s: status %#x, expected exit %d", what, st, code);
	if (!cr_failures)
		cr_info("%s reaped: %s %d", what, sig ? "killed by signal" : "exit",
			sig ? sig : code);
}

int main(void)
{
	int ready[2];

	cr_init("crt_zombie");
	setvbuf(stdout, NULL, _IOLBF, 0);
	SETUP(pipe(ready) == 0, "pipe");
	pid_t a = fork();
	SETUP(a >= 0, "fork");
	if (a == 0)
		_exit(42);
	pid_t b = fork();
	SETUP(b >= 0, "fork");
	if (b == 0) {
		signal(SIGTERM, SIG_DFL);
		kill(getpid(), SIGTERM);
		_exit(99);
	}
	pid_t c = fork();
	SETUP(c >= 0, "fork");
	if (c == 0) {
		cr_name = "crt_zombie(C)";
		close(ready[0]);
		SETUP(prctl(PR_SET_PDEATHSIG, SIGHUP) == 0, "prctl");
		pid_t d = fork();
		SETUP(d >= 0, "fork");
		if (d == 0)
			_exit(7);
		wait_zombie(d);
		SETUP(write(ready[1], &d, sizeof(d)) == sizeof(d), "write");
		cr_wait_go();
		int pds = -1;
		prctl(PR_GET_PDEATHSIG, &pds);
		printf("C: parent-death signal %d\n", pds);
		check_zombie("D", d);
		reap("D", d, 7, 0);
		_exit(cr_failures ? 1 : 0);
	}
	close(ready[1]);
	pid_t d = 0;
	SETUP(read(ready[0], &d, sizeof(d)) == sizeof(d), "read");
	wait_zombie(a);
	wait_zombie(b);
	printf("ready pid=%d a=%d b=%d c=%d d=%d\n", getpid(), a, b, c, d);
	cr_wait_go();
	check_zombie("A", a);
	check_zombie("B", b);
	reap("A", a, 42, 0);
	reap("B", b, 0, SIGTERM);
	int st = 0;
	pid_t w = waitpid(c, &st, 0);
	CHECK(w == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "C (%d): waitpid returned %d, status %#x (C's own failures are "
	      "above)",
	      c, w, st);
	w = waitpid(-1, &st, WNOHANG);
	CHECK(w < 0 && errno == ECHILD, "another child left: waitpid returned "
					"%d",
	      w);
	return cr_done();
}
