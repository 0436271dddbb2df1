/* SPDX-License-Identifier: MIT */
/* pidfd: which process it names; restored while that process exists. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"

static int match(const struct file_dump_in *in)
{
	return !strcmp(in->k->target, "anon_inode:[pidfd]") ||
	       !strncmp(in->k->target, "pidfd:", 6);
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	uint64_t pid;

	if (files_fdinfo_u64(in->pid, in->fd, "Pid", 10, &pid) < 0)
		return FILE_FAIL(env, "cannot read which process pidfd %d "
				      "names", in->fd);
	f->has_pid = 1;
	f->pid = (int32_t)pid; /* -1: the process is gone */
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	int fd = f->pid > 0 ? (int)syscall(SYS_pidfd_open, f->pid, 0) : -1;

	if (fd < 0)
		return FILE_FAIL(env,
				 "pidfd for process %d cannot be restored: that "
				 "process no longer exists",
				 f->pid);
	return fd;
}

const struct file_ops file_pidfd = {
	.kind = CAPCR__FILE_KIND__FILE_PIDFD,
	.name = "pidfd",
	.match = match,
	.dump = dump,
	.restore = restore,
};
