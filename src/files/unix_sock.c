/* SPDX-License-Identifier: MIT */
/*
 * Unix sockets, connected or not, with what is queued on them.
 *
 * Dump.  The kernel's sock_diag netlink family (UNIX_DIAG) tells, by inode,
 * each socket's state, its peer's inode, its shutdown state, a listener's
 * backlog and the clients waiting in its queue.  With the inodes of every
 * socket the image holds (fds.c), each socket is one of:
 *
 *   CONN_NONE       not connected: unbound, bound or listening.
 *   CONN_PAIR       connected, and its peer, connected back to it, is in
 *                   the image: a socketpair, or connect+accept in the tree.
 *   CONN_PEER_GONE  connected to a peer that nobody holds any more (its
 *                   unread data is still there to read, then end of file).
 *   CONN_DGRAM_TO   a datagram socket connected to a named socket of the
 *                   image that is not connected back to it.
 *   CONN_PENDING    a client whose connection waits in the queue of a
 *                   listener of the image, not accepted yet.
 *
 * A socket connected to a peer outside the image is refused, with its
 * address and its peer's (address and inode).  So is a waiting connection
 * on which the client already sent data: the data sits in a socket nobody
 * holds yet, which capcr cannot read without accepting it.  Waiting
 * connections from outside the image, or whose client is gone, are left
 * out, with a warning.
 *
 * What each socket has queued for it is read without consuming it: recv
 * with MSG_PEEK walking the queue with SO_PEEK_OFF (the socket's own peek
 * offset is put back after), stream data as bytes, datagrams and
 * seqpacket messages one record each, with their sender's address.
 * Descriptors in flight (SCM_RIGHTS) that a message carries are handed
 * to inflight.c, which makes them Files (File.socket_inflight); at
 * restore each such message is sent again with them.
 *
 * Restore.  A pair is made once, by whichever of its two Files comes
 * first: with socketpair, or, for a stream or seqpacket pair that came
 * from connect+accept, by connecting to its listener (the image's, which
 * makes all its accepted pairs when it is made, or a temporary one on the
 * same name while that name is free), so that both ends keep their names.
 * The other end is parked in env->unix_park for its own File to take.
 * Each end's queue is written into its peer, so it lands in its own
 * receive queue, a message at a time for datagrams and seqpackets; the
 * writer's send buffer is raised meanwhile, then put back.  Shutdowns are
 * applied once both queues are in.  A listener connects its waiting
 * clients again, in their order.  A bound datagram socket gets its
 * datagrams sent again to its address, each from a socket bound to its
 * sender's name while that name is free (from an unnamed one otherwise).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/log.h"
#include "ext_conn.h"
#include "files.h"
#include "inflight.h"
#include "sockopts.h"
#include "unix_sock.h"

/* sk_state as sock_diag reports it */
enum { ST_ESTABLISHED = 1, ST_LISTEN = 10 };
/* sk_shutdown bits */
enum { SHUT_BITS_RCV = 1, SHUT_BITS_SEND = 2, SHUT_BITS_ALL = 3 };
/* File.socket_conn */
enum {
	CONN_NONE = 0,
	CONN_PAIR = 1,
	CONN_PEER_GONE = 2,
	CONN_DGRAM_TO = 3,
	CONN_PENDING = 4,
};
/* File.socket_accepted */
enum { ROLE_NONE = 0, ROLE_ACCEPTED = 1, ROLE_CONNECTED = 2 };


#define QBUF (1u << 20)

static int dup_cloexec(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

static int named(const void *addr, size_t len)
{
	return addr && len > sizeof(sa_family_t);
}

static void describe_bytes(const void *addr, size_t len, char *out, size_t n)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	if (len > sizeof(ss))
		len = sizeof(ss);
	if (addr && len)
		memcpy(&ss, addr, len);
	socket_describe(&ss, (socklen_t)len, out, n);
}

/* ---- sock_diag ---- */

struct udiag {
	uint32_t ino, peer;
	uint8_t type, state, shutdown;
	uint32_t rq, wq;
	struct sockaddr_un name;
	socklen_t namelen; /* a whole sockaddr length; 0 when unnamed */
	uint32_t *icons;   /* a listener: its waiting clients, in order */
	size_t nicons;
};

static void udiag_free(struct udiag *d)
{
	free(d->icons);
	d->icons = NULL;
	d->nicons = 0;
}

/* A sock_diag socket in the network namespace of process pid (where its
 * sockets are found by inode). */
static int diag_open(pid_t pid)
{
	char path[64];
	struct stat theirs, ours;
	int back = -1, nl;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (stat(path, &theirs) == 0 &&
	    stat("/proc/thread-self/ns/net", &ours) == 0 &&
	    (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev)) {
		int ns = open(path, O_RDONLY | O_CLOEXEC);
		back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (ns < 0 || back < 0 || setns(ns, CLONE_NEWNET) < 0) {
			if (ns >= 0)
				close(ns);
			if (back >= 0)
				close(back);
			return -1;
		}
		close(ns);
	}
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (back >= 0) {
		int e = errno;
		if (setns(back, CLONE_NEWNET) < 0)
			capcr_warn("cannot return to capcr's network namespace: "
				   "%s", strerror(errno));
		close(back);
		errno = e;
	}
	return nl;
}

static void diag_parse(const struct nlmsghdr *h, struct udiag *d)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	const struct rtattr *a = (const void *)(m + 1);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));

	d->ino = m->udiag_ino;
	d->type = m->udiag_type;
	d->state = m->udiag_state;
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		const void *p = RTA_DATA(a);
		size_t pl = RTA_PAYLOAD(a);
		switch (a->rta_type) {
		case UNIX_DIAG_NAME:
			if (pl > sizeof(d->name.sun_path))
				pl = sizeof(d->name.sun_path);
			d->name.sun_family = AF_UNIX;
			memcpy(d->name.sun_path, p, pl);
			d->namelen = (socklen_t)(pl + sizeof(sa_family_t));
			break;
		case UNIX_DIAG_PEER:
			if (pl >= 4)
				memcpy(&d->peer, p, 4);
			break;
		case UNIX_DIAG_RQLEN:
			if (pl >= sizeof(struct unix_diag_rqlen)) {
				const struct unix_diag_rqlen *q = p;
				d->rq = q->udiag_rqueue;
				d->wq = q->udiag_wqueue;
			}
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (pl >= 1)
				d->shutdown = *(const uint8_t *)p;
			break;
		case UNIX_DIAG_ICONS:
			d->nicons = pl / 4;
			d->icons = calloc(d->nicons + 1, 4);
			if (d->icons)
				memcpy(d->icons, p, d->nicons * 4);
			else
				d->nicons = 0;
			break;
		}
	}
}

/* What the kernel says of the Unix socket with inode ino: 0, or -1 with
 * errno. */
