/* SPDX-License-Identifier: MIT */
/* Sockets: what socket.c and unix_sock.c share. */
#ifndef CAPCR_UNIX_SOCK_H
#define CAPCR_UNIX_SOCK_H

#include <sys/socket.h>

#include "files.h"

/* A socket address for people: "unix:/path", "unix:@name", "1.2.3.4:80". */
void socket_describe(const struct sockaddr_storage *ss, socklen_t len,
		     char *out, size_t n);

/* A Unix socket, once socket.c has filled its domain, type, protocol,
 * inode, own address (when it has one) and path. */
int unix_sock_dump(struct file_dump_env *env, const struct file_dump_in *in,
		   Capcr__File *f);
int unix_sock_restore(struct file_restore_env *env, const Capcr__File *f);
/* Every File made: close what none took, free the table. */
void unix_sock_restore_end(struct file_restore_env *env);

#endif
