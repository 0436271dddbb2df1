/* SPDX-License-Identifier: MIT */
/*
 * UDP sockets, IPv4 and IPv6: unbound, bound, connected, with their
 * options (sockopts.c) and the datagrams waiting in their receive queue.
 *
 * A connected UDP socket's peer is only an address: it needs no peer
 * process, and is connected to it again at restore.  A socket connect
 * bound implicitly keeps the port it was given: every socket with a port
 * is bound to its own address again.
 *
 * The queue.  CRIU drops it (a UDP datagram may be lost anyway); capcr
 * keeps it, since a program that was sent a request just before the
 * checkpoint would otherwise never answer it.  At the dump it is read
 * without being consumed: MSG_PEEK alone shows the first datagram only, so
 * the peek walks the queue with the socket's peek offset (SO_PEEK_OFF,
 * which UDP supports and which is put back after): each peek of a whole
 * datagram moves the offset past it.  Each datagram goes to sock-INO.img
 * with its sender's address, in the Unix sockets' record format.
 *
 * At restore, once the socket is bound and before it is connected (a
 * connected socket takes datagrams from its peer only), each datagram is
 * sent to it again, in order, from its sender's address: as root (an
 * image root owns), through a raw socket with the UDP header made here,
 * so the sender's address and port come back whatever holds them now
 * (often the process's own other socket); for an image another user
 * owns, capcr sends no packet it made itself: each comes from a UDP
 * socket made with that user's rights, bound to the sender's address when
 * that is free, from another address otherwise (said as info).  Each is
 * awaited in the receive queue before the next is sent (the kernel's
 * count of the queue's memory, SO_MEMINFO), so their order is kept; the
 * receive buffer is raised meanwhile.  A datagram that does not arrive
 * (a socket bound to an address no loopback packet reaches) is dropped
 * with a warning, as the network might have.  The socket's filter comes
 * after them; its device binding too when it has a queue.
 */
#define _GNU_SOURCE
#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "sockopts.h"
#include "unix_sock.h"

/* The largest UDP payload (IPv6 without jumbograms). */
#define UDP_MAX 65535u

static int port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

/* The datagrams waiting on copy, into sock-INO.img. */
static int save_queue(struct file_dump_env *env, const struct file_dump_in *in,
		      Capcr__File *f)
{
	static char buf[UDP_MAX + 1];
	int fd = in->copy, orig = -1, zero = 0, r = 0, opened = 0;
	socklen_t l = sizeof(orig);
	struct image_data qd;
	char name[64];
	uint64_t total = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &orig, &l) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return FILE_FAIL(env, "cannot walk the queue of descriptor %d "
				      "of process %d (%s): SO_PEEK_OFF: %s",
				 in->fd, in->pid, f->path, strerror(errno));
	if (orig >= 0) {
		f->has_socket_peek_off = 1;
		f->socket_peek_off = orig;
	}
	snprintf(name, sizeof(name), "sock-%llu.img",
		 (unsigned long long)f->socket_ino);
	for (;;) {
		struct sockaddr_storage from;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr m = { .msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1 };
		memset(&from, 0, sizeof(from));
		ssize_t n = recvmsg(fd, &m, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			r = FILE_FAIL(env, "cannot read the queue of descriptor "
					   "%d of process %d (%s): %s",
				      in->fd, in->pid, f->path, strerror(errno));
			break;
		}
		if ((size_t)n > UDP_MAX) {
			r = FILE_FAIL(env, "descriptor %d of process %d (%s) "
					   "has a datagram of %zd bytes queued "
					   "(UDP_GRO?); capcr keeps those of "
					   "at most %u",
				      in->fd, in->pid, f->path, n, UDP_MAX);
			break;
		}
		if (!opened) {
			int e = image_data_open(env->img, &qd, name);
			if (e < 0) {
				r = FILE_FAIL(env, "cannot create %s: %s", name,
					      strerror(-e));
				break;
			}
			opened = 1;
		}
		if (qrec_put_head(&qd, (uint32_t)n, &from, m.msg_namelen,
				  sizeof(from)) < 0 ||
		    image_data_write(&qd, buf, (size_t)n) < 0) {
			r = FILE_FAIL(env, "cannot write %s", name);
			break;
		}
		total += (uint64_t)n;
	}
	setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &orig, sizeof(orig));
	if (opened && image_data_close(env->img, &qd) < 0 && !r)
		r = FILE_FAIL(env, "cannot sync %s", name);
	if (r < 0)
		return r;
	if (opened) {
		f->socket_queue_file = arena_strdup(env->arena, name);
		f->has_data_size = 1;
		f->data_size = total;
	}
	return 0;
}

