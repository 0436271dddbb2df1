/* SPDX-License-Identifier: MIT */
/*
 * The restore side of the page layer: the source a restore takes one
 * process's pages from, by virtual address.  The local source is the
 * image's pages-PID.img and, for the runs an incremental image says are
 * unchanged since its parent, the pages files of its chain of parents
 * (page_chain.h): each run is resolved, once, to the image that holds its
 * bytes and the offset there.  The process itself reads them (an injected
 * pread, page_fill_fn), from descriptors it is handed.
 */
#ifndef CAPCR_PAGE_READ_H
#define CAPCR_PAGE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "../image/image.h"

struct page_chain;

/* A stretch of pages and where its bytes are: image `level` of the chain
 * (0: the image restored), at off in its pages file. */
struct page_seg {
	uint64_t vaddr, len, off;
	uint32_t level;
};

struct page_read {
	int *fd;               /* per level: its pages file, or -1 */
	size_t nlevels;
	struct page_seg *segs; /* by address, disjoint */
	size_t nsegs;
};

/* Hand a descriptor to the process (the restore keeps it above the
 * image's numbers): the number it has there, or -1 with errno. */
typedef int (*page_keep_fn)(void *arg, int fd);

/*
 * The pages of process pid, whose areas are mm (its mm-PID.img in img),
 * and chain (NULL for an image without a parent): resolve every run, open
 * the pages file of each image that holds some of them and keep it with
 * keep.  0, or -1 with why.
 */
int page_read_open(struct page_read *pr, struct image *img,
		   const Capcr__Mm *mm, int32_t pid,
		   const struct page_chain *chain, page_keep_fn keep,
		   void *arg, char *why, size_t wl);

/* Read len bytes at off of descriptor fd (the process's) into vaddr of
 * the process: 0, or -1 having said why. */
typedef int (*page_fill_fn)(void *arg, int fd, uint64_t vaddr, uint64_t len,
			    uint64_t off);

/* The index of the first piece ending after addr (nsegs if none): the
 * one holding addr, or the next after it. */
size_t page_read_first_after(const struct page_read *pr, uint64_t addr);

/* Fill [start, end), which saved pages cover, through fill. */
int page_read_fill(const struct page_read *pr, uint64_t start, uint64_t end,
		   page_fill_fn fill, void *arg);

void page_read_close(struct page_read *pr);

#endif
