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
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
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
	if (S_ISLNK(in->st.st_mode)) {
		/* held with O_PATH|O_NOFOLLOW: the link itself */
		char to[4096];
		ssize_t n = readlinkat(in->copy, "", to, sizeof(to) - 1);
		if (n < 0)
			return FILE_FAIL(env, "cannot read symbolic link %s "
					      "(descriptor %d): %s",
					 path, in->fd, strerror(errno));
		to[n] = 0;
		f->link_target = arena_strdup(env->arena, to);
	}
	if (!S_ISREG(in->st.st_mode) && in->st.st_nlink == 0 &&
	    (S_ISDIR(in->st.st_mode) || S_ISFIFO(in->st.st_mode) ||
	     S_ISLNK(in->st.st_mode)) &&
	    l > strlen(DELETED) && !strcmp(path + l - strlen(DELETED), DELETED)) {
		/* a name to make it at again, and remove */
		path[l - strlen(DELETED)] = 0;
		f->has_deleted = f->deleted = 1;
	}
	if (S_ISREG(in->st.st_mode) && in->st.st_nlink == 0) {
		char name[64];
		if (l > strlen(DELETED) &&
		    !strcmp(path + l - strlen(DELETED), DELETED))
			path[l - strlen(DELETED)] = 0;
		f->has_deleted = f->deleted = 1;
		/* What would be saved: its data, holes left out. */
		uint64_t data = (uint64_t)in->st.st_blocks * 512;
		if (data > (uint64_t)in->st.st_size)
			data = (uint64_t)in->st.st_size;
		if (env->ghost_limit && data > env->ghost_limit)
			return FILE_FAIL(env, "descriptor %d of process %d is "
					      "the deleted file %s, with %llu "
					      "bytes of data: more than "
					      "--ghost-limit %llu (raise it)",
					 in->fd, in->pid, path,
					 (unsigned long long)data,
					 (unsigned long long)env->ghost_limit);
		f->path = arena_strdup(env->arena, path);
		snprintf(name, sizeof(name), "deleted-%lu.img",
			 (unsigned long)in->st.st_ino);
		/* Its data extents: a sparse file stays sparse. */
		f->data_file = arena_strdup(env->arena, name);
		return extents_save(env->img, env->arena, in->copy, f->size,
				    name, &f->data_runs, &f->n_data_runs,
				    env->why, env->whylen);
	}
	if (S_ISSOCK(in->st.st_mode) || S_ISBLK(in->st.st_mode))
		return FILE_FAIL(env, "descriptor %d (%s) is of a kind capcr "
				      "cannot checkpoint yet", in->fd, path);
	f->path = arena_strdup(env->arena, path);
	if (S_ISFIFO(in->st.st_mode))
		return dump_fifo_data(env, in, f);
	return 0;
}

/*
 * Open PATH, which the image names, with the file-system rights of uid and
 * gid instead of capcr's: the kernel then checks every directory searched
 * and the file's mode as it would for that user.  fsuid and fsgid belong
 * to the calling thread alone, and a non-zero fsuid takes root's file
 * capabilities (CAP_DAC_OVERRIDE...) with it, so nothing else in capcr is
 * affected.  Root's supplementary groups stay.  Until the image records
 * the restored process's credentials, the caller passes the owner of the
 * image directory (docs/security.md).
 */
int files_open_as(uid_t uid, gid_t gid, const char *path, int flags)
{
	int fd, e, ogid = 0, ouid = 0;
	int switched = uid != geteuid() || gid != getegid();
	char proc[64];
	struct stat st;

	if (switched) {
		ogid = setfsgid(gid);
		ouid = setfsuid(uid);
	}
	/* O_PATH first, to see a link without following it; the file is then
	 * opened through /proc with the process's own flags, in which
	 * O_NOFOLLOW would show (F_GETFL). */
	int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd >= 0 && fstat(pfd, &st) == 0 && S_ISLNK(st.st_mode)) {
		close(pfd);
		pfd = -1;
		errno = ELOOP;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = pfd < 0 ? -1 : open(proc, flags);
	e = errno;
	if (pfd >= 0)
		close(pfd);
	if (switched) {
		setfsuid((uid_t)ouid);
		setfsgid((gid_t)ogid);
	}
	errno = e;
	return fd;
}

