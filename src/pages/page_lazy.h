/* SPDX-License-Identifier: MIT */
/*
 * Lazy pages: putting a process's saved pages into its memory through a
 * userfaultfd (UFFDIO_COPY) instead of by a pread the process makes.  Used
 * by capcr restore --lazy-pages, both for the pages capcr restore itself
 * must write before the process runs and by the lazy server afterwards
 * (src/restore/lazy_serve.c).
 */
#ifndef CAPCR_PAGE_LAZY_H
#define CAPCR_PAGE_LAZY_H

#include <stddef.h>
#include <stdint.h>

#include "page_read.h"

/* What a lazy restore asks of every userfaultfd: a fork, a madvise that
 * drops pages, an munmap and an mremap are told, so that no page is put
 * where the process no longer expects the saved one. */
#define PAGE_LAZY_FEATURES                                                  \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |                 \
	 UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)

/*
 * Put the saved pages of [start, end) (page aligned) through uffd, read
 * from pr's pages files into buf (buflen bytes, a multiple of 4096), at
 * their address + delta (an area moved by mremap since).  Pages already
 * there are left alone; with zero_holes, pages that no run covers get the
 * zero page (UFFDIO_ZEROPAGE).  A range no longer registered (unmapped
 * meanwhile) is skipped.  0, or -errno: -EAGAIN when the address space is
 * changing (read the userfaultfd's events first, then again), -ESRCH when
 * it is gone.  *copied (if not NULL) grows by the bytes put.
 */
int page_lazy_copy(int uffd, const struct page_read *pr, uint64_t start,
		   uint64_t end, int64_t delta, int zero_holes, void *buf,
		   size_t buflen, uint64_t *copied);

/* The run of pr that holds addr: its index, or -1. */
long page_lazy_find(const struct page_read *pr, uint64_t addr);

#endif
