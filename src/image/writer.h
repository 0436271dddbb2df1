/* SPDX-License-Identifier: MIT */
/*
 * Writing an image data file from a second thread, so that reading the
 * next block (from the target's memory) overlaps writing the last one: on
 * two cores a dump then runs at the speed of the slower of the two, not
 * of their sum.
 */
#ifndef CAPCR_IMAGE_WRITER_H
#define CAPCR_IMAGE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

struct image_writer;

/* Start writing into d with nbufs buffers of bufsize bytes. */
struct image_writer *image_writer_start(struct image_data *d, size_t bufsize,
					int nbufs);
/* A buffer to fill (waits for one to be free); NULL once writing failed.
 * A buffer not handed over stays free: no need to give it back. */
void *image_writer_buffer(struct image_writer *w);
/* Hand a filled buffer over; len bytes of it go to the file, in order. */
void image_writer_submit(struct image_writer *w, void *buf, size_t len);
/* Bytes handed over so far: the file offset of the next buffer. */
uint64_t image_writer_queued(const struct image_writer *w);
/* Wait for everything to be written; 0 or the first -errno. */
int image_writer_finish(struct image_writer *w);

#endif
