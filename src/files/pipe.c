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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

/* The kernel's flag as /proc/PID/fdinfo shows it; glibc defines
 * O_LARGEFILE as 0 on 64-bit targets, where open() sets it always. */
#define KERNEL_O_LARGEFILE 0100000

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
	/* The read end carries the data, once: the pipe may have several
	 * read descriptions (opened again through /proc/PID/fd). */
	for (size_t i = 0; i < env->files->n_files; i++) {
		const Capcr__File *o = env->files->files[i];
		if (o->kind == CAPCR__FILE_KIND__FILE_PIPE &&
		    o->pipe_id == f->pipe_id && !o->pipe_write_end)
			return 0;
	}
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

/* A pipe made at restore.  Its data goes in once, whichever of its Files
 * comes first; the ends stay here until a File claims them. */
struct pipe_slot {
	uint32_t id;
	int fd[2];   /* not yet claimed, or -1 */
	int keep;    /* the read end, to open further descriptions from */
	int filled;
};

static int refill(struct file_restore_env *env, const Capcr__File *f, int wr)
{
	/* The name is the image's: image_open_data opens only a file the
	 * inventory lists, by a plain name. */
	int src = image_open_data(env->img, f->data_file);
	char buf[65536];
	ssize_t n;

	if (src < 0)
		return FILE_FAIL(env, "cannot refill a pipe: %s", image_error());
	while ((n = read(src, buf, sizeof(buf))) > 0) {
		ssize_t w = write(wr, buf, (size_t)n);
		if (w != n) {
			int e = errno;
			close(src);
			return FILE_FAIL(env, "cannot refill pipe %u from %s: %s",
					 f->pipe_id, f->data_file,
					 w < 0 ? strerror(e) : "short write");
		}
	}
	int e = errno;
	close(src);
	if (n < 0)
		return FILE_FAIL(env, "cannot read %s: %s", f->data_file,
				 strerror(e));
	return 0;
}

static struct pipe_slot *make(struct file_restore_env *env,
			      const Capcr__File *f)
{
	if (env->npipes == env->pipes_cap) {
		unsigned cap = env->pipes_cap ? 2 * env->pipes_cap : 16;
		void *n = realloc(env->pipes, cap * sizeof(*env->pipes));
		if (!n)
			return FILE_FAIL(env, "out of memory for pipe %u",
					 f->pipe_id),
			       NULL;
		env->pipes = n;
		env->pipes_cap = cap;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return FILE_FAIL(env, "cannot make pipe %u: %s", f->pipe_id,
				 strerror(errno)),
		       NULL;
	/* Its capacity first: it must hold the data, and the process may
	 * count on it. */
	if (f->has_pipe_size && fcntl(p[1], F_SETPIPE_SZ, (int)f->pipe_size) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return FILE_FAIL(env, "cannot give pipe %u its capacity of %u "
				      "bytes: %s", f->pipe_id, f->pipe_size,
				 strerror(e)),
		       NULL;
	}
	struct pipe_slot *s = &env->pipes[env->npipes++];
	*s = (struct pipe_slot){ .id = f->pipe_id, .fd = { p[0], p[1] },
				 .keep = fcntl(p[0], F_DUPFD_CLOEXEC, 0) };
	if (s->keep < 0)
		return FILE_FAIL(env, "cannot keep pipe %u: %s", f->pipe_id,
				 strerror(errno)),
		       NULL;
	return s;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	int want = f->pipe_write_end ? 1 : 0;
	struct pipe_slot *s = NULL;

	for (unsigned i = 0; i < env->npipes && !s; i++)
		if (env->pipes[i].id == f->pipe_id)
			s = &env->pipes[i];
	if (!s && !(s = make(env, f)))
		return -1;
	/* Nothing runs yet: the data can go in when its File comes, even
	 * after a writer's File made the pipe. */
	if (f->data_file && !s->filled) {
		int wr = s->fd[1];
		char path[64];
		if (wr < 0) {
			snprintf(path, sizeof(path), "/proc/self/fd/%d", s->keep);
			wr = open(path, O_WRONLY | O_CLOEXEC);
			if (wr < 0)
				return FILE_FAIL(env, "cannot reopen pipe %u: %s",
						 f->pipe_id, strerror(errno));
		}
		int r = refill(env, f, wr);
		if (wr != s->fd[1])
			close(wr);
		if (r < 0)
			return -1;
		s->filled = 1;
	}
	/* pipe() gives a description without O_LARGEFILE, open() one with
	 * it, and F_SETFL changes neither: the flag says which way this
	 * description was made (a second one of the same end comes from
	 * opening the pipe through /proc/PID/fd). */
	int fd = s->fd[want];
	if (fd >= 0 && !(f->flags & KERNEL_O_LARGEFILE)) {
		s->fd[want] = -1;
		return fd;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->keep);
	fd = open(path, (want ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return FILE_FAIL(env, "cannot open another %s end of pipe %u: %s",
				 want ? "write" : "read", f->pipe_id,
				 strerror(errno));
	return fd;
}

void pipe_restore_end(struct file_restore_env *env)
{
	for (unsigned i = 0; i < env->npipes; i++) {
		struct pipe_slot *s = &env->pipes[i];
		for (int e = 0; e < 2; e++)
			if (s->fd[e] >= 0)
				close(s->fd[e]);
		if (s->keep >= 0)
			close(s->keep);
	}
	free(env->pipes);
	env->pipes = NULL;
	env->npipes = env->pipes_cap = 0;
}

const struct file_ops file_pipe = {
	.kind = CAPCR__FILE_KIND__FILE_PIPE,
	.name = "pipe",
	.match = match,
	.dump = dump,
	.restore = restore,
};

/*
 * Asked of the pipe itself, not by reading every process's descriptors
 * (which took 10 ms with 70 processes on the machine, all of it while the
 * tree was frozen): a read end polls POLLHUP once no writer is left, a
 * write end POLLERR once no reader is.  A descriptor open for both (a
 * pipe reopened through /proc) is its own other end.
 */
int files_pipe_other_end_open(int copy, int flags)
{
	struct pollfd p = { .fd = copy };

	if ((flags & O_ACCMODE) == O_RDWR)
		return 1;
	if (poll(&p, 1, 0) < 0)
		return 1; /* cannot tell: kept outside, the safe side */
	return (flags & O_ACCMODE) == O_WRONLY ? !(p.revents & POLLERR)
					       : !(p.revents & POLLHUP);
}
