/* SPDX-License-Identifier: MIT */
/*
 * fork() while another thread holds the region's lock.
 *
 *   fork_stress [NFORKS [ipc]]        (default 200)
 *
 * Thread A opens and closes descriptors (and pipes) in a loop, so it often
 * holds the lock when the main thread forks.  The main thread forks NFORKS
 * times; each child opens a descriptor, and checks that it is monitored
 * (capcr_monitored), has its own region (/proc/self/maps, header pid = its
 * own), that the descriptor is in it with a badge, and that the region is
 * exactly its kernel table; then _exit()s with a bit per failed check.
 * A child that does not finish within 10 s is a deadlock.
 *
 * Then, with thread A stopped, the parent opens a file, a pipe and a socket
 * pair and forks a child that stays: the child checks that it sees the
 * parent's badges, and both wait.  Prints "ready pid=P child=C fds=...
 * badges=..." and waits for SIGUSR2 (the child too: send it to both).
 * With "ipc" (capcr run --capinfo=ipc) no region is mapped: the children
 * check only that they are monitored and their descriptors have badges.
 */
#include "tprog.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>

static volatile int stop;
static long a_ops;

static void *thread_a(void *arg)
{
	(void)arg;
	while (!stop) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			close(fd);
		if ((a_ops++ & 7) == 0) {
			int p[2];
			if (pipe(p) == 0) {
				close(p[0]);
				close(p[1]);
			}
		}
	}
	return NULL;
}

enum {
	C_NOT_MONITORED = 1,
	C_NO_REGION = 2,
	C_REGION_PID = 4,
	C_FD_MISSING = 8,
	C_NOT_EXACT = 16,
	C_OPEN = 32,
};

static struct tp_snap csnap;
static int ipc;
static unsigned char ckfds[TP_MAXFD];

/* In the child: no stdio, no malloc; exit code says what failed. */
static int child_checks(int (*monitored)(void), uint64_t (*badge)(int))
{
	int bits = 0;
	int fd = open("/dev/null", O_RDONLY);

	if (fd < 0)
		bits |= C_OPEN;
	if (!monitored || monitored() != 1)
		bits |= C_NOT_MONITORED;
	if (ipc)
		return bits | (!badge || !badge(fd) ? C_FD_MISSING : 0) |
		       (tp_region(NULL) ? C_NO_REGION : 0);
	struct capcr_capinfo_header *r = tp_region(NULL);
	if (!r)
		return bits | C_NO_REGION;
	if (r->pid != getpid())
		bits |= C_REGION_PID;
	if (tp_snapshot(r, &csnap, 100000) < 0)
		return bits | C_NOT_EXACT;
	int found = 0;
	for (uint32_t i = 0; i < csnap.h.count; i++)
		if (csnap.a[i].kcap == fd)
			found = 1;
	if (!found || !badge || !badge(fd))
		bits |= C_FD_MISSING;
	tp_kernel_fds(ckfds, TP_MAXFD);
	int n = 0;
	for (uint32_t i = 0; i < csnap.h.count; i++) {
		int k = csnap.a[i].kcap;
		if (k < 0 || k >= TP_MAXFD || !ckfds[k] || ckfds[k] == 2)
			bits |= C_NOT_EXACT;
		else
			ckfds[k] = 2, n++;
	}
	for (int k = 0; k < TP_MAXFD; k++)
		if (ckfds[k] == 1)
			bits |= C_NOT_EXACT;
	return bits;
}

