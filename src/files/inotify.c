/* SPDX-License-Identifier: MIT */
/*
 * inotify instances: their watches, each as (wd, mask, path).
 *
 * fdinfo names each watched inode by a file handle ("inotify wd:.. ino:..
 * sdev:.. mask:.. ignored_mask:.. fhandle-bytes:.. fhandle-type:..
 * f_handle:..").  Dump turns the handle into a path: open_by_handle_at
 * (root, CAP_DAC_READ_SEARCH) with a descriptor on a mount of that device,
 * found through mountinfo (capcr's own, then the process's through
 * /proc/PID/root), and the path of what it opened, checked to lead back to
 * the same inode; failing that, the paths the process has open (cwd, root,
 * descriptors) are tried.  A watch on a symbolic link itself is kept with
 * IN_DONT_FOLLOW.  A watched inode that has no path any more (deleted) is
 * refused.
 *
 * Restore: inotify_init1, then inotify_add_watch(path, mask) in wd order.
 * The kernel hands out wds in increasing order per instance and never
 * reuses one until the numbers wrap (idr_alloc_cyclic), so a wd is
 * reproduced by making and removing throwaway watches (on a memfd of our
 * own) for the numbers below it that are not in the image (watches the
 * process removed).  Every restored wd is checked against the saved one;
 * a difference is refused rather than restoring a process whose wds lie.
 * The queue is then emptied (the IN_IGNORED events of the throwaway
 * watches).
 *
 * Not kept: events queued and not yet read at dump (lost, like the events
 * of changes made while the process was checkpointed), and the wd the
 * next new watch would have had after removed watches above the last one.
 * A path is what it names at restore: a file replaced by another under the
 * same name is watched as that other.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../common/log.h"
#include "files.h"

/* More throwaway watches than this, to fill gaps, is refused. */
#define MAX_GAP_WATCHES (1u << 20)

struct watch {
	int wd;
	unsigned long ino;
	unsigned sdev, mask;
	unsigned hbytes;
	int htype;
	unsigned char handle[128];
};

static int match(const struct file_dump_in *in)
{
	return !strcmp(in->k->target, "anon_inode:inotify");
}

static int hexval(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

static int parse(const char *line, struct watch *w)
{
	unsigned wd, ign;
	int n = 0;

	memset(w, 0, sizeof(*w));
	if (sscanf(line, "inotify wd:%x ino:%lx sdev:%x mask:%x "
			 "ignored_mask:%x %n",
		   &wd, &w->ino, &w->sdev, &w->mask, &ign, &n) < 5 ||
	    !n)
		return -1;
	w->wd = (int)wd;
	const char *h = line + n;
	unsigned hb, ht;
	int m = 0;
	if (sscanf(h, "fhandle-bytes:%x fhandle-type:%x f_handle:%n", &hb, &ht,
		   &m) == 2 &&
	    m && hb <= sizeof(w->handle)) {
		h += m;
		for (unsigned i = 0; i < hb; i++) {
			int a = hexval(h[2 * i]), b = a < 0 ? -1
							   : hexval(h[2 * i + 1]);
			if (b < 0)
				return 0; /* no usable handle */
			w->handle[i] = (unsigned char)(a << 4 | b);
		}
		w->hbytes = hb;
		w->htype = (int)ht;
	}
	return 0;
}

/* mountinfo's octal escapes (\040 for a space) undone, in place. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++)
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] &&
		    s[3]) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	*o = 0;
}

static int is_inode(int fd, const struct watch *w, dev_t dev)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_ino == w->ino && st.st_dev == dev;
}

/* path (as capcr sees it) of what fd is, if it leads back to the inode. */
static int path_of(int fd, const struct watch *w, dev_t dev, char *out,
		   size_t len)
{
	char link[64];
	struct stat st;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, out, len - 1);
	if (n <= 0 || (size_t)n >= len - 1)
		return -1;
	out[n] = 0;
	if (out[0] != '/')
		return -1;
	if (lstat(out, &st) < 0 || st.st_ino != w->ino || st.st_dev != dev)
		return -1;
	return 0;
}

