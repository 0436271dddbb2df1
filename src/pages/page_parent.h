/* SPDX-License-Identifier: MIT */
/*
 * What an incremental dump (capcr dump or pre-dump with --prev-images-dir)
 * knows of the image it is made after: that image's memory, read and
 * validated as a restore reads a parent, and the write tracking its holder
 * kept since (track.h).  A page may be recorded as "in the parent" only
 * when all of these hold: the tracking of its process was handed over,
 * its area is exactly an area of the parent (same start, end and kind:
 * one that appeared, moved or grew is dumped whole) and that tracking's
 * own (another userfaultfd's write protection would read as unwritten),
 * the parent holds the page, and PAGEMAP_SCAN says it was not written
 * since the parent was made.
 */
#ifndef CAPCR_PAGE_PARENT_H
#define CAPCR_PAGE_PARENT_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "page_chain.h"
#include "track.h"

struct page_parent {
	struct page_chain_level lv;
	char name[PATH_MAX]; /* as given: what the inventory records */
	struct track_set track;
};

/* The parent prev of an image made in dir (a relative prev is relative
 * to dir, as CRIU's --prev-images-dir is to -D), its tracking taken over.
 * NULL with why when it cannot be used: the dump is then a full one. */
struct page_parent *page_parent_open(const char *dir, const char *prev,
				     char *why, size_t wl);
/* Process pid's areas in the parent and its tracking (the userfaultfd,
 * -1 when none), or NULL. */
const Capcr__Mm *page_parent_mm(const struct page_parent *p, pid_t pid,
				int *uffd);
/* The parent's area exactly like v (start, end, kind), or NULL. */
const Capcr__Vma *page_parent_area(const Capcr__Mm *pm, const Capcr__Vma *v);
/* Does the parent's area pa hold the page at addr?  1: up to *upto; 0:
 * not, and *upto is where the next page it holds is (or UINT64_MAX). */
int page_parent_lookup(const Capcr__Vma *pa, uint64_t addr, uint64_t *upto);
/* Hand the tracking of pid over to the caller (-1 if none). */
int page_parent_take_uffd(struct page_parent *p, pid_t pid);
/* Close it all: tracking not handed over ends with it. */
void page_parent_close(struct page_parent *p);

#endif
