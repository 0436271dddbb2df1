/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "page_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "page_chain.h"

#define PAGE 4096ULL

static int has_parent_runs(const Capcr__Mm *mm)
{
	for (size_t i = 0; mm && i < mm->n_vmas; i++)
		for (size_t k = 0; k < mm->vmas[i]->n_pages; k++)
			if (mm->vmas[i]->pages[k]->in_parent)
				return 1;
	return 0;
}

static size_t count_runs(const Capcr__Mm *mm)
{
	size_t n = 0;

	for (size_t i = 0; i < mm->n_vmas; i++)
		n += mm->vmas[i]->n_pages;
	return n;
}

struct segs {
	struct page_seg *s;
	size_t n, cap;
};

/* Append, joined to the last one when it follows on in memory and in the
 * same file. */
static int push(struct segs *o, uint64_t vaddr, uint64_t len, uint64_t off,
		uint32_t level)
{
	struct page_seg *l = o->n ? &o->s[o->n - 1] : NULL;

	if (l && l->level == level && l->vaddr + l->len == vaddr &&
	    l->off + l->len == off) {
		l->len += len;
		return 0;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 16;
		struct page_seg *n = realloc(o->s, cap * sizeof(*n));
		if (!n)
			return -1;
		o->s = n;
		o->cap = cap;
	}
	o->s[o->n++] = (struct page_seg){ vaddr, len, off, level };
	return 0;
}

/*
 * The runs of mm (image `level`) resolved: its own pages where they are,
 * and each run in the parent taken from below (the parent's, resolved
 * already).  Both are in address order, so one pass does it.  The
 * validator made sure the parent covers every such run; a gap here is
 * still refused rather than left unfilled.
 */
static int resolve(struct segs *out, const Capcr__Mm *mm, uint32_t level,
		   const struct segs *below, char *why, size_t wl)
{
	size_t j = 0;

	out->n = 0;
	out->cap = count_runs(mm) + 1;
	out->s = malloc(out->cap * sizeof(*out->s));
	if (!out->s)
		return snprintf(why, wl, "out of memory"), -1;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Capcr__Vma *v = mm->vmas[i];
		for (size_t k = 0; k < v->n_pages; k++) {
			const Capcr__PageRun *r = v->pages[k];
			uint64_t a = r->vaddr, b = r->vaddr + r->npages * PAGE;
			if (!r->in_parent) {
				if (push(out, a, b - a, r->offset, level) < 0)
					goto oom;
				continue;
			}
			while (below && j < below->n &&
			       below->s[j].vaddr + below->s[j].len <= a)
				j++;
			while (a < b) {
				const struct page_seg *s =
					below && j < below->n ? &below->s[j]
							      : NULL;
				if (!s || s->vaddr > a)
					return snprintf(why, wl,
							"the page at %#llx is "
							"in no image of the "
							"chain",
							(unsigned long long)a),
					       -1;
				uint64_t e = s->vaddr + s->len < b
						     ? s->vaddr + s->len
						     : b;
				if (push(out, a, e - a, s->off + (a - s->vaddr),
					 s->level) < 0)
					goto oom;
				a = e;
				if (a == s->vaddr + s->len)
					j++;
			}
		}
	}
	return 0;
oom:
	return snprintf(why, wl, "out of memory"), -1;
}

int page_read_open(struct page_read *pr, struct image *img,
		   const Capcr__Mm *mm, int32_t pid,
		   const struct page_chain *chain, page_keep_fn keep,
		   void *arg, char *why, size_t wl)
{
	const Capcr__Mm *mms[PAGE_CHAIN_MAX + 1];
	size_t depth = 1, max = 1 + (chain ? chain->n : 0);
	struct segs below = { 0 }, cur = { 0 };
	char name[64];

	memset(pr, 0, sizeof(*pr));
	/* The images this process's pages come from: down the chain while
	 * an image says some of them are in its parent. */
	mms[0] = mm;
	while (has_parent_runs(mms[depth - 1])) {
		if (depth == max || depth > PAGE_CHAIN_MAX ||
		    !(mms[depth] = page_chain_mm(chain, depth, pid)))
			return snprintf(why, wl, "process %d: pages are in a "
						 "parent image that does not "
						 "hold them", pid),
			       -1;
		depth++;
	}
	for (size_t l = depth; l-- > 0;) {
		int r = resolve(&cur, mms[l], (uint32_t)l,
				l + 1 < depth ? &below : NULL, why, wl);
		free(below.s);
		below = cur;
		cur = (struct segs){ 0 };
		if (r < 0) {
			free(below.s);
			return -1;
		}
	}
	pr->segs = below.s;
	pr->nsegs = below.n;
	pr->nlevels = depth;
	pr->fd = malloc(depth * sizeof(*pr->fd));
	if (!pr->fd)
		return snprintf(why, wl, "out of memory"), -1;
	for (size_t l = 0; l < depth; l++)
		pr->fd[l] = -1;
	/* Only the pages files some of them come from are opened. */
	snprintf(name, sizeof(name), "pages-%d.img", pid);
	for (size_t i = 0; i < pr->nsegs; i++) {
		uint32_t l = pr->segs[i].level;
		struct image *li = l ? page_chain_img(chain, l) : img;
		if (pr->fd[l] >= 0)
			continue;
		if ((pr->fd[l] = keep(arg, image_open_data(li, name))) < 0)
			return snprintf(why, wl, "cannot open %s%s%s: %s", name,
					l ? " of the parent image " : "",
					l ? li->path : "", strerror(errno)),
			       -1;
	}
	return 0;
}

size_t page_read_first_after(const struct page_read *pr, uint64_t addr)
{
	size_t lo = 0, hi = pr->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pr->segs[mid].vaddr + pr->segs[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int page_read_fill(const struct page_read *pr, uint64_t start, uint64_t end,
		   page_fill_fn fill, void *arg)
{
	for (size_t i = page_read_first_after(pr, start); i < pr->nsegs && pr->segs[i].vaddr < end; i++) {
		const struct page_seg *s = &pr->segs[i];
		uint64_t a = s->vaddr > start ? s->vaddr : start;
		uint64_t b = s->vaddr + s->len < end ? s->vaddr + s->len : end;
		if (fill(arg, pr->fd[s->level], a, b - a,
			 s->off + (a - s->vaddr)) < 0)
			return -1;
	}
	return 0;
}

void page_read_close(struct page_read *pr)
{
	/* The descriptors are the restore's, closed with its others. */
	free(pr->fd);
	free(pr->segs);
	memset(pr, 0, sizeof(*pr));
}
