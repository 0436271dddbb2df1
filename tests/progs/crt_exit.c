/* SPDX-License-Identifier: MIT */
/*
 * crt_exit: a tree with a member that is killed during its dump
 * (t_cr_tree2.sh).
 *
 *   CR_GO=FILE crt_exit [MIB [root]]
 *
 * The root makes three children: the victim (idle, waiting in pause), the
 * big one (MIB MiB of memory, default 256, filled with a pattern, so that
 * dumping it takes a while) and the worker (counting in a shared page
 * every millisecond).  It prints "ready pid=R victim=V big=B worker=W" and
 * waits for the go file; the test kills the victim meanwhile, during a
 * dump.  Then the root says what became of the victim ("victim killed by
 * signal 9", or "victim alive", when the test did not get to kill it, and
 * then kills it itself), checks that the worker still counts, stops the
 * big one and the worker, which check themselves (the big one its whole
 * memory), and ends with "PASS crt_exit" or "FAIL crt_exit (N
 * failures)".
 *
 * With "root", the root holds the MIB MiB (and checks them at the end)
 * and the big one only 1 MiB: the victim is then saved after the root's
 * long turn instead of before the big one's.
 */
#define _GNU_SOURCE
#include "crtest.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

struct shared {
	atomic_long count;
	atomic_int stop;
	atomic_int big_ready;
};

static struct shared *sh;

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 256;
	int in_root = argc > 2 && !strcmp(argv[2], "root");
	size_t big_mib = in_root ? 1 : mib;
	unsigned char *rm = NULL;

	cr_init("crt_exit");
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	SETUP(sh != MAP_FAILED, "mmap");
	pid_t v = fork();
	SETUP(v >= 0, "fork");
	if (v == 0) {
		for (;;)
			pause();
	}
	pid_t b = fork();
	SETUP(b >= 0, "fork");
	if (b == 0) {
		cr_name = "crt_exit(big)";
		size_t len = big_mib << 20;
		unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		SETUP(m != MAP_FAILED, "mmap");
		cr_fill(m, len, 77);
		atomic_store(&sh->big_ready, 1);
		while (!atomic_load(&sh->stop))
			cr_nap_ms(5);
		long off = cr_verify(m, len, 77);
		CHECK(off < 0, "memory differs at offset %ld", off);
		_exit(cr_failures ? 1 : 0);
	}
	pid_t w = fork();
	SETUP(w >= 0, "fork");
	if (w == 0) {
		while (!atomic_load(&sh->stop)) {
			atomic_fetch_add(&sh->count, 1);
			cr_nap_ms(1);
		}
		_exit(0);
	}
	if (in_root) {
		rm = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		SETUP(rm != MAP_FAILED, "mmap");
		cr_fill(rm, mib << 20, 78);
	}
	double end = cr_now() + 30;
	while (!atomic_load(&sh->big_ready) || atomic_load(&sh->count) < 5) {
		SETUP(cr_now() < end, "the children starting");
		cr_nap_ms(2);
	}
	printf("ready pid=%d victim=%d big=%d worker=%d\n", getpid(), v, b, w);
	cr_wait_go();
	int st = 0;
	pid_t r = waitpid(v, &st, WNOHANG);
	if (r == v) {
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "the victim ended with status %#x", st);
		cr_info("victim killed by signal %d",
			WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	} else {
		cr_info("victim alive");
		kill(v, SIGKILL);
		waitpid(v, &st, 0);
	}
	long c0 = atomic_load(&sh->count);
	cr_sleep_ms(100);
	CHECK(atomic_load(&sh->count) > c0, "the worker stopped counting");
	atomic_store(&sh->stop, 1);
	st = 0;
	CHECK(waitpid(b, &st, 0) == b && WIFEXITED(st) && !WEXITSTATUS(st),
	      "the big one ended with status %#x (its memory?)", st);
	st = 0;
	CHECK(waitpid(w, &st, 0) == w && WIFEXITED(st) && !WEXITSTATUS(st),
	      "the worker ended with status %#x", st);
	if (rm) {
		long off = cr_verify(rm, mib << 20, 78);
		CHECK(off < 0, "the root's memory differs at offset %ld", off);
	}
	return cr_done();
}
