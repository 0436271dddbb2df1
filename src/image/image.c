/* SPDX-License-Identifier: MIT */
/*
 * The image directory is the one thing a user other than the one running
 * capcr may have had a hand in: every file in it is created without
 * following a link or truncating anything, and read only when it is a
 * regular file of the right owner, by a plain name.  docs/security.md.
 */
#define _GNU_SOURCE
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* Header of every metadata file: magic, format version, payload length. */
struct file_header {
	char magic[8];
	uint32_t format;
	uint32_t length;
};

static int untrusted_ok;
static __thread char last_error[600];

void image_allow_untrusted(int on)
{
	untrusted_ok = on;
}

const char *image_error(void)
{
	return last_error;
}

int image_name_ok(const char *name)
{
	size_t l = name ? strnlen(name, IMAGE_NAME_MAX + 1) : 0;

	if (!l || l > IMAGE_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < l; i++)
		if (name[i] == '/' || (unsigned char)name[i] < 0x20 ||
		    name[i] == 0x7f)
			return 0;
	return 1;
}

static const char *kind_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFLNK:
		return "a symbolic link";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	case S_IFDIR:
		return "a directory";
	default:
		return "not a regular file";
	}
}

/* "alice (uid 1000)", for messages. */
static const char *user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, len, "%s (uid %u)", res->pw_name, (unsigned)uid);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

/*
 * Whether the image directory can be trusted: it must belong to us (or
 * root) and be writable by nobody else, or be sticky (others may add names
 * but not touch ours; a name they plant is never followed, and never
 * replaced).  Like ssh with ~/.ssh: the fix is named.
 */
static int dir_trusted(struct image *img, char *why, size_t wl)
{
	struct stat st;
	char owner[160], me[160];

	if (fstat(img->dirfd, &st) < 0) {
		snprintf(why, wl, "cannot use image directory %s: %s",
			 img->path, strerror(errno));
		return -1;
	}
	img->owner_uid = st.st_uid;
	img->owner_gid = st.st_gid;
	if (untrusted_ok)
		return 0;
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(why, wl,
			 "image directory %s belongs to %s, not to %s: that "
			 "user could change the image or plant links in it; "
			 "use a directory of your own (chown %u %s), or give "
			 "--%s if you trust that user",
			 img->path, user_name(st.st_uid, owner, sizeof(owner)),
			 user_name(geteuid(), me, sizeof(me)),
			 (unsigned)geteuid(), img->path, IMAGE_UNTRUSTED_OPT);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(why, wl,
			 "image directory %s is writable by %s (mode %04o): "
			 "they could change the image or plant links in it; "
			 "chmod go-w %s, or give --%s if you trust them",
			 img->path,
			 (st.st_mode & S_IWOTH) ? "every user" : "its group",
			 (unsigned)(st.st_mode & 07777), img->path,
			 IMAGE_UNTRUSTED_OPT);
		return -1;
	}
	return 0;
}

/* Whether image file NAME, found with st, can be trusted: ours, written by
 * nobody else, and no hard link to a file elsewhere. */
static int file_trusted(struct image *img, const char *name,
			const struct stat *st, char *why, size_t wl)
{
	char owner[160], me[160];

	if (untrusted_ok)
		return 0;
	if (st->st_uid != geteuid()) {
		snprintf(why, wl,
			 "image file %s in %s belongs to %s, not to %s: that "
			 "user could have written anything in it; chown %u "
			 "the image files, or give --%s if you trust that user",
			 name, img->path,
			 user_name(st->st_uid, owner, sizeof(owner)),
			 user_name(geteuid(), me, sizeof(me)),
			 (unsigned)geteuid(), IMAGE_UNTRUSTED_OPT);
		return -1;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, wl,
			 "image file %s in %s is writable by %s (mode %04o): "
			 "chmod go-w %s/%s, or give --%s if you trust them",
			 name, img->path,
			 (st->st_mode & S_IWOTH) ? "every user" : "its group",
			 (unsigned)(st->st_mode & 07777), img->path, name,
			 IMAGE_UNTRUSTED_OPT);
		return -1;
	}
	if (st->st_nlink != 1) {
		snprintf(why, wl,
			 "image file %s in %s has %lu hard links: it may be a "
			 "file from elsewhere linked into the image; copy the "
			 "image (cp -a), or give --%s",
			 name, img->path, (unsigned long)st->st_nlink,
			 IMAGE_UNTRUSTED_OPT);
		return -1;
	}
	return 0;
}

