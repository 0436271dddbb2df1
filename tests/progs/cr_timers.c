/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: timers.  See crtest.h for the protocol.
 *
 *   - ITIMER_REAL every 20 ms: still armed with its interval after the
 *     restore, and SIGALRMs keep coming;
 *   - ITIMER_VIRTUAL and ITIMER_PROF with long values: roughly the same
 *     value (they count CPU time, of which the program uses little);
 *   - a POSIX timer on CLOCK_MONOTONIC, every 30 ms, signalling
 *     SIGRTMIN+3 with a sigev_value: the same id afterwards (timer_gettime
 *     works on it, /proc/self/timers lists it), same signal and value,
 *     still firing;
 *   - a POSIX timer on CLOCK_REALTIME armed for 100 s, no interval: the
 *     remaining time preserved: no more than it was at the ready line (the
 *     time while dumped and dead may or may not count: how long that was
 *     depends on the machine's load), no less than that less the wait;
 *   - a POSIX timer created and never armed: still there, still disarmed;
 *   - a POSIX timer deleted before the dump: its id is not back;
 *   - a one-shot POSIX timer whose signal is blocked: it has fired before
 *     the dump, the signal is still pending after it and comes on unblock
 *     with SI_TIMER and its value;
 *   - a SIGEV_THREAD timer every 25 ms (glibc: a helper thread the kernel
 *     signals by SIGEV_THREAD_ID, which starts a thread per expiry): its
 *     function still runs, with its value.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/time.h>

#include "crtest.h"

#define SIG_PT (SIGRTMIN + 3)
#define SIG_PEND (SIGRTMIN + 6)

static volatile int alarms, pt_fires, pt_bad;
static volatile int pt_last_value, pt_last_timerid;
/* The realtime timer's signal came (its value seen at least once): the
 * monotonic timer, every 30 ms, overwrites pt_last_value, and a loaded
 * machine may not look in between. */
static volatile int real_fired;
static int th_fires, th_value;

static void on_thread_timer(union sigval v)
{
	__atomic_store_n(&th_value, v.sival_int, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&th_fires, 1, __ATOMIC_SEQ_CST);
}

static int thread_fires(void)
{
	return __atomic_load_n(&th_fires, __ATOMIC_SEQ_CST);
}

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void on_pt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	pt_fires++;
	pt_last_value = si->si_value.sival_int;
	if (pt_last_value == 0x7ea1)
		real_fired = 1;
	pt_last_timerid = si->si_timerid;
	if (si->si_code != SI_TIMER)
		pt_bad++;
}

