/* SPDX-License-Identifier: MIT */
/* UDP sockets, IPv4 and IPv6 (udp.c): socket.c hands them over. */
#ifndef CAPCR_UDP_H
#define CAPCR_UDP_H

#include <sys/socket.h>

#include "files.h"

/* A UDP socket, once socket.c has filled its domain, type, protocol,
 * inode and path; self is its own address (getsockname). */
int udp_dump(struct file_dump_env *env, const struct file_dump_in *in,
	     Capcr__File *f, const struct sockaddr_storage *self,
	     socklen_t selflen);
int udp_restore(struct file_restore_env *env, const Capcr__File *f);

#endif
