/* SPDX-License-Identifier: MIT */
/* The table of file kinds, and what several kinds share. */
#define _GNU_SOURCE
#include "files.h"
#include "unix_sock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int files_fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why[0]) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

extern const struct file_ops file_pd_session, file_external, file_pipe, file_memfd,
	file_eventfd, file_pidfd, file_socket, file_epoll, file_timerfd,
	file_signalfd, file_inotify, file_regular, file_tcp, file_uffd,
	file_pty;

/* Order matters: the first kind whose match() says yes takes it. */
static const struct file_ops *const kinds[] = {
	/* pty: pairs inside the image, before external's every terminal */
	&file_pty,
	&file_pd_session, &file_external, &file_pipe,   &file_memfd,   &file_eventfd,
	/* tcp: connected TCP sockets, before socket's every socket */
	&file_pidfd,    &file_tcp, &file_socket, &file_epoll, &file_timerfd,
	&file_signalfd, &file_inotify, &file_uffd, &file_regular,
};

const struct file_ops *files_ops_for_dump(const struct file_dump_in *in)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->match(in))
			return kinds[i];
	return NULL;
}

const struct file_ops *files_ops_for_kind(Capcr__FileKind kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->kind == kind)
			return kinds[i];
	if (kind == CAPCR__FILE_KIND__FILE_PTY_SLAVE)
		return &file_pty;
	/* regular covers REG, DIR and CHR */
	if (kind == CAPCR__FILE_KIND__FILE_DIR ||
	    kind == CAPCR__FILE_KIND__FILE_CHR ||
	    kind == CAPCR__FILE_KIND__FILE_FIFO)
		return &file_regular;
	return NULL;
}

/* The whole contents of fd into image file NAME: from offset 0 without
 * moving its position (seekable), or read to the end (a pipe). */
int files_save_contents(struct file_dump_env *env, int fd, const char *name,
			Capcr__File *f, int seekable)
{
	struct image_data d;
	static char buf[1 << 20];
	off_t off = 0;
	int r = image_data_open(env->img, &d, name);

	if (r < 0)
		return FILE_FAIL(env, "cannot create %s: %s", name,
				 strerror(-r));
	for (;;) {
		ssize_t n = seekable ? pread(fd, buf, sizeof(buf), off)
				     : read(fd, buf, sizeof(buf));
		if (n < 0) {
			r = FILE_FAIL(env, "cannot read contents for %s: %s",
				      name, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if ((r = image_data_write(&d, buf, (size_t)n)) < 0) {
			r = FILE_FAIL(env, "cannot write %s: %s", name,
				      strerror(-r));
			break;
		}
		off += n;
	}
	if (image_data_close(env->img, &d) < 0 && !r)
		r = FILE_FAIL(env, "cannot sync %s", name);
	f->data_file = arena_strdup(env->arena, name);
	f->has_data_size = 1;
	f->data_size = (uint64_t)off;
	return r;
}

int files_stand_in(int accmode)
{
	return open("/dev/null", (accmode & O_ACCMODE) | O_CLOEXEC);
}

int files_is_stand_in(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev == makedev(1, 3);
}

int files_replace(int nf, int fd)
{
	int fdflags = fcntl(fd, F_GETFD);
	int r = dup2(nf, fd);
	int e = errno;

	close(nf);
	if (r < 0)
		return errno = e, -1;
	if (fdflags >= 0)
		fcntl(fd, F_SETFD, fdflags);
	return 0;
}

void files_release(const Capcr__Files *files, Capcr__FdTable *const *fdts,
		   const pid_t *pids, size_t nprocs)
{
	unsigned char *tell = calloc(files->n_files + 1, 1);

	for (size_t i = 0; i < files->n_files; i++) {
		const struct file_ops *ops =
			files_ops_for_kind(files->files[i]->kind);
		if (ops && ops->release && ops->release(files->files[i]) &&
		    tell)
			tell[i] = 1;
	}
	for (size_t p = 0; tell && p < nprocs; p++)
		for (size_t d = 0; fdts[p] && d < fdts[p]->n_fds; d++)
			if (fdts[p]->fds[d]->file < files->n_files &&
			    tell[fdts[p]->fds[d]->file]) {
				kill(pids[p], SIGWINCH);
				break;
			}
	free(tell);
}

void files_restore_end(struct file_restore_env *env)
{
	pipe_restore_end(env);
	unix_sock_restore_end(env);
	pty_restore_end(env);
}

int files_load_contents(struct file_restore_env *env, const Capcr__File *f,
			int dst)
{
	static char buf[1 << 20];
	int src;
	off_t off = 0;

	if (!f->data_file)
		return 0;
	src = image_open_data(env->img, f->data_file);
	if (src < 0)
		return FILE_FAIL(env, "%s", image_error());
	for (;;) {
		ssize_t n = read(src, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (pwrite(dst, buf, (size_t)n, off) != n) {
			close(src);
			return FILE_FAIL(env, "cannot write contents from %s: "
					      "%s", f->data_file,
					 strerror(errno));
		}
		off += n;
	}
	close(src);
	return 0;
}

FILE *files_fdinfo_open(pid_t pid, int fd, char *why, size_t wl)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	f = fopen(path, "re");
	if (!f && why)
		files_fail(why, wl, "cannot read %s: %s", path, strerror(errno));
	return f;
}

/* One "key: value" number from /proc/PID/fdinfo/FD, in base. */
int files_fdinfo_u64(pid_t pid, int fd, const char *key, int base,
		     uint64_t *out)
{
	char line[256];
	size_t kl = strlen(key);
	FILE *f = files_fdinfo_open(pid, fd, NULL, 0);
	int r = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			*out = strtoull(line + kl + 1, NULL, base);
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

int files_read_full(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (!k)
				errno = EIO;
			return -1;
		}
		got += (size_t)k;
	}
	return 0;
}
