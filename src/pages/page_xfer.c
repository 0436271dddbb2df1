/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "page_xfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "../image/writer.h"

#define PAGE 4096ULL
/* Buffers between the reading thread and the writing one. */
#define XFER_BUFS 8

struct page_xfer {
	struct image_data data; /* pages-PID.img */
	struct image_writer *wr;
	char *buf;   /* being filled, not yet handed over */
	size_t fill; /* bytes in it */
};

struct page_xfer *page_xfer_local(struct image *img, pid_t pid, int *err)
{
	struct page_xfer *x = calloc(1, sizeof(*x));
	char name[64];
	int r;

	if (!x) {
		*err = -ENOMEM;
		return NULL;
	}
	snprintf(name, sizeof(name), "pages-%d.img", pid);
	if ((r = image_data_open(img, &x->data, name)) < 0) {
		free(x);
		*err = r;
		return NULL;
	}
	x->wr = image_writer_start(&x->data, PAGE_XFER_BLOCK, XFER_BUFS);
	if (!x->wr) {
		image_data_abandon(&x->data);
		free(x);
		*err = -ENOMEM;
		return NULL;
	}
	return x;
}

/* Hand the buffer being filled over to the writer. */
static void flush(struct page_xfer *x)
{
	if (x->buf && x->fill)
		image_writer_submit(x->wr, x->buf, x->fill);
	x->buf = NULL;
	x->fill = 0;
}

void *page_xfer_room(struct page_xfer *x, size_t *room)
{
	if (x->buf && x->fill == PAGE_XFER_BLOCK)
		flush(x);
	if (!x->buf && !(x->buf = image_writer_buffer(x->wr)))
		return NULL;
	*room = PAGE_XFER_BLOCK - x->fill;
	return x->buf + x->fill;
}

void page_xfer_fill(struct page_xfer *x, size_t len)
{
	x->fill += len;
}

uint64_t page_xfer_at(const struct page_xfer *x)
{
	return image_writer_queued(x->wr) + x->fill;
}

static Capcr__PageRun *last_run(const Capcr__Vma *vma)
{
	return vma->n_pages ? vma->pages[vma->n_pages - 1] : NULL;
}

static void push_run(struct arena *a, Capcr__Vma *vma, uint64_t vaddr,
		     uint64_t npages, uint64_t at, int in_parent)
{
	Capcr__PageRun *pr = ARENA_NEW(a, Capcr__PageRun);

	capcr__page_run__init(pr);
	pr->vaddr = vaddr;
	pr->npages = npages;
	pr->offset = at;
	if (in_parent)
		pr->has_in_parent = pr->in_parent = 1;
	arena_push(a, (void ***)&vma->pages, &vma->n_pages, pr);
}

void page_xfer_note(struct arena *a, Capcr__Vma *vma, uint64_t vaddr,
		    uint64_t npages, uint64_t at)
{
	Capcr__PageRun *last = last_run(vma);

	if (last && !last->in_parent &&
	    last->vaddr + last->npages * PAGE == vaddr &&
	    last->offset + last->npages * PAGE == at) {
		last->npages += npages;
		return;
	}
	push_run(a, vma, vaddr, npages, at, 0);
}

void page_xfer_note_parent(struct arena *a, Capcr__Vma *vma,
			   uint64_t vaddr, uint64_t npages)
{
	Capcr__PageRun *last = last_run(vma);

	if (last && last->in_parent &&
	    last->vaddr + last->npages * PAGE == vaddr) {
		last->npages += npages;
		return;
	}
	push_run(a, vma, vaddr, npages, 0, 1);
}

int page_xfer_finish(struct page_xfer *x)
{
	flush(x);
	int w = image_writer_finish(x->wr);
	/* Linked in only when whole: image_data_close drops a file whose
	 * writing failed. */
	int c = image_data_close(x->data.img, &x->data);

	free(x);
	return w < 0 ? w : c;
}

void page_xfer_abandon(struct page_xfer *x)
{
	if (!x)
		return;
	image_writer_finish(x->wr);
	image_data_abandon(&x->data);
	free(x);
}