int udp_dump(struct file_dump_env *env, const struct file_dump_in *in,
	     Capcr__File *f, const struct sockaddr_storage *self,
	     socklen_t selflen)
{
	struct sockaddr_storage ps;
	socklen_t pl = sizeof(ps);
	char what[400];

	snprintf(what, sizeof(what), "the UDP socket %s at descriptor %d of "
				     "process %d",
		 f->path, in->fd, in->pid);
	if (port_of(self)) {
		f->has_socket_addr = 1;
		f->socket_addr.len = selflen;
		f->socket_addr.data = arena_memdup(env->arena, self, selflen);
	}
	memset(&ps, 0, sizeof(ps));
	if (getpeername(in->copy, (struct sockaddr *)&ps, &pl) == 0) {
		f->has_socket_peer_addr = 1;
		f->socket_peer_addr.len = pl;
		f->socket_peer_addr.data = arena_memdup(env->arena, &ps, pl);
	} else if (errno != ENOTCONN) {
		return FILE_FAIL(env, "cannot tell whether %s is connected "
				      "(getpeername): %s",
				 what, strerror(errno));
	}
	if (sockopts_dump(in->copy, f->socket_domain, f->socket_type,
			  f->socket_protocol, 0, env->arena, &f->sockopts, what,
			  env->why, env->whylen) < 0)
		return -1;
	/* Only a socket with a port can have received anything. */
	return f->has_socket_addr ? save_queue(env, in, f) : 0;
}

/* ---- restore ---- */

struct filler {
	const Capcr__File *f;
	uid_t owner;
	gid_t group;
	int raw4, raw6;       /* root: raw sockets, made when first needed */
	int dst;              /* the restored socket */
	struct sockaddr_storage to; /* where its datagrams go */
	unsigned told;        /* non-root senders said as info once */
};

static uint32_t sum16(const void *p, size_t n, uint32_t s)
{
	const uint8_t *c = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(c[i] << 8 | c[i + 1]);
	if (n & 1)
		s += (uint32_t)c[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	s = ~s & 0xffff;
	return (uint16_t)(s ? s : 0xffff);
}

/* The restored socket's address as a destination: a wildcard address is
 * reached through the loopback.  v4: for an IPv4 sender (a dual-stack
 * socket's v4-mapped one). */
static void dest_addr(const struct sockaddr_storage *to, int v4, void *a4,
		      void *a6)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
	struct in_addr lo4 = { htonl(INADDR_LOOPBACK) };

	memcpy(a4, &lo4, 4);
	memcpy(a6, &in6addr_loopback, 16);
	if (to->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)to;
		if (s->sin_addr.s_addr != htonl(INADDR_ANY))
			memcpy(a4, &s->sin_addr, 4);
	} else if (to->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)to;
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			if (v4)
				memcpy(a4, s->sin6_addr.s6_addr + 12, 4);
		} else if (memcmp(&s->sin6_addr, &any6, 16)) {
			memcpy(a6, &s->sin6_addr, 16);
		}
	}
}

