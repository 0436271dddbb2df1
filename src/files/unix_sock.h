/* SPDX-License-Identifier: MIT */
/* Sockets: what socket.c and unix_sock.c share. */
#ifndef CAPCR_UNIX_SOCK_H
#define CAPCR_UNIX_SOCK_H

#include <stdint.h>
#include <sys/socket.h>

#include "files.h"

/* A socket address for people: "unix:/path", "unix:@name", "1.2.3.4:80". */
void socket_describe(const struct sockaddr_storage *ss, socklen_t len,
		     char *out, size_t n);

/* One record of a datagram or seqpacket queue in the image file (Unix and
 * UDP sockets); the sender's address (namelen bytes) and the data (len
 * bytes) follow. */
struct qrec {
	uint32_t len;
	uint32_t namelen;
};
/* Write a record's head and sender address (none when namelen is more
 * than from_max); the len bytes of data are the caller's to write. */
int qrec_put_head(struct image_data *d, uint32_t len, const void *from,
		  socklen_t namelen, size_t from_max);
/* The next record of src: 1 (the address into from, zeroed first; the
 * data into *data, malloc'd), 0 at the end, -1 for a damaged file (a
 * record longer than len_max, an address longer than from_max). */
int qrec_next(int src, struct qrec *h, void *from, size_t from_max,
	      uint32_t len_max, char **data);

/* A Unix socket, once socket.c has filled its domain, type, protocol,
 * inode, own address (when it has one) and path. */
int unix_sock_dump(struct file_dump_env *env, const struct file_dump_in *in,
		   Capcr__File *f);
int unix_sock_restore(struct file_restore_env *env, const Capcr__File *f);
/* Every File made: close what none took, free the table. */
void unix_sock_restore_end(struct file_restore_env *env);

#endif
