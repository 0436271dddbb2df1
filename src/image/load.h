/* SPDX-License-Identifier: MIT */
/*
 * A whole image set, read and decoded, then validated as a whole
 * (validate.c) before capcr show prints a byte of it or capcr restore makes
 * anything from it.  The image is treated as written by an attacker.
 */
#ifndef CAPCR_IMAGE_LOAD_H
#define CAPCR_IMAGE_LOAD_H

#include <stddef.h>

#include "image.h"

/* restore remembers at most this many processes it made. */
#define IMAGE_PROCS_MAX 65536

/* One process: core-PID.img, mm-PID.img, fds-PID.img. */
struct image_proc {
	Capcr__Task *task;
	Capcr__Mm *mm;
	Capcr__FdTable *fdt;
};

struct image_set {
	Capcr__Inventory *inv;
	Capcr__Files *files;
	struct image_proc *procs; /* inventory order: procs[0] is the root */
	size_t nprocs;
};

/*
 * Open DIR (image_open: format, checksums) into img, decode every metadata
 * file of the image into s, and validate the whole (image_set_validate).
 * img stays open for the data files; on failure why says which file and
 * field, and the caller still calls image_set_free and image_close.
 */
int image_set_load(struct image *img, const char *dir, struct image_set *s,
		   char *why, size_t whylen);
void image_set_free(struct image_set *s);

/*
 * Every check that makes the decoded messages safe to act on: identities,
 * the process tree, memory areas and page runs, descriptor tables, every
 * index and name of a file, every length, count and signal number.  Pure:
 * reads nothing but s.  0, or -1 with why naming the file and field.
 */
int image_set_validate(const struct image_set *s, char *why, size_t whylen);

#endif