/* Root: the datagram as its sender sent it, through a raw socket. */
static int send_raw(struct filler *F, const struct sockaddr_storage *from,
		    const void *data, size_t len)
{
	static uint8_t pkt[40 + 8 + UDP_MAX];
	uint8_t d4[4], d6[16], s4[4], s6[16];
	uint16_t sport, dport = htons((uint16_t)port_of(&F->to));
	int v4;

	if (from->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)from;
		v4 = 1;
		memcpy(s4, &s->sin_addr, 4);
		sport = s->sin_port;
	} else if (from->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)from;
		v4 = IN6_IS_ADDR_V4MAPPED(&s->sin6_addr);
		memcpy(s4, s->sin6_addr.s6_addr + 12, 4);
		memcpy(s6, &s->sin6_addr, 16);
		sport = s->sin6_port;
	} else {
		return errno = EAFNOSUPPORT, -1;
	}
	dest_addr(&F->to, v4, d4, d6);
	size_t ul = 8 + len, hl = v4 ? 20 : 40;
	if (ul > 0xffff || (!v4 && ul > 0xffff - 40) ||
	    (v4 && hl + ul > 0xffff))
		return errno = EMSGSIZE, -1;
	uint8_t *u = pkt + hl;
	memset(pkt, 0, hl + 8);
	memcpy(u + 8, data, len);
	memcpy(u, &sport, 2);
	memcpy(u + 2, &dport, 2);
	u[4] = (uint8_t)(ul >> 8);
	u[5] = (uint8_t)ul;
	uint8_t ph[40];
	uint32_t s;
	if (v4) {
		memcpy(ph, s4, 4);
		memcpy(ph + 4, d4, 4);
		ph[8] = 0;
		ph[9] = IPPROTO_UDP;
		ph[10] = (uint8_t)(ul >> 8);
		ph[11] = (uint8_t)ul;
		s = sum16(ph, 12, 0);
	} else {
		memcpy(ph, s6, 16);
		memcpy(ph + 16, d6, 16);
		ph[32] = 0;
		ph[33] = 0;
		ph[34] = (uint8_t)(ul >> 8);
		ph[35] = (uint8_t)ul;
		ph[36] = ph[37] = ph[38] = 0;
		ph[39] = IPPROTO_UDP;
		s = sum16(ph, 40, 0);
	}
	uint16_t ck = htons(fold(sum16(u, ul, s)));
	memcpy(u + 6, &ck, 2);
	if (v4) {
		/* version, IHL; the kernel fills in the length, the id and
		 * the header checksum */
		pkt[0] = 0x45;
		pkt[8] = 64; /* TTL */
		pkt[9] = IPPROTO_UDP;
		memcpy(pkt + 12, s4, 4);
		memcpy(pkt + 16, d4, 4);
		pkt[2] = (uint8_t)((hl + ul) >> 8);
		pkt[3] = (uint8_t)(hl + ul);
		if (F->raw4 < 0 &&
		    (F->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC,
				      IPPROTO_RAW)) < 0)
			return -1;
		struct sockaddr_in dst = { .sin_family = AF_INET };
		memcpy(&dst.sin_addr, d4, 4);
		return sendto(F->raw4, pkt, hl + ul, 0,
			      (struct sockaddr *)&dst, sizeof(dst)) < 0
			       ? -1
			       : 0;
	}
	pkt[0] = 0x60;
	pkt[4] = (uint8_t)(ul >> 8);
	pkt[5] = (uint8_t)ul;
	pkt[6] = IPPROTO_UDP;
	pkt[7] = 64; /* hop limit */
	memcpy(pkt + 8, s6, 16);
	memcpy(pkt + 24, d6, 16);
	if (F->raw6 < 0 &&
	    (F->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC,
			      IPPROTO_RAW)) < 0)
		return -1;
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6 };
	memcpy(&dst.sin6_addr, d6, 16);
	return sendto(F->raw6, pkt, hl + ul, 0, (struct sockaddr *)&dst,
		      sizeof(dst)) < 0
		       ? -1
		       : 0;
}

/* Another user's image: from a UDP socket of that user's, bound to the
 * sender's address when it is free. */