/* Through the file handle and a mount of its device from mountinfo (ours,
 * or the process's seen through /proc/PID/root). */
static int by_handle(pid_t pid, int theirs, const struct watch *w, dev_t dev,
		     char *out, size_t len, int *islnk)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int r = -1;
	_Alignas(struct file_handle) unsigned char
		hbuf[sizeof(struct file_handle) + sizeof(w->handle)];
	struct file_handle *fh = (struct file_handle *)hbuf;

	if (!w->hbytes)
		return -1;
	fh->handle_bytes = w->hbytes;
	fh->handle_type = w->htype;
	memcpy(fh->f_handle, w->handle, w->hbytes);
	if (theirs)
		snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/mountinfo");
	FILE *mi = fopen(path, "re");
	if (!mi)
		return -1;
	while (r < 0 && getline(&line, &cap, mi) > 0) {
		unsigned maj, min;
		char root[4096], mnt[4096], full[4200];
		if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &maj, &min,
			   root, mnt) != 4 ||
		    makedev(maj, min) != dev)
			continue;
		unescape(mnt);
		if (theirs)
			snprintf(full, sizeof(full), "/proc/%d/root%s", pid,
				 mnt);
		else
			snprintf(full, sizeof(full), "%s", mnt);
		int mfd = open(full, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (mfd < 0)
			continue;
		int fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
		close(mfd);
		if (fd < 0)
			continue;
		struct stat st;
		if (is_inode(fd, w, dev) && !path_of(fd, w, dev, out, len) &&
		    !fstat(fd, &st)) {
			*islnk = S_ISLNK(st.st_mode);
			r = 0;
		}
		close(fd);
	}
	free(line);
	fclose(mi);
	return r;
}

/* Through what the process has open: cwd, root, descriptors. */
static int by_open_paths(pid_t pid, const struct watch *w, dev_t dev,
			 char *out, size_t len)
{
	char path[128];
	static const char *const fixed[] = { "cwd", "root" };

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, fixed[i]);
		int fd = open(path, O_PATH | O_CLOEXEC);
		if (fd < 0)
			continue;
		int r = is_inode(fd, w, dev) ? path_of(fd, w, dev, out, len)
					     : -1;
		close(fd);
		if (!r)
			return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	int r = -1;
	for (struct dirent *e; d && r < 0 && (e = readdir(d));) {
		struct stat st;
		if (e->d_name[0] == '.' ||
		    fstatat(dirfd(d), e->d_name, &st, 0) < 0 ||
		    st.st_ino != w->ino || st.st_dev != dev)
			continue;
		int fd = openat(dirfd(d), e->d_name, O_PATH | O_CLOEXEC);
		if (fd < 0)
			continue;
		r = path_of(fd, w, dev, out, len);
		close(fd);
	}
	if (d)
		closedir(d);
	return r;
}

static int by_wd(const void *a, const void *b)
{
	const Capcr__InotifyWatch *x = *(Capcr__InotifyWatch *const *)a,
				  *y = *(Capcr__InotifyWatch *const *)b;
	return (x->wd > y->wd) - (x->wd < y->wd);
}

/* Is the inode an entry of directory dir?  A non-directory's handle may
 * decode to a dentry the kernel no longer knows the name of (evicted from
 * the cache): its name is looked for near what has a path. */
static int in_dir(const char *dir, const struct watch *w, dev_t dev,
		  char *out, size_t len)
{
	DIR *d = opendir(dir);
	int r = -1;
	struct stat st;

	for (struct dirent *e; d && r < 0 && (e = readdir(d));)
		if (e->d_ino == w->ino &&
		    (size_t)snprintf(out, len, "%s/%s",
				     strcmp(dir, "/") ? dir : "",
				     e->d_name) < len &&
		    !lstat(out, &st) && st.st_ino == w->ino &&
		    st.st_dev == dev)
			r = 0;
	if (d)
		closedir(d);
	return r;
}

/* Directories worth looking in: those watched and their parents, those of
 * the files watched and their parents, the process's cwd and the
 * directories of its open files. */
