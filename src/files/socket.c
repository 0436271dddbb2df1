/* SPDX-License-Identifier: MIT */
/*
 * Sockets: the table's entry for every socket, and the Internet ones that
 * are not connected to anything: unbound, bound, or listening, of the IPv4
 * and IPv6 families.  Restored by making the socket again with its domain,
 * type and protocol, binding it to the same address and listening with the
 * same backlog.  Their waiting connections are not kept, and connected
 * ones, whose peer is outside, are refused with a message naming the
 * socket and its peer.  Unix sockets, connected ones included, are in
 * unix_sock.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ext_conn.h"
#include "files.h"
#include "sockopts.h"
#include "udp.h"
#include "unix_sock.h"

static int match(const struct file_dump_in *in)
{
	return S_ISSOCK(in->st.st_mode);
}

void socket_describe(const struct sockaddr_storage *ss, socklen_t len,
		     char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_UNIX) {
		const struct sockaddr_un *u = (const void *)ss;
		size_t pl = len > offsetof(struct sockaddr_un, sun_path)
				    ? len - offsetof(struct sockaddr_un, sun_path)
				    : 0;
		if (!pl)
			snprintf(out, n, "an unnamed Unix socket");
		else if (!u->sun_path[0])
			snprintf(out, n, "unix:@%.*s", (int)pl - 1,
				 u->sun_path + 1);
		else
			snprintf(out, n, "unix:%s", u->sun_path);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, ntohs(s->sin6_port));
	} else {
		snprintf(out, n, "family %d", ss->ss_family);
	}
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	int domain = 0, type = 0, proto = 0, listening = 0;
	socklen_t l = sizeof(int);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char what[256], peer[256];

	static const struct {
		int opt;
		const char *name;
	} opts[] = { { SO_DOMAIN, "SO_DOMAIN" },
		     { SO_TYPE, "SO_TYPE" },
		     { SO_PROTOCOL, "SO_PROTOCOL" },
		     { SO_ACCEPTCONN, "SO_ACCEPTCONN" } };
	int *vals[] = { &domain, &type, &proto, &listening };
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		l = sizeof(int);
		if (getsockopt(in->copy, SOL_SOCKET, opts[i].opt, vals[i], &l) <
		    0)
			return FILE_FAIL(env, "cannot read %s of the socket at "
					      "descriptor %d of process %d: %s",
					 opts[i].name, in->fd, in->pid,
					 strerror(errno));
	}
	if (domain != AF_UNIX && domain != AF_INET && domain != AF_INET6)
		return FILE_FAIL(env, "descriptor %d is a socket of family %d, "
				      "which capcr cannot checkpoint yet",
				 in->fd, domain);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(in->copy, (struct sockaddr *)&ss, &sl) < 0)
		return FILE_FAIL(env, "cannot read the address of the socket at "
				      "descriptor %d of process %d "
				      "(getsockname): %s",
				 in->fd, in->pid, strerror(errno));
	socket_describe(&ss, sl, what, sizeof(what));
	f->has_socket_domain = f->has_socket_type = f->has_socket_protocol = 1;
	f->socket_domain = domain;
	f->socket_type = type;
	f->socket_protocol = proto;
	f->has_socket_ino = 1;
	f->socket_ino = (uint64_t)in->st.st_ino;
	f->path = arena_strdup(env->arena, what);
	if (domain == AF_UNIX) {
		if (sl > sizeof(sa_family_t)) {
			f->has_socket_addr = 1;
			f->socket_addr.len = sl;
			f->socket_addr.data = arena_memdup(env->arena, &ss, sl);
		}
		return unix_sock_dump(env, in, f);
	}
	if (type == SOCK_DGRAM && proto == IPPROTO_UDP)
		return udp_dump(env, in, f, &ss, sl);
	struct sockaddr_storage ps;
	socklen_t pl = sizeof(ps);
	if (getpeername(in->copy, (struct sockaddr *)&ps, &pl) == 0) {
		const char *hint;
		if (ext_conn_dump(env, in, f, &hint) > 0)
			return 0;
		socket_describe(&ps, pl, peer, sizeof(peer));
		return FILE_FAIL(env,
				 "descriptor %d of process %d is a connected "
				 "socket (%s, peer %s); its peer is outside the "
				 "checkpointed processes%s",
				 in->fd, in->pid, what, peer, hint);
	}
	/* Bound? An unbound inet socket reports port 0. */
	int bound = (domain == AF_INET &&
		     ((struct sockaddr_in *)&ss)->sin_port) ||
		    (domain == AF_INET6 &&
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (bound) {
		f->has_socket_addr = 1;
		f->socket_addr.len = sl;
		f->socket_addr.data = arena_memdup(env->arena, &ss, sl);
	}
	if (listening) {
		uint64_t backlog = 128;
		f->has_socket_backlog = 1;
		f->socket_backlog = (int32_t)backlog;
	}
	char desc[400];
	snprintf(desc, sizeof(desc), "the socket %s at descriptor %d of "
				     "process %d",
		 what, in->fd, in->pid);
	return sockopts_dump(in->copy, domain, type, proto, 0, env->arena,
			     &f->sockopts, desc, env->why, env->whylen);
}

