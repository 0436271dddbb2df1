/* SPDX-License-Identifier: MIT */
/*
 * Pipes held by the image alone — both ends, or one end whose other end
 * nobody holds any more — with their unread data.  The data is
 * read without consuming it: tee() duplicates it into a spare pipe, which
 * is read and thrown away.  At restore the pipe is made once, the data
 * written back, and each end handed to the File that names it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

static int match(const struct file_dump_in *in)
{
	return S_ISFIFO(in->st.st_mode) && !strncmp(in->k->target, "pipe:", 5);
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	int acc = in->k->flags & O_ACCMODE;
	char name[64];

	f->has_pipe_id = 1;
	f->pipe_id = (uint32_t)in->st.st_ino;
	f->has_pipe_write_end = 1;
	f->pipe_write_end = acc == O_WRONLY;
	int size = fcntl(in->copy, F_GETPIPE_SZ);
	if (size > 0) {
		f->has_pipe_size = 1;
		f->pipe_size = (uint32_t)size;
	}
	if (f->pipe_write_end)
		return 0;
	/* The read end carries the data. */
	int spare[2];
	if (pipe2(spare, O_CLOEXEC | O_NONBLOCK) < 0)
		return FILE_FAIL(env, "pipe: %s", strerror(errno));
	fcntl(spare[1], F_SETPIPE_SZ, fcntl(in->copy, F_GETPIPE_SZ));
	ssize_t n = tee(in->copy, spare[1], 1 << 30, SPLICE_F_NONBLOCK);
	close(spare[1]);
	if (n < 0 && errno != EAGAIN) {
		close(spare[0]);
		return FILE_FAIL(env, "cannot read the data of pipe %s: %s",
				 in->k->target, strerror(errno));
	}
	snprintf(name, sizeof(name), "pipe-%u.img", f->pipe_id);
	int r = n > 0 ? files_save_contents(env, spare[0], name, f, 0) : 0;
	close(spare[0]);
	return r;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	int want = f->pipe_write_end ? 1 : 0;

	/* The end nobody claims is closed after all files are made. */
	for (unsigned i = 0; i < env->npipes; i++)
		if (env->pipes[i].id == f->pipe_id &&
		    env->pipes[i].fd[want] >= 0) {
			int fd = env->pipes[i].fd[want];
			env->pipes[i].fd[want] = -1;
			return fd;
		}
	if (env->npipes == sizeof(env->pipes) / sizeof(env->pipes[0]))
		return FILE_FAIL(env, "too many pipes");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return FILE_FAIL(env, "pipe: %s", strerror(errno));
	/* Its capacity first: it must hold the data, and the process may
	 * count on it. */
	if (f->has_pipe_size && fcntl(p[1], F_SETPIPE_SZ, (int)f->pipe_size) < 0)
		return FILE_FAIL(env, "cannot give a pipe its capacity of %u "
				      "bytes: %s", f->pipe_size, strerror(errno));
	if (f->data_file) {
		/* The name is the image's: image_open_data opens only a file
		 * the inventory lists, by a plain name. */
		int src = image_open_data(env->img, f->data_file);
		char buf[65536];
		ssize_t n;
		if (src < 0) {
			close(p[0]);
			close(p[1]);
			return FILE_FAIL(env, "cannot refill a pipe: %s",
					 image_error());
		}
		while ((n = read(src, buf, sizeof(buf))) > 0)
			if (write(p[1], buf, (size_t)n) != n) {
				close(src);
				close(p[0]);
				close(p[1]);
				return FILE_FAIL(env, "cannot refill a pipe: "
						      "%s", strerror(errno));
			}
		close(src);
	}
	env->pipes[env->npipes].id = f->pipe_id;
	env->pipes[env->npipes].fd[0] = p[0];
	env->pipes[env->npipes].fd[1] = p[1];
	env->pipes[env->npipes].fd[want] = -1;
	env->npipes++;
	return p[want];
}

const struct file_ops file_pipe = {
	.kind = CAPCR__FILE_KIND__FILE_PIPE,
	.name = "pipe",
	.match = match,
	.dump = dump,
	.restore = restore,
};
