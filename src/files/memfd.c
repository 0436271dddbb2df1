/* SPDX-License-Identifier: MIT */
/* memfd: name, contents and seals. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "files.h"

static int match(const struct file_dump_in *in)
{
	return !strncmp(in->k->target, "/memfd:", 7);
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	char name[64];
	int seals = fcntl(in->copy, F_GET_SEALS);

	/* "/memfd:NAME (deleted)" */
	char n[256];
	snprintf(n, sizeof(n), "%s", in->k->target + 7);
	char *d = strstr(n, " (deleted)");
	if (d)
		*d = 0;
	f->path = arena_strdup(env->arena, n);
	if (seals >= 0) {
		f->has_seals = 1;
		f->seals = (uint32_t)seals;
	}
	f->has_size = 1;
	f->size = (uint64_t)in->st.st_size;
	snprintf(name, sizeof(name), "memfd-%lu.img", (unsigned long)in->st.st_ino);
	return files_save_contents(env, in->copy, name, f, 1);
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	unsigned flags = MFD_CLOEXEC;
	int fd;

	/* Sealing must be allowed at creation; F_SEAL_SEAL alone means it
	 * was not. */
	if (f->has_seals && f->seals != F_SEAL_SEAL)
		flags |= MFD_ALLOW_SEALING;
	fd = memfd_create(f->path ? f->path : "", flags);
	if (fd < 0)
		return FILE_FAIL(env, "memfd_create: %s", strerror(errno));
	if (ftruncate(fd, (off_t)f->size) < 0 ||
	    files_load_contents(env, f, fd) < 0) {
		close(fd);
		return FILE_FAIL(env, "cannot refill memfd %s", f->path);
	}
	if (f->has_seals && f->seals && f->seals != F_SEAL_SEAL &&
	    fcntl(fd, F_ADD_SEALS, f->seals) < 0) {
		close(fd);
		return FILE_FAIL(env, "cannot seal memfd %s: %s", f->path,
				 strerror(errno));
	}
	return fd;
}

const struct file_ops file_memfd = {
	.kind = CAPCR__FILE_KIND__FILE_MEMFD,
	.name = "memfd",
	.match = match,
	.dump = dump,
	.restore = restore,
};
