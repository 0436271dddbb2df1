/* SPDX-License-Identifier: MIT */
/*
 * reaper: run one test in a session of its own, under a time limit, and
 * make sure it leaves nothing behind.  Used by tests/run.sh; not a target.
 *
 *   reaper [-t SECONDS] [-g GRACE] [-s STATUS_FILE] -- CMD [ARG...]
 *
 * reaper becomes a child subreaper (PR_SET_CHILD_SUBREAPER) and runs CMD
 * as its child in a new session (setsid), so CMD's process group is its
 * session and its PID.  Every process CMD starts stays a descendant of
 * reaper whatever it does: one that calls setsid (capcr restore, a restored
 * tree with sessions of its own) is still below it, and one whose parent
 * dies (a daemon that double-forks) is reparented to reaper or to a
 * subreaper below it, never to init.
 *
 * After SECONDS (default 300; 0: no limit), or when reaper itself gets
 * SIGTERM, SIGINT or SIGHUP, CMD's process group gets SIGTERM, then SIGKILL
 * GRACE seconds later (default 5) if CMD is still there.  Processes are
 * only ever signalled by PID or by CMD's process group ID, never by name.
 *
 * Once CMD has ended, its descendants have GRACE seconds to end too
 * (zombies are reaped as they come).  Those still there afterwards are
 * leftovers: each is reported on stderr as
 *
 *   reaper: left behind: PID COMM state S ppid P sid S
 *
 * then killed with SIGKILL (which ends stopped and ptrace-stopped processes
 * as well) and reaped, deepest first, until none is left.
 *
 * STATUS_FILE, if given, receives "key value" lines for the runner:
 *   status N        CMD's exit status (128+N when signal N ended it)
 *   timeout 0|1     whether the time limit (or a signal to reaper) ended it
 *   seconds S.S     how long CMD ran
 *   leftovers N     how many processes were left behind
 *   left PID COMM STATE   one line for each
 *
 * The exit status is CMD's; 124 after a timeout; 125 when reaper itself
 * failed.  The runner reads STATUS_FILE for the leftovers.
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
#include <time.h>
#include <unistd.h>

#define MAXP 4096

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Read a small /proc file into buf; returns its length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -1;
	while ((size_t)got < len - 1 &&
	       (n = read(fd, buf + got, len - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	return got;
}

struct pinfo {
	pid_t pid, ppid, sid;
	char state;
	char comm[32];
};

static int pinfo_of(pid_t pid, struct pinfo *pi)
{
	char path[64], buf[1024], *lp, *rp;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (slurp(path, buf, sizeof(buf)) <= 0)
		return -1;
	lp = strchr(buf, '(');
	rp = strrchr(buf, ')');
	if (!lp || !rp || rp < lp)
		return -1;
	memset(pi, 0, sizeof(*pi));
	pi->pid = pid;
	snprintf(pi->comm, sizeof(pi->comm), "%.*s",
		 (int)(rp - lp - 1 < 31 ? rp - lp - 1 : 31), lp + 1);
	int pgrp;
	if (sscanf(rp + 2, "%c %d %d %d", &pi->state, &pi->ppid, &pgrp,
		   &pi->sid) != 4)
		return -1;
	return 0;
}

/*
 * All descendants of this process, breadth first (parents before their
 * children), from the children lists of every thread.
 */
static int descendants(pid_t *out, int max)
{
	static pid_t queue[MAXP];
	static char buf[65536];
	int n = 0, i = 0, qn = 0;
	pid_t self = getpid();

	queue[qn++] = self;
	while (i < qn) {
		pid_t p = queue[i++];
		char path[300];
		DIR *d;
		struct dirent *e;

		if (p != self && n < max)
			out[n++] = p;
		snprintf(path, sizeof(path), "/proc/%d/task", p);
		d = opendir(path);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			char *s, *end;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%s/children",
				 p, e->d_name);
			if (slurp(path, buf, sizeof(buf)) <= 0)
				continue;
			for (s = buf;; s = end) {
				long c = strtol(s, &end, 10);
				if (end == s)
					break;
				if (c > 0 && qn < MAXP)
					queue[qn++] = (pid_t)c;
			}
		}
		closedir(d);
	}
	return n;
}

