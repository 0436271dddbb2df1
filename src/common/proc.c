/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "proc.h"

#include <errno.h>
#include <inttypes.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * /proc/PID/stat could not be opened or read.  ENOENT and ESRCH mean the
 * process is gone; any other error (EMFILE, ENOMEM, EIO...) says nothing
 * about it: ask the kernel directly, and if it is there, say so with '?',
 * errno still the error /proc gave.
 */
static char unreadable(pid_t pid)
{
	int e = errno;

	if (e == ENOENT || e == ESRCH)
		return 0;
	if (kill(pid, 0) < 0 && errno == ESRCH) {
		errno = e;
		return 0;
	}
	errno = e;
	return '?';
}

char proc_state(pid_t pid, int *exit_code)
{
	char path[64], buf[1024];
	FILE *f;
	char st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return unreadable(pid);
	if (!fgets(buf, sizeof(buf), f)) {
		st = ferror(f) ? unreadable(pid) : 0;
		int e = errno;
		fclose(f);
		errno = e;
		return st;
	}
	{
		char *p = strrchr(buf, ')');
		if (p && p[1] == ' ') {
			st = p[2];
			/* exit_code is field 52; state is field 3 */
			char *q = p + 2;
			for (int field = 3; field < 52 && q; field++)
				q = strchr(q + 1, ' ');
			if (q && exit_code)
				*exit_code = atoi(q + 1);
		}
	}
	fclose(f);
	return st;
}

int proc_read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return errno = e, -1;
	buf[n] = 0;
	return (int)n;
}

int proc_status_hex(const char *status, const char *key, uint64_t *v)
{
	const char *p = strstr(status, key);

	return p && sscanf(p + strlen(key), "%" SCNx64, v) == 1 ? 0 : -1;
}
