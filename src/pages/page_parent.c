/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "page_parent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096ull

struct page_parent *page_parent_open(const char *dir, const char *prev,
				     char *why, size_t wl)
{
	struct page_parent *p = calloc(1, sizeof(*p));
	char path[PATH_MAX], w[1024];

	if (!p)
		return snprintf(why, wl, "out of memory"), NULL;
	p->lv.img.dirfd = -1;
	if (snprintf(p->name, sizeof(p->name), "%s", prev) >=
		    (int)sizeof(p->name) ||
	    page_chain_path(path, sizeof(path), dir, prev) < 0) {
		snprintf(why, wl, "--prev-images-dir %s: too long", prev);
		goto fail;
	}
	if (page_chain_level_open(&p->lv, path, w, sizeof(w)) < 0) {
		snprintf(why, wl, "the previous image %s cannot be used: %s",
			 path, w);
		goto fail;
	}
	/* Its pages files are read by the restore, checked then: the dump
	 * needs only its inventory and mm files. */
	image_verify_finish(&p->lv.img, w, sizeof(w));
	if (!p->lv.set.inv->track_socket) {
		snprintf(why, wl, "the previous image %s left no write "
				  "tracking (capcr pre-dump does)", path);
		goto fail;
	}
	if (track_take(p->lv.set.inv->track_socket, &p->track, w,
		       sizeof(w)) < 0) {
		snprintf(why, wl, "the previous image %s: %s", path, w);
		goto fail;
	}
	return p;
fail:
	page_parent_close(p);
	return NULL;
}

const Capcr__Mm *page_parent_mm(const struct page_parent *p, pid_t pid,
				int *uffd)
{
	struct track_proc *t = p ? track_find((struct track_set *)&p->track,
					      pid)
				 : NULL;

	*uffd = t ? t->uffd : -1;
	return t ? page_chain_level_mm(&p->lv, pid) : NULL;
}

const Capcr__Vma *page_parent_area(const Capcr__Mm *pm, const Capcr__Vma *v)
{
	size_t lo = 0, hi = pm->n_vmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pm->vmas[mid]->start < v->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == pm->n_vmas)
		return NULL;
	const Capcr__Vma *a = pm->vmas[lo];
	return a->start == v->start && a->end == v->end && a->kind == v->kind
		       ? a
		       : NULL;
}

int page_parent_lookup(const Capcr__Vma *pa, uint64_t addr, uint64_t *upto)
{
	size_t lo = 0, hi = pa->n_pages;

	/* the first run ending after addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const Capcr__PageRun *r = pa->pages[mid];
		if (r->vaddr + r->npages * PAGE <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == pa->n_pages) {
		*upto = UINT64_MAX;
		return 0;
	}
	const Capcr__PageRun *r = pa->pages[lo];
	if (addr < r->vaddr) {
		*upto = r->vaddr;
		return 0;
	}
	*upto = r->vaddr + r->npages * PAGE;
	/* runs that follow on, whether its own pages or in its parent */
	while (++lo < pa->n_pages && pa->pages[lo]->vaddr == *upto)
		*upto += pa->pages[lo]->npages * PAGE;
	return 1;
}

int page_parent_take_uffd(struct page_parent *p, pid_t pid)
{
	struct track_proc *t = p ? track_find(&p->track, pid) : NULL;
	int fd = t ? t->uffd : -1;

	if (t)
		t->uffd = -1;
	return fd;
}

void page_parent_close(struct page_parent *p)
{
	if (!p)
		return;
	track_set_free(&p->track);
	page_chain_level_close(&p->lv);
	free(p);
}