static int diag_get(int nl, uint64_t ino, struct udiag *d)
{
	static char buf[1 << 17] __attribute__((aligned(8)));
	static uint32_t seq;
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req;

	memset(d, 0, sizeof(*d));
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.h.nlmsg_seq = ++seq;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = (uint32_t)ino;
	req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER |
			   UDIAG_SHOW_RQLEN | UDIAG_SHOW_ICONS;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
	if (send(nl, &req, sizeof(req), 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		int len = (int)n;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != req.h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				errno = e->error ? -e->error : EIO;
				return -1;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			diag_parse(h, d);
			return 0;
		}
	}
}

/* ---- dump ---- */

struct dctx {
	struct file_dump_env *env;
	const struct file_dump_in *in;
	Capcr__File *f;
	int nl;
	struct udiag d; /* this socket */
	char what[300];
};

static int in_image(const struct file_dump_in *in, uint64_t ino)
{
	for (size_t i = 0; i < in->nsock_inos; i++)
		if ((uint64_t)in->sock_inos[i] == ino)
			return 1;
	return 0;
}

/* A listener of the image, of this type, bound to exactly this name: its
 * inode, or 0. */
static uint64_t find_listener(struct dctx *c, int type, const void *name,
			      size_t len)
{
	const struct file_dump_in *in = c->in;

	if (!named(name, len))
		return 0;
	for (size_t i = 0; i < in->nsock_inos; i++) {
		struct udiag x;
		uint64_t r = 0;
		if (diag_get(c->nl, in->sock_inos[i], &x) < 0)
			continue;
		if (x.state == ST_LISTEN && x.type == type &&
		    x.namelen == len && !memcmp(&x.name, name, len))
			r = x.ino;
		udiag_free(&x);
		if (r)
			return r;
	}
	return 0;
}

/* The listener of the image whose queue holds the client ino: its inode,
 * or 0. */
static uint64_t listener_holding(struct dctx *c, uint64_t ino)
{
	const struct file_dump_in *in = c->in;

	for (size_t i = 0; i < in->nsock_inos; i++) {
		struct udiag x;
		uint64_t r = 0;
		if (diag_get(c->nl, in->sock_inos[i], &x) < 0)
			continue;
		for (size_t k = 0; x.state == ST_LISTEN && k < x.nicons; k++)
			if (x.icons[k] == ino)
				r = x.ino;
		udiag_free(&x);
		if (r)
			return r;
	}
	return 0;
}

/* The peek offset; -1 with errno when it cannot be read (the image would
 * silently lack it).  The other options are sockopts.c's (File.sockopts);
 * the File's own socket_sndbuf, socket_rcvbuf and socket_passcred are
 * only read, from older images. */
static int save_options(int fd, Capcr__File *f, const char **which)
{
	int v;
	socklen_t l = sizeof(v);

	*which = "SO_PEEK_OFF";
	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &v, &l) < 0)
		return -1;
	if (v >= 0) {
		f->has_socket_peek_off = 1;
		f->socket_peek_off = v;
	}
	return 0;
}

/* The zero-length messages the scan before the dump met at place *nmsg
 * of this queue (inflight.c), which the peek walk no longer shows: their
 * records.  0 or -1 with why. */
static int put_zeros(struct dctx *c, struct image_data *qd, int *opened,
		     const char *name, uint64_t *nmsg, uint64_t *first,
		     const char *what)
{
	for (;;) {
		struct sockaddr_un from;
		socklen_t fl = 0;
		int k = inflight_zero_at(c->env, (ino_t)c->f->socket_ino, *nmsg,
					 c->f, &from, &fl, what);
		if (k <= 0)
			return k;
		if (!*opened) {
			int e = image_data_open(c->env->img, qd, name);
			if (e < 0)
				return FILE_FAIL(c->env, "cannot create %s: %s",
						 name, strerror(-e));
			*opened = 1;
		}
		struct qrec h = { 0, fl };
		if (image_data_write(qd, &h, sizeof(h)) < 0 ||
		    image_data_write(qd, &from, h.namelen) < 0)
			return FILE_FAIL(c->env, "cannot write %s", name);
		if (!(*nmsg)++)
			*first = 0;
	}
}

/* What is queued for this socket, into image file sock-INO.img. */
static int save_queue(struct dctx *c, int type, int have_diag)
{
	static char buf[QBUF];
	char cbuf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(256)];
	int fd = c->in->copy, orig = -1, zero = 0, r = 0, opened = 0;
	socklen_t l = sizeof(orig);
	struct image_data qd;
	char name[64];
	uint64_t total = 0, first = 0, nmsg = 0;
	int stream = type == SOCK_STREAM;

	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &orig, &l) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return FILE_FAIL(c->env,
				 "cannot walk the queue of descriptor %d (%s): "
				 "SO_PEEK_OFF: %s",
				 c->in->fd, c->what, strerror(errno));
	snprintf(name, sizeof(name), "sock-%llu.img",
		 (unsigned long long)c->f->socket_ino);
	char what[400];
	snprintf(what, sizeof(what), "descriptor %d of process %d (%s)",
		 c->in->fd, c->in->pid, c->what);
	for (;;) {
		struct sockaddr_un from;
		struct iovec iov = { buf, QBUF };
		struct msghdr m = { .msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(fd, &m, MSG_PEEK | MSG_DONTWAIT |
						    MSG_CMSG_CLOEXEC |
						    (stream ? 0 : MSG_TRUNC));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			r = FILE_FAIL(c->env,
				      "cannot read the queue of descriptor %d "
				      "(%s): %s",
				      c->in->fd, c->what, strerror(errno));
			break;
		}
		/* End of file: stream, or seqpacket with nothing more. */
		if (n == 0 && (stream || (type == SOCK_SEQPACKET &&
					  (c->d.shutdown & SHUT_BITS_RCV))))
			break;
		if (!stream && (r = put_zeros(c, &qd, &opened, name, &nmsg,
					      &first, what)) < 0)
			break;
		/* What it carries in flight (SCM_RIGHTS): recorded, with
		 * the record it goes with, or the range of stream bytes it
		 * came with. */
		if ((r = inflight_note(c->env, &m, c->f, stream,
				       stream ? total : nmsg,
				       stream ? (uint64_t)n : 0, what)) < 0)
			break;
		if (!opened) {
			int e = image_data_open(c->env->img, &qd, name);
			if (e < 0) {
				r = FILE_FAIL(c->env, "cannot create %s: %s",
					      name, strerror(-e));
				break;
			}
			opened = 1;
		}
		size_t got = (size_t)n < QBUF ? (size_t)n : QBUF;
		if (!stream) {
			if (qrec_put_head(&qd, (uint32_t)n, &from,
					  m.msg_namelen, sizeof(from)) < 0) {
				r = FILE_FAIL(c->env, "cannot write %s", name);
				break;
			}
			if (!nmsg++)
				first = (uint64_t)n;
		}
		if (image_data_write(&qd, buf, got) < 0) {
			r = FILE_FAIL(c->env, "cannot write %s", name);
			break;
		}
		total += got;
		/* A message longer than the buffer: the rest of it, the peek
		 * offset having moved past what was copied. */
		for (size_t want = (size_t)n; !stream && got < want;) {
			struct iovec iv = { buf, QBUF };
			struct msghdr m2 = { .msg_iov = &iv, .msg_iovlen = 1 };
			ssize_t k = recvmsg(fd, &m2, MSG_PEEK | MSG_DONTWAIT |
							     MSG_TRUNC);
			if (k <= 0 || (size_t)k != want - got) {
				r = FILE_FAIL(c->env,
					      "the queue of descriptor %d (%s) "
					      "changed while it was read",
					      c->in->fd, c->what);
				break;
			}
			size_t part = (size_t)k < QBUF ? (size_t)k : QBUF;
			if (image_data_write(&qd, buf, part) < 0) {
				r = FILE_FAIL(c->env, "cannot write %s", name);
				break;
			}
			got += part;
			total += part;
		}
		if (r < 0)
			break;
	}
	if (!r && !stream)
		r = put_zeros(c, &qd, &opened, name, &nmsg, &first, what);
	setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &orig, sizeof(orig));
	/* An out-of-band byte waiting (not SO_OOBINLINE): the peek walk
	 * read it inline, and its mark cannot be made again. */
	char ob;
	if (!r && stream &&
	    recv(fd, &ob, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) == 1)
		r = FILE_FAIL(c->env,
			      "descriptor %d of process %d (%s) has "
			      "out-of-band data waiting (MSG_OOB); capcr "
			      "cannot checkpoint that yet",
			      c->in->fd, c->in->pid, c->what);
	if (opened && image_data_close(c->env->img, &qd) < 0 && !r)
		r = FILE_FAIL(c->env, "cannot sync %s", name);
	if (r < 0)
		return r;
	/* The kernel's count: every byte of a stream or seqpacket queue,
	 * the first datagram's length for a datagram one. */
	if (have_diag && (type == SOCK_DGRAM ? first : total) != c->d.rq)
		return FILE_FAIL(c->env,
				 "could not read the queue of descriptor %d "
				 "(%s) whole: %llu bytes read, the kernel "
				 "counts %u (out-of-band data?)",
				 c->in->fd, c->what,
				 (unsigned long long)(type == SOCK_DGRAM ? first
									 : total),
				 c->d.rq);
	if (opened) {
		c->f->socket_queue_file = arena_strdup(c->env->arena, name);
		c->f->has_data_size = 1;
		c->f->data_size = total;
	}
	return 0;
}

