/* SPDX-License-Identifier: MIT */
/*
 * img_edit: rewrites one field of an image the way an attacker who can
 * write the image directory would, checksum included, for t_trust.sh: the
 * checksums in inventory.img are no defence (anyone recomputes them); the
 * owner and name checks must be.
 *
 *   img_edit DIR path OLD NEW        File.path OLD -> NEW      (files.img)
 *   img_edit DIR data-file OLD NEW   File.data_file OLD -> NEW (files.img)
 *   img_edit DIR mode SUFFIX MODE    File.mode of the File whose path
 *                                    ends in SUFFIX -> MODE (octal, the
 *                                    file-type bits kept)
 *   img_edit DIR fd PID OLD NEW      Fd.fd OLD -> NEW          (fds-PID.img)
 *   img_edit DIR drop-runs PID       every page run of mm-PID.img dropped
 *   img_edit DIR rehash-parent PDIR  Inventory.parent_inventory_xxh3 set to
 *                                    the checksum of PDIR/inventory.img
 *   img_edit DIR sockopt KIND OPT V  File.sockopts.OPT = V on every socket
 *                                    of KIND (unix, tcp, udp: by domain
 *                                    and type); OPT is mark, priority,
 *                                    ttl, transparent or bindtodevice
 *
 * Prints how many fields changed; exits 1 when none did.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include "capcr.pb-c.h"

struct header {
	char magic[8];
	uint32_t format;
	uint32_t length;
};

static const char *dir;
/* The format of the files read, written back unchanged. */
static uint32_t format;

static void die(const char *what)
{
	fprintf(stderr, "img_edit: %s\n", what);
	exit(2);
}

static uint8_t *load(const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	long n;
	uint8_t *buf;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 16)
		die(path);
	rewind(f);
	buf = malloc((size_t)n);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		die(path);
	fclose(f);
	memcpy(&format, buf + 8, sizeof(format));
	*len = (size_t)n;
	return buf;
}

/* Write msg back as NAME in place (same inode, same owner), header
 * first; returns its size and checksum. */
static void store(const char *name, const ProtobufCMessage *msg,
		  uint64_t *size, uint64_t *hash)
{
	char path[4096];
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(sizeof(struct header) + len);
	struct header h = { .format = format, .length = (uint32_t)len };
	FILE *f;

	if (!buf)
		die("out of memory");
	memcpy(h.magic, "CAPCRIMG", 8);
	memcpy(buf, &h, sizeof(h));
	protobuf_c_message_pack(msg, buf + sizeof(h));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r+b");
	if (!f || fwrite(buf, 1, sizeof(h) + len, f) != sizeof(h) + len ||
	    ftruncate(fileno(f), (off_t)(sizeof(h) + len)) < 0)
		die(path);
	fclose(f);
	*size = sizeof(h) + len;
	*hash = XXH3_64bits(buf, sizeof(h) + len);
	free(buf);
}

static void *unpack_file(const char *name, const ProtobufCMessageDescriptor *d)
{
	size_t len;
	uint8_t *buf = load(name, &len);
	void *m = protobuf_c_message_unpack(d, NULL, len - 16, buf + 16);

	if (!m)
		die("cannot decode");
	free(buf);
	return m;
}

/* The inventory entry of NAME gets its new size and checksum. */
static void reinventory(const char *name, uint64_t size, uint64_t hash)
{
	Capcr__Inventory *inv =
		unpack_file("inventory.img", &capcr__inventory__descriptor);
	uint64_t s, h;

	for (size_t i = 0; i < inv->n_files; i++)
		if (!strcmp(inv->files[i]->name, name)) {
			inv->files[i]->size = size;
			inv->files[i]->xxh3 = hash;
		}
	store("inventory.img", &inv->base, &s, &h);
}

/* Is f a socket of kind ("unix", "tcp", "udp")? */
static int sock_kind(const Capcr__File *f, const char *kind)
{
	int inet = f->socket_domain == AF_INET || f->socket_domain == AF_INET6;

	if (!f->has_socket_domain)
		return 0;
	if (!strcmp(kind, "unix"))
		return f->socket_domain == AF_UNIX;
	if (!strcmp(kind, "tcp"))
		return inet && f->socket_type == SOCK_STREAM;
	if (!strcmp(kind, "udp"))
		return inet && f->socket_type == SOCK_DGRAM;
	return 0;
}

