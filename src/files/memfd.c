/* SPDX-License-Identifier: MIT */
/*
 * memfd descriptors.  The object (name, contents, seals) is kept once as a
 * shared memory object (shmem.c), which the process's mappings of it name
 * too; the descriptor is an open file description on it, restored by
 * opening the restored object again, so descriptor and mappings stay one
 * object.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "files.h"

static int match(const struct file_dump_in *in)
{
	return !strncmp(in->k->target, "/memfd:", 7);
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	/* "/memfd:NAME (deleted)" */
	char n[256];
	snprintf(n, sizeof(n), "%s", in->k->target + 7);
	char *d = strstr(n, " (deleted)");
	if (d)
		*d = 0;
	f->path = arena_strdup(env->arena, n);
	int idx = shmem_dump(env->img, env->arena, env->files, env->shm,
			     in->copy, n, env->why, env->whylen);
	if (idx < 0)
		return -1;
	f->has_shmem = 1;
	f->shmem = idx;
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	char path[64];
	int fd;

	if (!f->has_shmem || !env->shmem_fd)
		return FILE_FAIL(env, "memfd %s has no object in the image",
				 f->path ? f->path : "");
	snprintf(path, sizeof(path), "/proc/self/fd/%d",
		 env->shmem_fd[f->shmem]);
	fd = open(path, (int)(f->flags & O_ACCMODE) | O_CLOEXEC);
	if (fd < 0)
		return FILE_FAIL(env, "cannot open memfd %s again: %s",
				 f->path ? f->path : "", strerror(errno));
	return fd;
}

const struct file_ops file_memfd = {
	.kind = CAPCR__FILE_KIND__FILE_MEMFD,
	.name = "memfd",
	.match = match,
	.dump = dump,
	.restore = restore,
};
