/* SPDX-License-Identifier: MIT */
/* pidfd: which process it names.  One of a process of the image is
 * opened in its holder once made (settle); one of a process that was
 * gone already names a process that is gone. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* A pidfd of a process that had ended and been reaped when dumped: one of
 * a child of ours that ends and is reaped at once. */
static int gone_pidfd(struct file_restore_env *env)
{
	pid_t c = fork();

	if (c == 0)
		_exit(0);
	if (c < 0)
		return FILE_FAIL(env, "cannot make a pidfd of an ended "
				      "process: fork: %s", strerror(errno));
	int fd = (int)syscall(SYS_pidfd_open, c, 0);
	int e = errno;
	waitpid(c, NULL, 0);
	if (fd < 0)
		return FILE_FAIL(env, "cannot make a pidfd of an ended "
				      "process: %s", strerror(e));
	return fd;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	if (f->pid <= 0)
		return gone_pidfd(env);
	int fd = (int)syscall(SYS_pidfd_open, f->pid, 0);
	/* A process of the image, not made yet: in its holder, at settle. */
	if (fd < 0 && errno == ESRCH)
		return files_stand_in(O_RDWR);
	if (fd < 0)
		return FILE_FAIL(env, "pidfd for process %d: %s", f->pid,
				 strerror(errno));
	return fd;
}

static int settle(struct file_restore_env *env, const Capcr__File *f, int fd,
		  int first)
{
	if (!files_is_stand_in(fd))
		return 0;
	int nf = fd != first ? fcntl(first, F_DUPFD_CLOEXEC, 0)
			     : (int)syscall(SYS_pidfd_open, f->pid, 0);
	if (nf < 0 || files_replace(nf, fd) < 0)
		return FILE_FAIL(env,
				 "pidfd for process %d cannot be restored: %s",
				 f->pid,
				 errno == ESRCH ? "that process is not one of "
						  "the image, and no longer "
						  "exists"
						: strerror(errno));
	/* the stand-in had them: PIDFD_NONBLOCK is O_NONBLOCK */
	if (fd == first)
		fcntl(fd, F_SETFL, (int)f->flags);
	return 0;
}

const struct file_ops file_pidfd = {
	.kind = CAPCR__FILE_KIND__FILE_PIDFD,
	.name = "pidfd",
	.match = match,
	.dump = dump,
	.restore = restore,
	.settle = settle,
};