static void set_sockopt(Capcr__File *f, const char *opt, const char *val)
{
	static Capcr__SockOpts fresh[64];
	static int nfresh;

	if (!f->sockopts) {
		if (nfresh == 64)
			die("too many sockets");
		f->sockopts = &fresh[nfresh++];
		capcr__sock_opts__init(f->sockopts);
	}
	Capcr__SockOpts *o = f->sockopts;
	if (!strcmp(opt, "mark")) {
		o->has_mark = 1;
		o->mark = (uint32_t)strtoul(val, NULL, 0);
	} else if (!strcmp(opt, "priority")) {
		o->has_priority = 1;
		o->priority = (uint32_t)strtoul(val, NULL, 0);
	} else if (!strcmp(opt, "ttl")) {
		o->has_ttl = 1;
		o->ttl = (uint32_t)strtoul(val, NULL, 0);
	} else if (!strcmp(opt, "transparent")) {
		o->has_transparent = 1;
		o->transparent = atoi(val) != 0;
	} else if (!strcmp(opt, "bindtodevice")) {
		o->bindtodevice = (char *)val;
	} else {
		die("unknown socket option");
	}
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

int main(int argc, char **argv)
{
	int changed = 0;
	uint64_t size, hash;
	char name[64];

	if (argc == 4 && !strcmp(argv[2], "drop-runs")) {
		dir = argv[1];
		snprintf(name, sizeof(name), "mm-%s.img", argv[3]);
		Capcr__Mm *mm = unpack_file(name, &capcr__mm__descriptor);
		for (size_t i = 0; i < mm->n_vmas; i++) {
			changed += mm->vmas[i]->n_pages > 0;
			mm->vmas[i]->n_pages = 0;
		}
		store(name, &mm->base, &size, &hash);
		reinventory(name, size, hash);
		printf("%d changed\n", changed);
		return changed ? 0 : 1;
	}
	if (argc == 4 && !strcmp(argv[2], "rehash-parent")) {
		size_t len;
		dir = argv[3];
		uint8_t *buf = load("inventory.img", &len);
		dir = argv[1];
		Capcr__Inventory *inv = unpack_file("inventory.img",
						    &capcr__inventory__descriptor);
		inv->has_parent_inventory_xxh3 = 1;
		inv->parent_inventory_xxh3 = XXH3_64bits(buf, len);
		store("inventory.img", &inv->base, &size, &hash);
		printf("1 changed\n");
		return 0;
	}
	if (argc < 5)
		die("usage: img_edit DIR path|data-file|mode|fd|sockopt ARGS");
	if (!strcmp(argv[2], "sockopt") && argc != 6)
		die("usage: img_edit DIR sockopt KIND OPT VALUE");
	dir = argv[1];
	if (!strcmp(argv[2], "fd")) {
		if (argc != 6)
			die("usage: img_edit DIR fd PID OLD NEW");
		snprintf(name, sizeof(name), "fds-%s.img", argv[3]);
		Capcr__FdTable *t =
			unpack_file(name, &capcr__fd_table__descriptor);
		for (size_t i = 0; i < t->n_fds; i++)
			if (t->fds[i]->fd == atoi(argv[4])) {
				t->fds[i]->fd = atoi(argv[5]);
				changed++;
			}
		store(name, &t->base, &size, &hash);
	} else {
		snprintf(name, sizeof(name), "files.img");
		Capcr__Files *fs =
			unpack_file(name, &capcr__files__descriptor);
		for (size_t i = 0; i < fs->n_files; i++) {
			Capcr__File *f = fs->files[i];
			if (!strcmp(argv[2], "path") && f->path &&
			    !strcmp(f->path, argv[3])) {
				f->path = argv[4];
				changed++;
			} else if (!strcmp(argv[2], "data-file") &&
				   f->data_file &&
				   !strcmp(f->data_file, argv[3])) {
				f->data_file = argv[4];
				changed++;
			} else if (!strcmp(argv[2], "sockopt") &&
				   sock_kind(f, argv[3])) {
				set_sockopt(f, argv[4], argv[5]);
				changed++;
			} else if (!strcmp(argv[2], "mode") && f->path &&
				   ends_with(f->path, argv[3])) {
				f->mode = (f->mode & 0170000) |
					  (uint32_t)strtoul(argv[4], NULL, 8);
				f->has_mode = 1;
				changed++;
			}
		}
		store(name, &fs->base, &size, &hash);
	}
	reinventory(name, size, hash);
	printf("%d changed\n", changed);
	return changed ? 0 : 1;
}
