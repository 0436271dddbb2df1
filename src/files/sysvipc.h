/* SPDX-License-Identifier: MIT */
/*
 * SysV IPC objects the tree used: shared memory segments, semaphore sets,
 * message queues.  They are not descriptors and outlive processes, so
 * they are kept per object (Files.sysv) and re-created with their key and
 * id (through /proc/sys/kernel/{shm,sem,msg}_next_id), contents included.
 *
 * Which objects: every segment a process of the tree has attached or
 * created, every semaphore set whose last operation came from the tree,
 * every queue the tree last sent to or received from.  An object that
 * existed before the tree is therefore saved too when the tree used it.
 * At restore an object that still exists with the same key and id (the
 * usual case after a dump on the same machine: SysV objects outlive their
 * processes) is reused and given the saved contents; an id taken by an
 * object of another key makes the restore fail, naming both.
 */
#ifndef CAPCR_SYSVIPC_H
#define CAPCR_SYSVIPC_H

#include <sys/types.h>

#include "shmem.h"

/* Dump side. attached: shmids mapped by the tree's processes. */
int sysv_dump(struct image *img, struct arena *a, Capcr__Files *files,
	      struct shmem_table *shm, const pid_t *pids, size_t npids,
	      const int *attached, size_t nattached, char *why, size_t wl);

/* Restore side, before any process is made: every object there with its
 * contents.  Objects made here are listed in made[] (ids by type) so a
 * failed restore removes them again. */
struct sysv_made {
	int type[256], id[256];
	unsigned n;
};
int sysv_restore_all(const Capcr__Files *files, const int *shmem_fd,
		     struct sysv_made *made, char *why, size_t wl);
/* Undo what sysv_restore_all made (a failed restore). */
void sysv_remove_made(const struct sysv_made *made);
/* After the processes attached them: segments that were marked for
 * removal while attached are marked again. */
void sysv_finish(const Capcr__Files *files);

#endif
