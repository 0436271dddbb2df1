/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "proc.h"

#include <ctype.h>
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

/* Numbered as in proc(5), so f[n] is field n; the kernel writes 52. */
#define STAT_FIELDS 53

int proc_stat_parse(const char *text, struct proc_stat *st)
{
	unsigned long long f[STAT_FIELDS] = { 0 };
	const char *open = strchr(text, '(');
	/* comm is whatever the process named itself, ')', spaces and
	 * newlines included, so only the last ')' ends it. */
	const char *close = strrchr(text, ')');
	const char *p;
	int n;

	memset(st, 0, sizeof(*st));
	if (!open || !close || close < open || close[1] != ' ' || !close[2]) {
		errno = EBADMSG;
		return -1;
	}
	snprintf(st->comm, sizeof(st->comm), "%.*s", (int)(close - open - 1),
		 open + 1);
	st->state = close[2];
	p = close + 3;
	for (n = 3; n + 1 < STAT_FIELDS && *p == ' '; n++) {
		char *end;

		/* strtoull would skip more blanks and take a sign: a field is
		 * digits, or a '-' and digits (tpgid is -1 without a
		 * terminal), which the casts below take back to -1. */
		if (!isdigit((unsigned char)p[1]) &&
		    !(p[1] == '-' && isdigit((unsigned char)p[2])))
			break;
		f[n + 1] = strtoull(p + 1, &end, 10);
		p = end;
	}
	st->nfields = n;
	st->ppid = (pid_t)f[4];
	st->pgrp = (pid_t)f[5];
	st->session = (pid_t)f[6];
	st->tty_nr = (int)f[7];
	st->tpgid = (pid_t)f[8];
	st->flags = (unsigned int)f[9];
	st->start_time = f[22];
	st->start_code = f[26];
	st->end_code = f[27];
	st->start_stack = f[28];
	st->exit_signal = (int)f[38];
	st->start_data = f[45];
	st->end_data = f[46];
	st->start_brk = f[47];
	st->arg_start = f[48];
	st->arg_end = f[49];
	st->env_start = f[50];
	st->env_end = f[51];
	st->exit_code = (int)f[52];
	return 0;
}

int proc_stat_read(pid_t pid, pid_t tid, struct proc_stat *st)
{
	/* Ample: a comm of at most 64 bytes and 50 numbers of at most 20
	 * digits. */
	char path[64], buf[2048];
	int n;

	memset(st, 0, sizeof(*st));
	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	/* One read: the kernel writes the line whole, so it is never a mix
	 * of two moments. */
	n = proc_read_small(path, buf, sizeof(buf));
	if (n < 0)
		return -1;
	if (n == 0) {
		/* Nothing to say about a process is as good as none. */
		errno = ENOENT;
		return -1;
	}
	return proc_stat_parse(buf, st);
}

char proc_state(pid_t pid, int *exit_code)
{
	struct proc_stat st;

	if (proc_stat_read(pid, 0, &st) < 0)
		return errno == EBADMSG ? 0 : unreadable(pid);
	if (exit_code && st.nfields >= 52)
		*exit_code = st.exit_code;
	return st.state;
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
