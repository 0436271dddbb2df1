/* SPDX-License-Identifier: MIT */
/* The kernel's descriptor table of a process: the truth the region is
 * reconciled with. */
#ifndef CAPCR_PROCFD_H
#define CAPCR_PROCFD_H

#include <stdint.h>
#include <sys/types.h>

struct kfd {
	int fd;
	unsigned kind;      /* enum capcr_kind, from the kernel */
	char target[256];   /* readlink of /proc/PID/fd/N */
	int64_t pos;        /* fdinfo pos */
	unsigned flags;     /* fdinfo flags (octal in the file) */
	uint64_t ino;
	int locked;         /* fdinfo has "lock:" lines (or was too long to
			     * tell) */
};

/* All descriptors of pid, sorted by number.  Returns the count, or -1 with
 * errno (no such process, no permission). */
int procfd_list(pid_t pid, struct kfd **out);
/* The kind of an object, from its link text and stat. */
unsigned procfd_kind(const char *target, unsigned st_mode);

#endif
