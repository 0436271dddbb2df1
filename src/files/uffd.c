/* SPDX-License-Identifier: MIT */
/*
 * userfaultfd descriptors on which UFFDIO_API was never called: nothing
 * registered, nothing pending, no feature; its fdinfo shows "API:\taa:0:".
 * One is what a `capcr dump -R` killed between its two injected calls
 * leaves in its target (precopy.c), and a program may hold one between
 * making it and the handshake.  Made again in the process that holds it
 * (a userfaultfd belongs to the address space of the process that made
 * it), as settle, over a stand-in.  One in use (registered ranges, a
 * handshake done) is refused: capcr cannot checkpoint those yet.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"

#define UFFD_USER_MODE_ONLY_ 1

static int match(const struct file_dump_in *in)
{
	return !strcmp(in->k->target, "anon_inode:[userfaultfd]");
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	char line[256];
	unsigned api = 0, features = 1;
	FILE *fi = files_fdinfo_open(in->pid, in->fd, env->why, env->whylen);

	(void)f;
	if (!fi)
		return -1;
	while (fgets(line, sizeof(line), fi))
		if (sscanf(line, "API: %x:%x:", &api, &features) == 2)
			break;
	fclose(fi);
	if (features)
		return FILE_FAIL(env, "descriptor %d of process %d is a "
				      "userfaultfd in use (features %#x): "
				      "capcr cannot checkpoint one yet",
				 in->fd, in->pid, features);
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	(void)env;
	(void)f;
	return files_stand_in(O_RDWR);
}

static int settle(struct file_restore_env *env, const Capcr__File *f, int fd,
		  int first)
{
	if (!files_is_stand_in(fd))
		return 0;
	int nf = fd != first
			 ? fcntl(first, F_DUPFD_CLOEXEC, 0)
			 : (int)syscall(SYS_userfaultfd,
					O_CLOEXEC | ((int)f->flags & O_NONBLOCK) |
						UFFD_USER_MODE_ONLY_);
	if (nf < 0 || files_replace(nf, fd) < 0)
		return FILE_FAIL(env, "cannot make a userfaultfd again: %s",
				 strerror(errno));
	return 0;
}

const struct file_ops file_uffd = {
	.kind = CAPCR__FILE_KIND__FILE_USERFAULTFD,
	.name = "userfaultfd",
	.match = match,
	.dump = dump,
	.restore = restore,
	.settle = settle,
};
