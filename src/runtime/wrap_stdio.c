/* SPDX-License-Identifier: MIT */
/*
 * Wrappers: stdio streams and directory streams.  glibc opens and closes
 * their descriptors through internal calls that bypass open() and close(),
 * so each stream function is wrapped on its own.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>

#include "wrap.h"

/* The open(2) flags an fopen() mode string stands for. */
static int mode_flags(const char *m)
{
	int f = 0;

	if (!m)
		return 0;
	switch (*m) {
	case 'r':
		f = O_RDONLY;
		break;
	case 'w':
		f = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		f = O_WRONLY | O_CREAT | O_APPEND;
		break;
	}
	for (const char *p = m + 1; *p && *p != ','; p++) {
		if (*p == '+')
			f = (f & ~(O_RDONLY | O_WRONLY)) | O_RDWR;
		else if (*p == 'e')
			f |= O_CLOEXEC;
		else if (*p == 'x')
			f |= O_EXCL;
	}
	return f;
}

static FILE *record_stream(FILE *f, const char *path, const char *mode,
			   int kind, int origin)
{
	struct capcr_cap_entry *e;
	int fd;

	if (!f || !rt_active() || (fd = fileno(f)) < 0)
		return f;
	e = rt_new(fd, kind, origin);
	if (e) {
		e->flags = mode_flags(mode);
		e->mode = 0666;
		e->state |= CAPCR_ENTRY_STDIO;
		if (path)
			rt_set_path(e, path);
		else
			rt_kind_of_fd(fd, e->path, sizeof(e->path));
		rt_done(e, 0);
	}
	return f;
}

/* Mark an existing descriptor as wrapped by a stream. */
static void mark_stream(int fd)
{
	struct capcr_cap_entry *e;

	if (fd < 0 || !rt_active() || !(e = rt_entry(fd, 0)) || !e->badge)
		return;
	rt_modify_begin();
	e->state |= CAPCR_ENTRY_STDIO;
	rt_modify_end();
}

static void closing_stream(FILE *f)
{
	int fd;

	if (f && rt_active() && (fd = fileno(f)) >= 0)
		rt_closing(fd);
}

WRAP FILE *fopen(const char *path, const char *mode)
{
	return record_stream(RT_REAL(fopen)(path, mode), path, mode,
			     CAPCR_KIND_PATH, CAPCR_ORIGIN_OPEN);
}

WRAP FILE *fopen64(const char *path, const char *mode)
{
	return record_stream(RT_REAL(fopen64)(path, mode), path, mode,
			     CAPCR_KIND_PATH, CAPCR_ORIGIN_OPEN);
}

WRAP FILE *fdopen(int fd, const char *mode)
{
	FILE *f = RT_REAL(fdopen)(fd, mode);

	if (f)
		mark_stream(fd);
	return f;
}

static FILE *reopen(const char *path, const char *mode, FILE *f, int is64)
{
	/* With a path, the old descriptor is closed and a new one opened
	 * (usually at the same number); without, only the mode changes. */
	if (path)
		closing_stream(f);
	f = is64 ? RT_REAL(freopen64)(path, mode, f)
		 : RT_REAL(freopen)(path, mode, f);
	if (!path)
		return f;
	return record_stream(f, path, mode, CAPCR_KIND_PATH, CAPCR_ORIGIN_OPEN);
}

WRAP FILE *freopen(const char *path, const char *mode, FILE *f)
{
	return reopen(path, mode, f, 0);
}

WRAP FILE *freopen64(const char *path, const char *mode, FILE *f)
{
	return reopen(path, mode, f, 1);
}

WRAP int fclose(FILE *f)
{
	closing_stream(f);
	return RT_REAL(fclose)(f);
}

WRAP FILE *popen(const char *cmd, const char *type)
{
	FILE *f = record_stream(RT_REAL(popen)(cmd, type), cmd, type,
				CAPCR_KIND_PIPE, CAPCR_ORIGIN_PIPE);
	struct capcr_cap_entry *e;

	/* One end of a pipe: read or write, nothing made or truncated. */
	if (f && rt_active() && (e = rt_entry(fileno(f), 0)) && e->badge) {
		rt_modify_begin();
		e->flags &= ~(O_CREAT | O_TRUNC | O_APPEND);
		e->mode = 0;
		e->arg[0] = type && type[0] == 'w'; /* 1: the write end */
		rt_modify_end();
	}
	return f;
}

WRAP int pclose(FILE *f)
{
	closing_stream(f);
	return RT_REAL(pclose)(f);
}

WRAP FILE *tmpfile(void)
{
	return record_stream(RT_REAL(tmpfile)(), NULL, "w+", CAPCR_KIND_FILE,
			     CAPCR_ORIGIN_TEMP);
}

WRAP FILE *tmpfile64(void)
{
	return record_stream(RT_REAL(tmpfile64)(), NULL, "w+",
			     CAPCR_KIND_FILE, CAPCR_ORIGIN_TEMP);
}

WRAP DIR *opendir(const char *path)
{
	DIR *d = RT_REAL(opendir)(path);
	struct capcr_cap_entry *e;
	int fd;

	if (!d || !rt_active() || (fd = dirfd(d)) < 0)
		return d;
	e = rt_new(fd, CAPCR_KIND_DIR, CAPCR_ORIGIN_OPENDIR);
	if (e) {
		e->flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
		e->state |= CAPCR_ENTRY_STDIO;
		rt_set_path(e, path);
		rt_done(e, 0);
	}
	return d;
}

WRAP DIR *fdopendir(int fd)
{
	DIR *d = RT_REAL(fdopendir)(fd);

	if (d)
		mark_stream(fd);
	return d;
}

WRAP int closedir(DIR *d)
{
	int fd;

	if (d && rt_active() && (fd = dirfd(d)) >= 0)
		rt_closing(fd);
	return RT_REAL(closedir)(d);
}
