/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "sysvipc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "files.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#ifndef SHM_DEST
#define SHM_DEST 01000
#endif

enum { SYSV_SHM = 1, SYSV_SEM = 2, SYSV_MSG = 3 };

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static int in_list(const pid_t *v, size_t n, long x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

static Capcr__SysvObject *new_obj(struct arena *a, Capcr__Files *files,
				  unsigned type, long key, long id,
				  unsigned mode, unsigned uid, unsigned gid)
{
	Capcr__SysvObject *o = arena_alloc(a, sizeof(*o));

	capcr__sysv_object__init(o);
	o->type = type;
	o->key = (int32_t)key;
	o->id = (int32_t)id;
	o->mode = mode;
	o->uid = uid;
	o->gid = gid;
	arena_push(a, (void ***)&files->sysv, &files->n_sysv, o);
	return o;
}

/* The contents of a segment, through a read-only attach of our own and
 * the file behind it, as one shared memory object (shmem.c). */
static int shm_contents(struct image *img, struct arena *a, Capcr__Files *files,
			struct shmem_table *shm, int id, char *why, size_t wl)
{
	void *p = shmat(id, NULL, SHM_RDONLY);
	char path[96], line[256];
	int idx = -1;

	if (p == (void *)-1)
		return files_fail(why, wl, "cannot attach SysV segment %d: %s",
				  id, strerror(errno));
	FILE *f = fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof(line), f)) {
		uint64_t s, e;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64, &s, &e) == 2 &&
		    s == (uintptr_t)p) {
			snprintf(path, sizeof(path),
				 "/proc/self/map_files/%" PRIx64 "-%" PRIx64, s,
				 e);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				idx = shmem_dump(img, a, files, shm, fd, NULL,
						 why, wl);
				close(fd);
			}
			break;
		}
	}
	if (f)
		fclose(f);
	shmdt(p);
	if (idx < 0 && !why[0])
		files_fail(why, wl, "cannot read SysV segment %d", id);
	return idx;
}

static int dump_shm(struct image *img, struct arena *a, Capcr__Files *files,
		    struct shmem_table *shm, const pid_t *pids, size_t np,
		    const int *att, size_t natt, char *why, size_t wl)
{
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	char line[512];

	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) { /* header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		long key, id, cpid, lpid;
		unsigned mode, uid, gid;
		unsigned long long size;
		if (sscanf(line, "%ld %ld %o %llu %ld %ld %*u %u %u", &key, &id,
			   &mode, &size, &cpid, &lpid, &uid, &gid) != 8)
			continue;
		int used = in_list(pids, np, cpid) || in_list(pids, np, lpid);
		for (size_t i = 0; i < natt; i++)
			used |= att[i] == id;
		if (!used)
			continue;
		Capcr__SysvObject *o =
			new_obj(a, files, SYSV_SHM, key, id, mode, uid, gid);
		o->has_size = 1;
		o->size = size;
		int idx = shm_contents(img, a, files, shm, (int)id, why, wl);
		if (idx < 0) {
			fclose(f);
			return -1;
		}
		o->has_shmem = 1;
		o->shmem = idx;
	}
	fclose(f);
	return 0;
}

static int dump_sem(struct arena *a, Capcr__Files *files, const pid_t *pids,
		    size_t np, char *why, size_t wl)
{
	FILE *f = fopen("/proc/sysvipc/sem", "re");
	char line[512];

	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		long key, id;
		unsigned mode, nsems, uid, gid;
		if (sscanf(line, "%ld %ld %o %u %u %u", &key, &id, &mode,
			   &nsems, &uid, &gid) != 6 || !nsems || nsems > 65536)
			continue;
		int used = 0;
		for (unsigned s = 0; s < nsems && !used; s++)
			used = in_list(pids, np, semctl((int)id, (int)s, GETPID));
		if (!used)
			continue;
		unsigned short *v = calloc(nsems, sizeof(*v));
		union semun u = { .array = v };
		if (!v || semctl((int)id, 0, GETALL, u) < 0) {
			free(v);
			fclose(f);
			return files_fail(why, wl, "cannot read SysV semaphore "
						   "set %ld: %s", id,
					  strerror(errno));
		}
		Capcr__SysvObject *o =
			new_obj(a, files, SYSV_SEM, key, id, mode, uid, gid);
		o->has_size = 1;
		o->size = nsems;
		o->n_semvals = nsems;
		o->semvals = arena_alloc(a, nsems * sizeof(uint32_t));
		for (unsigned s = 0; s < nsems; s++)
			o->semvals[s] = v[s];
		free(v);
	}
	fclose(f);
	return 0;
}

static int dump_msg(struct arena *a, Capcr__Files *files, const pid_t *pids,
		    size_t np, char *why, size_t wl)
{
	FILE *f = fopen("/proc/sysvipc/msg", "re");
	char line[512];
	struct {
		long mtype;
		char text[65536];
	} *m = malloc(sizeof(*m));

	if (!f || !m) {
		if (f)
			fclose(f);
		free(m);
		return 0;
	}
	if (!fgets(line, sizeof(line), f))
		goto out;
	while (fgets(line, sizeof(line), f)) {
		long key, id, cbytes, qnum, lspid, lrpid;
		unsigned mode, uid, gid;
		if (sscanf(line, "%ld %ld %o %ld %ld %ld %ld %u %u", &key, &id,
			   &mode, &cbytes, &qnum, &lspid, &lrpid, &uid,
			   &gid) != 9)
			continue;
		if (!in_list(pids, np, lspid) && !in_list(pids, np, lrpid))
			continue;
		Capcr__SysvObject *o =
			new_obj(a, files, SYSV_MSG, key, id, mode, uid, gid);
		/* MSG_COPY reads the n-th message without taking it. */
		for (long n = 0; n < qnum; n++) {
			ssize_t len = msgrcv((int)id, m, sizeof(m->text), n,
					     IPC_NOWAIT | MSG_COPY | MSG_NOERROR);
			if (len < 0) {
				fclose(f);
				free(m);
				return files_fail(why, wl,
						  "cannot read SysV message "
						  "queue %ld: %s", id,
						  strerror(errno));
			}
			Capcr__SysvMsg *x = arena_alloc(a, sizeof(*x));
			capcr__sysv_msg__init(x);
			x->mtype = m->mtype;
			x->text.len = (size_t)len;
			x->text.data = arena_memdup(a, m->text, (size_t)len);
			arena_push(a, (void ***)&o->msgs, &o->n_msgs, x);
		}
	}
