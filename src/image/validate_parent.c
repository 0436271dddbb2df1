/* SPDX-License-Identifier: MIT */
/*
 * An incremental image against its parent: every run of a process's
 * areas said to be in the parent image (PageRun.in_parent) must be held
 * there, by the same process, as pages of the parent's own or, in turn,
 * of its parent's.  Pure, over messages image_set_validate or
 * image_mem_validate checked already (runs in order, inside their areas),
 * so one pass over both suffices.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "load.h"

#define PAGE 4096ull

/* The parent's runs, in address order across its areas. */
struct cursor {
	const Capcr__Mm *mm;
	size_t v, r;
};

static const Capcr__PageRun *cur(struct cursor *c)
{
	while (c->mm && c->v < c->mm->n_vmas) {
		if (c->r < c->mm->vmas[c->v]->n_pages)
			return c->mm->vmas[c->v]->pages[c->r];
		c->v++;
		c->r = 0;
	}
	return NULL;
}

int image_parent_validate(const Capcr__Mm *mm, const Capcr__Mm *parent,
			  int32_t pid, const char *parent_dir, char *why,
			  size_t wl)
{
	struct cursor c = { parent, 0, 0 };

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Capcr__Vma *v = mm->vmas[i];
		for (size_t k = 0; k < v->n_pages; k++) {
			const Capcr__PageRun *r = v->pages[k], *p;
			uint64_t a = r->vaddr, b = r->vaddr + r->npages * PAGE;
			if (!r->in_parent)
				continue;
			while ((p = cur(&c)) &&
			       p->vaddr + p->npages * PAGE <= a)
				c.r++;
			/* covered piece by piece, without a gap */
			while (a < b && (p = cur(&c)) && p->vaddr <= a) {
				uint64_t e = p->vaddr + p->npages * PAGE;
				a = e < b ? e : b;
				if (e <= b)
					c.r++;
			}
			if (a < b && !parent)
				return snprintf(why, wl,
						"mm-%d.img: vmas[%zu].pages[%zu]:"
						" the page at %#llx is in the "
						"parent image, but %s holds no "
						"process %d",
						pid, i, k,
						(unsigned long long)a,
						parent_dir, pid),
				       -1;
			if (a < b)
				return snprintf(why, wl,
						"mm-%d.img: vmas[%zu].pages[%zu]:"
						" the page at %#llx is in the "
						"parent image, but mm-%d.img of "
						"%s holds no such page",
						pid, i, k,
						(unsigned long long)a, pid,
						parent_dir),
				       -1;
		}
	}
	return 0;
}
