/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "procfd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fdkind.h"
#include "capcr/capinfo.h"

unsigned procfd_kind(const char *t, unsigned mode)
{
	int k = capcr_kind_of_link(t);

	return k >= 0 ? (unsigned)k : capcr_kind_of_mode(mode);
}

static void read_fdinfo(int dfd_info, struct kfd *k)
{
	char name[16], buf[512];
	int fd;
	ssize_t n;

	snprintf(name, sizeof(name), "%d", k->fd);
	fd = openat(dfd_info, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	k->locked = strstr(buf, "\nlock:") || n == (ssize_t)sizeof(buf) - 1;
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		long long v;
		if (sscanf(l, "pos: %lld", &v) == 1)
			k->pos = v;
		else if (sscanf(l, "flags: %llo", &v) == 1)
			k->flags = (unsigned)v;
		else if (sscanf(l, "ino: %llu", &v) == 1)
			k->ino = (uint64_t)v;
	}
}

static int by_fd(const void *a, const void *b)
{
	return ((const struct kfd *)a)->fd - ((const struct kfd *)b)->fd;
}

int procfd_list(pid_t pid, struct kfd **out)
{
	char path[64];
	struct kfd *v = NULL;
	int n = 0, cap = 0;
	DIR *d;
	int dfd_fd, dfd_info;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -1;
	dfd_fd = dirfd(d);
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", pid);
	dfd_info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct kfd *nv = realloc(v, (size_t)cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		struct kfd *k = &v[n];
		memset(k, 0, sizeof(*k));
		k->fd = atoi(e->d_name);
		ssize_t l = readlinkat(dfd_fd, e->d_name, k->target,
				       sizeof(k->target) - 1);
		if (l < 0)
			continue; /* closed meanwhile */
		k->target[l] = 0;
		struct stat st;
		unsigned mode = 0;
		if (fstatat(dfd_fd, e->d_name, &st, 0) == 0)
			mode = st.st_mode;
		k->kind = procfd_kind(k->target, mode);
		if (dfd_info >= 0)
			read_fdinfo(dfd_info, k);
		n++;
	}
	if (dfd_info >= 0)
		close(dfd_info);
	closedir(d);
	if (n > 1)
		qsort(v, (size_t)n, sizeof(*v), by_fd);
	*out = v;
	return n;
}
