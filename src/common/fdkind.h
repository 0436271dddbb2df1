/* SPDX-License-Identifier: MIT */
/*
 * What kind of capability a descriptor is, from the text of its
 * /proc/.../fd/N link and, where that does not tell, its st_mode.  One
 * answer for the runtime (which classifies what it did not see being made)
 * and the monitor (which classifies the kernel's table).
 */
#ifndef CAPCR_FDKIND_H
#define CAPCR_FDKIND_H

#include <string.h>
#include <sys/stat.h>

#include "capcr/capinfo.h"

/* The kind the link names, or -1 when only st_mode can tell. */
static inline int capcr_kind_of_link(const char *t)
{
	static const struct {
		const char *prefix;
		int kind;
	} known[] = {
		{ "pipe:", CAPCR_KIND_PIPE },
		{ "socket:", CAPCR_KIND_SOCKET },
		{ "anon_inode:[eventfd]", CAPCR_KIND_EVENTFD },
		{ "anon_inode:[eventpoll]", CAPCR_KIND_EPOLL },
		{ "anon_inode:[timerfd]", CAPCR_KIND_TIMERFD },
		{ "anon_inode:[signalfd]", CAPCR_KIND_SIGNALFD },
		{ "anon_inode:inotify", CAPCR_KIND_INOTIFY },
		{ "anon_inode:[pidfd]", CAPCR_KIND_PIDFD },
		{ "pidfd:", CAPCR_KIND_PIDFD },
		{ "/memfd:", CAPCR_KIND_MEMFD },
		{ "anon_inode:", CAPCR_KIND_OTHER },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strncmp(t, known[i].prefix, strlen(known[i].prefix)))
			return known[i].kind;
	return -1;
}

static inline unsigned capcr_kind_of_mode(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return CAPCR_KIND_FILE;
	case S_IFDIR:
		return CAPCR_KIND_DIR;
	case S_IFIFO:
		return CAPCR_KIND_FIFO;
	case S_IFCHR:
		return CAPCR_KIND_CHARDEV;
	case S_IFSOCK:
		return CAPCR_KIND_SOCKET;
	default:
		return CAPCR_KIND_OTHER;
	}
}

#endif
