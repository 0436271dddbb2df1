/* SPDX-License-Identifier: MIT */
/*
 * Image directories: writing files with checksums, the inventory that
 * commits an image, and reading both back with every check done before
 * anything is restored.  Format: docs/image-format.md.
 */
#ifndef CAPCR_IMAGE_H
#define CAPCR_IMAGE_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "capcr.pb-c.h"

/* Version of the image format; bumped on every incompatible change.  The
 * newest this capcr reads and writes. */
#define CAPCR_IMAGE_FORMAT 4
/* What a dump without a parent image is written as: everything of format
 * 4 is about incremental images, so capcr of format 3 still reads it. */
#define CAPCR_IMAGE_FORMAT_FULL 3
/* The oldest format this capcr reads (docs/image-format.md, Changes). */
#define CAPCR_IMAGE_FORMAT_MIN 2
/* Every metadata file starts with this magic and the format version. */
#define CAPCR_IMAGE_MAGIC "CAPCRIMG"

struct image {
	int dirfd;
	char path[4096];
	Capcr__ImageFile **files; /* written so far, for the inventory */
	size_t nfiles;
	/* reading: large files whose checksums a second thread verifies
	 * while the restore goes on (image_verify_finish) */
	Capcr__ImageFile **deferred;
	size_t ndeferred;
	int verifying;
	pthread_t verifier;
	char verify_why[512];
	/* reading: the inventory image_open returned (the caller's): the
	 * only files image_open_data opens */
	const Capcr__Inventory *inv;
	/* owner of the image directory: whose rights a path named by the
	 * image is opened with (docs/security.md) */
	uid_t owner_uid;
	gid_t owner_gid;
	/* reading: XXH3-64 of inventory.img, which an incremental image
	 * records of its parent */
	uint64_t inv_xxh3;
	/* writing: the format version written (0: CAPCR_IMAGE_FORMAT_FULL) */
	uint32_t format;
	/* writing: bytes written so far, and the first failure to write or
	 * to create a file, with its cause, for the user */
	uint64_t written;
	char why[1024];
};

/* The longest name of a file inside an image. */
#define IMAGE_NAME_MAX 100
/* Whether NAME may name a file of an image: a plain name inside the image
 * directory (no '/', no leading '.', hence neither "." nor "..", 1 to
 * IMAGE_NAME_MAX printable characters).  Every name an image holds is
 * checked with it before use. */
int image_name_ok(const char *name);
/* The --allow-untrusted-dir option: accept an image directory (and image
 * files) that another user owns or others may write.  Every other check
 * stays (regular files only, plain names, bounded sizes). */
void image_allow_untrusted(int on);
#define IMAGE_UNTRUSTED_OPT "allow-untrusted-dir"

/* Open DIR for writing (it must exist, like CRIU's -D).  A stale
 * inventory.img is removed first, so a failed dump never leaves an
 * older, complete-looking image behind.  A directory another user owns or
 * may write is refused (-EPERM, img->why says why and the fix).  Files are
 * made unnamed (O_TMPFILE) or with O_EXCL|O_NOFOLLOW, and linked in under
 * their name at the end: no link in the directory is ever followed, no
 * file truncated, and only a regular file of ours replaced.  Returns 0 or
 * -errno. */
int image_create(struct image *img, const char *dir);
/* Write a protobuf message as file NAME: header, message, fsync. */
int image_write_msg(struct image *img, const char *name,
		    const ProtobufCMessage *msg);
/* A raw data file (pages, contents): open it, write to it, then close it
 * with image_data_close, which checksums and syncs it. */
struct image_data {
	struct image *img;
	int fd;
	int err; /* first write error: the file is not linked in */
	char name[128];
	char tmp[140]; /* without O_TMPFILE: the name it is written under */
	uint64_t size;
	void *hash; /* XXH3_state_t */
};
int image_data_open(struct image *img, struct image_data *d, const char *name);
int image_data_write(struct image_data *d, const void *buf, size_t len);
/* image_data_write in two halves, for a writer whose writing runs on
 * another thread than its producer: the checksum and size (in file order),
 * and the write itself. */
void image_data_hash(struct image_data *d, const void *buf, size_t len);
int image_data_put(struct image_data *d, const void *buf, size_t len);
int image_data_close(struct image *img, struct image_data *d);
/* Drop a data file unfinished: it never appears in the directory. */
void image_data_abandon(struct image_data *d);
/* Write the inventory last, atomically (rename). */
int image_commit(struct image *img, Capcr__Inventory *inv);
void image_close(struct image *img);

/* Open DIR for reading: reads inventory.img, checks the format version and
 * every file's size and checksum.  On failure writes a message for the user
 * into why and returns -1. */
int image_open(struct image *img, const char *dir, Capcr__Inventory **inv,
	       char *why, size_t whylen);
/* Wait for the checksums image_open left to a second thread: 0, or -1
 * with why set.  A restore calls it before any restored process runs. */
int image_verify_finish(struct image *img, char *why, size_t whylen);
/* Read a metadata file (already checksummed by image_open). */
void *image_read_msg(struct image *img, const char *name,
		     const ProtobufCMessageDescriptor *desc, char *why,
		     size_t whylen);
/* Open a data file for reading: only a file the inventory lists, a
 * regular file (checked as image_open checks them); returns an fd or -1
 * with errno set, and image_error() says why. */
int image_open_data(struct image *img, const char *name);
/* Why the last image_open_data of this thread failed. */
const char *image_error(void);

/* Metadata files larger than this are refused unread: no real one comes
 * near it (files.img of a large tree is a few MiB). */
#define IMAGE_MSG_MAX (64 << 20)
/* Check a metadata file's header (magic, format, length) and decode it:
 * what image_read_msg does with a file's bytes, for bytes from anywhere
 * (the fuzzers).  NULL with why set when it is not a valid file. */
void *image_unpack(const ProtobufCMessageDescriptor *desc, const void *buf,
		   size_t len, const char *name, char *why, size_t wl);

#endif
