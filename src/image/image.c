/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "image.h"

#include <errno.h>
#include <fcntl.h>
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

int image_create(struct image *img, const char *dir)
{
	memset(img, 0, sizeof(*img));
	snprintf(img->path, sizeof(img->path), "%s", dir);
	img->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (img->dirfd < 0)
		return -errno;
	if (unlinkat(img->dirfd, "inventory.img", 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;

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

/* Write buf as NAME: to NAME.tmp, fsync, rename.  Records the checksum. */
static int write_file(struct image *img, const char *name, const void *buf,
		      size_t len, int record)
{
	char tmp[160];
	int fd, r;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(img->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, buf, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && renameat(img->dirfd, tmp, img->dirfd, name) < 0)
		r = -errno;
	if (r) {
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
	h->format = CAPCR_IMAGE_FORMAT;
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
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->fd = openat(img->dirfd, name,
		       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (d->fd < 0)
		return -errno;
	d->hash = XXH3_createState();
	if (!d->hash) {
		close(d->fd);
		return -ENOMEM;
	}
	XXH3_64bits_reset(d->hash);
	return 0;
}

int image_data_write(struct image_data *d, const void *buf, size_t len)
{
	int r = write_all(d->fd, buf, len);

	if (!r) {
		XXH3_64bits_update(d->hash, buf, len);
		d->size += len;
	}
	return r;
}

int image_data_close(struct image *img, struct image_data *d)
{
	int r = 0;

	if (fsync(d->fd) < 0)
		r = -errno;
	close(d->fd);
	if (!r)
		r = add_file(img, d->name, d->size, XXH3_64bits_digest(d->hash));
	XXH3_freeState(d->hash);
	d->hash = NULL;
	return r;
}

int image_commit(struct image *img, Capcr__Inventory *inv)
{
	int r;

	inv->n_files = img->nfiles;
	inv->files = img->files;
	/* Written last and renamed into place: the commit point. */
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
	if (img->dirfd >= 0)
		close(img->dirfd);
	img->dirfd = -1;
}

/* Read a whole file into memory. */
static void *slurp(int dirfd, const char *name, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return NULL;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
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
	if (h.format != CAPCR_IMAGE_FORMAT) {
		snprintf(why, wl,
			 "%s is from capcr image format %u, this capcr reads "
			 "format %u",
			 name, h.format, CAPCR_IMAGE_FORMAT);
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

static int checksum_file(int dirfd, const Capcr__ImageFile *f, char *why,
			 size_t wl)
{
	int fd = openat(dirfd, f->name, O_RDONLY | O_CLOEXEC);
	XXH3_state_t *st;
	const size_t bufsize = 1 << 20;
	char *buf = malloc(bufsize);
	uint64_t total = 0;
	ssize_t n;

	if (!buf) {
		if (fd >= 0)
			close(fd);
		snprintf(why, wl, "out of memory");
		return -1;
	}
	if (fd < 0) {
		free(buf);
		snprintf(why, wl, "image file %s is missing: %s", f->name,
			 strerror(errno));
		return -1;
	}
	st = XXH3_createState();
	XXH3_64bits_reset(st);
	while ((n = read(fd, buf, bufsize)) > 0) {
		XXH3_64bits_update(st, buf, (size_t)n);
		total += (uint64_t)n;
	}
	close(fd);
	free(buf);
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
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
		if (checksum_file(img->dirfd, img->deferred[i], img->verify_why,
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

	memset(img, 0, sizeof(*img));
	snprintf(img->path, sizeof(img->path), "%s", dir);
	img->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (img->dirfd < 0) {
		snprintf(why, wl, "cannot open image directory %s: %s", dir,
			 strerror(errno));
		return -1;
	}
	buf = slurp(img->dirfd, "inventory.img", &len);
	if (!buf) {
		snprintf(why, wl,
			 "%s holds no complete image (no inventory.img): the "
			 "dump did not finish, or this is not an image "
			 "directory",
			 dir);
		return -1;
	}
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
		if (strchr(n, '/') || n[0] == '.') {
			snprintf(why, wl, "inventory names a bad file '%s'", n);
			goto fail;
		}
		/* Large files: their size now (a truncated image is refused
		 * at once), their checksum on a second thread. */
		struct stat st;
		if (inv->files[i]->size > DEFER_BYTES &&
		    fstatat(img->dirfd, n, &st, 0) == 0 &&
		    (uint64_t)st.st_size == inv->files[i]->size) {
			void *d = realloc(img->deferred, (img->ndeferred + 1) *
							     sizeof(*img->deferred));
			if (!d) {
				snprintf(why, wl, "out of memory");
				goto fail;
			}
			img->deferred = d;
			img->deferred[img->ndeferred++] = inv->files[i];
			continue;
		}
		if (checksum_file(img->dirfd, inv->files[i], why, wl) < 0)
			goto fail;
	}
	if (img->ndeferred &&
	    pthread_create(&img->verifier, NULL, verify_main, img) == 0)
		img->verifying = 1;
	else if (img->ndeferred && verify_main(img) != NULL) {
		snprintf(why, wl, "%s", img->verify_why);
		goto fail;
	}
	*out = inv;
	return 0;
fail:
	free(img->deferred);
	img->deferred = NULL;
	img->ndeferred = 0;
	capcr__inventory__free_unpacked(inv, NULL);
	return -1;
}

void *image_read_msg(struct image *img, const char *name,
		     const ProtobufCMessageDescriptor *desc, char *why,
		     size_t wl)
{
	size_t len;
	char *buf = slurp(img->dirfd, name, &len);
	void *m;

	if (!buf) {
		snprintf(why, wl, "image file %s is missing: %s", name,
			 strerror(errno));
		return NULL;
	}
	m = unpack(desc, buf, len, name, why, wl);
	free(buf);
	return m;
}

int image_open_data(struct image *img, const char *name)
{
	return openat(img->dirfd, name, O_RDONLY | O_CLOEXEC);
}
