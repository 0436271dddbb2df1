/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b)
{
	const Capcr__ImageFile *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Only files the inventory lists are read: image_open checksummed those,
 * and a file it does not list was not written by the dump.  sorted: the
 * inventory's files by name, so that reading is not quadratic. */
static void *read_listed(struct image *img, Capcr__ImageFile **sorted,
			 size_t n, const char *name,
			 const ProtobufCMessageDescriptor *desc, char *why,
			 size_t wl)
{
	Capcr__ImageFile key = { .name = (char *)name };
	const Capcr__ImageFile *kp = &key;
	Capcr__ImageFile *const *f = bsearch(&kp, sorted, n, sizeof(*sorted),
					     by_name);

	if (!f) {
		snprintf(why, wl, "%s is not in inventory.img", name);
		return NULL;
	}
	if ((*f)->size > IMAGE_MSG_MAX) {
		snprintf(why, wl, "%s is %llu bytes, more than any metadata "
				  "file (%d)", name,
			 (unsigned long long)(*f)->size, IMAGE_MSG_MAX);
		return NULL;
	}
	return image_read_msg(img, name, desc, why, wl);
}

static int load(struct image *img, struct image_set *s,
		Capcr__ImageFile **sorted, char *why, size_t wl)
{
	const size_t nf = s->inv->n_files;
	char name[64];

	/* The count is the attacker's: bound it before allocating by it. */
	if (!s->inv->n_pids)
		return snprintf(why, wl, "inventory.img: pids: the image holds "
					 "no process"), -1;
	if (s->inv->n_pids > IMAGE_PROCS_MAX)
		return snprintf(why, wl, "inventory.img: pids: %zu processes, "
					 "at most %d", s->inv->n_pids,
				IMAGE_PROCS_MAX), -1;
	if (s->inv->predump)
		return snprintf(why, wl, "%s is a pre-dump (capcr pre-dump): "
					 "it holds memory only, for a later "
					 "dump made with --prev-images-dir; "
					 "restore that one", img->path), -1;
	s->files = read_listed(img, sorted, nf, "files.img",
			       &capcr__files__descriptor, why, wl);
	if (!s->files)
		return -1;
	s->procs = calloc(s->inv->n_pids, sizeof(*s->procs));
	if (!s->procs)
		return snprintf(why, wl, "out of memory"), -1;
	s->nprocs = s->inv->n_pids;
	for (size_t i = 0; i < s->nprocs; i++) {
		struct image_proc *p = &s->procs[i];
		int32_t pid = s->inv->pids[i];

		snprintf(name, sizeof(name), "core-%d.img", pid);
		p->task = read_listed(img, sorted, nf, name,
				      &capcr__task__descriptor, why, wl);
		if (!p->task)
			return -1;
		snprintf(name, sizeof(name), "mm-%d.img", pid);
		p->mm = read_listed(img, sorted, nf, name, &capcr__mm__descriptor,
				    why, wl);
		if (!p->mm)
			return -1;
		snprintf(name, sizeof(name), "fds-%d.img", pid);
		p->fdt = read_listed(img, sorted, nf, name,
				     &capcr__fd_table__descriptor, why, wl);
		if (!p->fdt)
			return -1;
	}
	return 0;
}

/* Open dir's inventory, read with loader the files it lists (found by
 * name in a sorted copy of the list), then check them with check. */
static int load_and_check(struct image *img, const char *dir,
			  struct image_set *s,
			  int (*loader)(struct image *, struct image_set *,
					Capcr__ImageFile **, char *, size_t),
			  int (*check)(const struct image_set *, char *, size_t),
			  char *why, size_t wl)
{
	Capcr__ImageFile **sorted;
	int r;

	memset(s, 0, sizeof(*s));
	if (image_open(img, dir, &s->inv, why, wl) < 0)
		return -1;
	sorted = malloc((s->inv->n_files + 1) * sizeof(*sorted));
	if (!sorted)
		return snprintf(why, wl, "out of memory"), -1;
	if (s->inv->n_files)
		memcpy(sorted, s->inv->files,
		       s->inv->n_files * sizeof(*sorted));
	qsort(sorted, s->inv->n_files, sizeof(*sorted), by_name);
	r = loader(img, s, sorted, why, wl);
	free(sorted);
	return r < 0 ? -1 : check(s, why, wl);
}

int image_set_load(struct image *img, const char *dir, struct image_set *s,
		   char *why, size_t wl)
{
	return load_and_check(img, dir, s, load, image_set_validate, why, wl);
}

static int load_mem(struct image *img, struct image_set *s,
		    Capcr__ImageFile **sorted, char *why, size_t wl)
{
	char name[64];

	if (!s->inv->n_pids || s->inv->n_pids > IMAGE_PROCS_MAX)
		return snprintf(why, wl, "inventory.img: pids: %zu processes "
					 "(1 to %d)", s->inv->n_pids,
				IMAGE_PROCS_MAX), -1;
	s->procs = calloc(s->inv->n_pids, sizeof(*s->procs));
	if (!s->procs)
		return snprintf(why, wl, "out of memory"), -1;
	s->nprocs = s->inv->n_pids;
	for (size_t i = 0; i < s->nprocs; i++) {
		snprintf(name, sizeof(name), "mm-%d.img", s->inv->pids[i]);
		s->procs[i].mm = read_listed(img, sorted, s->inv->n_files, name,
					     &capcr__mm__descriptor, why, wl);
		if (!s->procs[i].mm)
			return -1;
	}
	return 0;
}

int image_mem_load(struct image *img, const char *dir, struct image_set *s,
		   char *why, size_t wl)
{
	return load_and_check(img, dir, s, load_mem, image_mem_validate, why,
			      wl);
}

void image_set_free(struct image_set *s)
{
	for (size_t i = 0; s->procs && i < s->nprocs; i++) {
		if (s->procs[i].task)
			capcr__task__free_unpacked(s->procs[i].task, NULL);
		if (s->procs[i].mm)
			capcr__mm__free_unpacked(s->procs[i].mm, NULL);
		if (s->procs[i].fdt)
			capcr__fd_table__free_unpacked(s->procs[i].fdt, NULL);
	}
	free(s->procs);
	if (s->files)
		capcr__files__free_unpacked(s->files, NULL);
	if (s->inv)
		capcr__inventory__free_unpacked(s->inv, NULL);
	memset(s, 0, sizeof(*s));
}
