/* SPDX-License-Identifier: MIT */
/*
 * The region's lock under contention.
 *
 *   lock_stress [THREADS [ITERS [MIN_SECONDS [ipc]]]]
 *
 * THREADS threads (default 8) each open and close ITERS descriptors
 * (default 20000; mostly /dev/null, every 8th a pipe, every 16th a dup),
 * again and again until MIN_SECONDS (default 0) have passed, so that a
 * test has time to read the region from outside; with MIN_SECONDS negative,
 * until SIGUSR1 comes (the test has read enough, however slow the machine).  Meanwhile a reader thread
 * copies the
 * process's own region with the monitor's sequence-lock protocol and checks
 * every consistent copy: no descriptor twice, kinds in range, and the
 * descriptors held all along ("stable") always present.  Every descriptor a
 * thread gets must have a badge at once (capcr_badge).
 *
 * Prints "churning pid=N stable=a,b,c" when the threads start (a test may
 * run `capcr caps` meanwhile), then after they joined checks that the
 * region lists exactly the kernel's table, prints "ready pid=N ..." and
 * waits for SIGUSR2.  With "ipc" the region is the monitor's, not mapped
 * here: only the badges and the final `capcr caps` (the test's) check.
 */
#include "tprog.h"

#include <fcntl.h>
#include <pthread.h>

#define NSTABLE 4

static int stable[NSTABLE];
static int nthreads = 8, iters = 20000;
static double min_secs, t_start;
static volatile int churning = 1;
static volatile sig_atomic_t stop_churn;

static void on_usr1(int sig)
{
	(void)sig;
	stop_churn = 1;
}
static long thread_fail[64];

static void one_round(long id)
{
	for (int i = 0; i < iters; i++) {
		if (i % 8 == 7) {
			int p[2];
			if (pipe(p) < 0) {
				thread_fail[id]++;
				continue;
			}
			if (!tp_badge(p[0]) || !tp_badge(p[1]))
				thread_fail[id]++;
			close(p[0]);
			close(p[1]);
			continue;
		}
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			thread_fail[id]++;
			continue;
		}
		uint64_t b = tp_badge(fd);
		if (!b)
			thread_fail[id]++;
		if (i % 16 == 3) {
			int d = dup(fd);
			if (d < 0 || tp_badge(d) != b)
				thread_fail[id]++;
			if (d >= 0)
				close(d);
		}
		close(fd);
	}
}

static void *worker(void *arg)
{
	do
		one_round((long)arg);
	while (min_secs < 0 ? !stop_churn : tp_now() - t_start < min_secs);
	return NULL;
}

static struct tp_snap snap;
static long snaps_ok, snaps_stuck, snap_bad;

static void *reader(void *arg)
{
	const struct capcr_capinfo_header *r = arg;

	while (churning) {
		if (tp_snapshot(r, &snap, 200000) < 0) {
			snaps_stuck++;
			continue;
		}
		snaps_ok++;
		int bad = tp_check_snapshot(&snap, NULL, -1, "during churn");
		for (int k = 0; k < NSTABLE; k++) {
			int found = 0;
			for (uint32_t i = 0; i < snap.h.count; i++)
				found |= snap.a[i].kcap == stable[k];
			bad += !TP_CHECK(found, "during churn: stable fd %d "
						"missing from a consistent copy",
					 stable[k]);
		}
		if (bad && ++snap_bad > 5) {
			printf("FAIL: too many bad snapshots, stop reading\n");
			break;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[64], rd;
	static unsigned char kfds[TP_MAXFD];
	static struct tp_snap fin;

	tp_init("lock_stress");
	if (argc > 1)
		nthreads = atoi(argv[1]);
	if (argc > 2)
		iters = atoi(argv[2]);
	if (argc > 3)
		min_secs = atof(argv[3]);
	int ipc = argc > 4 && !strcmp(argv[4], "ipc");
	if (nthreads < 1 || nthreads > 64)
		nthreads = 8;

	TP_CHECK(tp_monitored() == 1, "capcr_monitored() = %d, expected 1",
		 tp_monitored());
	struct capcr_capinfo_header *r = tp_region(NULL);
	if (ipc)
		TP_CHECK(r == NULL, "ipc mode, yet a region is mapped here");
	else if (!TP_CHECK(r != NULL, "no region in /proc/self/maps"))
		return tp_done();

	if (min_secs < 0) {
		struct sigaction sa = { .sa_handler = on_usr1 };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
	}
	for (int k = 0; k < NSTABLE; k++) {
		stable[k] = open("/dev/zero", O_RDONLY);
		if (stable[k] < 0)
			tp_die("open /dev/zero");
	}
	printf("churning pid=%d stable=%d,%d,%d,%d\n", (int)getpid(),
	       stable[0], stable[1], stable[2], stable[3]);
	fflush(stdout);

	double t0 = t_start = tp_now();
	if (r)
		pthread_create(&rd, NULL, reader, r);
	for (long i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			tp_die("pthread_create");
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	churning = 0;
	if (r)
		pthread_join(rd, NULL);
	double t1 = tp_now();

	long tf = 0;
	for (int i = 0; i < nthreads; i++)
		tf += thread_fail[i];
	TP_CHECK(tf == 0, "%ld descriptors without a badge or failed calls",
		 tf);
	TP_CHECK(!r || snaps_ok > 0, "the reader never got a consistent copy "
			       "(%ld attempts gave up)", snaps_stuck);
	TP_CHECK(snap_bad == 0, "%ld inconsistent copies", snap_bad);

	/* At rest: the region is exactly the kernel's table. */
	if (r &&
	    TP_CHECK(tp_snapshot(r, &fin, 1000) == 0, "region stuck at rest")) {
		tp_kernel_fds(kfds, TP_MAXFD);
		tp_check_snapshot(&fin, kfds, -1, "at rest");
		TP_CHECK(!(fin.h.flags & (CAPCR_CAPINFO_F_LOST |
					  CAPCR_CAPINFO_F_OVERFLOW)),
			 "region flags %#x", fin.h.flags);
		TP_CHECK(__atomic_load_n(&r->lock, __ATOMIC_RELAXED) == 0,
			 "lock still held at rest");
		uint64_t want = (uint64_t)nthreads * (uint64_t)iters * 2;
		TP_CHECK(fin.h.updates >= want, "updates %" PRIu64 " < %" PRIu64,
			 fin.h.updates, want);
	}
	printf("churn: %d threads x %d in %.2f s, reader: %ld consistent "
	       "copies, %ld gave up\n",
	       nthreads, iters, t1 - t0, snaps_ok, snaps_stuck);
	if (!tp_failures)
		tp_pass("region consistent under contention and exact at rest");
	tp_ready("stable=%d,%d,%d,%d", stable[0], stable[1], stable[2],
		 stable[3]);
	tp_wait_go();
	return tp_done();
}