out:
	fclose(f);
	free(m);
	return 0;
}

int sysv_dump(struct image *img, struct arena *a, Capcr__Files *files,
	      struct shmem_table *shm, const pid_t *pids, size_t npids,
	      const int *attached, size_t nattached, char *why, size_t wl)
{
	if (dump_shm(img, a, files, shm, pids, npids, attached, nattached,
		     why, wl) < 0 ||
	    dump_sem(a, files, pids, npids, why, wl) < 0 ||
	    dump_msg(a, files, pids, npids, why, wl) < 0)
		return -1;
	return 0;
}

/* Ask the kernel for the next id of a type, for the get that follows. */
static void next_id(unsigned type, int id)
{
	static const char *const file[] = { NULL, "/proc/sys/kernel/shm_next_id",
					    "/proc/sys/kernel/sem_next_id",
					    "/proc/sys/kernel/msg_next_id" };
	int fd = open(file[type], O_WRONLY | O_CLOEXEC);
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%d", id);

	if (fd >= 0) {
		ssize_t w = write(fd, buf, (size_t)n);
		(void)w; /* checked by the id the get returns */
		close(fd);
	}
}

/* The object with this id, if any, and its key. */
static int exists(unsigned type, int id, int *key)
{
	int r = -1;

	if (type == SYSV_SHM) {
		struct shmid_ds ds;
		r = shmctl(id, IPC_STAT, &ds);
		*key = ds.shm_perm.__key;
	} else if (type == SYSV_SEM) {
		struct semid_ds ds;
		union semun u = { .buf = &ds };
		r = semctl(id, 0, IPC_STAT, u);
		*key = ds.sem_perm.__key;
	} else {
		struct msqid_ds ds;
		r = msgctl(id, IPC_STAT, &ds);
		*key = ds.msg_perm.__key;
	}
	return r == 0;
}

static int make(const Capcr__SysvObject *o, struct sysv_made *made, char *why,
		size_t wl)
{
	static const char *const what[] = { "", "shared memory segment",
					    "semaphore set", "message queue" };
	int key = 0, id;
	int flags = IPC_CREAT | IPC_EXCL | (int)(o->mode & 0777);

	if (exists(o->type, o->id, &key)) {
		if (key != o->key)
			return files_fail(why, wl,
					  "SysV %s id %d is taken by another "
					  "object (key %#x, the image's is "
					  "%#x): remove it with ipcrm, or "
					  "restore where it is free",
					  what[o->type], o->id, (unsigned)key,
					  (unsigned)o->key);
		return 0; /* the same object, still there: reused */
	}
	next_id(o->type, o->id);
	key_t k = o->key ? o->key : IPC_PRIVATE;
	if (o->type == SYSV_SHM)
		id = shmget(k, (size_t)o->size, flags);
	else if (o->type == SYSV_SEM)
		id = semget(k, (int)o->size, flags);
	else
		id = msgget(k, flags);
	if (id < 0)
		return files_fail(why, wl, "cannot re-create SysV %s key %#x: "
					   "%s%s",
				  what[o->type], (unsigned)o->key,
				  strerror(errno),
				  errno == EEXIST ? " (an object with that "
						    "key exists: remove it "
						    "with ipcrm)"
						  : "");
	if (made->n < 256) {
		made->type[made->n] = (int)o->type;
		made->id[made->n++] = id;
	}
	if (id != o->id)
		return files_fail(why, wl, "SysV %s came back with id %d, not "
					   "%d", what[o->type], id, o->id);
	return 0;
}

