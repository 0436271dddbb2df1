/* SPDX-License-Identifier: MIT */
/*
 * cr_incr [MIB]: memory that changes between incremental dumps
 * (t_predump.sh: pre-dump, step, pre-dump --prev-images-dir, step, dump
 * --prev-images-dir, restore).  Every word it wrote is checked once the go
 * file appears, so a page taken from the wrong image, a stale one, or one
 * that should have read as zero or as the file shows up.
 *
 *   A  MIB MiB (default 64) of private anonymous memory, every page
 *      written (generation 1);
 *   C  256 KiB, written;
 *   D  an array in .data (a private file mapping: its pages are
 *      anonymous copies once written), every page written.
 * On $CR_DIR/step.N it does step N, then prints "stepped N":
 *   1  rewrites 1% of A's pages (generation 2);
 *   2  rewrites 4% more of A (generation 3), drops 8 pages of A
 *      (MADV_DONTNEED: they read as zero) and one page of D (it reads as
 *      the file again: zeros), maps a new area B of 1 MiB and grows C to
 *      512 KiB (mremap, maybe moving it), writing both.
 */
#include "crtest.h"

#include <sys/mman.h>

#define PG 4096
#define WORDS (PG / 8)
#define D_PAGES 16

static uint64_t d_area[D_PAGES * WORDS] __attribute__((aligned(PG))) = { 1 };

static uint64_t word(unsigned area, unsigned gen, size_t page, size_t w)
{
	return ((uint64_t)area << 56) ^ ((uint64_t)gen << 48) ^
	       ((uint64_t)page << 16) ^ w ^ 0x5a5a;
}

static void fill(uint64_t *p, unsigned area, unsigned gen, size_t page)
{
	for (size_t w = 0; w < WORDS; w++)
		p[page * WORDS + w] = word(area, gen, page, w);
}

/* Pages of p (gen[i] 0: must read zero) that differ. */
static size_t check(const uint64_t *p, unsigned area, const unsigned char *gen,
		    size_t pages)
{
	size_t bad = 0;

	for (size_t i = 0; i < pages; i++)
		for (size_t w = 0; w < WORDS; w++)
			if (p[i * WORDS + w] !=
			    (gen[i] ? word(area, gen[i], i, w) : 0)) {
				if (!bad)
					printf("first bad: area %c page %zu word "
					       "%zu: %#llx\n", 'A' + area - 1, i, w,
					       (unsigned long long)p[i * WORDS + w]);
				bad++;
				break;
			}
	return bad;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
	size_t na = mib * 256, nb = 256, nc = 64;
	unsigned char *ga, gb[256], gc[128], gd[D_PAGES];
	uint64_t *a, *b = NULL, *c;
	char step[4200];
	int next = 1;

	cr_init("cr_incr");
	ga = calloc(na, 1);
	a = mmap(NULL, na * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c = mmap(NULL, 2 * nc * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(ga && a != MAP_FAILED && c != MAP_FAILED, "mmap");
	/* C alone, room after it unmapped: growing it may stay in place */
	munmap(c + nc * WORDS, nc * PG);
	for (size_t i = 0; i < na; i++) {
		fill(a, 1, 1, i);
		ga[i] = 1;
	}
	for (size_t i = 0; i < nc; i++) {
		fill(c, 3, 1, i);
		gc[i] = 1;
	}
	for (size_t i = 0; i < D_PAGES; i++) {
		fill(d_area, 4, 1, i);
		gd[i] = 1;
	}
	cr_ready();
	for (;;) {
		snprintf(step, sizeof(step), "%s/step.%d", cr_dir, next);
		if (cr_go_here(cr_go))
			break;
		if (!cr_go_here(step)) {
			cr_nap_ms(5);
			continue;
		}
		if (next == 1) {
			for (size_t i = 0; i < na; i += 100) {
				fill(a, 1, 2, i);
				ga[i] = 2;
			}
		} else if (next == 2) {
			for (size_t i = 7; i < na; i += 25) {
				fill(a, 1, 3, i);
				ga[i] = 3;
			}
			for (size_t i = 0; i < 8; i++) {
				size_t p = 13 + i * (na / 8);
				SETUP(madvise((char *)a + p * PG, PG,
					      MADV_DONTNEED) == 0, "madvise");
				ga[p] = 0;
			}
			SETUP(madvise((char *)d_area + 3 * PG, PG,
				      MADV_DONTNEED) == 0, "madvise .data");
			gd[3] = 0;
			b = mmap(NULL, nb * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			SETUP(b != MAP_FAILED, "mmap B");
			for (size_t i = 0; i < nb; i++) {
				fill(b, 2, 4, i);
				gb[i] = 4;
			}
			c = mremap(c, nc * PG, 2 * nc * PG, MREMAP_MAYMOVE);
			SETUP(c != MAP_FAILED, "mremap C");
			for (size_t i = nc; i < 2 * nc; i++) {
				fill(c, 3, 5, i);
				gc[i] = 5;
			}
			nc *= 2;
		}
		printf("stepped %d\n", next++);
		fflush(stdout);
	}
	CHECK(check(a, 1, ga, na) == 0, "area A (%zu MiB) differs", mib);
	if (b)
		CHECK(check(b, 2, gb, nb) == 0, "area B differs");
	CHECK(check(c, 3, gc, nc) == 0, "area C differs");
	CHECK(check(d_area, 4, gd, D_PAGES) == 0, ".data differs");
	free(ga); /* or LeakSanitizer counts it lost */
	return cr_done();
}