static void push_u64(uint64_t **arr, size_t *n, uint64_t v)
{
	uint64_t *a = realloc(*arr, (*n + 1) * sizeof(uint64_t));
	if (!a)
		return;
	a[(*n)++] = v;
	*arr = a;
}

/* A listener: its real backlog, the image's clients waiting in its queue,
 * the pairs of the image that came through it. */
static int dump_listener(struct dctx *c, int type)
{
	struct file_dump_env *env = c->env;
	const struct file_dump_in *in = c->in;
	Capcr__File *f = c->f;
	uint64_t *pend = NULL, *conns = NULL;
	size_t npend = 0, nconns = 0;
	int r = 0;

	f->has_socket_backlog = 1;
	f->socket_backlog = (int32_t)c->d.wq;
	for (size_t k = 0; k < c->d.nicons && !r; k++) {
		uint64_t ci = c->d.icons[k];
		struct udiag x;
		if (!ci || !in_image(in, ci)) {
			capcr_warn("process %d, descriptor %d (%s): a connection "
				   "waiting to be accepted, from %s, is not "
				   "kept",
				   in->pid, in->fd, c->what,
				   ci ? "outside the checkpointed processes"
				      : "a client that is gone");
			continue;
		}
		if (diag_get(c->nl, ci, &x) == 0 && x.wq)
			r = FILE_FAIL(env,
				      "descriptor %d of process %d (%s) has a "
				      "connection waiting to be accepted on "
				      "which its client (socket:[%llu], in the "
				      "image) already sent data; capcr cannot "
				      "keep data sent on a connection not yet "
				      "accepted",
				      in->fd, in->pid, c->what,
				      (unsigned long long)ci);
		udiag_free(&x);
		push_u64(&pend, &npend, ci);
	}
	/* Accepted ones: established, of this type, with this name, and
	 * paired with a peer of the image. */
	for (size_t i = 0; i < in->nsock_inos && !r; i++) {
		struct udiag x, p;
		uint64_t xi = in->sock_inos[i];
		int dup = 0;
		for (size_t k = 0; k + 1 < nconns; k += 2)
			dup |= conns[k] == xi;
		if (dup || xi == f->socket_ino ||
		    diag_get(c->nl, xi, &x) < 0)
			continue;
		if (x.state == ST_ESTABLISHED && x.type == type &&
		    x.namelen == c->d.namelen &&
		    !memcmp(&x.name, &c->d.name, x.namelen) && x.peer &&
		    in_image(in, x.peer) && diag_get(c->nl, x.peer, &p) == 0) {
			if (p.peer == xi) {
				push_u64(&conns, &nconns, xi);
				push_u64(&conns, &nconns, x.peer);
			}
			udiag_free(&p);
		}
		udiag_free(&x);
	}
	if (npend) {
		f->n_socket_pending = npend;
		f->socket_pending = arena_memdup(env->arena, pend,
						 npend * sizeof(uint64_t));
	}
	if (nconns) {
		f->n_socket_conns = nconns;
		f->socket_conns = arena_memdup(env->arena, conns,
					       nconns * sizeof(uint64_t));
	}
	free(pend);
	free(conns);
	return r;
}

static int refuse_outside(struct dctx *c, const char *peer, uint64_t pino,
			  const char *why)
{
	char pi[64] = "";
	const char *hint;

	/* Unless the application or the user said how to bring it back. */
	if (ext_conn_dump(c->env, c->in, c->f, &hint) > 0)
		return 0;
	if (pino)
		snprintf(pi, sizeof(pi), ", socket:[%llu]",
			 (unsigned long long)pino);
	return FILE_FAIL(c->env,
			 "descriptor %d of process %d is a connected socket "
			 "(%s, peer %s%s)%s; capcr checkpoints a connection "
			 "only with both its ends%s",
			 c->in->fd, c->in->pid, c->what, peer, pi, why, hint);
}

