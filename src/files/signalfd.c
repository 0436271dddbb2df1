/* SPDX-License-Identifier: MIT */
/*
 * signalfd: the set of signals it takes, from fdinfo's "sigmask:" (16 hex
 * digits, bit N-1 for signal N).  Restored with the raw system call, so
 * that signals glibc keeps for itself (32, 33) go back as they were.  The
 * signals themselves are not the descriptor's: pending ones are the
 * process's and its threads', restored with them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"

static int match(const struct file_dump_in *in)
{
	return !strcmp(in->k->target, "anon_inode:[signalfd]");
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	uint64_t mask;

	if (files_fdinfo_u64(in->pid, in->fd, "sigmask", 16, &mask) < 0)
		return FILE_FAIL(env, "cannot read the signal mask of signalfd "
				      "descriptor %d of process %d",
				 in->fd, in->pid);
	f->has_sigmask = 1;
	f->sigmask = mask;
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	uint64_t mask = f->sigmask;
	int fd = (int)syscall(SYS_signalfd4, -1, &mask, sizeof(mask),
			      SFD_CLOEXEC);

	if (fd < 0)
		return FILE_FAIL(env, "signalfd (mask %#llx): %s",
				 (unsigned long long)mask, strerror(errno));
	return fd;
}

const struct file_ops file_signalfd = {
	.kind = CAPCR__FILE_KIND__FILE_SIGNALFD,
	.name = "signalfd",
	.match = match,
	.dump = dump,
	.restore = restore,
};
