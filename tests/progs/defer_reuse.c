/* SPDX-License-Identifier: MIT */
/*
 * Deterministic signal-handler cases for the runtime's deferred queue.
 *
 *   defer_reuse MODE        MODE: fresh | published | overflow
 *
 * A helper thread takes the region's lock word itself, so the main thread's
 * next close() stops inside the runtime's critical section (marked, spinning
 * for the lock).  The helper then sends SIGUSR1 to the main thread, whose
 * handler runs right there and must have its changes queued; finally the
 * helper lets go of the lock and the main thread applies the queue.
 *
 * fresh:     the handler opens a descriptor, closes it, and opens another,
 *            which the kernel gives the same number; it keeps that one.
 * published: as fresh, but the number first belongs to a descriptor the
 *            main thread opened (and published) before; the handler closes
 *            it and opens the new one at the same number.
 * overflow:  the handler opens 24 descriptors (more than the queue holds)
 *            and keeps them all.
 *
 * Afterwards the region must list exactly the kernel's table, every kept
 * descriptor must have a badge -- or, for overflow, the region must carry
 * the LOST flag (and the process must still work).
 */
#include "tprog.h"

#include <fcntl.h>
#include <pthread.h>

static struct capcr_capinfo_header *region;
static pthread_t main_thread;
static const char *mode;
static volatile int handler_done, in_handler_fds[32], n_in_handler;

/* Past the queue's 16 entries, a change may be lost (LOST says so). */
static int lost_ok(int i)
{
	return !strcmp(mode, "overflow") && i >= 8;
}
static int victim = -1; /* published: the descriptor the handler replaces */

static void handler(int sig)
{
	int saved = errno;
	(void)sig;

	if (!strcmp(mode, "overflow")) {
		for (int i = 0; i < 24; i++)
			in_handler_fds[n_in_handler++] =
				open("/dev/zero", O_RDONLY);
	} else {
		int a;
		if (!strcmp(mode, "published")) {
			a = victim; /* published by main, closed here */
		} else {
			a = open("/dev/zero", O_RDONLY);
		}
		close(a);
		int b = open("/dev/zero", O_RDONLY); /* same number as a */
		in_handler_fds[n_in_handler++] = b;
		if (b != a)
			printf("note: the kernel gave %d, not %d\n", b, a);
	}
	handler_done = 1;
	errno = saved;
}

static volatile int locked, main_closing;

/* Take the lock as another writer would, wait until the main thread spins
 * for it, signal the main thread, wait for its handler, let go. */
static void *helper(void *arg)
{
	uint32_t zero = 0;
	(void)arg;

	while (!__atomic_compare_exchange_n(&region->lock, &zero, 1, 0,
					    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		zero = 0;
	locked = 1;
	while (!main_closing)
		usleep(1000);
	usleep(50000); /* main is in close(), spinning in the runtime */
	pthread_kill(main_thread, SIGUSR1);
	for (int i = 0; i < 5000 && !handler_done; i++)
		usleep(1000);
	usleep(10000);
	__atomic_store_n(&region->lock, 0, __ATOMIC_RELEASE);
	return NULL;
}

int main(int argc, char **argv)
{
	static unsigned char kfds[TP_MAXFD];
	static struct tp_snap fin;

	tp_init("defer_reuse");
	mode = argc > 1 ? argv[1] : "fresh";
	TP_CHECK(tp_monitored() == 1, "capcr_monitored() = %d", tp_monitored());
	region = tp_region(NULL);
	if (!TP_CHECK(region != NULL, "no region in /proc/self/maps"))
		return tp_done();

	struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	main_thread = pthread_self();

	int closing = open("/dev/null", O_RDONLY); /* main closes this */
	if (!strcmp(mode, "published"))
		victim = open("/dev/zero", O_RDONLY);

	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	pthread_t h;
	pthread_create(&h, NULL, helper, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (!locked)
		usleep(1000);
	main_closing = 1;
	close(closing); /* spins until the helper lets go */
	pthread_join(h, NULL);
	TP_CHECK(handler_done, "the handler did not run");

	if (TP_CHECK(tp_snapshot(region, &fin, 100000) == 0, "region stuck")) {
		int lost = !!(fin.h.flags & CAPCR_CAPINFO_F_LOST);
		if (!strcmp(mode, "overflow")) {
			TP_CHECK(lost, "24 changes queued in a handler, yet "
				       "no LOST flag");
		} else {
			TP_CHECK(!lost, "LOST flag set");
		}
		if (!lost) {
			tp_kernel_fds(kfds, TP_MAXFD);
			tp_check_snapshot(&fin, kfds, -1, "after the handler");
		}
	}
	for (int i = 0; i < n_in_handler; i++)
		if (!lost_ok(i))
			TP_CHECK(tp_badge(in_handler_fds[i]) != 0,
				 "fd %d, opened in the handler and kept, has "
				 "no badge", in_handler_fds[i]);
	/* The process still works: a plain open/close is reported. */
	int fd = open("/dev/null", O_RDONLY);
	TP_CHECK(tp_badge(fd) != 0, "a later open has no badge");
	close(fd);
	if (!tp_failures)
		tp_pass("%s: handler's changes applied", mode);
	tp_ready("mode=%s kept=%d", mode, n_in_handler ? in_handler_fds[0] : -1);
	tp_wait_go();
	return tp_done();
}
