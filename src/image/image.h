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

#include "capcr.pb-c.h"

/* Version of the image format; bumped on every incompatible change. */
#define CAPCR_IMAGE_FORMAT 1
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
};

/* Open DIR for writing (it must exist, like CRIU's -D).  A stale
 * inventory.img is removed first, so a failed dump never leaves an
 * older, complete-looking image behind.  Returns 0 or -errno. */
int image_create(struct image *img, const char *dir);
/* Write a protobuf message as file NAME: header, message, fsync. */
int image_write_msg(struct image *img, const char *name,
		    const ProtobufCMessage *msg);
/* A raw data file (pages, contents): open it, write to it, then close it
 * with image_data_close, which checksums and syncs it. */
struct image_data {
	int fd;
	char name[128];
	uint64_t size;
	void *hash; /* XXH3_state_t */
};
int image_data_open(struct image *img, struct image_data *d, const char *name);
int image_data_write(struct image_data *d, const void *buf, size_t len);
/* Write len bytes read from fd (at its offset off) into the data file. */
int image_data_close(struct image *img, struct image_data *d);
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
/* Open a data file for reading; returns an fd or -1. */
int image_open_data(struct image *img, const char *name);

#endif