static int fill(const Capcr__Files *files, const Capcr__SysvObject *o,
		const int *shmem_fd, char *why, size_t wl)
{
	if (o->type == SYSV_SHM && o->has_shmem && shmem_fd &&
	    (size_t)o->shmem < files->n_shmem) {
		char *p = shmat(o->id, NULL, 0);
		if (p == (void *)-1)
			return files_fail(why, wl, "cannot attach SysV segment "
						   "%d: %s", o->id,
					  strerror(errno));
		ssize_t got = pread(shmem_fd[o->shmem], p, (size_t)o->size, 0);
		shmdt(p);
		if (got < 0)
			return files_fail(why, wl, "cannot fill SysV segment "
						   "%d", o->id);
	} else if (o->type == SYSV_SEM) {
		unsigned short *v = calloc(o->n_semvals + 1, sizeof(*v));
		for (size_t i = 0; v && i < o->n_semvals; i++)
			v[i] = (unsigned short)o->semvals[i];
		union semun u = { .array = v };
		int r = v ? semctl(o->id, 0, SETALL, u) : -1;
		free(v);
		if (r < 0)
			return files_fail(why, wl, "cannot set SysV semaphores "
						   "%d: %s", o->id,
					  strerror(errno));
	} else if (o->type == SYSV_MSG) {
		struct {
			long mtype;
			char text[65536];
		} *m = malloc(sizeof(*m));
		if (!m)
			return files_fail(why, wl, "out of memory");
		/* An object that stayed: its queue is replaced by the
		 * image's. */
		while (msgrcv(o->id, m, sizeof(m->text), 0,
			      IPC_NOWAIT | MSG_NOERROR) >= 0)
			;
		for (size_t i = 0; i < o->n_msgs; i++) {
			size_t len = o->msgs[i]->text.len;
			if (len > sizeof(m->text))
				len = sizeof(m->text);
			m->mtype = (long)o->msgs[i]->mtype;
			memcpy(m->text, o->msgs[i]->text.data, len);
			if (msgsnd(o->id, m, len, IPC_NOWAIT) < 0) {
				free(m);
				return files_fail(why, wl,
						  "cannot queue a message on "
						  "SysV queue %d: %s",
						  o->id, strerror(errno));
			}
		}
		free(m);
	}
	/* Owner and mode as they were. */
	if (o->type == SYSV_SHM) {
		struct shmid_ds ds;
		if (shmctl(o->id, IPC_STAT, &ds) == 0) {
			ds.shm_perm.uid = o->uid;
			ds.shm_perm.gid = o->gid;
			ds.shm_perm.mode = (unsigned short)(o->mode & 0777);
			shmctl(o->id, IPC_SET, &ds);
		}
	}
	return 0;
}

int sysv_restore_all(const Capcr__Files *files, const int *shmem_fd,
		     struct sysv_made *made, char *why, size_t wl)
{
	for (size_t i = 0; i < files->n_sysv; i++)
		if (make(files->sysv[i], made, why, wl) < 0 ||
		    fill(files, files->sysv[i], shmem_fd, why, wl) < 0)
			return -1;
	return 0;
}

void sysv_remove_made(const struct sysv_made *made)
{
	for (unsigned i = 0; i < made->n; i++) {
		if (made->type[i] == SYSV_SHM)
			shmctl(made->id[i], IPC_RMID, NULL);
		else if (made->type[i] == SYSV_SEM)
			semctl(made->id[i], 0, IPC_RMID);
		else
			msgctl(made->id[i], IPC_RMID, NULL);
	}
}

void sysv_finish(const Capcr__Files *files)
{
	for (size_t i = 0; i < files->n_sysv; i++)
		if (files->sysv[i]->type == SYSV_SHM &&
		    (files->sysv[i]->mode & SHM_DEST))
			shmctl(files->sysv[i]->id, IPC_RMID, NULL);
}