/* A connected one: what it is connected to, and its role in a pair. */
static int dump_connected(struct dctx *c, int type, const void *paddr,
			  socklen_t plen)
{
	Capcr__File *f = c->f;
	uint64_t ino = f->socket_ino, peer = c->d.peer;
	char pdesc[300];

	describe_bytes(paddr, plen, pdesc, sizeof(pdesc));
	f->has_socket_peer_ino = 1;
	f->socket_peer_ino = peer;
	if (named(paddr, plen)) {
		f->has_socket_peer_addr = 1;
		f->socket_peer_addr.len = plen;
		f->socket_peer_addr.data = arena_memdup(c->env->arena, paddr,
							plen);
	}
	f->has_socket_conn = 1;
	if (peer && peer == ino) {
		f->socket_conn = CONN_DGRAM_TO; /* connected to itself */
	} else if (peer && in_image(c->in, peer)) {
		struct udiag p;
		if (diag_get(c->nl, peer, &p) < 0)
			return refuse_outside(c, pdesc, peer,
					      ", which sock_diag cannot see");
		int back = p.peer == ino;
		socklen_t pn = p.namelen;
		udiag_free(&p);
		if (back)
			f->socket_conn = CONN_PAIR;
		else if (type == SOCK_DGRAM && pn)
			f->socket_conn = CONN_DGRAM_TO;
		else
			return FILE_FAIL(c->env,
					 "descriptor %d of process %d (%s) is "
					 "connected to socket:[%llu] (%s), which "
					 "is not connected back to it; capcr "
					 "cannot make that again",
					 c->in->fd, c->in->pid, c->what,
					 (unsigned long long)peer, pdesc);
	} else if (peer && c->env->inflight && c->env->inflight->skip &&
		   inflight_has(c->env->inflight, c->in->st.st_dev, peer, -1)) {
		capcr_warn("process %d, descriptor %d (%s): its peer "
			   "(socket:[%llu]) is in flight and dropped "
			   "(--skip-in-flight); it comes back with its peer "
			   "closed",
			   c->in->pid, c->in->fd, c->what,
			   (unsigned long long)peer);
		f->socket_conn = CONN_PEER_GONE;
	} else if (peer) {
		return refuse_outside(c, pdesc, peer,
				      ", which is outside the checkpointed "
				      "processes");
	} else if (type == SOCK_DGRAM) {
		f->socket_conn = CONN_PEER_GONE;
	} else {
		uint64_t l = listener_holding(c, ino);
		if (l) {
			if (c->d.wq)
				return FILE_FAIL(
					c->env,
					"descriptor %d of process %d (%s) "
					"waits to be accepted by %s "
					"(socket:[%llu], in the image) and "
					"already sent data on the connection; "
					"capcr cannot keep data sent on a "
					"connection not yet accepted",
					c->in->fd, c->in->pid, c->what, pdesc,
					(unsigned long long)l);
			f->socket_conn = CONN_PENDING;
			f->has_socket_listener_ino = 1;
			f->socket_listener_ino = l;
		} else if ((c->d.shutdown & SHUT_BITS_ALL) == SHUT_BITS_ALL) {
			f->socket_conn = CONN_PEER_GONE;
		} else {
			return refuse_outside(c, pdesc, 0,
					      ", waiting to be accepted by a "
					      "listener outside the "
					      "checkpointed processes");
		}
	}
	if (f->socket_conn != CONN_PAIR || type == SOCK_DGRAM)
		return 0;
	/* Stream and seqpacket pairs: which end was accepted, and from
	 * which listener, so both keep their names. */
	uint64_t l;
	int own = f->has_socket_addr, his = f->has_socket_peer_addr;
	if (own && (l = find_listener(c, type, f->socket_addr.data,
				      f->socket_addr.len))) {
		f->socket_accepted = ROLE_ACCEPTED;
		f->has_socket_listener_ino = 1;
		f->socket_listener_ino = l;
	} else if (his && (l = find_listener(c, type, paddr, plen))) {
		f->socket_accepted = ROLE_CONNECTED;
		f->has_socket_listener_ino = 1;
		f->socket_listener_ino = l;
	} else if (own != his) {
		/* from a listener that is gone */
		f->socket_accepted = own ? ROLE_ACCEPTED : ROLE_CONNECTED;
	}
	f->has_socket_accepted = f->socket_accepted != ROLE_NONE;
	return 0;
}

int unix_sock_dump(struct file_dump_env *env, const struct file_dump_in *in,
		   Capcr__File *f)
{
	struct dctx c = { .env = env, .in = in, .f = f };
	int type = f->socket_type, r = 0, have_diag;
	struct sockaddr_storage pa;
	socklen_t pl = sizeof(pa);
	int connected;

	snprintf(c.what, sizeof(c.what), "%s", f->path ? f->path : "?");
	const char *opt;
	if (save_options(in->copy, f, &opt) < 0)
		return FILE_FAIL(env, "cannot read %s of %s at descriptor %d of "
				      "process %d: %s",
				 opt, c.what, in->fd, in->pid, strerror(errno));
	char desc[400];
	snprintf(desc, sizeof(desc), "%s at descriptor %d of process %d",
		 c.what, in->fd, in->pid);
	if (sockopts_dump(in->copy, AF_UNIX, type, 0, 0, env->arena,
			  &f->sockopts, desc, env->why, env->whylen) < 0)
		return -1;
	memset(&pa, 0, sizeof(pa));
	connected = getpeername(in->copy, (struct sockaddr *)&pa, &pl) == 0;
	/* Not connected is an answer; any other failure is not. */
	if (!connected && errno != ENOTCONN)
		return FILE_FAIL(env, "cannot tell whether %s at descriptor %d "
				      "of process %d is connected (getpeername): "
				      "%s",
				 c.what, in->fd, in->pid, strerror(errno));
	c.nl = diag_open(in->pid);
	have_diag = c.nl >= 0 && diag_get(c.nl, f->socket_ino, &c.d) == 0;
	if (!have_diag) {
		int e = errno;
		if (connected) {
			char pdesc[300];
			socket_describe(&pa, pl, pdesc, sizeof(pdesc));
			r = refuse_outside(&c, pdesc, 0,
					   ", whose peer capcr cannot find "
					   "(sock_diag)");
			goto out;
		}
		capcr_warn("process %d, descriptor %d (%s): sock_diag cannot "
			   "see it (%s): a listener comes back with a backlog "
			   "of 128 and without its waiting connections",
			   in->pid, in->fd, c.what, strerror(e));
		int listening = 0;
		socklen_t l = sizeof(listening);
		getsockopt(in->copy, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l);
		if (listening) {
			f->has_socket_backlog = 1;
			f->socket_backlog = 128;
		}
	} else {
		f->has_socket_state = 1;
		f->socket_state = c.d.state;
		if (c.d.shutdown) {
			f->has_socket_shutdown = 1;
			f->socket_shutdown = c.d.shutdown;
		}
	}
	if (have_diag && c.d.state == ST_LISTEN) {
		r = dump_listener(&c, type);
		goto out;
	}
	if (connected || (have_diag && c.d.peer)) {
		if ((r = dump_connected(&c, type, &pa, connected ? pl : 0)) < 0)
			goto out;
		if (f->socket_conn != CONN_PENDING)
			r = save_queue(&c, type, have_diag);
		goto out;
	}
	/* Not connected: only a datagram socket has a queue. */
	if (type == SOCK_DGRAM) {
		r = save_queue(&c, type, have_diag);
		if (!r && f->socket_queue_file && !f->has_socket_addr)
			r = FILE_FAIL(env,
				      "descriptor %d of process %d is an "
				      "unnamed, unconnected datagram socket "
				      "with datagrams queued; capcr cannot "
				      "send them to it again",
				      in->fd, in->pid);
	}
out:
	udiag_free(&c.d);
	if (c.nl >= 0)
		close(c.nl);
	return r;
}

