/* SPDX-License-Identifier: MIT */
/*
 * crt_many: many threads doing deterministic work (t_cr_tree.sh; the
 * bench's thread trees).
 *
 *   CR_GO=FILE crt_many [-t THREADS] [-s STEPS] [-p PACE_US] [-i] [-P N]
 *
 * THREADS threads (default 128) run STEPS steps each (default 400).  A
 * step mixes the thread's own hash chain, adds to a counter shared under
 * a mutex, and sleeps PACE_US microseconds (default 2000); every 50 steps
 * all threads meet at a barrier.  Each thread checks at every step that
 * gettid() has not changed.  Once every thread has started it prints
 * "ready pid=N"; when all are done they wait, and once the go file exists
 * the program prints one line per thread (its final hash), the shared
 * total, and "PASS crt_many" or "FAIL crt_many (N failures)".  Nothing in
 * the output depends on timing: with and without dumps and restores in
 * the middle it must be the same.
 *
 * -i: idle: the threads start, print nothing of their own, and wait in
 * pthread_cond_wait until the go file appears (for the bench).
 * -P N: N processes in all (for the bench): before anything else the root
 * makes a tree of N-1 more, process i the parent of 4i+1 .. 4i+4, each
 * waiting in pause() until it is killed.
 */
#define _GNU_SOURCE
#include "crtest.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

struct worker {
	int idx;
	pthread_t pt;
	pid_t tid;
	uint64_t hash;
	int tid_changed;
	long steps_done;
};

static int nthreads = 128, steps = 400, pace_us = 2000, idle;
static struct worker *w;
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t shared_total;
static atomic_int started, finished;
static int released;
static pthread_barrier_t bar;

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
	h *= 0xBF58476D1CE4E5B9ULL;
	return h ^ (h >> 31);
}

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	struct timespec pace = { 0, (long)pace_us * 1000 };

	me->tid = (pid_t)syscall(SYS_gettid);
	me->hash = mix(0x1234, (uint64_t)me->idx);
	atomic_fetch_add(&started, 1);
	if (idle) {
		pthread_mutex_lock(&mx);
		while (!released)
			pthread_cond_wait(&cv, &mx);
		pthread_mutex_unlock(&mx);
		return NULL;
	}
	for (int s = 0; s < steps; s++) {
		for (int k = 0; k < 200; k++)
			me->hash = mix(me->hash, (uint64_t)s * 1000 + (uint64_t)k);
		pthread_mutex_lock(&mx);
		shared_total += (uint64_t)me->idx * (uint64_t)s + 1;
		pthread_mutex_unlock(&mx);
		if ((pid_t)syscall(SYS_gettid) != me->tid)
			me->tid_changed++;
		me->steps_done++;
		if (pace_us)
			nanosleep(&pace, NULL);
		if (s % 50 == 49)
			pthread_barrier_wait(&bar);
	}
	atomic_fetch_add(&finished, 1);
	pthread_mutex_lock(&mx);
	while (!released)
		pthread_cond_wait(&cv, &mx);
	pthread_mutex_unlock(&mx);
	return NULL;
}

static void spawn(int i, int n, atomic_int *made)
{
	for (int c = 4 * i + 1; c <= 4 * i + 4 && c < n; c++) {
		pid_t p = fork();
		SETUP(p >= 0, "fork");
		if (p == 0) {
			spawn(c, n, made);
			atomic_fetch_add(made, 1);
			for (;;)
				pause();
		}
	}
}

static int count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	int c;

	cr_init("crt_many");
	int procs = 1;
	while ((c = getopt(argc, argv, "t:s:p:iP:")) != -1) {
		switch (c) {
		case 't':
			nthreads = atoi(optarg);
			break;
		case 's':
			steps = atoi(optarg);
			break;
		case 'p':
			pace_us = atoi(optarg);
			break;
		case 'i':
			idle = 1;
			break;
		case 'P':
			procs = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: crt_many [-t N] [-s N] [-p US] "
					"[-i] [-P N]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (procs > 1) {
		atomic_int *made = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		SETUP(made != MAP_FAILED, "mmap");
		spawn(0, procs, made);
		double until = cr_now() + 20;
		while (atomic_load(made) < procs - 1) {
			SETUP(cr_now() < until, "the processes starting");
			cr_nap_ms(1);
		}
	}
	w = calloc((size_t)(nthreads > 0 ? nthreads : 1), sizeof(*w));
	SETUP(w && nthreads >= 0, "calloc");
	SETUP(pthread_barrier_init(&bar, NULL, (unsigned)(nthreads ? nthreads : 1)) == 0,
	      "pthread_barrier_init");
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 128 * 1024);
	for (int i = 0; i < nthreads; i++) {
		w[i].idx = i;
		SETUP(pthread_create(&w[i].pt, &at, worker_main, &w[i]) == 0,
		      "pthread_create");
	}
	double end = cr_now() + 20;
	while (atomic_load(&started) < nthreads) {
		SETUP(cr_now() < end, "threads starting");
		cr_nap_ms(1);
	}
	cr_ready();
	cr_wait_go();
	pthread_mutex_lock(&mx);
	released = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	for (int i = 0; i < nthreads; i++)
		pthread_join(w[i].pt, NULL);
	if (idle)
		return cr_done();
	CHECK(atomic_load(&finished) == nthreads, "%d of %d threads finished",
	      atomic_load(&finished), nthreads);
	uint64_t want = 0;
	for (int i = 0; i < nthreads; i++) {
		CHECK(!w[i].tid_changed, "thread %d: gettid() changed %d times",
		      i, w[i].tid_changed);
		CHECK(w[i].steps_done == steps, "thread %d: %ld steps of %d", i,
		      w[i].steps_done, steps);
		cr_info("thread %d hash %016llx", i,
			(unsigned long long)w[i].hash);
		for (int s = 0; s < steps; s++)
			want += (uint64_t)i * (uint64_t)s + 1;
	}
	CHECK(shared_total == want, "shared total %llu, expected %llu",
	      (unsigned long long)shared_total, (unsigned long long)want);
	cr_info("total %llu", (unsigned long long)shared_total);
	CHECK(count_tasks() == 1, "%d threads left", count_tasks());
	return cr_done();
}