static int send_as_owner(struct filler *F, const struct sockaddr_storage *from,
			 socklen_t fl, const void *data, size_t len)
{
	struct sockopts_rights rt;
	struct sockaddr_storage dst = F->to;
	uint8_t d4[4], d6[16];
	int r = -1, e = 0;

	if (sockopts_rights_drop(F->owner, F->group, &rt) < 0)
		return -1;
	int s = socket(F->f->socket_domain, SOCK_DGRAM | SOCK_CLOEXEC,
		       IPPROTO_UDP);
	if (s >= 0) {
		if (from->ss_family != F->f->socket_domain ||
		    bind(s, (const struct sockaddr *)from, fl) < 0) {
			char who[300];
			if (!F->told++) {
				socket_describe(from, fl, who, sizeof(who));
				capcr_info("datagrams queued on %s from %s "
					   "come back from another address: "
					   "that one is taken",
					   F->f->path, who);
			}
		}
		int v4 = F->to.ss_family == AF_INET;
		dest_addr(&F->to, v4, d4, d6);
		if (dst.ss_family == AF_INET)
			memcpy(&((struct sockaddr_in *)&dst)->sin_addr, d4, 4);
		else
			memcpy(&((struct sockaddr_in6 *)&dst)->sin6_addr, d6,
			       16);
		r = sendto(s, data, len, MSG_DONTWAIT,
			   (const struct sockaddr *)&dst,
			   dst.ss_family == AF_INET
				   ? sizeof(struct sockaddr_in)
				   : sizeof(struct sockaddr_in6)) < 0
			    ? -1
			    : 0;
		e = errno;
		close(s);
	} else {
		e = errno;
	}
	sockopts_rights_back(&rt);
	errno = e;
	return r;
}

static unsigned rmem(int fd)
{
	uint32_t mi[SK_MEMINFO_VARS];
	socklen_t l = sizeof(mi);

	memset(mi, 0, sizeof(mi));
	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &l) < 0)
		return 0;
	return mi[SK_MEMINFO_RMEM_ALLOC];
}

/* Wait (up to a second) for the queue's memory to move from before. */
static int arrived(int fd, unsigned before)
{
	for (int i = 0; i < 1000; i++) {
		if (rmem(fd) != before)
			return 1;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int fill(struct file_restore_env *env, const Capcr__File *f, int fd)
{
	struct filler F = { .f = f, .owner = env->img->owner_uid,
			    .group = env->img->owner_gid, .raw4 = -1,
			    .raw6 = -1, .dst = fd };
	struct sockaddr_storage from;
	socklen_t tl = sizeof(F.to);
	int src, r = 0, old = 0, big = INT_MAX / 2, k;
	socklen_t ol = sizeof(old);
	unsigned n = 0, lost = 0;

	if (getsockname(fd, (struct sockaddr *)&F.to, &tl) < 0)
		return FILE_FAIL(env, "getsockname of %s: %s", f->path,
				 strerror(errno));
	src = image_open_data(env->img, f->socket_queue_file);
	if (src < 0)
		return FILE_FAIL(env, "%s", image_error());
	/* Room for all of them, whatever its own size is; it is put back
	 * after (the size it has now: the image's, set with the owner's
	 * rights, or the default). */
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &old, &ol);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	for (;;) {
		struct qrec h;
		char *data;
		int got = qrec_next(src, &h, &from, sizeof(from), UDP_MAX,
				    &data);
		if (got == 0)
			break;
		if (got < 0) {
			r = FILE_FAIL(env, "%s is damaged", f->socket_queue_file);
			break;
		}
		n++;
		unsigned before = rmem(fd);
		if (F.owner == 0)
			k = send_raw(&F, &from, data, h.len);
		else
			k = send_as_owner(&F, &from, h.namelen, data, h.len);
		if (k < 0 || !arrived(fd, before)) {
			char who[300];
			socket_describe(&from, h.namelen, who, sizeof(who));
			capcr_warn("datagram %u queued on %s (%u bytes from "
				   "%s) could not be put back: %s",
				   n, f->path, h.len, who,
				   k < 0 ? strerror(errno)
					 : "it did not arrive; dropped");
			lost++;
		}
		free(data);
	}
	close(src);
	if (F.raw4 >= 0)
		close(F.raw4);
	if (F.raw6 >= 0)
		close(F.raw6);
	if (old > 0) {
		int v = old / 2;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v));
	}
	if (!r && lost)
		capcr_info("%s: %u of %u queued datagrams put back", f->path,
			   n - lost, n);
	return r;
}

