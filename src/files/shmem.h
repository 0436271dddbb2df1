/* SPDX-License-Identifier: MIT */
/*
 * Shared memory objects: shared anonymous memory, memfds, SysV segments.
 * One object may be mapped by many areas of many processes and held by
 * descriptors too; the image keeps it once (Files.shmem) and each mapping
 * or descriptor names it, so a restore makes one object again and every
 * one of them shares it as before.
 */
#ifndef CAPCR_SHMEM_H
#define CAPCR_SHMEM_H

#include <stdint.h>
#include <sys/types.h>

#include "../common/arena.h"
#include "../image/image.h"

/* Dump side: objects met so far. */
struct shmem_table {
	struct {
		uint64_t dev, ino;
	} *seen;
	size_t n;
};

/* The index in files->shmem of the object fd refers to, saving it the
 * first time (contents read from fd, holes skipped).  name: a memfd's
 * name or NULL.  Returns the index, or -1 with why set. */
int shmem_dump(struct image *img, struct arena *a, Capcr__Files *files,
	       struct shmem_table *tab, int fd, const char *name, char *why,
	       size_t wl);
void shmem_table_free(struct shmem_table *tab);

/* Restore side: every object of the image, made and filled; fds[i] holds
 * object i.  Returns 0 or -1 with why set. */
int shmem_restore_all(struct image *img, const Capcr__Files *files, int **fds,
		      char *why, size_t wl);

#endif