/* An Internet socket that is not connected: made, given its options,
 * bound and listening, all with the rights of the image's owner (a port
 * below 1024, SO_MARK and the like are the kernel's to refuse as they
 * were to that user; root's image keeps root's). */
static int make_inet(struct file_restore_env *env, const Capcr__File *f)
{
	const Capcr__SockOpts *o = f->sockopts;
	uid_t owner = env->img->owner_uid;
	int fd, one = 1;
	char what[300];

	snprintf(what, sizeof(what), "the socket %s", f->path ? f->path : "?");
	fd = socket(f->socket_domain, f->socket_type | SOCK_CLOEXEC,
		    f->socket_protocol);
	if (fd < 0)
		return FILE_FAIL(env, "socket: %s", strerror(errno));
	if (sockopts_restore(fd, o, SOCKOPTS_BEFORE_BIND, owner, what,
			     env->why, env->whylen) < 0)
		goto fail;
	if (f->has_socket_addr) {
		/* The address may still be in TIME_WAIT of the dumped
		 * process's connections: SO_REUSEADDR for the bind and the
		 * listen; then its own value, when the image says it. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)f->socket_addr.data,
			 (socklen_t)f->socket_addr.len) < 0) {
			FILE_FAIL(env, "cannot bind a socket to %s again: %s",
				  f->path, strerror(errno));
			goto fail;
		}
	}
	if (f->has_socket_backlog && listen(fd, f->socket_backlog) < 0) {
		FILE_FAIL(env, "cannot listen on %s again: %s", f->path,
			  strerror(errno));
		goto fail;
	}
	if (o && f->has_socket_addr) {
		int v = o->has_reuseaddr && o->reuseaddr;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v));
	}
	if (sockopts_restore(fd, o, SOCKOPTS_AFTER_CONNECT | SOCKOPTS_FILTER,
			     owner, what, env->why, env->whylen) < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	struct sockopts_rights rt;
	int fd, e;

	if (f->has_socket_conn && f->socket_conn >= CONN_RECONNECT)
		return ext_conn_restore(env, f);
	if (f->socket_domain == AF_UNIX)
		return unix_sock_restore(env, f);
	if (f->socket_type == SOCK_DGRAM && f->socket_protocol == IPPROTO_UDP)
		return udp_restore(env, f);
	if (sockopts_rights_drop(env->img->owner_uid, env->img->owner_gid,
				 &rt) < 0)
		return FILE_FAIL(env, "cannot take the rights of uid %u to "
				      "make the socket %s: %s",
				 (unsigned)env->img->owner_uid, f->path,
				 strerror(errno));
	fd = make_inet(env, f);
	e = errno;
	sockopts_rights_back(&rt);
	errno = e;
	return fd;
}

const struct file_ops file_socket = {
	.kind = CAPCR__FILE_KIND__FILE_SOCKET,
	.name = "socket",
	.match = match,
	.dump = dump,
	.restore = restore,
};
