/* SPDX-License-Identifier: MIT */
/*
 * crk_victim: a target for killing capcr while it works (t_killed.sh).
 *
 *   crk_victim MIB CMDFIFO
 *
 * Fills MIB MiB with pseudo-random data, then runs five threads, each
 * somewhere else: blocked in read() on an empty pipe, in clock_nanosleep
 * until an absolute deadline an hour away, in pthread_cond_wait, in poll()
 * with no timeout, and busy in user mode with SSE arithmetic whose result
 * it checks at every step.  The main thread keeps SIGUSR2 blocked and
 * reads commands from CMDFIFO:
 *
 *   check  verify the memory, that no blocked thread came out of its call,
 *          that the busy thread's arithmetic never went wrong, that the
 *          mask is as set and the SIGUSR1 handler still installed; print
 *          "check N ok" or "check N BAD: why"
 *   end    wake every thread the way it waits and check each returned what
 *          it should (the data written, not EINTR); print "PASS" or
 *          "FAIL: why" and exit
 *
 * It prints "ready pid=N" once every thread is inside its call.  It never
 * exits on its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t *mem;
static size_t words;
static int rd_pipe[2], poll_pipe[2];
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go;
static atomic_int returned[4], inside[4], busy_bad, stop_busy;
static atomic_long busy_steps;
static char why[4][160];
static volatile sig_atomic_t usr1;

static uint64_t fill_or_check(int fill)
{
	uint64_t x = 0x2545f4914f6cdd1dULL, bad = 0;

	for (size_t i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (fill)
			mem[i] = x;
		else if (mem[i] != x)
			bad++;
	}
	return bad;
}

static void *t_read(void *a)
{
	char buf[8];
	(void)a;
	atomic_store(&inside[0], 1);
	ssize_t n = read(rd_pipe[0], buf, sizeof(buf));
	if (n != 4 || memcmp(buf, "wake", 4))
		snprintf(why[0], sizeof(why[0]), "read returned %zd (%s)", n,
			 n < 0 ? strerror(errno) : "wrong data");
	atomic_store(&returned[0], 1);
	return NULL;
}

static void *t_sleep(void *a)
{
	struct timespec until;
	(void)a;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += 3600;
	atomic_store(&inside[1], 1);
	int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
	/* Only a cancellation at the end may end it. */
	snprintf(why[1], sizeof(why[1]), "clock_nanosleep returned %d (%s)",
		 r, strerror(r));
	atomic_store(&returned[1], 1);
	return NULL;
}

static void *t_cond(void *a)
{
	(void)a;
	pthread_mutex_lock(&mx);
	atomic_store(&inside[2], 1);
	while (!go)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
	atomic_store(&returned[2], 1);
	return NULL;
}

static void *t_poll(void *a)
{
	struct pollfd p = { .fd = poll_pipe[0], .events = POLLIN };
	(void)a;
	atomic_store(&inside[3], 1);
	int r = poll(&p, 1, -1);
	if (r != 1 || !(p.revents & POLLIN))
		snprintf(why[3], sizeof(why[3]), "poll returned %d (%s)", r,
			 r < 0 ? strerror(errno) : "no event");
	atomic_store(&returned[3], 1);
	return NULL;
}

/* SSE arithmetic whose registers a broken restore of the FPU state would
 * corrupt: the same sum computed twice must agree. */
static void *t_busy(void *a)
{
	(void)a;
	while (!atomic_load(&stop_busy)) {
		volatile double k = 1.0;
		double s1 = 0, s2 = 0;
		for (int i = 1; i <= 2000; i++)
			s1 += k / i;
		for (int i = 1; i <= 2000; i++)
			s2 += k / i;
		if (s1 != s2)
			atomic_store(&busy_bad, 1);
		atomic_fetch_add(&busy_steps, 1);
	}
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

static int check(char *out, size_t len)
{
	sigset_t cur;
	struct sigaction sa;
	uint64_t bad = fill_or_check(0);
	long steps = atomic_load(&busy_steps);

	if (bad)
		return snprintf(out, len, "%llu words of memory differ",
				(unsigned long long)bad);
	for (int i = 0; i < 4; i++)
		if (atomic_load(&returned[i]))
			return snprintf(out, len, "thread %d came out: %s", i,
					why[i]);
	if (atomic_load(&busy_bad))
		return snprintf(out, len, "the busy thread's sums differed");
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (!sigismember(&cur, SIGUSR2) || sigismember(&cur, SIGUSR1))
		return snprintf(out, len, "the signal mask changed");
	sigaction(SIGUSR1, NULL, &sa);
	if (sa.sa_handler != on_usr1)
		return snprintf(out, len, "the SIGUSR1 handler is gone");
	for (int i = 0; i < 200 && atomic_load(&busy_steps) == steps; i++)
		usleep(10000);
	if (atomic_load(&busy_steps) == steps)
		return snprintf(out, len, "the busy thread does not run");
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t th[5];
	void *(*fn[5])(void *) = { t_read, t_sleep, t_cond, t_poll, t_busy };
	char line[64], msg[200];
	sigset_t m;

	if (argc != 3) {
		fprintf(stderr, "usage: crk_victim MIB CMDFIFO\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	words = (strtoul(argv[1], NULL, 10) << 20) / 8;
	mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || pipe(rd_pipe) || pipe(poll_pipe))
		return perror("crk_victim"), 1;
	fill_or_check(1);
	signal(SIGUSR1, on_usr1);
	/* Signals go to the main thread only: a handler run in the poll
	 * thread would end its poll with EINTR, as Linux does. */
	sigfillset(&m);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	for (int i = 0; i < 5; i++)
		pthread_create(&th[i], NULL, fn[i], NULL);
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	for (int i = 0; i < 4; i++)
		while (!atomic_load(&inside[i]))
			usleep(1000);
	usleep(50000); /* into the calls themselves */
	FILE *cmd = fopen(argv[2], "r+");
	if (!cmd)
		return perror(argv[2]), 1;
	printf("ready pid=%d\n", getpid());
	for (int n = 1; fgets(line, sizeof(line), cmd); n++) {
		if (!strncmp(line, "check", 5)) {
			if (check(msg, sizeof(msg)))
				printf("check %d BAD: %s\n", n, msg);
			else
				printf("check %d ok\n", n);
			continue;
		}
		if (strncmp(line, "end", 3))
			continue;
		int bad = check(msg, sizeof(msg)) != 0;
		if (!bad) {
			kill(getpid(), SIGUSR1);
			if (write(rd_pipe[1], "wake", 4) != 4 ||
			    write(poll_pipe[1], "x", 1) != 1)
				bad = snprintf(msg, sizeof(msg), "write");
			pthread_mutex_lock(&mx);
			go = 1;
			pthread_cond_broadcast(&cv);
			pthread_mutex_unlock(&mx);
			atomic_store(&stop_busy, 1);
			pthread_cancel(th[1]);
			for (int i = 0; i < 5; i++)
				pthread_join(th[i], NULL);
			for (int i = 0; i < 4 && !bad; i++)
				if (i != 1 && why[i][0])
					bad = snprintf(msg, sizeof(msg),
						       "thread %d: %s", i,
						       why[i]);
			if (!bad && !usr1)
				bad = snprintf(msg, sizeof(msg),
					       "SIGUSR1 was not handled");
		}
		if (bad)
			printf("FAIL: %s\n", msg);
		else
			printf("PASS\n");
		return bad ? 1 : 0;
	}
	return 1;
}
