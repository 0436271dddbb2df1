/* SPDX-License-Identifier: MIT */
/* Wrappers: sockets, and descriptors that arrive over them (SCM_RIGHTS). */
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "wrap.h"

#define SOCK_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC)

static void copy_addr(uint8_t *dst, uint32_t *dlen, const void *src,
		      socklen_t len)
{
	if (!src)
		return;
	if (len > CAPCR_ADDR_MAX)
		len = CAPCR_ADDR_MAX;
	memcpy(dst, src, len);
	*dlen = len;
}

WRAP int socket(int domain, int type, int protocol)
{
	int fd = RT_REAL(socket)(domain, type, protocol);
	struct capcr_cap_entry *e;

	if (fd < 0 || !rt_active())
		return fd;
	e = rt_new(fd, CAPCR_KIND_SOCKET, CAPCR_ORIGIN_SOCKET);
	if (e) {
		e->domain = domain;
		e->type = type & ~SOCK_FLAGS;
		e->flags = type & SOCK_FLAGS;
		e->protocol = protocol;
		rt_done(e, 0);
	}
	return fd;
}

WRAP int socketpair(int domain, int type, int protocol, int sv[2])
{
	int r = RT_REAL(socketpair)(domain, type, protocol, sv);

	if (r == 0)
		rt_record_pair(sv, CAPCR_KIND_SOCKET, CAPCR_ORIGIN_SOCKETPAIR,
			       type & SOCK_FLAGS, domain, type & ~SOCK_FLAGS,
			       protocol);
	return r;
}

static int record_accept(int lfd, int fd, const void *peer, socklen_t plen,
			 int flags)
{
	struct capcr_cap_entry *e, *l;

	if (fd < 0 || !rt_active())
		return fd;
	e = rt_new(fd, CAPCR_KIND_SOCKET, CAPCR_ORIGIN_ACCEPT);
	if (!e)
		return fd;
	l = rt_entry(lfd, 0);
	if (l && l->badge) {
		e->domain = l->domain;
		e->type = l->type;
		e->protocol = l->protocol;
		e->peer_badge = l->badge;
		memcpy(e->local_addr, l->local_addr, sizeof(e->local_addr));
		e->local_len = l->local_len;
		e->state |= l->state & CAPCR_ENTRY_BOUND;
	}
	e->flags = flags;
	e->arg[0] = lfd;
	copy_addr(e->peer_addr, &e->peer_len, peer, plen);
	e->state |= CAPCR_ENTRY_CONNECTED;
	rt_done(e, 0);
	return fd;
}

static int accept_common(int lfd, struct sockaddr *addr, socklen_t *len,
			 int flags, int four)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	if (!rt_active())
		return four ? RT_REAL(accept4)(lfd, addr, len, flags)
			    : RT_REAL(accept)(lfd, addr, len);
	/* Ask for the peer into our own buffer, then hand the caller its
	 * part, as the kernel would have. */
	fd = four ? RT_REAL(accept4)(lfd, (struct sockaddr *)&ss, &sl, flags)
		  : RT_REAL(accept)(lfd, (struct sockaddr *)&ss, &sl);
	if (fd >= 0 && addr && len) {
		memcpy(addr, &ss, *len < sl ? *len : sl);
		*len = sl;
	}
	return record_accept(lfd, fd, &ss, sl, flags);
}

WRAP int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return accept_common(fd, addr, len, 0, 0);
}

WRAP int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return accept_common(fd, addr, len, flags, 1);
}

/* connect, bind, listen change a published entry in place. */
static void note_addr(int fd, const struct sockaddr *addr, socklen_t len,
		      unsigned state)
{
	struct capcr_cap_entry *e;

	if (!rt_active())
		return;
	e = rt_entry(fd, 0);
	if (!e || !e->badge)
		return;
	rt_modify_begin();
	if (state == CAPCR_ENTRY_CONNECTED)
		copy_addr(e->peer_addr, &e->peer_len, addr, len);
	else if (state == CAPCR_ENTRY_BOUND)
		copy_addr(e->local_addr, &e->local_len, addr, len);
	e->state |= state;
	rt_modify_end();
}

WRAP int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int r = RT_REAL(connect)(fd, addr, len);

	if (r == 0 || errno == EINPROGRESS) {
		int saved = errno;
		note_addr(fd, addr, len, CAPCR_ENTRY_CONNECTED);
		errno = saved;
	}
	return r;
}

WRAP int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	int r = RT_REAL(bind)(fd, addr, len);

	if (r == 0 && rt_active()) {
		/* What the kernel chose (port 0 means "any"), not what was
		 * asked for. */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (RT_SYS3(SYS_getsockname, fd, &ss, &sl) == 0)
			note_addr(fd, (struct sockaddr *)&ss, sl,
				  CAPCR_ENTRY_BOUND);
		else
			note_addr(fd, addr, len, CAPCR_ENTRY_BOUND);
	}
	return r;
}

WRAP int listen(int fd, int backlog)
{
	int r = RT_REAL(listen)(fd, backlog);

	if (r == 0)
		note_addr(fd, NULL, 0, CAPCR_ENTRY_LISTENING);
	return r;
}

static void record_received(int sock, struct msghdr *mh, int flags)
{
	if (!mh->msg_control || mh->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			struct capcr_cap_entry *e =
				rt_new(fd, CAPCR_KIND_UNKNOWN,
				       CAPCR_ORIGIN_RECEIVED);
			if (!e)
				continue;
			e->kind = (uint16_t)rt_kind_of_fd(fd, e->path,
							  sizeof(e->path));
			e->flags = flags & MSG_CMSG_CLOEXEC ? SOCK_CLOEXEC : 0;
			e->arg[0] = sock;
			struct capcr_cap_entry *s = rt_entry(sock, 0);
			if (s && s->badge)
				e->peer_badge = s->badge;
			rt_done(e, 0);
		}
	}
}

WRAP ssize_t recvmsg(int fd, struct msghdr *mh, int flags)
{
	ssize_t r = RT_REAL(recvmsg)(fd, mh, flags);

	if (r >= 0 && rt_active()) {
		int saved = errno;
		record_received(fd, mh, flags);
		errno = saved;
	}
	return r;
}

WRAP int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags,
		  struct timespec *timeout)
{
	int r = RT_REAL(recvmmsg)(fd, v, n, flags, timeout);

	if (r > 0 && rt_active())
		for (int i = 0; i < r; i++)
			record_received(fd, &v[i].msg_hdr, flags);
	return r;
}