static int by_neighbours(pid_t pid, char *const *paths, size_t n,
			 const struct watch *w, dev_t dev, char *out,
			 size_t len)
{
	char dir[4096], link[128];
	struct stat st;

	for (size_t i = 0; i < n; i++) {
		if (!paths[i])
			continue;
		snprintf(dir, sizeof(dir), "%s", paths[i]);
		/* a watched directory itself, then each one up to the
		 * watched thing's grandparent */
		int up = stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : 1;
		for (int k = 0; k < up + 2 && dir[1]; k++) {
			if (k >= up && !in_dir(dir, w, dev, out, len))
				return 0;
			char *slash = strrchr(dir, '/');
			*(slash == dir ? slash + 1 : slash) = 0;
		}
	}
	snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
	ssize_t l = readlink(link, dir, sizeof(dir) - 1);
	if (l > 0 && (dir[l] = 0, dir[0] == '/') &&
	    !in_dir(dir, w, dev, out, len))
		return 0;
	snprintf(link, sizeof(link), "/proc/%d/fd", pid);
	DIR *d = opendir(link);
	int r = -1;
	for (struct dirent *e; d && r < 0 && (e = readdir(d));) {
		l = readlinkat(dirfd(d), e->d_name, dir, sizeof(dir) - 1);
		if (l <= 0 || (dir[l] = 0, dir[0] != '/'))
			continue;
		char *slash = strrchr(dir, '/');
		*(slash == dir ? slash + 1 : slash) = 0;
		r = in_dir(dir, w, dev, out, len);
	}
	if (d)
		closedir(d);
	return r;
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	char *line = NULL, where[4096];
	size_t cap = 0, n = 0;
	struct watch *ws = NULL;
	char **paths = NULL;
	int *islnk = NULL;
	FILE *fi;
	int r = 0;

	/* Events cannot be read without taking them from the process (no
	 * peek), so they are not kept: say so rather than lose them quietly. */
	int queued = 0;
	if (in->copy >= 0 && ioctl(in->copy, FIONREAD, &queued) == 0 &&
	    queued > 0)
		capcr_warn("descriptor %d of process %d (inotify) has %d bytes "
			   "of events not yet read: they are not kept (the "
			   "process will not see them after a restore)",
			   in->fd, in->pid, queued);
	fi = files_fdinfo_open(in->pid, in->fd, env->why, env->whylen);
	if (!fi)
		return -1;
	while (r == 0 && getline(&line, &cap, fi) > 0) {
		if (strncmp(line, "inotify wd:", 11))
			continue;
		struct watch *nw = realloc(ws, (n + 1) * sizeof(*ws));
		if (!nw) {
			r = FILE_FAIL(env, "out of memory");
			break;
		}
		ws = nw;
		if (parse(line, &ws[n]) < 0) {
			line[strcspn(line, "\n")] = 0;
			r = FILE_FAIL(env, "inotify descriptor %d of process "
					   "%d: cannot read the watch '%s'",
				      in->fd, in->pid, line);
			break;
		}
		n++;
	}
	free(line);
	fclose(fi);
	paths = calloc(n + 1, sizeof(*paths));
	islnk = calloc(n + 1, sizeof(*islnk));
	if (!r && (!paths || !islnk))
		r = FILE_FAIL(env, "out of memory");
	/* The kernel's s_dev: major in the high 12 bits. */
#define WDEV(w) makedev((w)->sdev >> 20, (w)->sdev & 0xfffff)
	for (size_t i = 0; !r && i < n; i++)
		if (!by_handle(in->pid, 0, &ws[i], WDEV(&ws[i]), where,
			       sizeof(where), &islnk[i]) ||
		    !by_handle(in->pid, 1, &ws[i], WDEV(&ws[i]), where,
			       sizeof(where), &islnk[i]) ||
		    !by_open_paths(in->pid, &ws[i], WDEV(&ws[i]), where,
				   sizeof(where)))
			paths[i] = strdup(where);
	for (size_t i = 0; !r && i < n; i++) {
		if (!paths[i] && !by_neighbours(in->pid, paths, n, &ws[i],
						WDEV(&ws[i]), where,
						sizeof(where)))
			paths[i] = strdup(where);
		if (!paths[i]) {
			r = FILE_FAIL(env,
				      "inotify descriptor %d of process %d "
				      "watches (wd %d) inode %lu on device "
				      "%u:%u, to which capcr finds no path "
				      "(deleted, or on a mount capcr cannot "
				      "reach)",
				      in->fd, in->pid, ws[i].wd, ws[i].ino,
				      major(WDEV(&ws[i])), minor(WDEV(&ws[i])));
			break;
		}
		Capcr__InotifyWatch *iw = ARENA_NEW(env->arena,
						    Capcr__InotifyWatch);
		capcr__inotify_watch__init(iw);
		iw->wd = ws[i].wd;
		iw->mask = ws[i].mask | (islnk[i] ? IN_DONT_FOLLOW : 0);
		iw->path = arena_strdup(env->arena, paths[i]);
		arena_push(env->arena, (void ***)&f->watches, &f->n_watches,
			   iw);
	}
#undef WDEV
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	free(islnk);
	free(ws);
	if (!r && f->n_watches > 1)
		qsort(f->watches, f->n_watches, sizeof(f->watches[0]), by_wd);
	return r;
}