static void reap_zombies(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Descendants that are not zombies. */
static int live_descendants(pid_t *out, int max)
{
	static pid_t all[MAXP];
	int n = descendants(all, MAXP), m = 0;

	for (int i = 0; i < n; i++) {
		struct pinfo pi;
		if (pinfo_of(all[i], &pi) < 0)
			continue;
		if (pi.state == 'Z' || pi.state == 'X')
			continue;
		if (m < max)
			out[m++] = all[i];
	}
	return m;
}

static void usage(void)
{
	fprintf(stderr, "usage: reaper [-t SECONDS] [-g GRACE] "
			"[-s STATUS_FILE] -- CMD [ARG...]\n");
	exit(125);
}

int main(int argc, char **argv)
{
	double limit = 300, grace = 5, t0, t_end = 0;
	const char *status_file = NULL;
	int opt, status = 0, timed_out = 0, have_status = 0;
	pid_t child;
	struct sigaction sa;
	static pid_t left[MAXP];
	static struct pinfo linfo[64];
	int nleft = 0, nreported = 0;

	while ((opt = getopt(argc, argv, "+t:g:s:")) != -1) {
		switch (opt) {
		case 't':
			limit = atof(optarg);
			break;
		case 'g':
			grace = atof(optarg);
			break;
		case 's':
			status_file = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("reaper: PR_SET_CHILD_SUBREAPER");
		return 125;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	t0 = now();
	child = fork();
	if (child < 0) {
		perror("reaper: fork");
		return 125;
	}
	if (child == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (setsid() < 0)
			perror("reaper: setsid");
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "reaper: %s: %s\n", argv[optind],
			strerror(errno));
		_exit(127);
	}

	/* Wait for CMD, reaping whatever else ends meanwhile. */
	double killed_at = 0;
	for (;;) {
		pid_t w;
		int st;

		while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
			if (w == child) {
				status = WIFEXITED(st) ? WEXITSTATUS(st)
						       : 128 + WTERMSIG(st);
				have_status = 1;
			}
		}
		if (have_status)
			break;
		double t = now();
		if (!timed_out && (got_signal || (limit > 0 && t - t0 >= limit))) {
			timed_out = 1;
			t_end = t;
			if (got_signal)
				fprintf(stderr, "reaper: signal %d: ending the "
					"test's process group %d\n",
					(int)got_signal, child);
			else
				fprintf(stderr, "reaper: time limit of %.0f s "
					"reached: ending the test's process "
					"group %d\n", limit, child);
			kill(-child, SIGTERM);
			kill(child, SIGCONT);
			kill(-child, SIGCONT);
			killed_at = t;
		}
		if (timed_out && killed_at && t - killed_at >= grace) {
			kill(-child, SIGKILL);
			kill(child, SIGKILL);
			killed_at = 0;
		}
		nap_ms(20);
	}
	if (!timed_out)
		t_end = now();

	/* Whatever CMD started has GRACE seconds to end by itself. */
	double g0 = now();
	do {
		reap_zombies();
		nleft = live_descendants(left, MAXP);
		if (!nleft)
			break;
		nap_ms(20);
	} while (now() - g0 < grace);

	/* Leftovers: report, kill by PID, reap; again until none. */
	for (int round = 0; nleft && round < 500; round++) {
		for (int i = 0; i < nleft; i++) {
			struct pinfo pi;
			int known = 0;
			if (pinfo_of(left[i], &pi) < 0)
				continue;
			for (int k = 0; k < nreported; k++)
				known |= linfo[k].pid == pi.pid;
			if (!known) {
				fprintf(stderr, "reaper: left behind: %d %s "
					"state %c ppid %d sid %d\n", pi.pid,
					pi.comm, pi.state, pi.ppid, pi.sid);
				if (nreported < 64)
					linfo[nreported++] = pi;
				else
					nreported++;
			}
		}
		/* deepest first, so that parents do not respawn them */
		for (int i = nleft - 1; i >= 0; i--)
			kill(left[i], SIGKILL);
		nap_ms(round < 10 ? 10 : 100);
		reap_zombies();
		nleft = live_descendants(left, MAXP);
	}
	reap_zombies();
	if (nleft)
		fprintf(stderr, "reaper: %d processes would not die\n", nleft);

	if (status_file) {
		FILE *f = fopen(status_file, "we");
		if (f) {
			fprintf(f, "status %d\ntimeout %d\nseconds %.1f\n"
				   "leftovers %d\n",
				status, timed_out, t_end - t0, nreported);
			for (int k = 0; k < nreported && k < 64; k++)
				fprintf(f, "left %d %s %c\n", linfo[k].pid,
					linfo[k].comm, linfo[k].state);
			fclose(f);
		}
	}
	if (timed_out)
		return 124;
	return status;
}