static double ts_s(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static double tv_s(const struct timeval *t)
{
	return (double)t->tv_sec + (double)t->tv_usec / 1e6;
}

/* The timer ids /proc/self/timers lists, in order, as a string. */
static void proc_timers(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/timers", "re");
	char line[256];
	int ids[64], n = 0;
	size_t o = 0;
	buf[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (n < 64 && sscanf(line, "ID: %d", &ids[n]) == 1)
			n++;
	fclose(f);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (ids[j] < ids[i]) {
				int t = ids[i];
				ids[i] = ids[j];
				ids[j] = t;
			}
	for (int i = 0; i < n && o + 16 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%d ", ids[i]);
}

/* Wait, sleeping, until cond or ms passed. */
#define WAIT_FOR(cond, ms)                                                     \
	do {                                                                   \
		double end_ = cr_now() + (ms) / 1000.0;                        \
		while (!(cond) && cr_now() < end_)                             \
			cr_nap_ms(2);                                          \
	} while (0)

int main(void)
{
	struct sigaction sa;
	timer_t t_mono, t_real, t_idle, t_gone, t_pend;
	struct sigevent sev;
	char ids_before[256], ids_now[256];

	cr_init("cr_timers");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	SETUP(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction ALRM");
	sa.sa_sigaction = on_pt;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	SETUP(sigaction(SIG_PT, &sa, NULL) == 0, "sigaction PT");
	SETUP(sigaction(SIG_PEND, &sa, NULL) == 0, "sigaction PEND");
	sigset_t pendset;
	sigemptyset(&pendset);
	sigaddset(&pendset, SIG_PEND);
	SETUP(sigprocmask(SIG_BLOCK, &pendset, NULL) == 0, "block PEND");
	signal(SIGVTALRM, SIG_IGN);
	signal(SIGPROF, SIG_IGN);

	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
	SETUP(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer REAL");
	struct itimerval longv = { { 0, 0 }, { 1000, 0 } };
	SETUP(setitimer(ITIMER_VIRTUAL, &longv, NULL) == 0, "setitimer VIRT");
	longv.it_value.tv_sec = 2000;
	longv.it_interval.tv_sec = 3;
	SETUP(setitimer(ITIMER_PROF, &longv, NULL) == 0, "setitimer PROF");

	/* one to delete, so the ids have a hole */
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_NONE;
	SETUP(timer_create(CLOCK_MONOTONIC, &sev, &t_gone) == 0, "timer gone");

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIG_PT;
	sev.sigev_value.sival_int = 0x5eed;
	SETUP(timer_create(CLOCK_MONOTONIC, &sev, &t_mono) == 0, "timer mono");
	struct itimerspec its = { { 0, 30000000 }, { 0, 30000000 } };
	SETUP(timer_settime(t_mono, 0, &its, NULL) == 0, "timer_settime mono");

	sev.sigev_value.sival_int = 0x7ea1;
	SETUP(timer_create(CLOCK_REALTIME, &sev, &t_real) == 0, "timer real");
	struct itimerspec far = { { 0, 0 }, { 100, 0 } };
	SETUP(timer_settime(t_real, 0, &far, NULL) == 0, "timer_settime real");

	sev.sigev_value.sival_int = 0x1d1e;
	SETUP(timer_create(CLOCK_BOOTTIME, &sev, &t_idle) == 0, "timer idle");
	SETUP(timer_delete(t_gone) == 0, "timer_delete");

	sev.sigev_signo = SIG_PEND;
	sev.sigev_value.sival_int = 0xb10c;
	SETUP(timer_create(CLOCK_MONOTONIC, &sev, &t_pend) == 0, "timer pend");
	struct itimerspec once = { { 0, 0 }, { 0, 5000000 } };
	SETUP(timer_settime(t_pend, 0, &once, NULL) == 0, "timer_settime pend");

	timer_t t_thread;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = on_thread_timer;
	sev.sigev_value.sival_int = 0x7777;
	SETUP(timer_create(CLOCK_MONOTONIC, &sev, &t_thread) == 0,
	      "timer thread");
	struct itimerspec every = { { 0, 25000000 }, { 0, 25000000 } };
	SETUP(timer_settime(t_thread, 0, &every, NULL) == 0,
	      "timer_settime thread");

	/* Some signals before the dump. */
	WAIT_FOR(alarms >= 3 && pt_fires >= 3 && thread_fires() >= 3, 20000);
	SETUP(alarms >= 3 && pt_fires >= 3 && thread_fires() >= 3,
	      "timers fire");
	sigset_t pending;
	sigpending(&pending);
	SETUP(sigismember(&pending, SIG_PEND), "the blocked timer's signal is "
					       "pending");
	CHECK(pt_last_value == 0x5eed && pt_last_timerid == (int)(intptr_t)t_mono,
	      "before: POSIX timer signal with value %#x timer %d",
	      pt_last_value, pt_last_timerid);

	proc_timers(ids_before, sizeof(ids_before));
	struct itimerspec g0;
	SETUP(timer_gettime(t_real, &g0) == 0, "timer_gettime real");
	double rem0 = ts_s(&g0.it_value);
	double t0 = cr_now();
	cr_info("set up: 3 interval timers, 5 POSIX timers (one deleted), one "
		"timer signal pending");
	cr_ready();
	cr_wait_go();
	double waited = cr_now() - t0;

	/* What the timers hold now. */
	struct itimerval cur;
	getitimer(ITIMER_REAL, &cur);
	CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == 20000,
	      "ITIMER_REAL interval: %.6f s, want 0.020000",
	      tv_s(&cur.it_interval));
	CHECK(tv_s(&cur.it_value) > 0 && tv_s(&cur.it_value) <= 0.0201,
	      "ITIMER_REAL value: %.6f s, want in (0, 0.02]",
	      tv_s(&cur.it_value));
	getitimer(ITIMER_VIRTUAL, &cur);
	CHECK(tv_s(&cur.it_value) > 990 && tv_s(&cur.it_value) <= 1000.1 &&
		      tv_s(&cur.it_interval) == 0,
	      "ITIMER_VIRTUAL: value %.3f interval %.3f, want ~1000 and 0",
	      tv_s(&cur.it_value), tv_s(&cur.it_interval));
	getitimer(ITIMER_PROF, &cur);
	CHECK(tv_s(&cur.it_value) > 1990 && tv_s(&cur.it_value) <= 2000.1 &&
		      tv_s(&cur.it_interval) == 3,
	      "ITIMER_PROF: value %.3f interval %.3f, want ~2000 and 3",
	      tv_s(&cur.it_value), tv_s(&cur.it_interval));

	proc_timers(ids_now, sizeof(ids_now));
	CHECK(!strcmp(ids_before, ids_now),
	      "/proc/self/timers lists ids {%s}, was {%s}", ids_now, ids_before);
	struct itimerspec g;
	if (CHECK(timer_gettime(t_mono, &g) == 0,
		  "timer_gettime on the monotonic timer's id: %s",
		  strerror(errno)))
		CHECK(g.it_interval.tv_sec == 0 &&
			      g.it_interval.tv_nsec == 30000000 &&
			      ts_s(&g.it_value) > 0 &&
			      ts_s(&g.it_value) <= 0.0301,
		      "monotonic timer: value %.6f interval %.6f, want ~0.03",
		      ts_s(&g.it_value), ts_s(&g.it_interval));
	if (CHECK(timer_gettime(t_real, &g) == 0,
		  "timer_gettime on the realtime timer's id: %s",
		  strerror(errno)))
		CHECK(g.it_interval.tv_sec == 0 && g.it_interval.tv_nsec == 0 &&
			      ts_s(&g.it_value) <= rem0 + 0.01 &&
			      ts_s(&g.it_value) >= rem0 - waited - 3,
		      "realtime timer: %.3f s left, want between %.3f and "
		      "%.3f (no interval: %.3f)",
		      ts_s(&g.it_value), rem0 - waited - 3, rem0 + 0.01,
		      ts_s(&g.it_interval));
	if (CHECK(timer_gettime(t_idle, &g) == 0,
		  "timer_gettime on the unarmed timer's id: %s",
		  strerror(errno)))
		CHECK(!g.it_value.tv_sec && !g.it_value.tv_nsec &&
			      !g.it_interval.tv_sec && !g.it_interval.tv_nsec,
		      "unarmed timer is armed: %.3f/%.3f", ts_s(&g.it_value),
		      ts_s(&g.it_interval));
	errno = 0;
	CHECK(timer_gettime(t_gone, &g) < 0 && errno == EINVAL,
	      "the deleted timer's id works again (%s)", strerror(errno));

	/* Still firing, with the same signal, value and id. */
	int a0 = alarms, p0 = pt_fires;
	pt_last_value = 0;
	WAIT_FOR(alarms >= a0 + 5 && pt_fires >= p0 + 5, 30000);
	CHECK(alarms >= a0 + 5, "ITIMER_REAL: %d SIGALRMs in the 30 s after "
				"the go, want 5 or more",
	      alarms - a0);
	CHECK(pt_fires >= p0 + 5, "POSIX timer: %d signals in the 30 s after "
				  "the go, want 5 or more",
	      pt_fires - p0);
	CHECK(pt_last_value == 0x5eed,
	      "POSIX timer: signal value %#x, want 0x5eed", pt_last_value);
	CHECK(pt_last_timerid == (int)(intptr_t)t_mono,
	      "POSIX timer: si_timerid %d, want %d", pt_last_timerid,
	      (int)(intptr_t)t_mono);
	CHECK(!pt_bad, "POSIX timer: %d signals without SI_TIMER", pt_bad);
	int tf0 = thread_fires();
	WAIT_FOR(thread_fires() >= tf0 + 5, 30000);
	CHECK(thread_fires() >= tf0 + 5, "SIGEV_THREAD timer: %d runs of its "
					"function in the 30 s after the go, "
					"want 5 or more",
	      thread_fires() - tf0);
	CHECK(__atomic_load_n(&th_value, __ATOMIC_SEQ_CST) == 0x7777,
	      "SIGEV_THREAD timer: value %#x, want 0x7777",
	      __atomic_load_n(&th_value, __ATOMIC_SEQ_CST));
	pt_bad = 0;

	/* The realtime timer, made to fire soon: its own value. */
	struct itimerspec soon = { { 0, 0 }, { 0, 1000000 } };
	pt_last_value = 0;
	real_fired = 0;
	CHECK(timer_settime(t_real, 0, &soon, NULL) == 0,
	      "timer_settime on the realtime timer: %s", strerror(errno));
	WAIT_FOR(real_fired, 10000);
	CHECK(real_fired,
	      "realtime timer: no signal with value 0x7ea1 (last %#x)",
	      pt_last_value);

	/* The blocked timer's signal, pending since before the dump. */
	sigpending(&pending);
	CHECK(sigismember(&pending, SIG_PEND),
	      "the blocked one-shot timer's signal is no longer pending");
	int f0 = pt_fires;
	pt_last_value = 0;
	pt_last_timerid = -1;
	sigprocmask(SIG_UNBLOCK, &pendset, NULL);
	CHECK(pt_fires == f0 + 1 && pt_last_value == 0xb10c &&
		      pt_last_timerid == (int)(intptr_t)t_pend,
	      "on unblock: %d signals, value %#x timer %d, want 1, 0xb10c, %d",
	      pt_fires - f0, pt_last_value, pt_last_timerid,
	      (int)(intptr_t)t_pend);

	CHECK(!pt_bad, "a timer signal came without SI_TIMER");

	/* Quiet, then done. */
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	timer_delete(t_mono);
	return cr_done();
}
