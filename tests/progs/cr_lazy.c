/* SPDX-License-Identifier: MIT */
/*
 * cr_lazy MIB: the program tests/t_lazy.sh restores with --lazy-pages.
 *
 * Before the dump: an area of MIB MiB written word by word with a pattern,
 * but for one page in 64 left untouched (it must read as zeros: a hole the
 * server fills with the zero page), and three 8 MiB areas with the same
 * pattern.  Once restored and told to go (the go file is there before the
 * restore, so this runs while its pages are still coming in):
 *   - it forks; the child checks every byte of the big area, last page
 *     first, and ends with the verdict as its status;
 *   - it drops the first half of the second area (MADV_DONTNEED: zeros),
 *     moves the third (mremap: the pattern at its new place) and unmaps
 *     and maps again the first half of the fourth (zeros);
 *   - four threads check every byte of the big area, each its pages in a
 *     scattered order;
 * then it checks the small areas and prints its verdict.
 */
#include "crtest.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096UL
#define SMALL (8UL << 20)
#define NT 4

static uint64_t *big;
static size_t big_len;

static uint64_t word(uint64_t seed, size_t i)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + i + 1;
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	return x | 1; /* never zero: a zero word is a page that was lost */
}

static int hole(size_t page)
{
	return page % 64 == 63;
}

static void fill(uint64_t *p, size_t len, uint64_t seed, int holes)
{
	for (size_t pg = 0; pg < len / PAGE; pg++)
		if (!holes || !hole(pg))
			for (size_t w = 0; w < PAGE / 8; w++)
				p[pg * (PAGE / 8) + w] =
					word(seed, pg * (PAGE / 8) + w);
}

/* Bad words of page pg of p (seed; base: p's first page's index). */
static size_t check_page(const uint64_t *p, size_t pg, uint64_t seed,
			 int holes, size_t base)
{
	size_t bad = 0;
	for (size_t w = 0; w < PAGE / 8; w++) {
		uint64_t want = holes && hole(pg + base)
					? 0
					: word(seed, (pg + base) * (PAGE / 8) + w);
		bad += p[pg * (PAGE / 8) + w] != want;
	}
	return bad;
}

static size_t zeros(const uint64_t *p, size_t len)
{
	size_t bad = 0;
	for (size_t i = 0; i < len / 8; i++)
		bad += p[i] != 0;
	return bad;
}

static void *checker(void *arg)
{
	size_t t = (size_t)arg, n = big_len / PAGE, bad = 0, seen = 0;
	/* An odd stride over a power-of-two count of pages visits each. */
	for (size_t k = 0; k < n; k++) {
		size_t pg = (k * 7919 + t * 104729) % n;
		if (pg % NT != t)
			continue;
		bad += check_page(big, pg, 1, 1, 0);
		seen++;
	}
	cr_check(seen == n / NT, "thread %zu saw %zu pages, not %zu", t, seen,
		 n / NT);
	return (void *)bad;
}

static uint64_t *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("FAIL: cr_lazy: setup: mmap: %s\n", strerror(errno));
		exit(2);
	}
	return p;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	cr_init("cr_lazy");
	big_len = mib << 20;
	if (!big_len || (big_len & (big_len - 1))) {
		printf("FAIL: cr_lazy: setup: MIB must be a power of two\n");
		return 2;
	}
	big = map(big_len);
	uint64_t *dropped = map(SMALL), *moved = map(SMALL),
		 *remapped = map(SMALL);
	fill(big, big_len, 1, 1);
	fill(dropped, SMALL, 2, 0);
	fill(moved, SMALL, 3, 0);
	fill(remapped, SMALL, 4, 0);
	cr_ready();
	cr_wait_go();
	double t0 = cr_now();
	printf("running\n");
	fflush(stdout);

	pid_t child = fork();
	if (child == 0) {
		size_t bad = 0;
		for (size_t pg = big_len / PAGE; pg-- > 0;)
			bad += check_page(big, pg, 1, 1, 0);
		_exit(bad ? 1 : 0);
	}
	cr_check(child > 0, "fork: %s", strerror(errno));

	madvise(dropped, SMALL / 2, MADV_DONTNEED);
	/* A place to move to, free again at once. */
	uint64_t *to = map(SMALL);
	uint64_t *now = mremap(moved, SMALL, SMALL, MREMAP_MAYMOVE | MREMAP_FIXED,
			       to);
	cr_check(now == to, "mremap: %s", strerror(errno));
	munmap(remapped, SMALL / 2);
	uint64_t *again = mmap(remapped, SMALL / 2, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_check(again == remapped, "mmap again: %s", strerror(errno));

	pthread_t th[NT];
	for (size_t t = 0; t < NT; t++)
		pthread_create(&th[t], NULL, checker, (void *)t);
	size_t bad = 0;
	for (size_t t = 0; t < NT; t++) {
		void *r;
		pthread_join(th[t], &r);
		bad += (size_t)r;
	}
	cr_check(!bad, "%zu words of the %zu MiB area differ", bad, mib);

	size_t b = zeros(dropped, SMALL / 2), c = 0;
	cr_check(!b, "%zu words dropped with MADV_DONTNEED are not zero", b);
	for (size_t pg = SMALL / 2 / PAGE; pg < SMALL / PAGE; pg++)
		c += check_page(dropped, pg, 2, 0, 0);
	cr_check(!c, "%zu words of the kept half differ", c);
	c = 0;
	for (size_t pg = 0; pg < SMALL / PAGE; pg++)
		c += check_page(now, pg, 3, 0, 0);
	cr_check(!c, "%zu words of the moved area differ", c);
	b = zeros(remapped, SMALL / 2);
	cr_check(!b, "%zu words unmapped and mapped again are not zero", b);
	c = 0;
	for (size_t pg = SMALL / 2 / PAGE; pg < SMALL / PAGE; pg++)
		c += check_page(remapped, pg, 4, 0, 0);
	cr_check(!c, "%zu words of the half left mapped differ", c);

	int st = 0;
	if (child > 0 && waitpid(child, &st, 0) == child)
		cr_check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			 "the child forked while the pages came in saw "
			 "differences (status %#x)", st);
	cr_info("checked %zu MiB in %.0f ms", mib, (cr_now() - t0) * 1e3);
	return cr_done();
}