/* files_open_as the image's owner; a path that is not absolute is refused, and
 * no link is followed in its last component: the path the kernel showed at
 * dump never ends in one (/proc/PID/fd resolves them), so one there now was
 * put there since. */
static int open_image_path(struct file_restore_env *env, const Capcr__File *f,
			   int flags)
{
	if (!f->path || f->path[0] != '/' || strlen(f->path) >= 4096) {
		errno = EINVAL;
		return -1;
	}
	return files_open_as(env->img->owner_uid, env->img->owner_gid, f->path,
		       flags);
}

/* Why opening f->path failed, for the user. */
static const char *open_hint(struct file_restore_env *env,
			     const Capcr__File *f, int err, char *buf,
			     size_t len)
{
	buf[0] = 0;
	if (err == ENOENT)
		snprintf(buf, len, " (it was removed or moved since the dump)");
	else if (err == ELOOP)
		snprintf(buf, len, " (it is a symbolic link now, and was none "
				   "at the dump: capcr follows no link there)");
	else if (err == EINVAL && (!f->path || f->path[0] != '/'))
		snprintf(buf, len, " (the image names no absolute path)");
	else if ((err == EACCES || err == EPERM) &&
		 env->img->owner_uid != geteuid())
		snprintf(buf, len,
			 " (opened with the rights of uid %u, who owns the "
			 "image directory)",
			 (unsigned)env->img->owner_uid);
	return buf;
}

/* A symbolic link held with O_PATH|O_NOFOLLOW: the link itself, which
 * must still be one pointing where it did. */
static int open_link(struct file_restore_env *env, const Capcr__File *f)
{
	char to[4096];
	struct stat st;
	uid_t ou = (uid_t)setfsuid(env->img->owner_uid);
	gid_t og = (gid_t)setfsgid(env->img->owner_gid);
	int fd = f->path && f->path[0] == '/'
			 ? open(f->path, O_PATH | O_NOFOLLOW | O_CLOEXEC)
			 : (errno = EINVAL, -1);
	int e = errno;
	setfsuid(ou);
	setfsgid(og);
	if (fd < 0)
		return FILE_FAIL(env, "cannot open symbolic link %s again: %s",
				 f->path ? f->path : "?", strerror(e));
	ssize_t n = fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)
			    ? readlinkat(fd, "", to, sizeof(to) - 1)
			    : -1;
	if (n >= 0)
		to[n] = 0;
	if (n < 0 || !f->link_target || strcmp(to, f->link_target)) {
		close(fd);
		return FILE_FAIL(env, "%s is no longer the symbolic link to %s "
				      "it was at the dump",
				 f->path, f->link_target ? f->link_target : "?");
	}
	return fd;
}

/* A named FIFO: a handle of our own, read and write, opened first, so that
 * a write-only open does not fail for want of a reader (ENXIO) and the data
 * can go back in; the data only if the FIFO is still empty (another File
 * on it may have put it back already).  It is closed once the process's
 * own descriptor holds the FIFO open. */
static int restore_fifo(struct file_restore_env *env, const Capcr__File *f,
			int oflags)
{
	int keep = open_image_path(env, f, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int fd, unread = 0;
	char hint[160];

	if (keep < 0)
		return FILE_FAIL(env, "cannot open FIFO %s again: %s%s", f->path,
				 strerror(errno),
				 open_hint(env, f, errno, hint, sizeof(hint)));
	fd = open_image_path(env, f,
			     oflags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		close(keep);
		return FILE_FAIL(env, "cannot open FIFO %s again: %s%s", f->path,
				 strerror(errno),
				 open_hint(env, f, errno, hint, sizeof(hint)));
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
			return FILE_FAIL(env, "%s", image_error());
		}
		close(src);
	}
	close(keep);
	return fd;
}

