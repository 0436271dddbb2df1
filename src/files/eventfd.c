/* SPDX-License-Identifier: MIT */
/* eventfd: its counter and whether it counts as a semaphore. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "files.h"

static int match(const struct file_dump_in *in)
{
	return !strcmp(in->k->target, "anon_inode:[eventfd]");
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	uint64_t count, sem = 0;

	if (files_fdinfo_u64(in->pid, in->fd, "eventfd-count", 16, &count) < 0)
		return FILE_FAIL(env, "cannot read the counter of eventfd %d",
				 in->fd);
	files_fdinfo_u64(in->pid, in->fd, "eventfd-semaphore", 10, &sem);
	f->has_counter = 1;
	f->counter = count;
	if (sem) {
		f->has_mode = 1;
		f->mode = EFD_SEMAPHORE;
	}
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	/* eventfd() takes an unsigned int; larger counts are written. */
	int fd = eventfd(0, EFD_CLOEXEC | (f->has_mode ? (int)f->mode : 0));

	if (fd < 0)
		return FILE_FAIL(env, "eventfd: %s", strerror(errno));
	if (f->counter && write(fd, &f->counter, 8) != 8) {
		close(fd);
		return FILE_FAIL(env, "cannot set an eventfd counter: %s",
				 strerror(errno));
	}
	return fd;
}

const struct file_ops file_eventfd = {
	.kind = CAPCR__FILE_KIND__FILE_EVENTFD,
	.name = "eventfd",
	.match = match,
	.dump = dump,
	.restore = restore,
};
