/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ext_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capcr/capinfo.h"

#define HINT                                                                 \
	"; the application may allow capcr to connect it again at restore "  \
	"(capcr_allow_reconnect), or dump with --external-sockets=closed; "  \
	"a TCP connection is kept as it is with --tcp-established"

int ext_conn_dump(struct file_dump_env *env, const struct file_dump_in *in,
		  Capcr__File *f, const char **hint)
{
	const struct capcr_cap_entry *e = in->cap;

	*hint = HINT;
	if (e && (e->state & CAPCR_ENTRY_RECONNECT) &&
	    (e->state & CAPCR_ENTRY_CONNECTED) && e->peer_len &&
	    e->peer_len <= sizeof(e->peer_addr)) {
		f->socket_conn = CONN_RECONNECT;
		f->has_socket_conn = 1;
		f->has_socket_peer_addr = 1;
		f->socket_peer_addr.len = e->peer_len;
		f->socket_peer_addr.data =
			arena_memdup(env->arena, e->peer_addr, e->peer_len);
		return 1;
	}
	if (env->ext_closed) {
		f->socket_conn = CONN_EXT_CLOSED;
		f->has_socket_conn = 1;
		return 1;
	}
	return 0;
}

int ext_conn_restore(struct file_restore_env *env, const Capcr__File *f)
{
	int type = f->socket_type;

	if (f->socket_conn == CONN_EXT_CLOSED) {
		/* A connection whose peer has gone. */
		int sv[2];
		if (type == SOCK_DGRAM)
			return socket(f->socket_domain, type | SOCK_CLOEXEC,
				      f->socket_protocol);
		if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
			return FILE_FAIL(env, "socketpair: %s", strerror(errno));
		close(sv[1]);
		return sv[0];
	}
	int fd = socket(f->socket_domain, type | SOCK_CLOEXEC,
			f->socket_protocol);
	if (fd < 0)
		return FILE_FAIL(env, "socket: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)f->socket_peer_addr.data,
		    (socklen_t)f->socket_peer_addr.len) < 0) {
		int e = errno;
		close(fd);
		return FILE_FAIL(env,
				 "cannot connect %s again to its peer, as the "
				 "application allowed: %s",
				 f->path ? f->path : "a socket", strerror(e));
	}
	return fd;
}
