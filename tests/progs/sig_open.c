/* SPDX-License-Identifier: MIT */
/*
 * Descriptors opened and closed in signal handlers.
 *
 *   sig_open [SECONDS [PER_SIGNAL]]     (default 1.5 s, 2)
 *
 * An interval timer fires SIGALRM every 200 us, and a second thread sends
 * SIGUSR1 to the main thread every 200 us; both handlers open PER_SIGNAL
 * descriptors, close all but one of them, keep that one in a ring of 4 and
 * close the oldest of the ring.  Meanwhile the main thread opens and closes
 * descriptors (and pipes, and dups) in a tight loop, so handlers often
 * interrupt it inside the runtime's critical section.
 *
 * Afterwards (signals stopped) the region must be exactly the kernel's
 * table, unless a burst of handlers overflowed the runtime's 16-entry queue
 * (LOST set; rare at these rates): then it must at least never list a
 * descriptor twice.
 * Prints "ready pid=N kept=a,b,.. lost=0|1" and waits for SIGUSR2.
 */
#include "tprog.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/time.h>

#define RING 4

static volatile sig_atomic_t stop;
static int per_signal = 2;
static int ring[2][RING];
static int ring_pos[2];
static volatile long handled[2], handler_fail;

static void handler(int sig)
{
	int saved = errno;
	int which = sig == SIGALRM ? 0 : 1;
	int fds[64];
	int n = per_signal;

	for (int i = 0; i < n; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			handler_fail++;
	}
	for (int i = 1; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	int *slot = &ring[which][ring_pos[which]++ % RING];
	if (*slot > 0)
		close(*slot);
	*slot = fds[0];
	handled[which]++;
	errno = saved;
}

static pthread_t main_thread;

static void *kicker(void *arg)
{
	(void)arg;
	while (!stop) {
		pthread_kill(main_thread, SIGUSR1);
		/* ~200 us apart: often enough to land inside the runtime's
		 * critical section, rarely enough that handlers do not pile
		 * up past the runtime's 16-entry queue. */
		double t = tp_now() + 200e-6;
		while (tp_now() < t)
			;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = 1.5;
	static unsigned char kfds[TP_MAXFD];
	static struct tp_snap fin;

	tp_init("sig_open");
	if (argc > 1)
		secs = atof(argv[1]);
	if (argc > 2)
		per_signal = atoi(argv[2]);
	if (per_signal < 1 || per_signal > 64)
		per_signal = 2;
	TP_CHECK(tp_monitored() == 1, "capcr_monitored() = %d", tp_monitored());
	struct capcr_capinfo_header *r = tp_region(NULL);
	if (!TP_CHECK(r != NULL, "no region in /proc/self/maps"))
		return tp_done();

	struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	main_thread = pthread_self();

	/* The kicker thread never takes SIGALRM: every handler runs on the
	 * main thread, interrupting its loop. */
	sigset_t alrm, old;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigaddset(&alrm, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &alrm, &old);
	pthread_t kt;
	pthread_create(&kt, NULL, kicker, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	setitimer(ITIMER_REAL, &it, NULL);

	long loops = 0, fails = 0;
	double t0 = tp_now();
	while (tp_now() - t0 < secs) {
		for (int k = 0; k < 64; k++, loops++) {
			int fd = open("/dev/zero", O_RDONLY);
			if (fd < 0) {
				fails++;
				continue;
			}
			if (k % 8 == 0) {
				int d = dup(fd);
				if (d < 0 || tp_badge(d) != tp_badge(fd))
					fails++;
				close(d);
			}
			if (k % 8 == 4) {
				int p[2];
				if (pipe(p) == 0) {
					close(p[1]);
					close(p[0]);
				}
			}
			close(fd);
		}
	}

	/* Stop every signal source, then let pending ones run. */
	stop = 1;
	pthread_join(kt, NULL);
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	sigaddset(&block, SIGUSR1);
	usleep(20000);
	pthread_sigmask(SIG_BLOCK, &block, NULL);

	printf("main loop: %ld open/close, handlers: %ld SIGALRM, %ld SIGUSR1\n",
	       loops, handled[0], handled[1]);
	TP_CHECK(fails == 0 && handler_fail == 0,
		 "%ld failed calls in main, %ld in handlers", fails,
		 (long)handler_fail);
	TP_CHECK(handled[0] > 100 && handled[1] > 100,
		 "too few signals handled (%ld, %ld)", handled[0], handled[1]);

	int lost = 0;
	if (TP_CHECK(tp_snapshot(r, &fin, 100000) == 0, "region stuck")) {
		lost = !!(fin.h.flags & CAPCR_CAPINFO_F_LOST);
		/* A burst of handlers while the main thread is off the CPU
		 * inside the critical section can overflow the 16-entry
		 * queue: then the region may miss changes (LOST says so),
		 * but must still never list a descriptor twice. */
		if (lost)
			printf("note: the queue overflowed (LOST set)\n");
		tp_kernel_fds(kfds, TP_MAXFD);
		tp_check_snapshot(&fin, lost ? NULL : kfds, -1,
				  "after the signals");
		TP_CHECK(__atomic_load_n(&r->lock, __ATOMIC_RELAXED) == 0,
			 "lock left held");
		TP_CHECK(!(fin.h.seq & 1), "seq left odd");
	}
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < RING; i++)
			TP_CHECK(ring[w][i] <= 0 || tp_badge(ring[w][i]),
				 "kept fd %d has no badge", ring[w][i]);
	if (!tp_failures)
		tp_pass("handlers' descriptors all reported%s",
			lost ? " (queue overflowed: LOST set)" : "");
	tp_ready("kept=%d,%d,%d,%d,%d,%d,%d,%d lost=%d", ring[0][0], ring[0][1],
		 ring[0][2], ring[0][3], ring[1][0], ring[1][1], ring[1][2],
		 ring[1][3], lost);
	tp_wait_go();
	return tp_done();
}