/*
 * Open image file NAME for reading, or say why not (errno set).  An O_PATH
 * handle first: a FIFO, a device or a link is seen for what it is without
 * being opened (no hang on a FIFO, no side effect of opening a device);
 * then the file itself, which must be the same one.
 */
static int open_checked(struct image *img, const char *name, struct stat *st,
			char *why, size_t wl)
{
	struct stat lst;
	int pfd, fd, e;

	if (!image_name_ok(name)) {
		snprintf(why, wl,
			 "the image names a file '%.*s', which is not a plain "
			 "name of a file in the image directory (no '/', no "
			 "leading '.', at most %d characters): refused",
			 IMAGE_NAME_MAX, name ? name : "", IMAGE_NAME_MAX);
		errno = EINVAL;
		return -1;
	}
	pfd = openat(img->dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0) {
		e = errno;
		snprintf(why, wl, "image file %s is missing: %s", name,
			 strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(pfd, &lst) < 0) {
		e = errno;
		close(pfd);
		snprintf(why, wl, "cannot read image file %s: %s", name,
			 strerror(e));
		errno = e;
		return -1;
	}
	if (!S_ISREG(lst.st_mode)) {
		close(pfd);
		snprintf(why, wl,
			 "image file %s in %s is %s, not a regular file: "
			 "refused unread",
			 name, img->path, kind_name(lst.st_mode));
		errno = S_ISLNK(lst.st_mode) ? ELOOP : EINVAL;
		return -1;
	}
	close(pfd);
	if (file_trusted(img, name, &lst, why, wl) < 0) {
		errno = EPERM;
		return -1;
	}
	fd = openat(img->dirfd, name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) < 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(why, wl, "cannot open image file %s: %s", name,
			 strerror(e));
		errno = e;
		return -1;
	}
	if (st->st_dev != lst.st_dev || st->st_ino != lst.st_ino) {
		close(fd);
		snprintf(why, wl, "image file %s changed while it was opened",
			 name);
		errno = EAGAIN;
		return -1;
	}
	return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;

/* "40 KiB", "3.2 MiB": how much of the image was written. */
static const char *amount(uint64_t n, char *buf, size_t len)
{
	if (n < (1 << 20))
		snprintf(buf, len, "%llu KiB", (unsigned long long)(n >> 10));
	else
		snprintf(buf, len, "%.1f MiB", n / 1048576.0);
	return buf;
}

/* The first failure to write the image for want of space, with what it was
 * doing and how much had been written, for the message of the failed
 * dump. */
static void write_failed(struct image *img, const char *name, int err,
			 const char *what)
{
	char got[32];

	if (err != -ENOSPC && err != -EDQUOT)
		return;
	amount(__atomic_load_n(&img->written, __ATOMIC_RELAXED), got,
	       sizeof(got));
	pthread_mutex_lock(&files_lock);
	if (!img->why[0])
		snprintf(img->why, sizeof(img->why),
			 "cannot %s %s in %.250s: %s: the %s, after %s of the "
			 "image were written; free some space and dump again",
			 what, name, img->path, strerror(-err),
			 err == -ENOSPC ? "disk is full"
					: "disk quota is used up",
			 got);
	pthread_mutex_unlock(&files_lock);
}

/* A name in the way of a file we are about to link in: removed only when
 * it is a regular file of ours (an older dump's); anything else - a link,
 * another user's file - is left alone and the dump refused. */
static int remove_ours(struct image *img, const char *name)
{
	struct stat st;
	char owner[160];

	if (fstatat(img->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
		if (unlinkat(img->dirfd, name, 0) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	char what[200];
	if (S_ISREG(st.st_mode))
		snprintf(what, sizeof(what), "a file of %s",
			 user_name(st.st_uid, owner, sizeof(owner)));
	else
		snprintf(what, sizeof(what), "%s", kind_name(st.st_mode));
	pthread_mutex_lock(&files_lock);
	if (!img->why[0])
		snprintf(img->why, sizeof(img->why),
			 "image directory %.200s already holds %.100s, which "
			 "is %.60s: capcr replaces only regular files of its "
			 "own there and follows no link; remove it, or dump "
			 "into a directory of your own",
			 img->path, name, what);
	pthread_mutex_unlock(&files_lock);
	return -EEXIST;
}

/*
 * A new file for NAME, visible under no name yet: O_TMPFILE in the image
 * directory (publish() links it in).  On a file system without O_TMPFILE,
 * NAME.tmp made with O_EXCL|O_NOFOLLOW (publish() renames it), so that a
 * link planted under that name is never followed.
 */
static int create_unnamed(struct image *img, const char *name, char *tmp,
			  size_t tl)
{
	int fd;

	tmp[0] = 0;
	fd = openat(img->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	snprintf(tmp, tl, "%s.tmp", name);
	for (int tries = 0; tries < 3; tries++) {
		fd = openat(img->dirfd, tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				    O_CLOEXEC,
			    0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
		/* a failed dump's leftover, or a planted name */
		int r = remove_ours(img, tmp);
		if (r < 0)
			return r;
	}
	return -EEXIST;
}

/* Give the file create_unnamed made its name NAME.  Either way the name
 * appears at once with the whole file behind it. */
static int publish(struct image *img, int fd, const char *tmp,
		   const char *name)
{
	char proc[64];
	int r;

	if (tmp[0]) {
		if ((r = remove_ours(img, name)) < 0)
			return r;
		return renameat(img->dirfd, tmp, img->dirfd, name) < 0 ? -errno
									: 0;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	for (int tries = 0; tries < 3; tries++) {
		if (linkat(fd, "", img->dirfd, name, AT_EMPTY_PATH) == 0)
			return 0;
		/* AT_EMPTY_PATH wants CAP_DAC_READ_SEARCH; /proc does not */
		if ((errno == ENOENT || errno == EPERM) &&
		    linkat(AT_FDCWD, proc, img->dirfd, name,
			   AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
		if ((r = remove_ours(img, name)) < 0)
			return r;
	}
	return -EEXIST;
}

int image_create(struct image *img, const char *dir)
{
	int r;

	memset(img, 0, sizeof(*img));
	snprintf(img->path, sizeof(img->path), "%s", dir);
	/* A path that is a link to a directory is resolved here, once;
	 * everything after is relative to this descriptor. */
	img->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (img->dirfd < 0)
		return -errno;
	if (dir_trusted(img, img->why, sizeof(img->why)) < 0)
		return -EPERM;
	if ((r = remove_ours(img, "inventory.img")) < 0)
		return r;
	return 0;
}

static int add_file_locked(struct image *img, const char *name, uint64_t size,
			   uint64_t hash);

/* Record a written file for the inventory; dump workers call it at once. */
static int add_file(struct image *img, const char *name, uint64_t size,
		    uint64_t hash)
{
	pthread_mutex_lock(&files_lock);
	int r = add_file_locked(img, name, size, hash);
	pthread_mutex_unlock(&files_lock);
	return r;
}

static int add_file_locked(struct image *img, const char *name, uint64_t size,
			   uint64_t hash)
{
	Capcr__ImageFile *f = malloc(sizeof(*f));
	Capcr__ImageFile **n =
		realloc(img->files, (img->nfiles + 1) * sizeof(*n));

	if (!f || !n) {
		free(f);
		free(n);
		return -ENOMEM;
	}
	capcr__image_file__init(f);
	f->name = strdup(name);
	f->size = size;
	f->xxh3 = hash;
	img->files = n;
	img->files[img->nfiles++] = f;
	return f->name ? 0 : -ENOMEM;
}

/* Write buf as NAME (create_unnamed, write, fsync, publish).  Records the
 * checksum. */
static int write_file(struct image *img, const char *name, const void *buf,
		      size_t len, int record)
{
	char tmp[160];
	int fd, r;

	if (!image_name_ok(name))
		return -EINVAL;
	fd = create_unnamed(img, name, tmp, sizeof(tmp));
	if (fd < 0) {
		write_failed(img, name, fd, "create");
		return fd;
	}
	r = write_all(fd, buf, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (!r)
		__atomic_add_fetch(&img->written, len, __ATOMIC_RELAXED);
	else
		write_failed(img, name, r, "write");
	if (!r)
		r = publish(img, fd, tmp, name);
	close(fd);
	if (r) {
		if (tmp[0])
			unlinkat(img->dirfd, tmp, 0);
		return r;
	}
	return record ? add_file(img, name, len, XXH3_64bits(buf, len)) : 0;
}

static int write_msg(struct image *img, const char *name,
		     const ProtobufCMessage *msg, int record)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	struct file_header *h = malloc(sizeof(*h) + len);
	int r;

	if (!h)
		return -ENOMEM;
	memcpy(h->magic, CAPCR_IMAGE_MAGIC, 8);
	h->format = img->format ? img->format : CAPCR_IMAGE_FORMAT_FULL;
	h->length = (uint32_t)len;
	protobuf_c_message_pack(msg, (uint8_t *)(h + 1));
	r = write_file(img, name, h, sizeof(*h) + len, record);
	free(h);
	return r;
}

int image_write_msg(struct image *img, const char *name,
		    const ProtobufCMessage *msg)
{
	return write_msg(img, name, msg, 1);
}

int image_data_open(struct image *img, struct image_data *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	d->img = img;
	d->fd = -1;
	if (!image_name_ok(name) || strlen(name) >= sizeof(d->name))
		return -EINVAL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->fd = create_unnamed(img, name, d->tmp, sizeof(d->tmp));
	if (d->fd < 0) {
		int r = d->fd;
		write_failed(img, name, r, "create");
		return r;
	}
	d->hash = XXH3_createState();
	if (!d->hash) {
		close(d->fd);
		if (d->tmp[0])
			unlinkat(img->dirfd, d->tmp, 0);
		return -ENOMEM;
	}
	XXH3_64bits_reset(d->hash);
	return 0;
}

void image_data_hash(struct image_data *d, const void *buf, size_t len)
{
	XXH3_64bits_update(d->hash, buf, len);
	d->size += len;
}

int image_data_put(struct image_data *d, const void *buf, size_t len)
{
	int r = write_all(d->fd, buf, len);

	if (!r) {
		__atomic_add_fetch(&d->img->written, len, __ATOMIC_RELAXED);
	} else if (!d->err) {
		d->err = r;
		write_failed(d->img, d->name, r, "write");
	}
	return r;
}

int image_data_write(struct image_data *d, const void *buf, size_t len)
{
	int r = image_data_put(d, buf, len);

	if (!r)
		image_data_hash(d, buf, len);
	return r;
}

int image_data_close(struct image *img, struct image_data *d)
{
	int r = d->err;

	if (!r && fsync(d->fd) < 0) {
		r = -errno;
		write_failed(img, d->name, r, "write");
	}
	/* Linked in only when whole: a failed file vanishes with its fd. */
	if (!r)
		r = publish(img, d->fd, d->tmp, d->name);
	close(d->fd);
	d->fd = -1;
	if (r && d->tmp[0])
		unlinkat(img->dirfd, d->tmp, 0);
	if (!r)
		r = add_file(img, d->name, d->size, XXH3_64bits_digest(d->hash));
	XXH3_freeState(d->hash);
	d->hash = NULL;
	if (r)
		errno = -r;
	return r;
}

void image_data_abandon(struct image_data *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (d->tmp[0])
		unlinkat(d->img->dirfd, d->tmp, 0);
	d->tmp[0] = 0;
	XXH3_freeState(d->hash);
	d->hash = NULL;
}

int image_commit(struct image *img, Capcr__Inventory *inv)
{
	int r;

	inv->n_files = img->nfiles;
	inv->files = img->files;
	/* Written last and linked in whole: the commit point. */
	r = write_msg(img, "inventory.img", &inv->base, 0);
	if (!r && fsync(img->dirfd) < 0)
		r = -errno;
	return r;
}

void image_close(struct image *img)
{
	char why[8];

	image_verify_finish(img, why, sizeof(why));
	for (size_t i = 0; i < img->nfiles; i++) {
		free(img->files[i]->name);
		free(img->files[i]);
	}
	free(img->files);
	img->files = NULL;
	img->nfiles = 0;
	img->inv = NULL;
	if (img->dirfd >= 0)
		close(img->dirfd);
	img->dirfd = -1;
}

/* Read a whole metadata file into memory: a regular file of ours (see
 * open_checked) of at most IMAGE_MSG_MAX bytes, or NULL with why set. */
static void *slurp(struct image *img, const char *name, size_t *len,
		   char *why, size_t wl)
{
	struct stat st;
	int fd = open_checked(img, name, &st, why, wl);
	char *buf;

	if (fd < 0)
		return NULL;
	if (st.st_size > IMAGE_MSG_MAX) {
		close(fd);
		snprintf(why, wl,
			 "image file %s is %lld bytes, more than the %d MiB a "
			 "metadata file may have: refused unread",
			 name, (long long)st.st_size, IMAGE_MSG_MAX >> 20);
		return NULL;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		snprintf(why, wl, "out of memory");
		return NULL;
	}
	size_t got = 0;
	ssize_t n = 1;
	while (got < (size_t)st.st_size &&
	       (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	int e = errno;
	close(fd);
	if (n < 0) {
		free(buf);
		snprintf(why, wl, "cannot read image file %s: %s", name,
			 strerror(e));
		return NULL;
	}
	*len = got;
	return buf;
}

static void *unpack(const ProtobufCMessageDescriptor *desc, const char *buf,
		    size_t len, const char *name, char *why, size_t wl)
{
	struct file_header h;

	if (len < sizeof(h)) {
		snprintf(why, wl, "%s is truncated", name);
		return NULL;
	}
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, CAPCR_IMAGE_MAGIC, 8)) {
		snprintf(why, wl, "%s is not a capcr image file", name);
		return NULL;
	}
	if (h.format < CAPCR_IMAGE_FORMAT_MIN || h.format > CAPCR_IMAGE_FORMAT) {
		snprintf(why, wl,
			 "%s is from capcr image format %u, this capcr reads "
			 "formats %u to %u",
			 name, h.format, CAPCR_IMAGE_FORMAT_MIN,
			 CAPCR_IMAGE_FORMAT);
		return NULL;
	}
	if (h.length != len - sizeof(h)) {
		snprintf(why, wl, "%s is truncated (%zu of %u bytes)", name,
			 len - sizeof(h), h.length);
		return NULL;
	}
	void *m = protobuf_c_message_unpack(desc, NULL, h.length,
					    (const uint8_t *)buf + sizeof(h));
	if (!m)
		snprintf(why, wl, "%s is corrupt (cannot be decoded)", name);
	return m;
}

static int checksum_file(struct image *img, const Capcr__ImageFile *f,
			 char *why, size_t wl)
{
	struct stat fst;
	int fd = open_checked(img, f->name, &fst, why, wl);
	XXH3_state_t *st;
	const size_t bufsize = 1 << 20;
	char *buf;
	uint64_t total = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -1;
	buf = malloc(bufsize);
	st = XXH3_createState();
	if (!buf || !st) {
		close(fd);
		free(buf);
		XXH3_freeState(st);
		snprintf(why, wl, "out of memory");
		return -1;
	}
	XXH3_64bits_reset(st);
	/* Never more than the inventory says (and one byte to see it is
	 * longer): a file that grows while read is not read forever. */
	while (total <= f->size &&
	       (n = read(fd, buf, bufsize)) > 0) {
		XXH3_64bits_update(st, buf, (size_t)n);
		total += (uint64_t)n;
	}
	int e = errno;
	close(fd);
	free(buf);
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	if (n < 0) {
		snprintf(why, wl, "cannot read image file %s: %s", f->name,
			 strerror(e));
		return -1;
	}
	if (total != f->size) {
		snprintf(why, wl,
			 "image file %s is truncated or extended: %llu bytes, "
			 "expected %llu",
			 f->name, (unsigned long long)total,
			 (unsigned long long)f->size);
		return -1;
	}
	if (h != f->xxh3) {
		snprintf(why, wl, "image file %s is corrupt (checksum mismatch)",
			 f->name);
		return -1;
	}
	return 0;
}

/* Files larger than this are checksummed on a second thread. */
#define DEFER_BYTES (4u << 20)

static void *verify_main(void *arg)
{
	struct image *img = arg;

	for (size_t i = 0; i < img->ndeferred; i++)
		if (checksum_file(img, img->deferred[i], img->verify_why,
				  sizeof(img->verify_why)) < 0)
			return img; /* non-NULL: failed */
	return NULL;
}

int image_verify_finish(struct image *img, char *why, size_t wl)
{
	void *failed = NULL;

	if (img->verifying) {
		pthread_join(img->verifier, &failed);
		img->verifying = 0;
	}
	free(img->deferred);
	img->deferred = NULL;
	img->ndeferred = 0;
	if (failed) {
		snprintf(why, wl, "%s", img->verify_why);
		return -1;
	}
	return 0;
}

int image_open(struct image *img, const char *dir, Capcr__Inventory **out,
	       char *why, size_t wl)
{
	size_t len;
	char *buf;
	Capcr__Inventory *inv;
	struct stat st;

	memset(img, 0, sizeof(*img));
	snprintf(img->path, sizeof(img->path), "%s", dir);
	img->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (img->dirfd < 0) {
		snprintf(why, wl, "cannot open image directory %s: %s", dir,
			 strerror(errno));
		return -1;
	}
	if (dir_trusted(img, why, wl) < 0)
		return -1;
	if (fstatat(img->dirfd, "inventory.img", &st, AT_SYMLINK_NOFOLLOW) <
		    0 &&
	    errno == ENOENT) {
		snprintf(why, wl,
			 "%s holds no complete image (no inventory.img): the "
			 "dump did not finish, or this is not an image "
			 "directory",
			 dir);
		return -1;
	}
	buf = slurp(img, "inventory.img", &len, why, wl);
	if (!buf)
		return -1;
	img->inv_xxh3 = XXH3_64bits(buf, len);
	inv = unpack(&capcr__inventory__descriptor, buf, len, "inventory.img",
		     why, wl);
	free(buf);
	if (!inv)
		return -1;
	if (strcmp(inv->arch, "x86_64")) {
		snprintf(why, wl, "image is for %s, this is x86_64", inv->arch);
		goto fail;
	}
	for (size_t i = 0; i < inv->n_files; i++) {
		const char *n = inv->files[i]->name;
		if (!image_name_ok(n)) {
			snprintf(why, wl,
				 "inventory.img names a file '%.*s', which is "
				 "not a plain name of a file in the image "
				 "directory: refused",
				 IMAGE_NAME_MAX, n);
			goto fail;
		}
		/* Large files: checked and sized now (a truncated image is
		 * refused at once), their checksum on a second thread. */
		if (inv->files[i]->size > DEFER_BYTES) {
			int fd = open_checked(img, n, &st, why, wl);
			if (fd < 0)
				goto fail;
			close(fd);
			if ((uint64_t)st.st_size == inv->files[i]->size) {
				size_t nd = img->ndeferred + 1;
				void *d = realloc(img->deferred,
						  nd * sizeof(*img->deferred));
				if (!d) {
					snprintf(why, wl, "out of memory");
					goto fail;
				}
				img->deferred = d;
				img->deferred[img->ndeferred++] = inv->files[i];
				continue;
			}
		}
		if (checksum_file(img, inv->files[i], why, wl) < 0)
			goto fail;
	}
	if (img->ndeferred &&
	    pthread_create(&img->verifier, NULL, verify_main, img) == 0)
		img->verifying = 1;
	else if (img->ndeferred && verify_main(img) != NULL) {
		snprintf(why, wl, "%s", img->verify_why);
		goto fail;
	}
	img->inv = inv;
	*out = inv;
	return 0;
fail:
	free(img->deferred);
	img->deferred = NULL;
	img->ndeferred = 0;
	capcr__inventory__free_unpacked(inv, NULL);
	return -1;
}

/* Whether the inventory lists NAME: every file an image names within
 * itself must be one of its checked and checksummed files. */
static int listed(const struct image *img, const char *name)
{
	if (!img->inv)
		return 0;
	for (size_t i = 0; i < img->inv->n_files; i++)
		if (!strcmp(img->inv->files[i]->name, name))
			return 1;
	return 0;
}

void *image_read_msg(struct image *img, const char *name,
		     const ProtobufCMessageDescriptor *desc, char *why,
		     size_t wl)
{
	size_t len;
	char *buf;
	void *m;

	if (image_name_ok(name) && !listed(img, name)) {
		snprintf(why, wl, "image file %s is missing: the inventory "
				  "does not list it", name);
		return NULL;
	}
	buf = slurp(img, name, &len, why, wl);
	if (!buf)
		return NULL;
	m = unpack(desc, buf, len, name, why, wl);
	free(buf);
	return m;
}

int image_open_data(struct image *img, const char *name)
{
	struct stat st;

	if (image_name_ok(name) && !listed(img, name)) {
		snprintf(last_error, sizeof(last_error),
			 "the image names a file %s that its inventory does "
			 "not list: refused",
			 name);
		errno = ENOENT;
		return -1;
	}
	return open_checked(img, name, &st, last_error, sizeof(last_error));
}

void *image_unpack(const ProtobufCMessageDescriptor *desc, const void *buf,
		   size_t len, const char *name, char *why, size_t wl)
{
	return unpack(desc, buf, len, name, why, wl);
}