/*
 * A deleted file comes back as a new file with its contents, which no name
 * ever shows: O_TMPFILE next to where it was (same file system), else in
 * /tmp; O_EXCL, so that nobody can link it in either.  Its mode is the
 * image's, but never set-user-ID, set-group-ID or sticky and never writable
 * by group or others: the image says what the mode was, not that capcr
 * should make such a file.  It belongs to the restoring user.
 */
static int make_ghost(const char *path)
{
	char dir[4096], tmpl[64];
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	fd = open("/tmp", O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* No O_TMPFILE: a fresh name (O_CREAT|O_EXCL follows no link),
	 * removed at once. */
	snprintf(tmpl, sizeof(tmpl), "/tmp/.capcr-deleted-XXXXXX");
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd >= 0)
		unlink(tmpl);
	return fd;
}

/* Make a directory, FIFO or symbolic link at path, as the owner. */
static int make_node(const Capcr__File *f, const char *path)
{
	switch (f->mode & S_IFMT) {
	case S_IFDIR:
		return mkdir(path, 0700);
	case S_IFIFO:
		return mkfifo(path, 0600);
	case S_IFLNK:
		return f->link_target ? symlink(f->link_target, path)
				      : (errno = EINVAL, -1);
	}
	return errno = EINVAL, -1;
}

/*
 * A deleted directory, FIFO or symbolic link comes back the way it went:
 * made at its name (or, if that is taken now, at a fresh name beside it,
 * leaving the taken one alone), opened, and its name removed; with the
 * image owner's rights, as every path of the image.
 */