int udp_restore(struct file_restore_env *env, const Capcr__File *f)
{
	struct sockopts_rights rt;
	uid_t owner = env->img->owner_uid;
	const Capcr__SockOpts *o = f->sockopts;
	unsigned dev = f->socket_queue_file ? SOCKOPTS_DEVICE_LATE : 0;
	char what[300];
	int fd, e;

	snprintf(what, sizeof(what), "the UDP socket %s",
		 f->path ? f->path : "?");
	/* Made, bound and connected with the rights of the image's owner:
	 * a port below 1024, another user's SO_REUSEPORT group are the
	 * kernel's to refuse as they were to that user. */
	if (sockopts_rights_drop(owner, env->img->owner_gid, &rt) < 0)
		return FILE_FAIL(env, "cannot take the rights of uid %u to "
				      "make %s: %s",
				 (unsigned)owner, what, strerror(errno));
	fd = socket(f->socket_domain, SOCK_DGRAM | SOCK_CLOEXEC,
		    f->socket_protocol);
	if (fd < 0) {
		e = errno;
		sockopts_rights_back(&rt);
		return FILE_FAIL(env, "cannot make %s again: socket: %s", what,
				 strerror(e));
	}
	if (sockopts_restore(fd, o, SOCKOPTS_BEFORE_BIND | dev, owner, what,
			     env->why, env->whylen) < 0)
		goto fail;
	if (f->has_socket_addr &&
	    bind(fd, (const struct sockaddr *)f->socket_addr.data,
		 (socklen_t)f->socket_addr.len) < 0) {
		e = errno;
		FILE_FAIL(env, "cannot bind %s again: %s", what, strerror(e));
		goto fail;
	}
	sockopts_rights_back(&rt);
	/* Before the connect: once connected, it takes its peer's only. */
	if (f->socket_queue_file && fill(env, f, fd) < 0) {
		close(fd);
		return -1;
	}
	if (sockopts_rights_drop(owner, env->img->owner_gid, &rt) < 0) {
		e = errno;
		close(fd);
		return FILE_FAIL(env, "cannot take the rights of uid %u to "
				      "make %s: %s",
				 (unsigned)owner, what, strerror(e));
	}
	if (f->has_socket_peer_addr &&
	    connect(fd, (const struct sockaddr *)f->socket_peer_addr.data,
		    (socklen_t)f->socket_peer_addr.len) < 0) {
		char peer[300];
		struct sockaddr_storage ps;
		e = errno;
		memset(&ps, 0, sizeof(ps));
		memcpy(&ps, f->socket_peer_addr.data, f->socket_peer_addr.len);
		socket_describe(&ps, (socklen_t)f->socket_peer_addr.len, peer,
				sizeof(peer));
		FILE_FAIL(env, "cannot connect %s to %s again: %s", what, peer,
			  strerror(e));
		goto fail;
	}
	if (sockopts_restore(fd, o, SOCKOPTS_AFTER_CONNECT | SOCKOPTS_FILTER |
					    dev,
			     owner, what, env->why, env->whylen) < 0)
		goto fail;
	sockopts_rights_back(&rt);
	if (f->has_socket_peek_off) {
		int v = f->socket_peek_off;
		setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	}
	return fd;
fail:
	sockopts_rights_back(&rt);
	close(fd);
	return -1;
}
