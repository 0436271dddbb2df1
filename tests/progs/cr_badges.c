/* SPDX-License-Identifier: MIT */
/*
 * A region that lies about sharing, run under capcr run: the checkpoint
 * takes the regions' badges as candidates for shared open file
 * descriptions, but the kernel decides.
 *   - fd B (another file) is given A's badge: must not be merged with A;
 *   - fd C (a dup of A) is given a badge of its own: must stay shared.
 * After the restore the positions tell: A and C move together, B alone.
 */
#define _GNU_SOURCE
#include <fcntl.h>

#include "capcr/capinfo.h"
#include "crtest.h"

/* This process's region (its mapping of the capcr-capinfo memfd). */
static struct capcr_capinfo_header *region(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	void *r = NULL;

	while (f && !r && fgets(line, sizeof(line), f)) {
		unsigned long s;
		if (strstr(line, "/memfd:" CAPCR_CAPINFO_MEMFD_NAME " ") &&
		    sscanf(line, "%lx-", &s) == 1)
			r = (void *)s;
	}
	if (f)
		fclose(f);
	return r;
}

static uint64_t *badge_of(struct capcr_capinfo_header *h, int fd)
{
	struct capcr_cap_info *a = (struct capcr_cap_info *)(h + 1);
	for (uint32_t i = 0; i < h->count; i++)
		if (a[i].kcap == fd)
			return (uint64_t *)(uintptr_t)a[i].badge_ptr;
	return NULL;
}

int main(void)
{
	cr_init("cr_badges");
	int a = open(cr_path("a"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	int b = open(cr_path("b"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	int c = dup(a);
	SETUP(a >= 0 && b >= 0 && c >= 0, "open");
	struct capcr_capinfo_header *h = region();
	SETUP(h != NULL, "no region: run me under capcr run");
	uint64_t *pa = badge_of(h, a), *pb = badge_of(h, b),
		 *pc = badge_of(h, c);
	SETUP(pa && pb && pc && *pa && *pa == *pc && *pb != *pa,
	      "badges as the runtime gave them");
	/* The lies (no lock taken: nothing else runs here). */
	*pb = *pa;
	*pc = *pa + 12345;
	SETUP(write(a, "aaaa", 4) == 4, "write");

	cr_ready();
	cr_wait_go();

	CHECK(lseek(a, 0, SEEK_CUR) == 4, "A at 4");
	CHECK(lseek(c, 0, SEEK_CUR) == 4, "C (a dup of A) at 4 too");
	CHECK(lseek(b, 0, SEEK_CUR) == 0, "B at 0");
	lseek(a, 100, SEEK_SET);
	CHECK(lseek(c, 0, SEEK_CUR) == 100,
	      "A and C still share one description (a split was refused)");
	CHECK(lseek(b, 0, SEEK_CUR) == 0,
	      "B is still its own description (a merge was refused)");
	return cr_done();
}