static int restore_deleted_node(struct file_restore_env *env,
				const Capcr__File *f, int oflags)
{
	char path[4200];
	uid_t ou = (uid_t)setfsuid(env->img->owner_uid);
	gid_t og = (gid_t)setfsgid(env->img->owner_gid);
	int made = -1, e = 0, fd = -1;

	snprintf(path, sizeof(path), "%s", f->path);
	for (int i = 0; i < 16 && made < 0; i++) {
		if (i)
			snprintf(path, sizeof(path), "%s.capcr-%06x", f->path,
				 (unsigned)random() & 0xffffff);
		made = make_node(f, path);
		e = errno;
		if (made < 0 && e != EEXIST)
			break;
	}
	setfsuid(ou);
	setfsgid(og);
	if (made < 0)
		return FILE_FAIL(env, "cannot make deleted %s %s again: %s",
				 S_ISDIR(f->mode)    ? "directory"
				 : S_ISFIFO(f->mode) ? "FIFO"
						     : "symbolic link",
				 f->path, strerror(e));
	Capcr__File at = *f;
	at.path = path;
	if (S_ISFIFO(f->mode)) {
		fd = restore_fifo(env, &at, oflags);
	} else if (S_ISLNK(f->mode)) {
		fd = open_link(env, &at);
	} else {
		fd = open_image_path(env, &at, oflags | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			FILE_FAIL(env, "cannot open re-made directory %s: %s",
				  path, strerror(errno));
	}
	ou = (uid_t)setfsuid(env->img->owner_uid);
	og = (gid_t)setfsgid(env->img->owner_gid);
	if (S_ISDIR(f->mode) ? rmdir(path) : unlink(path))
		capcr_warn("cannot remove %s, made again to restore a deleted "
			   "one: %s", path, strerror(errno));
	setfsuid(ou);
	setfsgid(og);
	return fd;
}

static int restore_deleted(struct file_restore_env *env, const Capcr__File *f,
			   int oflags)
{
	char proc[64];
	mode_t mode = (f->has_mode ? (mode_t)f->mode : 0600) & 0755;

	if (!f->path || f->path[0] != '/')
		return FILE_FAIL(env, "a deleted file in the image has no "
				      "absolute path");
	int fd = make_ghost(f->path);
	if (fd < 0)
		return FILE_FAIL(env, "cannot re-create deleted file %s: %s",
				 f->path, strerror(errno));
	/* Format 2 saved the whole contents, holes as zeros. */
	int r = f->n_data_runs
			? extents_load(env->img, f->data_file, f->data_runs,
				       f->n_data_runs, f->size, fd, env->why,
				       env->whylen)
			: files_load_contents(env, f, fd);
	if (r == 0 && ftruncate(fd, (off_t)f->size) < 0)
		r = FILE_FAIL(env, "cannot size re-created file %s", f->path);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = FILE_FAIL(env, "cannot set the mode of re-created file %s: "
				   "%s", f->path, strerror(errno));
	/* Opened anew with the process's own flags (write-only, append...);
	 * the file has no name but this one. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int nfd = r < 0 ? -1 : open(proc, oflags | O_CLOEXEC);
	if (r == 0 && nfd < 0)
		r = FILE_FAIL(env, "cannot open re-created file %s: %s",
			      f->path, strerror(errno));
	close(fd);
	return r < 0 ? -1 : nfd;
}

/* /proc/N/... (the kernel never shows /proc/self): N may be a process
 * of the image, which does not exist while capcr restore makes files. */
static int proc_of_a_pid(const char *path)
{
	const char *p = path;

	if (!p || strncmp(p, "/proc/", 6))
		return 0;
	p += 6;
	if (*p < '1' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == '/' || !*p;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	/* The status flags go back with F_SETFL afterwards; here only what
	 * open() alone can set. */
	int oflags = (int)(f->flags & (O_ACCMODE | O_APPEND | O_DIRECT |
				       O_NOATIME | O_PATH | O_DIRECTORY |
				       O_LARGEFILE | O_SYNC | O_DSYNC));
	struct stat st;
	char hint[160];
	int fd;

	if (f->deleted && f->has_mode && !S_ISREG(f->mode))
		return restore_deleted_node(env, f, oflags);
	if (f->deleted)
		return restore_deleted(env, f, oflags);
	if (f->kind == CAPCR__FILE_KIND__FILE_FIFO)
		return restore_fifo(env, f, oflags);
	if (f->has_mode && S_ISLNK(f->mode))
		return open_link(env, f);
	fd = open_image_path(env, f, oflags | O_CLOEXEC | O_NOCTTY);
	/* A file of a process not made yet (its own /proc/PID/status): a
	 * stand-in until settle opens it in the process. */
	if (fd < 0 && errno == ENOENT && proc_of_a_pid(f->path))
		return files_stand_in(oflags);
	if (fd < 0)
		return FILE_FAIL(env, "cannot open %s again: %s%s", f->path,
				 strerror(errno),
				 open_hint(env, f, errno, hint, sizeof(hint)));
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

/* The stand-in of a /proc/PID file replaced by the file itself, opened in
 * the process now that every process of its part of the tree exists; the
 * process's other descriptors of it follow the first. */
static int settle(struct file_restore_env *env, const Capcr__File *f, int fd,
		  int first)
{
	if (!proc_of_a_pid(f->path) || !files_is_stand_in(fd))
		return 0;
	int oflags = (int)(f->flags & (O_ACCMODE | O_DIRECTORY | O_PATH));
	int nf = fd != first ? fcntl(first, F_DUPFD_CLOEXEC, 0)
			     : open_image_path(env, f,
					       oflags | O_CLOEXEC | O_NOCTTY);
	if (nf < 0 || files_replace(nf, fd) < 0)
		return FILE_FAIL(env, "cannot open %s again: %s", f->path,
				 strerror(errno));
	if (fd != first)
		return 0;
	if (!(f->flags & O_PATH)) {
		fcntl(fd, F_SETFL, (int)f->flags);
		if (f->has_pos && lseek(fd, f->pos, SEEK_SET) < 0 &&
		    errno != ESPIPE)
			return FILE_FAIL(env, "cannot seek %s to %lld: %s",
					 f->path, (long long)f->pos,
					 strerror(errno));
	}
	return 0;
}

const struct file_ops file_regular = {
	.kind = CAPCR__FILE_KIND__FILE_REG,
	.name = "regular",
	.match = match,
	.dump = dump,
	.restore = restore,
	.settle = settle,
};