/* Use up wd numbers up to (not including) want, with throwaway watches. */
static int skip_to(struct file_restore_env *env, int fd, int *next, int want,
		   unsigned *budget)
{
	char path[64];
	int mfd;

	if (*next >= want)
		return 0;
	mfd = memfd_create("capcr-inotify-gap", MFD_CLOEXEC);
	if (mfd < 0)
		return FILE_FAIL(env, "memfd_create: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	while (*next < want) {
		if (!(*budget)--) {
			close(mfd);
			return FILE_FAIL(env, "inotify: wd %d lies more than "
					      "%u removed watches on; not "
					      "reproduced",
					 want, MAX_GAP_WATCHES);
		}
		int wd = inotify_add_watch(fd, path, IN_ATTRIB);
		if (wd < 0 || wd >= want) {
			close(mfd);
			return FILE_FAIL(env, "inotify: cannot reproduce wd "
					      "%d (a throwaway watch got %d%s%s)",
					 want, wd, wd < 0 ? ": " : "",
					 wd < 0 ? strerror(errno) : "");
		}
		inotify_rm_watch(fd, wd);
		*next = wd + 1;
	}
	close(mfd);
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	unsigned budget = MAX_GAP_WATCHES;
	int next = 1;
	const Capcr__InotifyWatch **ws = NULL;

	if (fd < 0)
		return FILE_FAIL(env, "inotify_init1: %s", strerror(errno));
	if (f->n_watches) {
		ws = calloc(f->n_watches, sizeof(*ws));
		if (!ws) {
			close(fd);
			return FILE_FAIL(env, "out of memory");
		}
		memcpy(ws, f->watches, f->n_watches * sizeof(*ws));
		qsort(ws, f->n_watches, sizeof(*ws), by_wd);
	}
	for (size_t i = 0; i < f->n_watches; i++) {
		const Capcr__InotifyWatch *w = ws[i];
		if (skip_to(env, fd, &next, w->wd, &budget) < 0)
			goto fail;
		int wd = inotify_add_watch(fd, w->path, w->mask);
		if (wd < 0) {
			FILE_FAIL(env, "cannot watch %s again with inotify "
				       "(mask %#x): %s",
				  w->path, w->mask, strerror(errno));
			goto fail;
		}
		if (wd != w->wd) {
			FILE_FAIL(env, "inotify watch of %s comes back as wd "
				       "%d, was %d: not restored with lying "
				       "wds",
				  w->path, wd, w->wd);
			goto fail;
		}
		next = wd + 1;
	}
	free(ws);
	/* What the throwaway watches left in the queue. */
	char buf[4096];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return fd;
fail:
	free(ws);
	close(fd);
	return -1;
}

const struct file_ops file_inotify = {
	.kind = CAPCR__FILE_KIND__FILE_INOTIFY,
	.name = "inotify",
	.match = match,
	.dump = dump,
	.restore = restore,
};
