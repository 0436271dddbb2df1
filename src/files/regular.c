/* SPDX-License-Identifier: MIT */
/*
 * Files opened by path: regular files (also deleted ones, whose contents
 * are saved), directories, devices other than terminals, named FIFOs (with
 * their unread data, read without consuming it as for pipes).
 * Restored by opening the same path with the same flags and seeking to the
 * same position.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

#define DELETED " (deleted)"

static int match(const struct file_dump_in *in)
{
	return in->k->target[0] == '/';
}

static Capcr__FileKind kind_of(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFDIR:
		return CAPCR__FILE_KIND__FILE_DIR;
	case S_IFCHR:
		return CAPCR__FILE_KIND__FILE_CHR;
	case S_IFIFO:
		return CAPCR__FILE_KIND__FILE_FIFO;
	default:
		return CAPCR__FILE_KIND__FILE_REG;
	}
}

/* The unread data of a named FIFO, into image file fifo-ID.img.  A read
 * handle of our own (the descriptor may be write-only) lends it to tee(),
 * which copies without consuming.  Every File on the FIFO saves it; the
 * restore puts it back once. */
static int dump_fifo_data(struct file_dump_env *env,
			  const struct file_dump_in *in, Capcr__File *f)
{
	char path[64], name[64];
	int spare[2], rd, r = 0;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", in->copy);
	rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rd < 0)
		return FILE_FAIL(env, "cannot read the data of FIFO %s: %s",
				 in->k->target, strerror(errno));
	if (pipe2(spare, O_CLOEXEC | O_NONBLOCK) < 0) {
		close(rd);
		return FILE_FAIL(env, "pipe: %s", strerror(errno));
	}
	fcntl(spare[1], F_SETPIPE_SZ, fcntl(rd, F_GETPIPE_SZ));
	ssize_t n = tee(rd, spare[1], 1 << 30, SPLICE_F_NONBLOCK);
	close(spare[1]);
	close(rd);
	if (n < 0 && errno != EAGAIN)
		r = FILE_FAIL(env, "cannot read the data of FIFO %s: %s",
			      in->k->target, strerror(errno));
	snprintf(name, sizeof(name), "fifo-%u.img", f->id);
	if (n > 0)
		r = files_save_contents(env, spare[0], name, f, 0);
	close(spare[0]);
	return r;
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	char path[4096];
	size_t l;

	snprintf(path, sizeof(path), "%s", in->k->target);
	l = strlen(path);
	f->kind = kind_of(in->st.st_mode);
	f->has_mode = 1;
	f->mode = in->st.st_mode;
	f->has_size = 1;
	f->size = (uint64_t)in->st.st_size;
	if (S_ISREG(in->st.st_mode) && in->st.st_nlink == 0) {
		char name[64];
		if (l > strlen(DELETED) &&
		    !strcmp(path + l - strlen(DELETED), DELETED))
			path[l - strlen(DELETED)] = 0;
		f->has_deleted = f->deleted = 1;
		f->path = arena_strdup(env->arena, path);
		snprintf(name, sizeof(name), "deleted-%lu.img",
			 (unsigned long)in->st.st_ino);
		return files_save_contents(env, in->copy, name, f, 1);
	}
	if (S_ISSOCK(in->st.st_mode) || S_ISBLK(in->st.st_mode))
		return FILE_FAIL(env, "descriptor %d (%s) is of a kind capcr "
				      "cannot checkpoint yet", in->fd, path);
	f->path = arena_strdup(env->arena, path);
	if (S_ISFIFO(in->st.st_mode))
		return dump_fifo_data(env, in, f);
	return 0;
}

/* A named FIFO: a handle of our own, read and write, opened first, so that
 * a write-only open does not fail for want of a reader (ENXIO) and the data
 * can go back in; the data only if the FIFO is still empty (another File
 * on it may have put it back already).  It is closed once the process's
 * own descriptor holds the FIFO open. */
