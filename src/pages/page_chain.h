/* SPDX-License-Identifier: MIT */
/*
 * The chain of parents of an incremental image: each parent named by the
 * inventory of the image before it (Inventory.parent), opened with the
 * same trust checks as any image directory, identified by the checksum of
 * its inventory the child recorded, its memory (inventory and mm files)
 * read and validated, and every run the child says is in the parent
 * checked to be there (image/validate_parent.c) before anything is made.
 */
#ifndef CAPCR_PAGE_CHAIN_H
#define CAPCR_PAGE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "../image/image.h"
#include "../image/load.h"

/* The longest chain of parents followed. */
#define PAGE_CHAIN_MAX 64

struct page_chain_pid {
	int32_t pid;
	size_t i; /* in set.procs */
};

struct page_chain_level {
	struct image img;
	struct image_set set; /* inventory and mm files only */
	struct page_chain_pid *by_pid; /* its processes, by PID */
};

struct page_chain {
	struct page_chain_level *lv; /* lv[0]: the parent of the image */
	size_t n;
};

/* One image's memory: open the image in path and read it (inventory
 * and mm files, validated), with its processes indexed.  0, or -1 with
 * why; page_chain_level_close either way. */
int page_chain_level_open(struct page_chain_level *l, const char *path,
			  char *why, size_t wl);
const Capcr__Mm *page_chain_level_mm(const struct page_chain_level *l,
				     int32_t pid);
void page_chain_level_close(struct page_chain_level *l);

/* The parents of the image s read from img (whose inventory names the
 * first): NULL in *out when it has none.  0, or -1 with why. */
int page_chain_open(struct page_chain **out, const struct image *img,
		    const struct image_set *s, char *why, size_t wl);
/* Level k of the chain (1: the parent, 2: its parent...): its image, and
 * the areas of process pid there (NULL when it has none). */
struct image *page_chain_img(const struct page_chain *c, size_t k);
const Capcr__Mm *page_chain_mm(const struct page_chain *c, size_t k,
			       int32_t pid);
/* Wait for the checksums of the parents' large files: 0 or -1 with why. */
int page_chain_verify(struct page_chain *c, char *why, size_t wl);
void page_chain_close(struct page_chain *c);

/* The directory a parent named by `parent` is in, for an image in dir:
 * relative names are relative to dir (as CRIU's --prev-images-dir is to
 * -D).  0, or -1 when it does not fit. */
int page_chain_path(char *out, size_t len, const char *dir,
		    const char *parent);

#endif
