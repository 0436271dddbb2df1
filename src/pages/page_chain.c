/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "page_chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_pid(const void *a, const void *b)
{
	const struct page_chain_pid *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

int page_chain_path(char *out, size_t len, const char *dir,
		    const char *parent)
{
	int n = parent[0] == '/' ? snprintf(out, len, "%s", parent)
				 : snprintf(out, len, "%s/%s", dir, parent);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int make_index(struct page_chain_level *l)
{
	l->by_pid = malloc((l->set.nprocs + 1) * sizeof(*l->by_pid));
	if (!l->by_pid)
		return -1;
	for (size_t i = 0; i < l->set.nprocs; i++)
		l->by_pid[i] = (struct page_chain_pid){ l->set.inv->pids[i], i };
	qsort(l->by_pid, l->set.nprocs, sizeof(*l->by_pid), by_pid);
	return 0;
}

const Capcr__Mm *page_chain_level_mm(const struct page_chain_level *l,
				     int32_t pid)
{
	struct page_chain_pid key = { pid, 0 };
	const struct page_chain_pid *hit =
		l->by_pid ? bsearch(&key, l->by_pid, l->set.nprocs,
				    sizeof(*l->by_pid), by_pid)
			  : NULL;

	return hit ? l->set.procs[hit->i].mm : NULL;
}

int page_chain_level_open(struct page_chain_level *l, const char *path,
			  char *why, size_t wl)
{
	memset(l, 0, sizeof(*l));
	l->img.dirfd = -1;
	if (image_mem_load(&l->img, path, &l->set, why, wl) < 0)
		return -1;
	if (make_index(l) < 0)
		return snprintf(why, wl, "out of memory"), -1;
	return 0;
}

void page_chain_level_close(struct page_chain_level *l)
{
	image_set_free(&l->set);
	image_close(&l->img);
	free(l->by_pid);
	l->by_pid = NULL;
}

const Capcr__Mm *page_chain_mm(const struct page_chain *c, size_t k,
			       int32_t pid)
{
	if (!c || !k || k > c->n)
		return NULL;
	return page_chain_level_mm(&c->lv[k - 1], pid);
}

struct image *page_chain_img(const struct page_chain *c, size_t k)
{
	return c && k && k <= c->n ? &c->lv[k - 1].img : NULL;
}

int page_chain_open(struct page_chain **out, const struct image *img,
		    const struct image_set *s, char *why, size_t wl)
{
	struct page_chain *c;
	const struct image *child_img = img;
	const struct image_set *child = s;
	char path[sizeof(img->path)], w[1024];

	*out = NULL;
	if (!s->inv->parent)
		return 0;
	if (!(c = calloc(1, sizeof(*c))) ||
	    !(c->lv = calloc(PAGE_CHAIN_MAX, sizeof(*c->lv)))) {
		free(c);
		return snprintf(why, wl, "out of memory"), -1;
	}
	*out = c;
	while (child->inv->parent) {
		struct page_chain_level *l = &c->lv[c->n];
		if (c->n == PAGE_CHAIN_MAX)
			return snprintf(why, wl, "%s has more than %d parent "
						 "images", img->path,
					PAGE_CHAIN_MAX), -1;
		if (page_chain_path(path, sizeof(path), child_img->path,
				    child->inv->parent) < 0)
			return snprintf(why, wl, "the parent image of %s: its "
						 "path is too long",
					child_img->path), -1;
		c->n++;
		if (page_chain_level_open(l, path, w, sizeof(w)) < 0)
			return snprintf(why, wl, "the parent image %s of %s: %s",
					path, child_img->path, w), -1;
		/* The very image the child was made after: another one
		 * there (a later pre-dump into the same directory, an
		 * image edited since) would give it other pages. */
		if (l->img.inv_xxh3 != child->inv->parent_inventory_xxh3)
			return snprintf(why, wl, "%s is not the parent image "
						 "%s was made after (its "
						 "inventory changed since)",
					path, child_img->path), -1;
		for (size_t i = 0; i < child->nprocs; i++) {
			int32_t pid = child->inv->pids[i];
			const Capcr__Mm *mm = child->procs[i].mm;
			if (mm && image_parent_validate(
					  mm, page_chain_mm(c, c->n, pid),
					  pid, path, w, sizeof(w)) < 0)
				return snprintf(why, wl, "%s: %s",
						child_img->path, w), -1;
		}
		child_img = &l->img;
		child = &l->set;
	}
	return 0;
}

int page_chain_verify(struct page_chain *c, char *why, size_t wl)
{
	for (size_t k = 0; c && k < c->n; k++)
		if (image_verify_finish(&c->lv[k].img, why, wl) < 0)
			return -1;
	return 0;
}

void page_chain_close(struct page_chain *c)
{
	if (!c)
		return;
	for (size_t k = 0; k < c->n; k++)
		page_chain_level_close(&c->lv[k]);
	free(c->lv);
	free(c);
}