int main(int argc, char **argv)
{
	int nforks = argc > 1 ? atoi(argv[1]) : 200;
	int (*monitored)(void) =
		(int (*)(void))dlsym(RTLD_DEFAULT, "capcr_monitored");
	uint64_t (*badge)(int) =
		(uint64_t(*)(int))dlsym(RTLD_DEFAULT, "capcr_badge");

	tp_init("fork_stress");
	ipc = argc > 2 && !strcmp(argv[2], "ipc");
	TP_CHECK(monitored && monitored() == 1, "parent not monitored");
	struct capcr_capinfo_header *pr = tp_region(NULL);
	TP_CHECK(ipc ? pr == NULL : pr != NULL, "parent's region: %p", pr);

	pthread_t a;
	pthread_create(&a, NULL, thread_a, NULL);
	usleep(10000);

	int bad[64] = { 0 }, ok = 0, hung = 0;
	double t0 = tp_now();
	for (int i = 0; i < nforks; i++) {
		pid_t p = fork();
		if (p < 0)
			tp_die("fork");
		if (p == 0)
			_exit(child_checks(monitored, badge));
		int st = 0;
		double dl = tp_now() + 10;
		pid_t w;
		while ((w = waitpid(p, &st, WNOHANG)) == 0 && tp_now() < dl)
			usleep(200);
		if (w == 0) {
			hung++;
			kill(p, SIGKILL);
			waitpid(p, &st, 0);
			continue;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			ok++;
		} else if (WIFEXITED(st)) {
			for (int b = 0; b < 6; b++)
				if (WEXITSTATUS(st) & (1 << b))
					bad[b]++;
		} else {
			bad[63]++;
		}
	}
	double t1 = tp_now();
	stop = 1;
	pthread_join(a, NULL);
	printf("%d forks in %.2f s while thread A did %ld open/close: %d ok, "
	       "%d hung\n", nforks, t1 - t0, a_ops, ok, hung);
	TP_CHECK(hung == 0, "%d children deadlocked (no exit within 10 s)",
		 hung);
	static const char *what[] = { "not monitored", "no region of its own",
				      "region of another PID",
				      "its new fd not in its region",
				      "region differs from its kernel table",
				      "open failed" };
	for (int b = 0; b < 6; b++)
		TP_CHECK(bad[b] == 0, "%d children: %s", bad[b], what[b]);
	TP_CHECK(bad[63] == 0, "%d children died of a signal", bad[63]);
	if (!tp_failures)
		tp_pass("%d forks, no deadlock, every child attached", nforks);

	/* Badges stable across fork. */
	int f = open("/etc/hostname", O_RDONLY);
	int p[2], s[2];
	if (f < 0 || pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) < 0)
		tp_die("open/pipe/socketpair");
	int fds[5] = { f, p[0], p[1], s[0], s[1] };
	uint64_t pb[5];
	for (int i = 0; i < 5; i++) {
		pb[i] = badge(fds[i]);
		TP_CHECK(pb[i] != 0, "parent: fd %d has no badge", fds[i]);
	}
	uint64_t parent_base = pr ? pr->badge_base : 0;
	pid_t kid = fork();
	if (kid < 0)
		tp_die("fork");
	if (kid == 0) {
		tp_name = "fork_stress child";
		tp_failures = 0;
		TP_CHECK(monitored() == 1, "child not monitored");
		for (int i = 0; i < 5; i++)
			TP_CHECK(badge(fds[i]) == pb[i],
				 "fd %d: badge %#" PRIx64 " in the child, %#" PRIx64
				 " in the parent",
				 fds[i], badge(fds[i]), pb[i]);
		struct capcr_capinfo_header *cr = tp_region(NULL);
		int g = open("/dev/null", O_RDONLY);
		if (!ipc) {
			TP_CHECK(cr && cr->pid == getpid(),
				 "child: no own region");
			TP_CHECK(cr && cr->badge_base != parent_base,
				 "child's region has the parent's badge base");
			/* A new object gets a badge of the child's. */
			TP_CHECK(cr && badge(g) > cr->badge_base &&
					 badge(g) < cr->badge_base + (1ull << 32),
				 "child's new fd badge %#" PRIx64
				 " outside its base",
				 badge(g));
		}
		TP_CHECK(badge(g) && (badge(g) >> 32) != (pb[0] >> 32),
			 "child's new fd badge %#" PRIx64 " from the parent's "
			 "series",
			 badge(g));
		tp_wait_go();
		_exit(tp_done());
	}
	tp_ready("child=%d fds=%d,%d,%d,%d,%d badges=%" PRIu64 ",%" PRIu64
		 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64,
		 (int)kid, fds[0], fds[1], fds[2], fds[3], fds[4], pb[0], pb[1],
		 pb[2], pb[3], pb[4]);
	tp_wait_go();
	int st = -1;
	double dl = tp_now() + 20;
	while (waitpid(kid, &st, WNOHANG) == 0 && tp_now() < dl)
		usleep(1000);
	TP_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "the staying child failed (status %#x)", st);
	return tp_done();
}
