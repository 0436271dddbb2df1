/* SPDX-License-Identifier: MIT */
/*
 * The dump side of the page layer: a sink that the memory dump hands one
 * process's pages to, by virtual address, and that records in the
 * process's areas where each run of pages went.  The local sink is the
 * image's pages-PID.img, written on a second thread (image/writer.c) so
 * that reading the target overlaps writing; a run may also say that its
 * pages are unchanged since the parent image (an incremental dump).
 * page_read.h is the other side.
 */
#ifndef CAPCR_PAGE_XFER_H
#define CAPCR_PAGE_XFER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/arena.h"
#include "../image/image.h"

/*
 * The most bytes one buffer takes.  1 MiB, 8 buffers between reader and
 * writer: measured on this machine, 1-4 MiB blocks read fastest, and
 * 16 MiB ones cost a first touch of 48 MiB of fresh buffer, which on a VM
 * whose host backs guest memory lazily ran at 0.25 GB/s and was the larger
 * part of a 64 MiB dump.
 */
#define PAGE_XFER_BLOCK (1u << 20)

struct page_xfer;

/* The local sink of process pid: pages-PID.img in img.  NULL with *err
 * (-errno) when the file cannot be made. */
struct page_xfer *page_xfer_local(struct image *img, pid_t pid, int *err);
/* Room for the next pages, after those buffered already: *room bytes
 * (at most PAGE_XFER_BLOCK; waits for a free buffer when the last is
 * full).  NULL once the sink failed (page_xfer_finish says why).  Small
 * runs share a buffer: a dump after a pre-dump copies many single pages,
 * and one write and one handover each cost more than the copy. */
void *page_xfer_room(struct page_xfer *x, size_t *room);
/* len bytes were put at the start of that room: they go to the sink,
 * hashed on this (the reading) thread when their buffer is handed over. */
void page_xfer_fill(struct page_xfer *x, size_t len);
/* Where the next bytes go: what a run records. */
uint64_t page_xfer_at(const struct page_xfer *x);
/* Record in vma (its runs allocated from a) that its npages at vaddr went
 * to the sink at `at`: joined to the last run when both follow on, in
 * memory and in the sink. */
void page_xfer_note(struct arena *a, Capcr__Vma *vma, uint64_t vaddr,
		    uint64_t npages, uint64_t at);
/* Record in vma that its npages at vaddr are as the parent image has
 * them (unwritten since): joined to the last such run when they follow
 * on. */
void page_xfer_note_parent(struct arena *a, Capcr__Vma *vma,
			   uint64_t vaddr, uint64_t npages);
/* Write out what is left and put the pages file in the image: 0 or
 * -errno (the first failure of the sink). */
int page_xfer_finish(struct page_xfer *x);
/* Drop the sink unfinished: its file never appears in the image. */
void page_xfer_abandon(struct page_xfer *x);

#endif
