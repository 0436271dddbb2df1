/* SPDX-License-Identifier: MIT */
/*
 * The contents of a file or shared memory object as its data extents:
 * saved without its holes (SEEK_DATA/SEEK_HOLE), put back at the same
 * offsets, so that what was sparse stays sparse.  Runs are whole pages:
 * an extent is widened to the pages it touches, the last one read as
 * zeros past the end.  Shared by shared memory (shmem.c) and deleted
 * files (regular.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"

#define PAGE 4096u
#define CHUNK (1u << 20)

int extents_save(struct image *img, struct arena *a, int fd, uint64_t size,
		 const char *name, Capcr__PageRun ***runs, size_t *nruns,
		 char *why, size_t wl)
{
	struct image_data d;
	char *buf = malloc(CHUNK);
	int r;

	if (!buf)
		return files_fail(why, wl, "out of memory");
	if ((r = image_data_open(img, &d, name)) < 0) {
		free(buf);
		return files_fail(why, wl, "cannot create %s: %s", name,
				  strerror(-r));
	}
	off_t pos = 0, end = (off_t)size;
	while (pos < end && !r) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			r = files_fail(why, wl, "cannot find the data of %s: %s",
				       name, strerror(errno));
		if (data < 0 || data >= end)
			break; /* ENXIO: no more data */
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		data -= data % PAGE;
		if (data < pos)
			data = pos;
		Capcr__PageRun *run = arena_alloc(a, sizeof(*run));
		if (!run) {
			r = files_fail(why, wl, "out of memory");
			break;
		}
		capcr__page_run__init(run);
		run->vaddr = (uint64_t)data;
		run->npages = ((uint64_t)(hole - data) + PAGE - 1) / PAGE;
		run->offset = d.size;
		off_t stop = data + (off_t)(run->npages * PAGE);
		for (off_t o = data; o < stop && !r;) {
			size_t want = (size_t)(stop - o) < CHUNK
					      ? (size_t)(stop - o)
					      : CHUNK;
			ssize_t got = pread(fd, buf, want, o);
			if (got < 0) {
				r = files_fail(why, wl, "cannot read for %s: %s",
					       name, strerror(errno));
				break;
			}
			/* past the end: zeros to a page */
			if ((size_t)got < want)
				memset(buf + got, 0, want - (size_t)got);
			int w = image_data_write(&d, buf, want);
			if (w < 0)
				r = files_fail(why, wl, "cannot write %s: %s",
					       name, strerror(-w));
			o += (off_t)want;
		}
		arena_push(a, (void ***)runs, nruns, run);
		pos = stop;
	}
	if (image_data_close(img, &d) < 0 && !r)
		r = files_fail(why, wl, "cannot sync %s", name);
	free(buf);
	return r < 0 ? -1 : 0;
}

int extents_load(struct image *img, const char *name,
		 Capcr__PageRun *const *runs, size_t nruns, uint64_t size,
		 int dst, char *why, size_t wl)
{
	char *buf;
	int src;

	if (!nruns)
		return 0;
	if (!name || (src = image_open_data(img, name)) < 0)
		return files_fail(why, wl, "cannot open the data of %s: %s",
				  name ? name : "an object", image_error());
	if (!(buf = malloc(CHUNK))) {
		close(src);
		return files_fail(why, wl, "out of memory");
	}
	int r = 0;
	for (size_t k = 0; k < nruns && !r; k++) {
		uint64_t left = runs[k]->npages * PAGE;
		uint64_t from = runs[k]->offset, to = runs[k]->vaddr;
		while (left && to < size) {
			size_t want = left < CHUNK ? (size_t)left : CHUNK;
			if (to + want > size)
				want = (size_t)(size - to);
			ssize_t got = pread(src, buf, want, (off_t)from);
			if (got != (ssize_t)want ||
			    pwrite(dst, buf, want, (off_t)to) != (ssize_t)want) {
				r = files_fail(why, wl, "cannot put back the data "
							"from %s: %s",
					       name,
					       got < 0 || got == (ssize_t)want
						       ? strerror(errno)
						       : "short read");
				break;
			}
			left -= want;
			from += want;
			to += want;
		}
	}
	free(buf);
	close(src);
	return r;
}
