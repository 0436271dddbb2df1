/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "shmem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

static int shmem_dump_locked(struct image *img, struct arena *a,
			     Capcr__Files *files, struct shmem_table *tab,
			     int fd, const char *name, char *why, size_t wl);

/* One object is saved once, whichever process's dump meets it first. */
int shmem_dump(struct image *img, struct arena *a, Capcr__Files *files,
	       struct shmem_table *tab, int fd, const char *name, char *why,
	       size_t wl)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&lock);
	int r = shmem_dump_locked(img, a, files, tab, fd, name, why, wl);
	pthread_mutex_unlock(&lock);
	return r;
}

static int shmem_dump_locked(struct image *img, struct arena *a,
			     Capcr__Files *files, struct shmem_table *tab,
			     int fd, const char *name, char *why, size_t wl)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return files_fail(why, wl, "fstat of shared memory: %s",
				  strerror(errno));
	for (size_t i = 0; i < tab->n; i++)
		if (tab->seen[i].dev == st.st_dev && tab->seen[i].ino == st.st_ino)
			return (int)i;
	void *n = realloc(tab->seen, (tab->n + 1) * sizeof(*tab->seen));
	if (!n)
		return files_fail(why, wl, "out of memory");
	tab->seen = n;
	tab->seen[tab->n].dev = st.st_dev;
	tab->seen[tab->n].ino = st.st_ino;
	tab->n++;

	Capcr__Shmem *sh = arena_alloc(a, sizeof(*sh));
	capcr__shmem__init(sh);
	sh->ino = st.st_ino;
	sh->size = (uint64_t)st.st_size;
	if (name)
		sh->name = arena_strdup(a, name);
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals > 0) {
		sh->has_seals = 1;
		sh->seals = (uint32_t)seals;
	}
	char dname[64];
	snprintf(dname, sizeof(dname), "shmem-%lu.img", (unsigned long)st.st_ino);
	/* Only the extents that hold data: a shmem file has holes where no
	 * page was ever written. */
	int r = extents_save(img, a, fd, (uint64_t)st.st_size, dname, &sh->runs,
			     &sh->n_runs, why, wl);
	sh->data_file = arena_strdup(a, dname);
	arena_push(a, (void ***)&files->shmem, &files->n_shmem, sh);
	return r < 0 ? -1 : (int)(files->n_shmem - 1);
}

void shmem_table_free(struct shmem_table *tab)
{
	free(tab->seen);
	tab->seen = NULL;
	tab->n = 0;
}

int shmem_restore_all(struct image *img, const Capcr__Files *files, int **fds,
		      char *why, size_t wl)
{
	int *v = calloc(files->n_shmem + 1, sizeof(int));

	*fds = v;
	if (!v)
		return files_fail(why, wl, "out of memory");
	for (size_t i = 0; i < files->n_shmem; i++)
		v[i] = -1;
	for (size_t i = 0; i < files->n_shmem; i++) {
		const Capcr__Shmem *sh = files->shmem[i];
		int fd = memfd_create(sh->name ? sh->name : "capcr-shmem",
				      MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0 || ftruncate(fd, (off_t)sh->size) < 0)
			return files_fail(why, wl, "cannot make shared memory "
						   "of %llu bytes: %s",
					  (unsigned long long)sh->size,
					  strerror(errno));
		v[i] = fd;
		if (extents_load(img, sh->data_file, sh->runs, sh->n_runs,
				 sh->size, fd, why, wl) < 0)
			return -1;
		/* F_SEAL_SEAL alone was a memfd made without sealing. */
		if (sh->has_seals && sh->seals &&
		    fcntl(fd, F_ADD_SEALS, sh->seals) < 0)
			return files_fail(why, wl, "cannot seal shared memory "
						   "%s: %s",
					  sh->name ? sh->name : "",
					  strerror(errno));
	}
	return 0;
}