/* ---- restore ---- */

/* A socket made ahead of its File, or one still to be connected. */
struct unix_park {
	uint64_t ino;
	int fd;          /* made ahead for the File of ino, not taken yet */
	int peer;        /* a copy of its peer, to fill its queue through */
	int peer_filled; /* the peer's own queue is in... */
	int peer_shut;   /* ...and these are the peer's shutdown bits */
	uint64_t wait_for; /* still to connect to the socket of this inode */
	int wait_fd;     /* a copy of it, for that */
	int made;        /* the File of ino has its socket */
};

static long park_find(struct file_restore_env *env, uint64_t ino)
{
	for (unsigned i = 0; i < env->nunix_park; i++)
		if (env->unix_park[i].ino == ino)
			return (long)i;
	return -1;
}

/* The entry of ino, made when missing; -1 when out of memory.  (Indexes,
 * not pointers: the table moves.) */
static long park_get(struct file_restore_env *env, uint64_t ino)
{
	long i = park_find(env, ino);

	if (i >= 0)
		return i;
	if (env->nunix_park == env->unix_park_cap) {
		unsigned cap = env->unix_park_cap ? 2 * env->unix_park_cap : 32;
		struct unix_park *p = realloc(env->unix_park,
					      cap * sizeof(*p));
		if (!p)
			return -1;
		env->unix_park = p;
		env->unix_park_cap = cap;
	}
	struct unix_park *e = &env->unix_park[env->nunix_park];
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->fd = e->peer = e->wait_fd = -1;
	return (long)env->nunix_park++;
}

static const char *path_of(const void *addr, size_t len, char *buf,
			   size_t n)
{
	const struct sockaddr_un *u = addr;
	size_t pl;

	if (!named(addr, len) || !u->sun_path[0])
		return NULL;
	pl = len - offsetof(struct sockaddr_un, sun_path);
	if (pl >= n)
		pl = n - 1;
	memcpy(buf, u->sun_path, pl);
	buf[pl] = 0;
	return buf;
}

/* Bind fd to addr.  A path left behind by the original socket is removed
 * first when stale is set; otherwise a path that exists is not touched.
 * 0 or -1 with errno. */
static int bind_name(int fd, const void *addr, size_t len, int stale)
{
	char p[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	struct stat st;

	if (path_of(addr, len, p, sizeof(p)) && lstat(p, &st) == 0) {
		if (!stale || !S_ISSOCK(st.st_mode))
			return errno = EADDRINUSE, -1;
		/* the cause, rather than bind's EADDRINUSE after it */
		if (unlink(p) < 0 && errno != ENOENT)
			return -1;
		if (bind(fd, addr, (socklen_t)len) == 0)
			return 0;
		/* A failed restore leaves the directory as it found it: a
		 * socket file nobody listens on where the stale one was. */
		int e = errno, s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (s >= 0) {
			bind(s, addr, (socklen_t)len);
			close(s);
		}
		return errno = e, -1;
	}
	return bind(fd, addr, (socklen_t)len);
}

/* Its own name back, when it has one and has not got it yet; only what
 * the socket really owned (not an accepted socket's listener's name). */
static void bind_own(int fd, const Capcr__File *f)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!f->has_socket_addr ||
	    (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	     sl > sizeof(sa_family_t)))
		return;
	if (bind_name(fd, f->socket_addr.data, f->socket_addr.len, 1) < 0)
		capcr_warn("cannot bind %s to its name again: %s", f->path,
			   strerror(errno));
}

static int owns_name(const Capcr__File *f)
{
	return f->socket_type == SOCK_DGRAM ||
	       f->socket_accepted == ROLE_CONNECTED ||
	       f->socket_conn == CONN_PENDING;
}

/* Its options, but the filter (unix_sock_restore: after its queue).
 * 0, or -1 with why (the image's owner may not set one). */
static int set_options(struct file_restore_env *env, int fd,
		       const Capcr__File *f)
{
	int v;

	if (f->sockopts) {
		char what[300];
		snprintf(what, sizeof(what), "the Unix socket %s",
			 f->path ? f->path : "?");
		return sockopts_restore(fd, f->sockopts,
					SOCKOPTS_BEFORE_BIND |
						SOCKOPTS_AFTER_CONNECT,
					env->img->owner_uid, what, env->why,
					env->whylen);
	}
	/* An image from before File.sockopts */
	if (f->has_socket_sndbuf) {
		v = (int)(f->socket_sndbuf / 2);
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)))
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	if (f->has_socket_rcvbuf) {
		v = (int)(f->socket_rcvbuf / 2);
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)))
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	}
	if (f->socket_passcred) {
		v = 1;
		setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, sizeof(v));
	}
	return 0;
}

static void shut(int fd, int bits)
{
	if (bits & SHUT_BITS_ALL)
		shutdown(fd, (bits & SHUT_BITS_ALL) - 1);
}

/* A send buffer large enough for any queue; returns the old one. */
static int big_sndbuf(int fd)
{
	int old = 0, big = INT_MAX / 2;
	socklen_t l = sizeof(old);

	getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &old, &l);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	return old;
}

