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
	static char buf[1 << 20]; /* under shmem_dump's lock */

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
	struct image_data d;
	int r = image_data_open(img, &d, dname);
	if (r < 0)
		return files_fail(why, wl, "cannot create %s: %s", dname,
				  strerror(-r));
	/* Only the extents that hold data: a shmem file has holes where no
	 * page was ever written. */
	off_t pos = 0, end = st.st_size;
	while (pos < end && !r) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: no more data */
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		Capcr__PageRun *run = arena_alloc(a, sizeof(*run));
		capcr__page_run__init(run);
		run->vaddr = (uint64_t)data;
		run->npages = (uint64_t)(hole - data + 4095) / 4096;
		run->offset = d.size;
		for (off_t o = data; o < data + (off_t)run->npages * 4096;) {
			size_t want = (size_t)(data + (off_t)run->npages * 4096 - o);
			if (want > sizeof(buf))
				want = sizeof(buf);
			ssize_t got = pread(fd, buf, want, o);
			if (got < 0) {
				r = files_fail(why, wl, "cannot read shared "
						       "memory: %s",
					       strerror(errno));
				break;
			}
			/* past the end of the object: zeros to a page */
			if ((size_t)got < want)
				memset(buf + got, 0, want - (size_t)got);
			if ((r = image_data_write(&d, buf, want)) < 0) {
				r = files_fail(why, wl, "cannot write %s: %s",
					       dname, strerror(-r));
				break;
			}
			o += (off_t)want;
		}
		arena_push(a, (void ***)&sh->runs, &sh->n_runs, run);
		pos = data + (off_t)run->npages * 4096;
	}
	if (image_data_close(img, &d) < 0 && !r)
		r = files_fail(why, wl, "cannot sync %s", dname);
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
	static char buf[1 << 20];

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
		int src = sh->data_file ? image_open_data(img, sh->data_file)
					: -1;
		for (size_t k = 0; k < sh->n_runs; k++) {
			uint64_t left = sh->runs[k]->npages * 4096;
			uint64_t from = sh->runs[k]->offset;
			uint64_t to = sh->runs[k]->vaddr;
			while (left) {
				size_t want = left < sizeof(buf) ? left
								 : sizeof(buf);
				if (to + want > sh->size)
					want = to < sh->size ? sh->size - to : 0;
				if (!want)
					break;
				if (src < 0 ||
				    pread(src, buf, want, (off_t)from) !=
					    (ssize_t)want ||
				    pwrite(fd, buf, want, (off_t)to) !=
					    (ssize_t)want) {
					if (src >= 0)
						close(src);
					return files_fail(why, wl,
							  "cannot refill shared "
							  "memory from %s",
							  sh->data_file);
				}
				left -= want;
				from += want;
				to += want;
			}
		}
		if (src >= 0)
			close(src);
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
