/* SPDX-License-Identifier: MIT */
/*
 * crt_forker: a tree that changes all the time (t_cr_tree2.sh).
 *
 *   CR_GO=FILE crt_forker
 *
 * The root makes two children.  The forker forks a grandchild in a tight
 * loop; each grandchild exits at once with the loop count (mod 128) as its
 * status, and the forker reaps it and checks that status.  The threader
 * creates a thread in a tight loop; each returns its loop count, and the
 * threader joins it and checks the value.  Both count in a shared page.
 * Once both have gone round 200 times the root prints "ready pid=R
 * forker=F threader=T"; after the go file it checks that both are still
 * going (their counts grow), stops them, and checks that they found no
 * wrong status or value.  Ends with "PASS crt_forker" or "FAIL crt_forker
 * (N failures)".
 */
#define _GNU_SOURCE
#include "crtest.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

struct shared {
	atomic_long forks, threads, bad;
	atomic_int stop;
};

static struct shared *sh;

static void forker(void)
{
	for (long n = 0; !atomic_load(&sh->stop); n++) {
		pid_t p = fork();
		if (p < 0) {
			atomic_fetch_add(&sh->bad, 1);
			cr_nap_ms(1);
			continue;
		}
		if (p == 0)
			_exit((int)(n & 127));
		int st = 0;
		if (waitpid(p, &st, 0) != p || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != (int)(n & 127))
			atomic_fetch_add(&sh->bad, 1);
		atomic_fetch_add(&sh->forks, 1);
	}
	_exit(0);
}

static void *thread_fn(void *arg)
{
	return arg;
}

static void threader(void)
{
	for (long n = 0; !atomic_load(&sh->stop); n++) {
		pthread_t t;
		void *ret = NULL;
		if (pthread_create(&t, NULL, thread_fn, (void *)n) != 0) {
			atomic_fetch_add(&sh->bad, 1);
			cr_nap_ms(1);
			continue;
		}
		if (pthread_join(t, &ret) != 0 || ret != (void *)n)
			atomic_fetch_add(&sh->bad, 1);
		atomic_fetch_add(&sh->threads, 1);
	}
	_exit(0);
}

int main(void)
{
	cr_init("crt_forker");
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	SETUP(sh != MAP_FAILED, "mmap");
	pid_t f = fork();
	SETUP(f >= 0, "fork");
	if (f == 0)
		forker();
	pid_t t = fork();
	SETUP(t >= 0, "fork");
	if (t == 0)
		threader();
	double end = cr_now() + 20;
	while (atomic_load(&sh->forks) < 200 || atomic_load(&sh->threads) < 200) {
		SETUP(cr_now() < end, "the forker and threader starting");
		cr_nap_ms(1);
	}
	printf("ready pid=%d forker=%d threader=%d\n", getpid(), f, t);
	cr_wait_go();
	long f0 = atomic_load(&sh->forks), t0 = atomic_load(&sh->threads);
	cr_sleep_ms(200);
	CHECK(atomic_load(&sh->forks) > f0, "the forker stopped forking (%ld)",
	      f0);
	CHECK(atomic_load(&sh->threads) > t0,
	      "the threader stopped making threads (%ld)", t0);
	atomic_store(&sh->stop, 1);
	int st = 0;
	CHECK(waitpid(f, &st, 0) == f && WIFEXITED(st) && !WEXITSTATUS(st),
	      "the forker ended with status %#x", st);
	st = 0;
	CHECK(waitpid(t, &st, 0) == t && WIFEXITED(st) && !WEXITSTATUS(st),
	      "the threader ended with status %#x", st);
	CHECK(atomic_load(&sh->bad) == 0,
	      "%ld wrong exit statuses or thread results",
	      atomic_load(&sh->bad));
	return cr_done();
}