static void put_sndbuf(int fd, int old)
{
	int v = old / 2;

	if (old > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}


static int send_whole(int fd, const void *buf, size_t n, int stream,
		      const void *to, size_t tl)
{
	size_t off = 0;

	/* Not do { } while: a `continue` after EINTR would go to the test,
	 * which ends a datagram's loop before it was sent. */
	for (;;) {
		ssize_t w = sendto(fd, (const char *)buf + off, n - off,
				   MSG_DONTWAIT | MSG_NOSIGNAL, to,
				   (socklen_t)tl);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		off += (size_t)w;
		if (!stream || off >= n)
			return 0;
	}
}

int qrec_put_head(struct image_data *d, uint32_t len, const void *from,
		  socklen_t namelen, size_t from_max)
{
	struct qrec h = { len, namelen <= from_max ? namelen : 0 };

	if (image_data_write(d, &h, sizeof(h)) < 0 ||
	    image_data_write(d, from, h.namelen) < 0)
		return -1;
	return 0;
}

int qrec_next(int src, struct qrec *h, void *from, size_t from_max,
	      uint32_t len_max, char **data)
{
	ssize_t k = read(src, h, sizeof(*h));

	*data = NULL;
	if (k == 0)
		return 0;
	memset(from, 0, from_max);
	if (k != sizeof(*h) || h->namelen > from_max || h->len > len_max ||
	    files_read_full(src, from, h->namelen) < 0)
		return -1;
	*data = malloc((size_t)h->len + 1);
	if (!*data || files_read_full(src, *data, h->len) < 0) {
		free(*data);
		*data = NULL;
		return -1;
	}
	return 1;
}

/* n bytes of src (to its end with UINT64_MAX) sent on the stream w. */
static int copy_stream(int src, int w, uint64_t n)
{
	static char cbuf[1 << 16];

	while (n) {
		ssize_t k = read(src, cbuf, n < sizeof(cbuf) ? (size_t)n
							     : sizeof(cbuf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 && n == UINT64_MAX)
			return 0;
		if (k <= 0) {
			if (k == 0)
				errno = EIO; /* shorter than the image says */
			return -1;
		}
		if (send_whole(w, cbuf, (size_t)k, 1, NULL, 0) < 0)
			return -1;
		if (n != UINT64_MAX)
			n -= (uint64_t)k;
	}
	return 0;
}

/* f's queue written into its peer w, so that it lands in f's socket. */
static int fill_from_peer(struct file_restore_env *env, const Capcr__File *f,
			  int w)
{
	static char buf[QBUF];
	int src, r = 0, old;

	if (!f->socket_queue_file)
		return 0;
	src = image_open_data(env->img, f->socket_queue_file);
	if (src < 0)
		return FILE_FAIL(env, "%s", image_error());
	old = big_sndbuf(w);
	if (f->socket_type == SOCK_STREAM) {
		uint64_t pos = 0;
		/* Up to each range that carries descriptors, then the range
		 * with them, in one message. */
		for (size_t i = 0; !r && i < f->n_socket_inflight; i++) {
			const Capcr__InFlight *e = f->socket_inflight[i];
			if (e->len > QBUF || e->offset < pos) {
				errno = EINVAL; /* the validator's to refuse */
				r = -1;
				break;
			}
			if (copy_stream(src, w, e->offset - pos) < 0 ||
			    files_read_full(src, buf, e->len) < 0) {
				r = -1;
				break;
			}
			ssize_t k = inflight_send(env, w, buf, e->len, e,
						  NULL, 0);
			if (k < 0 ||
			    ((uint64_t)k < e->len &&
			     send_whole(w, buf + k, e->len - (uint64_t)k, 1,
					NULL, 0) < 0))
				r = -1;
			pos = e->offset + e->len;
		}
		if (!r && copy_stream(src, w, UINT64_MAX) < 0)
			r = -1;
	} else {
		struct qrec h;
		struct sockaddr_un from;
		char *data = NULL;
		int k;
		for (uint64_t i = 0;
		     !r && (k = qrec_next(src, &h, &from, sizeof(from), UINT32_MAX, &data)) != 0; i++) {
			const Capcr__InFlight *e = inflight_at(f, i);
			if (k < 0 ||
			    (e ? inflight_send(env, w, data, h.len, e, NULL,
					       0) < 0
			       : send_whole(w, data, h.len, 0, NULL, 0) < 0))
				r = -1;
			free(data);
			data = NULL;
		}
	}
	int e = errno;
	put_sndbuf(w, old);
	close(src);
	if (r < 0)
		return FILE_FAIL(env, "cannot put back the data queued on %s%s: "
				      "%s",
				 f->path,
				 f->n_socket_inflight
					 ? " with its descriptors in flight"
					 : "",
				 strerror(e));
	return 0;
}

/* A socket that sends as the one named addr, while that name is free;
 * an unnamed one otherwise.  *made_path: a path to remove after. */
static int sender_as(int type, const struct sockaddr_un *addr, socklen_t len,
		     char *made_path, size_t n, const char *dest)
{
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	made_path[0] = 0;
	if (s < 0 || !named(addr, len))
		return s;
	if (bind_name(s, addr, len, 0) == 0) {
		path_of(addr, len, made_path, n);
	} else {
		char who[300];
		describe_bytes(addr, len, who, sizeof(who));
		capcr_info("datagrams queued on %s from %s come back from "
			   "an unnamed socket: that name is taken",
			   dest, who);
		close(s);
		s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	}
	return s;
}

/* f's datagrams sent again to its own address, each from its sender's
 * name where that is free. */
static int fill_by_name(struct file_restore_env *env, const Capcr__File *f)
{
	struct qrec h;
	struct sockaddr_un from, cur;
	socklen_t curlen = 0;
	char made[sizeof(from.sun_path) + 1] = "", *data = NULL;
	int src, r = 0, s = -1, k;
	unsigned count = 0;

	if (!f->socket_queue_file)
		return 0;
	if (!f->has_socket_addr)
		return FILE_FAIL(env, "%s has datagrams queued but no name to "
				      "send them to",
				 f->path);
	src = image_open_data(env->img, f->socket_queue_file);
	if (src < 0)
		return FILE_FAIL(env, "%s", image_error());
	while (!r && (k = qrec_next(src, &h, &from, sizeof(from), UINT32_MAX, &data)) != 0) {
		if (k < 0) {
			r = FILE_FAIL(env, "%s is damaged", f->socket_queue_file);
			break;
		}
		if (s < 0 || h.namelen != curlen || memcmp(&from, &cur, curlen)) {
			if (s >= 0)
				close(s);
			if (made[0])
				unlink(made);
			s = sender_as(f->socket_type, &from, h.namelen, made,
				      sizeof(made), f->path);
			if (s < 0) {
				r = FILE_FAIL(env, "socket: %s", strerror(errno));
				break;
			}
			big_sndbuf(s);
			memcpy(&cur, &from, h.namelen);
			curlen = h.namelen;
		}
		const Capcr__InFlight *e = inflight_at(f, count);
		if (e ? inflight_send(env, s, data, h.len, e,
				      f->socket_addr.data,
				      f->socket_addr.len) < 0
		      : send_whole(s, data, h.len, 0, f->socket_addr.data,
				   f->socket_addr.len) < 0)
			r = FILE_FAIL(env, "cannot send datagram %u queued on "
					   "%s again: %s",
				      count + 1, f->path, strerror(errno));
		count++;
		free(data);
		data = NULL;
	}
	if (s >= 0)
		close(s);
	if (made[0])
		unlink(made);
	close(src);
	return r;
}

/* connect, even on a descriptor that make_files made non-blocking. */
static int connect_to(int fd, const void *addr, size_t len)
{
	int r;

	do
		r = connect(fd, addr, (socklen_t)len);
	while (r < 0 && errno == EINTR);
	return r;
}

/* A stream or seqpacket pair through a temporary listener on name, so
 * that the accepted end has that name and the other end sees it as its
 * peer's.  0, or -1 (then a plain socketpair will do). */
static int pair_via_temp(struct file_restore_env *env, const Capcr__File *f,
			 const void *name, size_t nlen, const void *cname,
			 size_t clen, int *acc, int *con)
{
	char p[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	long li = f->has_socket_listener_ino
			  ? park_find(env, f->socket_listener_ino)
			  : -1;
	int t, c, s, made_path;
	/* A stale path only when the image's listener is to take it (and
	 * has not yet). */
	int stale = f->has_socket_listener_ino &&
		    (li < 0 || !env->unix_park[li].made);

	struct stat st;

	t = socket(AF_UNIX, f->socket_type | SOCK_CLOEXEC, 0);
	if (t < 0)
		return -1;
	/* Only a path this bind makes is removed after: one that replaced
	 * the dumped listener's stale file stays in its place (a socket
	 * file nobody listens on, as that one was) for the listener's own
	 * bind, so a restore failing before that leaves the file there. */
	made_path = path_of(name, nlen, p, sizeof(p)) != NULL &&
		    lstat(p, &st) < 0;
	if (bind_name(t, name, nlen, stale) < 0 ||
	    listen(t, 1) < 0) {
		close(t);
		return -1;
	}
	c = socket(AF_UNIX, f->socket_type | SOCK_CLOEXEC, 0);
	if (c >= 0 && named(cname, clen))
		bind_name(c, cname, clen, 1);
	s = c >= 0 && connect_to(c, name, nlen) == 0
		    ? accept4(t, NULL, NULL, SOCK_CLOEXEC)
		    : -1;
	close(t);
	if (made_path)
		unlink(p);
	if (s < 0) {
		if (c >= 0)
			close(c);
		return -1;
	}
	*acc = s;
	*con = c;
	return 0;
}

/* The two ends of f's pair: mine and the other one. */
static int make_pair(struct file_restore_env *env, const Capcr__File *f,
		     int *mine, int *other)
{
	int sv[2], role = f->socket_accepted;

	if (role == ROLE_ACCEPTED && f->has_socket_addr &&
	    pair_via_temp(env, f, f->socket_addr.data, f->socket_addr.len,
			  f->socket_peer_addr.data, f->socket_peer_addr.len,
			  mine, other) == 0)
		return 0;
	if (role == ROLE_CONNECTED && f->has_socket_peer_addr &&
	    pair_via_temp(env, f, f->socket_peer_addr.data,
			  f->socket_peer_addr.len, f->socket_addr.data,
			  f->socket_addr.len, other, mine) == 0)
		return 0;
	if (socketpair(AF_UNIX, f->socket_type | SOCK_CLOEXEC, 0, sv) < 0)
		return FILE_FAIL(env, "socketpair: %s", strerror(errno));
	*mine = sv[0];
	*other = sv[1];
	/* Datagram ends own their names; the peer's first, so that what
	 * it sends shows it. */
	if (f->socket_type == SOCK_DGRAM && f->has_socket_peer_addr &&
	    bind_name(sv[1], f->socket_peer_addr.data, f->socket_peer_addr.len,
		      1) < 0)
		capcr_warn("cannot bind the peer of %s to its name again: %s",
			   f->path, strerror(errno));
	return 0;
}

/* The File of ino takes the socket made ahead for it, with its queue. */
static int take(struct file_restore_env *env, long i, const Capcr__File *f)
{
	struct unix_park *e = &env->unix_park[i];
	int fd = e->fd, bits = f->socket_shutdown;

	e->fd = -1;
	if (set_options(env, fd, f) < 0) {
		close(fd);
		return -1;
	}
	if (owns_name(f))
		bind_own(fd, f);
	if (e->peer < 0) {
		shut(fd, bits);
		return fd;
	}
	int peer = e->peer, filled = e->peer_filled, pshut = e->peer_shut;
	e->peer = -1;
	if (fill_from_peer(env, f, peer) < 0) {
		close(peer);
		close(fd);
		return -1;
	}
	if (filled) {
		shut(fd, bits);
		shut(peer, pshut);
	} else {
		long p = park_get(env, f->socket_peer_ino);
		if (p < 0) {
			close(peer);
			close(fd);
			return FILE_FAIL(env, "out of memory");
		}
		env->unix_park[p].peer_filled = 1;
		env->unix_park[p].peer_shut = bits;
	}
	close(peer);
	return fd;
}

/* Park the other end of a pair for its File, with a copy of mine to fill
 * its queue through. */
static int park_other(struct file_restore_env *env, uint64_t ino, int other,
		      int mine, int mine_filled, int mine_shut)
{
	long p = park_get(env, ino);
	int d = dup_cloexec(mine);

	if (p < 0 || d < 0) {
		if (d >= 0)
			close(d);
		return FILE_FAIL(env, "cannot keep a socket: %s",
				 p < 0 ? "out of memory" : strerror(errno));
	}
	env->unix_park[p].fd = other;
	env->unix_park[p].peer = d;
	env->unix_park[p].peer_filled = mine_filled;
	env->unix_park[p].peer_shut = mine_shut;
	return 0;
}

/* A listener: the pairs of the image that came through it, then its
 * waiting clients, in their order. */
static int listener_fill(struct file_restore_env *env, const Capcr__File *f,
			 int l)
{
	const void *a = f->socket_addr.data;
	size_t al = f->socket_addr.len;

	for (size_t k = 0; k + 1 < f->n_socket_conns; k += 2) {
		uint64_t si = f->socket_conns[k], ci = f->socket_conns[k + 1];
		if (park_find(env, si) >= 0 || park_find(env, ci) >= 0)
			continue; /* made already, by one of its ends */
		int c = socket(AF_UNIX, f->socket_type | SOCK_CLOEXEC, 0);
		int s = c >= 0 && connect_to(c, a, al) == 0
				? accept4(l, NULL, NULL, SOCK_CLOEXEC)
				: -1;
		if (s < 0) {
			int e = errno;
			if (c >= 0)
				close(c);
			return FILE_FAIL(env, "cannot connect to %s again: %s",
					 f->path, strerror(e));
		}
		if (park_other(env, si, s, c, 0, 0) < 0 ||
		    park_other(env, ci, c, s, 0, 0) < 0)
			return -1;
	}
	for (size_t k = 0; k < f->n_socket_pending; k++) {
		uint64_t ci = f->socket_pending[k];
		long i = park_find(env, ci);
		int c;
		if (i >= 0 && env->unix_park[i].wait_fd < 0)
			continue;
		c = i >= 0 ? env->unix_park[i].wait_fd
			   : socket(AF_UNIX, f->socket_type | SOCK_CLOEXEC, 0);
		if (c < 0 || connect_to(c, a, al) < 0)
			return FILE_FAIL(env, "cannot connect a waiting client "
					      "to %s again: %s",
					 f->path, strerror(errno));
		if (i >= 0) {
			close(c);
			env->unix_park[i].wait_fd = -1;
			env->unix_park[i].wait_for = 0;
		} else {
			if ((i = park_get(env, ci)) < 0) {
				close(c);
				return FILE_FAIL(env, "out of memory");
			}
			env->unix_park[i].fd = c;
		}
	}
	return 0;
}

/* Sockets connected to this one once it exists (datagram sockets
 * connected one way to it). */
static int connect_waiting(struct file_restore_env *env, const Capcr__File *f)
{
	for (unsigned i = 0; i < env->nunix_park; i++) {
		struct unix_park *e = &env->unix_park[i];
		if (e->wait_fd < 0 || e->wait_for != f->socket_ino)
			continue;
		if (!f->has_socket_addr ||
		    connect_to(e->wait_fd, f->socket_addr.data,
			       f->socket_addr.len) < 0)
			return FILE_FAIL(env, "cannot connect a socket to %s "
					      "again: %s",
					 f->path,
					 f->has_socket_addr ? strerror(errno)
							    : "it has no name");
		close(e->wait_fd);
		e->wait_fd = -1;
		e->wait_for = 0;
	}
	return 0;
}

/* Connect later, once the socket of inode target is made. */
static int wait_for(struct file_restore_env *env, const Capcr__File *f,
		    int fd, uint64_t target)
{
	long i = park_get(env, f->socket_ino);
	int d = dup_cloexec(fd);

	if (i < 0 || d < 0) {
		if (d >= 0)
			close(d);
		return FILE_FAIL(env, "cannot keep a socket: %s",
				 i < 0 ? "out of memory" : strerror(errno));
	}
	env->unix_park[i].wait_for = target;
	env->unix_park[i].wait_fd = d;
	return 0;
}

static int make_unconnected(struct file_restore_env *env, const Capcr__File *f)
{
	int fd = socket(AF_UNIX, f->socket_type | SOCK_CLOEXEC,
			f->socket_protocol);

	if (fd < 0)
		return FILE_FAIL(env, "socket: %s", strerror(errno));
	if (set_options(env, fd, f) < 0) {
		close(fd);
		return -1;
	}
	if (f->has_socket_addr &&
	    bind_name(fd, f->socket_addr.data, f->socket_addr.len, 1) < 0) {
		int e = errno;
		close(fd);
		return FILE_FAIL(env, "cannot bind a socket to %s again: %s",
				 f->path, strerror(e));
	}
	if (f->has_socket_backlog) {
		if (listen(fd, f->socket_backlog) < 0) {
			int e = errno;
			close(fd);
			return FILE_FAIL(env, "cannot listen on %s again: %s",
					 f->path, strerror(e));
		}
		if (listener_fill(env, f, fd) < 0) {
			close(fd);
			return -1;
		}
	}
	if (fill_by_name(env, f) < 0) {
		close(fd);
		return -1;
	}
	shut(fd, f->socket_shutdown);
	return fd;
}

static int make_connected(struct file_restore_env *env, const Capcr__File *f)
{
	int fd, other, bits = f->socket_shutdown;

	switch (f->socket_conn) {
	case CONN_PAIR:
		if (make_pair(env, f, &fd, &other) < 0)
			return -1;
		if (set_options(env, fd, f) < 0) {
			close(fd);
			close(other);
			return -1;
		}
		if (owns_name(f))
			bind_own(fd, f);
		/* Mine now; its peer's, and the shutdowns, when its File
		 * takes the other end. */
		if (fill_from_peer(env, f, other) < 0 ||
		    park_other(env, f->socket_peer_ino, other, fd, 1, bits) < 0) {
			close(fd);
			close(other);
			return -1;
		}
		return fd;
	case CONN_PEER_GONE: {
		int sv[2];
		if (socketpair(AF_UNIX, f->socket_type | SOCK_CLOEXEC, 0, sv) <
		    0)
			return FILE_FAIL(env, "socketpair: %s", strerror(errno));
		if (set_options(env, sv[0], f) < 0) {
			close(sv[0]);
			close(sv[1]);
			return -1;
		}
		if (owns_name(f))
			bind_own(sv[0], f);
		int r = fill_from_peer(env, f, sv[1]);
		close(sv[1]);
		if (r < 0) {
			close(sv[0]);
			return -1;
		}
		shut(sv[0], bits);
		return sv[0];
	}
	case CONN_DGRAM_TO: {
		/* Its queue first: once connected, only its peer may send
		 * to it. */
		Capcr__File g = *f;
		g.socket_backlog = 0;
		g.has_socket_backlog = 0;
		g.socket_shutdown = 0;
		fd = make_unconnected(env, &g);
		if (fd < 0)
			return -1;
		long t = park_find(env, f->socket_peer_ino);
		int target_made = f->socket_peer_ino == f->socket_ino ||
				  (t >= 0 && env->unix_park[t].made);
		if (target_made) {
			if (connect_to(fd, f->socket_peer_addr.data,
				       f->socket_peer_addr.len) < 0) {
				int e = errno;
				close(fd);
				return FILE_FAIL(env, "cannot connect %s to %s "
						      "again: %s",
						 f->path, "its peer",
						 strerror(e));
			}
		} else if (wait_for(env, f, fd, f->socket_peer_ino) < 0) {
			close(fd);
			return -1;
		}
		shut(fd, bits);
		return fd;
	}
	case CONN_PENDING:
		fd = socket(AF_UNIX, f->socket_type | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return FILE_FAIL(env, "socket: %s", strerror(errno));
		if (set_options(env, fd, f) < 0) {
			close(fd);
			return -1;
		}
		bind_own(fd, f);
		if (wait_for(env, f, fd, f->socket_listener_ino) < 0) {
			close(fd);
			return -1;
		}
		shut(fd, bits);
		return fd;
	}
	return FILE_FAIL(env, "%s: unknown kind of connection %u", f->path,
			 f->socket_conn);
}

int unix_sock_restore(struct file_restore_env *env, const Capcr__File *f)
{
	long i = f->has_socket_ino ? park_find(env, f->socket_ino) : -1;
	int fd;

	if (i >= 0 && env->unix_park[i].fd >= 0)
		fd = take(env, i, f);
	else if (f->socket_conn != CONN_NONE)
		fd = make_connected(env, f);
	else
		fd = make_unconnected(env, f);
	if (fd < 0 || !f->has_socket_ino)
		return fd;
	if ((i = park_get(env, f->socket_ino)) < 0) {
		close(fd);
		return FILE_FAIL(env, "out of memory");
	}
	env->unix_park[i].made = 1;
	if (connect_waiting(env, f) < 0) {
		close(fd);
		return -1;
	}
	if (f->has_socket_peek_off) {
		int v = f->socket_peek_off;
		setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	}
	/* The filter last: the queue put back into it was judged already. */
	char what[300];
	snprintf(what, sizeof(what), "the Unix socket %s",
		 f->path ? f->path : "?");
	if (sockopts_restore(fd, f->sockopts, SOCKOPTS_FILTER,
			     env->img->owner_uid, what, env->why,
			     env->whylen) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void unix_sock_restore_end(struct file_restore_env *env)
{
	for (unsigned i = 0; i < env->nunix_park; i++) {
		struct unix_park *e = &env->unix_park[i];
		if (e->fd >= 0)
			close(e->fd);
		if (e->peer >= 0)
			close(e->peer);
		if (e->wait_fd >= 0)
			close(e->wait_fd);
	}
	free(env->unix_park);
	env->unix_park = NULL;
	env->nunix_park = env->unix_park_cap = 0;
}