static int restore_fifo(struct file_restore_env *env, const Capcr__File *f,
			int oflags)
{
	int keep = open(f->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int fd, unread = 0;

	if (keep < 0)
		return FILE_FAIL(env, "cannot open FIFO %s again: %s%s", f->path,
				 strerror(errno),
				 errno == ENOENT ? " (it was removed or moved "
						   "since the dump)"
						 : "");
	fd = open(f->path, oflags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		close(keep);
		return FILE_FAIL(env, "cannot open FIFO %s again: %s", f->path,
				 strerror(errno));
	}
	if (f->data_file && ioctl(keep, FIONREAD, &unread) == 0 && !unread) {
		if (f->data_size > 65536)
			fcntl(keep, F_SETPIPE_SZ, (int)f->data_size);
		int src = image_open_data(env->img, f->data_file);
		char buf[65536];
		ssize_t n;
		while (src >= 0 && (n = read(src, buf, sizeof(buf))) > 0)
			if (write(keep, buf, (size_t)n) != n) {
				close(src);
				close(fd);
				close(keep);
				return FILE_FAIL(env, "cannot refill FIFO %s: %s",
						 f->path, strerror(errno));
			}
		if (src < 0) {
			close(fd);
			close(keep);
			return FILE_FAIL(env, "cannot open %s: %s", f->data_file,
					 strerror(errno));
		}
		close(src);
	}
	close(keep);
	return fd;
}

/* A deleted file comes back as a new file with its contents, created next
 * to where it was (or in /tmp) and unlinked again once open. */
static int restore_deleted(struct file_restore_env *env, const Capcr__File *f,
			   int oflags)
{
	char tmpl[4200], dir[4096];

	snprintf(dir, sizeof(dir), "%s", f->path);
	snprintf(tmpl, sizeof(tmpl), "%s/.capcr-deleted-XXXXXX", dirname(dir));
	int fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0) {
		snprintf(tmpl, sizeof(tmpl), "/tmp/.capcr-deleted-XXXXXX");
		fd = mkostemp(tmpl, O_CLOEXEC);
	}
	if (fd < 0)
		return FILE_FAIL(env, "cannot re-create deleted file %s: %s",
				 f->path, strerror(errno));
	int r = files_load_contents(env, f, fd);
	if (r == 0 && ftruncate(fd, (off_t)f->size) < 0)
		r = FILE_FAIL(env, "cannot size re-created file %s", f->path);
	fchmod(fd, f->mode & 07777);
	close(fd);
	int nfd = r < 0 ? -1 : open(tmpl, oflags | O_CLOEXEC);
	if (r == 0 && nfd < 0)
		r = FILE_FAIL(env, "cannot open re-created file %s: %s",
			      f->path, strerror(errno));
	unlink(tmpl);
	return r < 0 ? -1 : nfd;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	/* The status flags go back with F_SETFL afterwards; here only what
	 * open() alone can set. */
	int oflags = (int)(f->flags & (O_ACCMODE | O_APPEND | O_DIRECT |
				       O_NOATIME | O_PATH | O_DIRECTORY |
				       O_LARGEFILE | O_SYNC | O_DSYNC));
	struct stat st;
	int fd;

	if (f->deleted)
		return restore_deleted(env, f, oflags);
	if (f->kind == CAPCR__FILE_KIND__FILE_FIFO)
		return restore_fifo(env, f, oflags);
	fd = open(f->path, oflags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return FILE_FAIL(env, "cannot open %s again: %s%s", f->path,
				 strerror(errno),
				 errno == ENOENT ? " (it was removed or moved "
						   "since the dump)"
						 : "");
	if (f->kind == CAPCR__FILE_KIND__FILE_REG && fstat(fd, &st) == 0 &&
	    (uint64_t)st.st_size < f->size && f->has_pos &&
	    (uint64_t)f->pos > (uint64_t)st.st_size) {
		close(fd);
		return FILE_FAIL(env,
				 "%s has shrunk since the dump (%llu bytes, "
				 "was %llu): the process would read past its "
				 "end",
				 f->path, (unsigned long long)st.st_size,
				 (unsigned long long)f->size);
	}
	return fd;
}

const struct file_ops file_regular = {
	.kind = CAPCR__FILE_KIND__FILE_REG,
	.name = "regular",
	.match = match,
	.dump = dump,
	.restore = restore,
};
