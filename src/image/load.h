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

/*
 * The memory of an image alone: inventory.img and the mm-PID.img of each
 * process (procs[i].mm; no task, descriptors or files.img), what a parent
 * image gives the images after it.  image_mem_load opens DIR into img,
 * reads and validates them (image_mem_validate: the inventory, each mm
 * file as image_set_validate checks it); a pre-dump is read this way.
 */
int image_mem_load(struct image *img, const char *dir, struct image_set *s,
		   char *why, size_t whylen);
int image_mem_validate(const struct image_set *s, char *why, size_t whylen);
/*
 * Every run of process pid's areas mm that says it is in the parent image
 * (parent_dir) is held there: by parent, the same process's areas in it
 * (NULL: the parent has no such process), as its own pages or in turn in
 * its parent (validate_parent.c).  0, or -1 with why.
 */
int image_parent_validate(const Capcr__Mm *mm, const Capcr__Mm *parent,
			  int32_t pid, const char *parent_dir, char *why,
			  size_t whylen);

#endif
