/* SPDX-License-Identifier: MIT */
/*
 * Established TCP connections (IPv4 and IPv6), with TCP_REPAIR, as CRIU
 * does (criu/sk-tcp.c, soccr/soccr.c: the facts, not the code).
 *
 * Dump.  A connected TCP socket whose peer is in the image (found with
 * sock_diag by the reversed 4-tuple, its inode among the image's
 * sockets), or any connected one with --tcp-established:
 *
 *   1. the connection is blocked: an element for each direction of its
 *      4-tuple in a set of table `inet capcr` that its input and output
 *      chains drop (nft).  A connection inside the image is blocked only
 *      while the dump reads it, so that nothing moves between the two
 *      ends while each is read; one to a peer outside stays blocked until
 *      its restore (or a failed or -R dump), so the peer, which retransmits
 *      into the block, never sees the connection go;
 *   2. TCP_REPAIR on capcr's copy (pidfd_getfd: the same socket), after
 *      SO_REUSEADDR was read (repair mode changes it);
 *   3. SIOCINQ, SIOCOUTQ and SIOCOUTQNSD: bytes not read, not acknowledged,
 *      never sent; TCP_INFO: state and the options negotiated (SACK,
 *      window scaling, timestamps); TCP_MAXSEG; TCP_TIMESTAMP;
 *      TCP_REPAIR_WINDOW; per queue (TCP_REPAIR_QUEUE) its sequence number
 *      (TCP_QUEUE_SEQ: rcv_nxt, write_seq) and its bytes (MSG_PEEK: in
 *      repair mode the send queue can be peeked as well), into
 *      tcp-INO.img; TCP_NODELAY, TCP_CORK, keepalive, TCP_USER_TIMEOUT,
 *      buffer sizes;
 *   4. the socket stays in repair mode: killed, the processes' sockets
 *      close silently (a socket closed in repair mode sends neither FIN
 *      nor RST).  With -R or a failed dump, repair mode is turned off
 *      again and SO_REUSEADDR put back (tcp_dump_end).
 *
 * Restore, in capcr restore (which has CAP_NET_ADMIN; the processes get
 * the socket by inheritance): socket, TCP_REPAIR on (force-reuse: the
 * bind cannot conflict, not even with the image's own listener), buffers,
 * bind to the local address (IP_FREEBIND only if the address is not
 * there), the two sequence numbers, connect (no handshake in repair mode),
 * TCP_REPAIR_OPTIONS, TCP_TIMESTAMP, the receive queue and the sent part
 * of the send queue (in repair mode, as received and as sent), the window,
 * the options.  It stays in repair mode while everything else is made:
 * the peer may not exist yet, and a packet to a missing socket would be
 * answered with a reset.  Just before the processes run (file_ops.release)
 * the block is lifted (a peer outside), repair mode goes off (the kernel
 * sends a window probe), SO_REUSEADDR is put back and the part of the send
 * queue that had never been sent is written as ordinary data.  A restore
 * that fails before closes its sockets in repair mode: the peer hears
 * nothing, and an outside connection stays blocked for the next try.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/log.h"
#include "ext_conn.h"
#include "files.h"
#include "tcp.h"
#include "unix_sock.h"

extern const struct file_ops file_socket;
extern char **environ;

#define NFT_TABLE "inet capcr"
/* Queues larger than this are refused (validate.c holds the same). */
#define TCP_QUEUE_MAX (1u << 30)

static int dump_external;    /* --tcp-established at dump */
static int restore_external; /* --tcp-established at restore */

void tcp_dump_allow_external(int on)
{
	dump_external = on;
}

void tcp_restore_allow_external(int on)
{
	restore_external = on;
}

/* ---- addresses ---- */

/* One direction of a connection, as nft names it. */
struct tuple {
	int v6;
	unsigned char src[16], dst[16];
	uint16_t sport, dport; /* host order */
};

/* A 4-tuple from two socket addresses of one family; v4-mapped IPv6
 * addresses are IPv4 on the wire. */
static int tuple_of(const void *local, const void *peer, struct tuple *t)
{
	const struct sockaddr *l = local;

	memset(t, 0, sizeof(*t));
	if (l->sa_family == AF_INET) {
		const struct sockaddr_in *a = local, *b = peer;
		memcpy(t->src, &a->sin_addr, 4);
		memcpy(t->dst, &b->sin_addr, 4);
		t->sport = ntohs(a->sin_port);
		t->dport = ntohs(b->sin_port);
		return 0;
	}
	if (l->sa_family != AF_INET6)
		return -1;
	const struct sockaddr_in6 *a = local, *b = peer;
	t->sport = ntohs(a->sin6_port);
	t->dport = ntohs(b->sin6_port);
	if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) &&
	    IN6_IS_ADDR_V4MAPPED(&b->sin6_addr)) {
		memcpy(t->src, a->sin6_addr.s6_addr + 12, 4);
		memcpy(t->dst, b->sin6_addr.s6_addr + 12, 4);
		return 0;
	}
	t->v6 = 1;
	memcpy(t->src, &a->sin6_addr, 16);
	memcpy(t->dst, &b->sin6_addr, 16);
	return 0;
}

static int tuple_same_conn(const struct tuple *a, const struct tuple *b)
{
	size_t n = a->v6 ? 16 : 4;

	if (a->v6 != b->v6)
		return 0;
	if (a->sport == b->sport && a->dport == b->dport &&
	    !memcmp(a->src, b->src, n) && !memcmp(a->dst, b->dst, n))
		return 1;
	return a->sport == b->dport && a->dport == b->sport &&
	       !memcmp(a->src, b->dst, n) && !memcmp(a->dst, b->src, n);
}

/* "add element inet capcr conns4 { A . p . B . q, B . q . A . p }" */
static void tuple_element(const struct tuple *t, const char *verb, char *out,
			  size_t n)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int f = t->v6 ? AF_INET6 : AF_INET;

	inet_ntop(f, t->src, s, sizeof(s));
	inet_ntop(f, t->dst, d, sizeof(d));
	snprintf(out, n,
		 "%s element " NFT_TABLE " conns%c { %s . %u . %s . %u, "
		 "%s . %u . %s . %u }\n",
		 verb, t->v6 ? '6' : '4', s, t->sport, d, t->dport, d,
		 t->dport, s, t->sport);
}

/* ---- nft ---- */

/* Run nft with script on its standard input: 0, or -1 with why (nft's
 * own message). */
static int nft_run(const char *script, char *why, size_t wl)
{
	static const char *const paths[] = { "/usr/sbin/nft", "/sbin/nft",
					     "/usr/bin/nft", "nft" };
	posix_spawn_file_actions_t fa;
	int in = memfd_create("capcr-nft", MFD_CLOEXEC), out[2] = { -1, -1 };
	size_t len = strlen(script);
	pid_t pid = -1;
	int r = -1, st, e = 0;

	if (in < 0 || pipe2(out, O_CLOEXEC) < 0 ||
	    write(in, script, len) != (ssize_t)len ||
	    lseek(in, 0, SEEK_SET) < 0) {
		snprintf(why, wl, "cannot prepare nft's input: %s",
			 strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, out[1], 2);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *argv[] = { (char *)paths[i], "-f", "-", NULL };
		e = strchr(paths[i], '/')
			    ? posix_spawn(&pid, paths[i], &fa, NULL, argv,
					  environ)
			    : posix_spawnp(&pid, paths[i], &fa, NULL, argv,
					   environ);
		if (e != ENOENT)
			break;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	out[1] = -1;
	if (e) {
		snprintf(why, wl, "cannot run nft: %s%s", strerror(e),
			 e == ENOENT ? " (install nftables)" : "");
		goto out;
	}
	char msg[256];
	size_t got = 0;
	for (ssize_t k;;) {
		char tmp[256];
		k = read(out[0], tmp, sizeof(tmp));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		size_t take = (size_t)k < sizeof(msg) - 1 - got
				      ? (size_t)k
				      : sizeof(msg) - 1 - got;
		memcpy(msg + got, tmp, take);
		got += take;
	}
	msg[got] = 0;
	while (got && (msg[got - 1] == '\n' || msg[got - 1] == ' '))
		msg[--got] = 0;
	for (char *c = msg; *c; c++)
		if (*c == '\n')
			*c = ' ';
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = -1;
			break;
		}
	if (st == 0)
		r = 0;
	else
		snprintf(why, wl, "nft failed (%s%d)%s%s",
			 st >= 0 && WIFSIGNALED(st) ? "signal " : "status ",
			 st >= 0 && WIFSIGNALED(st) ? WTERMSIG(st)
						    : (st >= 0 ? WEXITSTATUS(st)
							       : -1),
			 got ? ": " : "", msg);
out:
	if (in >= 0)
		close(in);
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	return r;
}

/* The table, its sets and its rules, made or made again in one
 * transaction (the rules are replaced, the elements stay), then the
 * elements to add. */
static const char nft_setup[] =
	"add table " NFT_TABLE "\n"
	"add set " NFT_TABLE " conns4 { type ipv4_addr . inet_service . "
	"ipv4_addr . inet_service ; }\n"
	"add set " NFT_TABLE " conns6 { type ipv6_addr . inet_service . "
	"ipv6_addr . inet_service ; }\n"
	"add chain " NFT_TABLE " input { type filter hook input priority -300 ; }\n"
	"add chain " NFT_TABLE " output { type filter hook output priority -300 ; }\n"
	"flush chain " NFT_TABLE " input\n"
	"flush chain " NFT_TABLE " output\n"
	"add rule " NFT_TABLE " input ip saddr . tcp sport . ip daddr . tcp "
	"dport @conns4 drop\n"
	"add rule " NFT_TABLE " input ip6 saddr . tcp sport . ip6 daddr . tcp "
	"dport @conns6 drop\n"
	"add rule " NFT_TABLE " output ip saddr . tcp sport . ip daddr . tcp "
	"dport @conns4 drop\n"
	"add rule " NFT_TABLE " output ip6 saddr . tcp sport . ip6 daddr . tcp "
	"dport @conns6 drop\n";

static int nft_block(const struct tuple *t, char *why, size_t wl)
{
	char buf[sizeof(nft_setup) + 256];

	snprintf(buf, sizeof(buf), "%s", nft_setup);
	tuple_element(t, "add", buf + strlen(buf), sizeof(buf) - strlen(buf));
	return nft_run(buf, why, wl);
}

/* Each element is added before it is deleted, in the one transaction: a
 * block already lifted is no failure (an image restored a second time,
 * or one from dump -R, which lifted its blocks as the processes went on),
 * and nft 1.0.6 has no "destroy" (delete if there). */
static int nft_unblock(const struct tuple *t, size_t n, char *why, size_t wl)
{
	size_t cap = 512 * n + 1, len = 0;
	char *buf = malloc(cap);
	int r;

	if (!buf)
		return snprintf(why, wl, "out of memory"), -1;
	buf[0] = 0;
	for (size_t i = 0; i < n; i++) {
		tuple_element(&t[i], "add", buf + len, cap - len);
		len += strlen(buf + len);
		tuple_element(&t[i], "delete", buf + len, cap - len);
		len += strlen(buf + len);
	}
	r = n ? nft_run(buf, why, wl) : 0;
	free(buf);
	return r;
}

/* ---- dump ---- */

/* A socket put in repair mode by this dump, and the blocks it made. */
struct held {
	int fd;        /* capcr's own copy */
	int reuseaddr; /* SO_REUSEADDR before repair mode */
	char what[200];
};
static struct held *held;
static size_t nheld;
struct block {
	struct tuple t;
	int external;
};
static struct block *blocks;
static size_t nblocks;
static int nft_missing; /* in-image connections go unblocked */

/* Room for one more of n elements of size bytes (the tables stay
 * small: one element per connection). */
static int grow(void **p, size_t n, size_t size)
{
	void *q = realloc(*p, (n + 1) * size);

	if (!q)
		return -1;
	*p = q;
	return 0;
}

static int socket_opt(int fd, int level, int opt, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	return getsockopt(fd, level, opt, v, &l);
}

static int match(const struct file_dump_in *in)
{
	int domain, type, proto;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!S_ISSOCK(in->st.st_mode) || in->copy < 0 ||
	    socket_opt(in->copy, SOL_SOCKET, SO_DOMAIN, &domain) < 0 ||
	    (domain != AF_INET && domain != AF_INET6) ||
	    socket_opt(in->copy, SOL_SOCKET, SO_TYPE, &type) < 0 ||
	    type != SOCK_STREAM ||
	    socket_opt(in->copy, SOL_SOCKET, SO_PROTOCOL, &proto) < 0 ||
	    proto != IPPROTO_TCP)
		return 0;
	return getpeername(in->copy, (struct sockaddr *)&ss, &sl) == 0;
}

/* The socket at the other end, if it is on this machine: its inode (0:
 * none found). */
static uint64_t peer_inode(int family, const struct sockaddr_storage *local,
			   const struct sockaddr_storage *peer)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req;
	static char buf[8192] __attribute__((aligned(8)));
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
			NETLINK_SOCK_DIAG);
	uint64_t ino = 0;

	if (nl < 0)
		return 0;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.h.nlmsg_seq = 1;
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] =
		INET_DIAG_NOCOOKIE;
	/* The peer's own view: its local address is our peer's. */
	if (family == AF_INET) {
		const struct sockaddr_in *l = (const void *)local,
					 *p = (const void *)peer;
		req.r.id.idiag_sport = p->sin_port;
		req.r.id.idiag_dport = l->sin_port;
		memcpy(req.r.id.idiag_src, &p->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &l->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *l = (const void *)local,
					  *p = (const void *)peer;
		req.r.id.idiag_sport = p->sin6_port;
		req.r.id.idiag_dport = l->sin6_port;
		memcpy(req.r.id.idiag_src, &p->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &l->sin6_addr, 16);
	}
	if (send(nl, &req, sizeof(req), 0) < 0) {
		close(nl);
		return 0;
	}
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		int len = (int)n, done = 0;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len)) {
			done = 1;
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				break;
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			/* inet_lookup falls back on a listener: only a
			 * connection back to us counts. */
			if (m->idiag_state != TCP_LISTEN &&
			    m->id.idiag_dport == req.r.id.idiag_dport)
				ino = m->idiag_inode;
			break;
		}
		if (done)
			break;
	}
	close(nl);
	return ino;
}

static int in_image(const struct file_dump_in *in, uint64_t ino)
{
	for (size_t i = 0; ino && i < in->nsock_inos; i++)
		if ((uint64_t)in->sock_inos[i] == ino)
			return 1;
	return 0;
}

static const char *state_name(int s)
{
	static const char *const n[] = {
		"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
		"FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
		"LISTEN", "CLOSING", "NEW_SYN_RECV",
	};
	return s >= 0 && s < (int)(sizeof(n) / sizeof(n[0])) ? n[s] : "?";
}

/* Block the connection unless this dump did already (its other end). */
static int block_conn(struct file_dump_env *env, const struct tuple *t,
		      int external, const char *what)
{
	char why[600] = "";

	for (size_t i = 0; i < nblocks; i++)
		if (tuple_same_conn(&blocks[i].t, t)) {
			blocks[i].external |= external;
			return 0;
		}
	if (!external && nft_missing)
		return 0;
	if (nft_block(t, why, sizeof(why)) < 0) {
		if (!external && strstr(why, "cannot run nft")) {
			/* Both ends are frozen: little moves between them
			 * anyway. */
			nft_missing = 1;
			capcr_debug("%s; TCP connections inside the image are "
				    "dumped without blocking them",
				    why);
			return 0;
		}
		return FILE_FAIL(env, "cannot block the TCP connection %s "
				      "with nftables: %s",
				 what, why);
	}
	if (grow((void **)&blocks, nblocks, sizeof(*blocks)) < 0)
		return FILE_FAIL(env, "out of memory");
	blocks[nblocks].t = *t;
	blocks[nblocks++].external = external;
	return 0;
}

static int set_queue(int fd, int q)
{
	return setsockopt(fd, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
}

/* One queue's sequence number and len bytes (peeked), into buf. */
static int read_queue(int fd, int q, uint32_t *seq, char *buf, uint32_t len,
		      const char **step)
{
	socklen_t l = sizeof(*seq);

	*step = "TCP_REPAIR_QUEUE";
	if (set_queue(fd, q) < 0)
		return -1;
	*step = "TCP_QUEUE_SEQ";
	if (getsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, seq, &l) < 0)
		return -1;
	if (!len)
		return 0;
	*step = "peeking at the queue";
	/* One byte more than there should be: exactly len must come. */
	ssize_t n;
	do
		n = recv(fd, buf, (size_t)len + 1, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		*step = "peeking at the queue (it changed while it was read)";
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	struct sockaddr_storage ls, ps;
	socklen_t ll = sizeof(ls), pl = sizeof(ps);
	char lw[INET6_ADDRSTRLEN + 16], pw[INET6_ADDRSTRLEN + 16], what[200];
	int domain, fd = in->copy;
	struct tcp_info ti;
	socklen_t til = sizeof(ti);
	const char *step = "";

	socket_opt(fd, SOL_SOCKET, SO_DOMAIN, &domain);
	memset(&ls, 0, sizeof(ls));
	memset(&ps, 0, sizeof(ps));
	if (getsockname(fd, (struct sockaddr *)&ls, &ll) < 0 ||
	    getpeername(fd, (struct sockaddr *)&ps, &pl) < 0)
		return FILE_FAIL(env, "cannot read the addresses of the TCP "
				      "socket at descriptor %d of process %d: "
				      "%s",
				 in->fd, in->pid, strerror(errno));
	socket_describe(&ls, ll, lw, sizeof(lw));
	socket_describe(&ps, pl, pw, sizeof(pw));
	snprintf(what, sizeof(what), "%s -> %s (descriptor %d of process %d)",
		 lw, pw, in->fd, in->pid);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &til) < 0)
		return FILE_FAIL(env, "cannot read TCP_INFO of %s: %s", what,
				 strerror(errno));

	uint64_t peer = peer_inode(domain, &ls, &ps);
	int inside = in_image(in, peer);
	if (!inside && !dump_external) {
		/* Today's ways: refused, --tcp-close, or reconnected as the
		 * application allowed (socket.c, ext_conn.c). */
		f->kind = CAPCR__FILE_KIND__FILE_SOCKET;
		return file_socket.dump(env, in, f);
	}
	if (ti.tcpi_state != TCP_ESTABLISHED)
		return FILE_FAIL(env, "the TCP connection %s is in state %s; "
				      "capcr checkpoints established "
				      "connections only",
				 what, state_name(ti.tcpi_state));
	struct stat theirs, ours;
	char nspath[64];
	snprintf(nspath, sizeof(nspath), "/proc/%d/ns/net", in->pid);
	if (stat(nspath, &theirs) == 0 && stat("/proc/self/ns/net", &ours) == 0 &&
	    (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev))
		return FILE_FAIL(env, "the TCP connection %s is in another "
				      "network namespace than capcr; capcr "
				      "cannot checkpoint it yet",
				 what);

	struct tuple t;
	if (tuple_of(&ls, &ps, &t) < 0)
		return FILE_FAIL(env, "%s: family %d", what, ls.ss_family);

	Capcr__Tcp *tc = ARENA_NEW(env->arena, Capcr__Tcp);
	capcr__tcp__init(tc);
	f->tcp = tc;
	f->has_socket_domain = f->has_socket_type = f->has_socket_protocol = 1;
	f->socket_domain = domain;
	f->socket_type = SOCK_STREAM;
	f->socket_protocol = IPPROTO_TCP;
	f->has_socket_ino = 1;
	f->socket_ino = (uint64_t)in->st.st_ino;
	f->has_socket_addr = f->has_socket_peer_addr = 1;
	f->socket_addr.len = ll;
	f->socket_addr.data = arena_memdup(env->arena, &ls, ll);
	f->socket_peer_addr.len = pl;
	f->socket_peer_addr.data = arena_memdup(env->arena, &ps, pl);
	char path[sizeof(lw) + sizeof(pw) + 16];
	snprintf(path, sizeof(path), "tcp %s -> %s", lw, pw);
	f->path = arena_strdup(env->arena, path);
	if (inside) {
		tc->has_peer_ino = 1;
		tc->peer_ino = peer;
	} else {
		tc->has_external = 1;
		tc->external = 1;
	}

	/* Options, read before repair mode changes anything. */
	int v;
	if (socket_opt(fd, SOL_SOCKET, SO_REUSEADDR, &v) < 0)
		goto opt_fail_reuse;
	tc->has_reuseaddr = 1;
	tc->reuseaddr = v != 0;
	static const struct {
		int level, opt;
		const char *name;
	} opts[] = {
		{ SOL_TCP, TCP_NODELAY, "TCP_NODELAY" },
		{ SOL_TCP, TCP_CORK, "TCP_CORK" },
		{ SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE" },
		{ SOL_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE" },
		{ SOL_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL" },
		{ SOL_TCP, TCP_KEEPCNT, "TCP_KEEPCNT" },
		{ SOL_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT" },
		{ SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF" },
		{ SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF" },
	};
	int val[sizeof(opts) / sizeof(opts[0])];
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (socket_opt(fd, opts[i].level, opts[i].opt, &val[i]) < 0)
			return FILE_FAIL(env, "cannot read %s of %s: %s",
					 opts[i].name, what, strerror(errno));
	tc->has_nodelay = tc->has_cork = tc->has_keepalive = 1;
	tc->nodelay = val[0] != 0;
	tc->cork = val[1] != 0;
	tc->keepalive = val[2] != 0;
	tc->has_keepidle = tc->has_keepintvl = tc->has_keepcnt = 1;
	tc->keepidle = (uint32_t)val[3];
	tc->keepintvl = (uint32_t)val[4];
	tc->keepcnt = (uint32_t)val[5];
	tc->has_user_timeout = 1;
	tc->user_timeout = (uint32_t)val[6];
	f->has_socket_sndbuf = f->has_socket_rcvbuf = 1;
	f->socket_sndbuf = (uint32_t)val[7];
	f->socket_rcvbuf = (uint32_t)val[8];
	/* SO_PEEK_OFF: -1 when not in use (or not known for TCP). */
	int peek_off = -1;
	socklen_t pol = sizeof(peek_off);
	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &peek_off, &pol) < 0)
		peek_off = -1;
	if (peek_off >= 0) {
		f->has_socket_peek_off = 1;
		f->socket_peek_off = peek_off;
	}

	/* Nothing moves between the ends from here on. */
	if (block_conn(env, &t, !inside, what) < 0)
		return -1;
	if (grow((void **)&held, nheld, sizeof(*held)) < 0)
		return FILE_FAIL(env, "out of memory");
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0), on = TCP_REPAIR_ON;
	if (copy < 0)
		return FILE_FAIL(env, "cannot keep a copy of %s: %s", what,
				 strerror(errno));
	if (setsockopt(copy, SOL_TCP, TCP_REPAIR, &on, sizeof(on)) < 0) {
		int e = errno;
		close(copy);
		return FILE_FAIL(env, "cannot put %s in repair mode "
				      "(TCP_REPAIR): %s%s",
				 what, strerror(e),
				 e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
	}
	held[nheld].fd = copy;
	held[nheld].reuseaddr = tc->reuseaddr;
	snprintf(held[nheld].what, sizeof(held[nheld].what), "%s", what);
	nheld++;

	int inq, outq, unsq;
	step = "SIOCINQ";
	if (ioctl(fd, SIOCINQ, &inq) < 0)
		goto fail;
	step = "SIOCOUTQ";
	if (ioctl(fd, SIOCOUTQ, &outq) < 0)
		goto fail;
	step = "SIOCOUTQNSD";
	if (ioctl(fd, SIOCOUTQNSD, &unsq) < 0)
		goto fail;
	step = "TCP_INFO";
	til = sizeof(ti);
	if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &til) < 0)
		goto fail;
	if (inq < 0 || outq < 0 || unsq < 0 || unsq > outq ||
	    (uint32_t)inq > TCP_QUEUE_MAX || (uint32_t)outq > TCP_QUEUE_MAX)
		return FILE_FAIL(env, "%s has %d bytes not read and %d not "
				      "acknowledged (%d never sent): more than "
				      "capcr keeps",
				 what, inq, outq, unsq);
	tc->state = ti.tcpi_state;
	tc->inq_len = (uint32_t)inq;
	tc->outq_len = (uint32_t)outq;
	tc->unsq_len = (uint32_t)unsq;
	tc->opt_mask = ti.tcpi_options;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		tc->has_snd_wscale = tc->has_rcv_wscale = 1;
		tc->snd_wscale = ti.tcpi_snd_wscale;
		tc->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	step = "TCP_MAXSEG";
	if (socket_opt(fd, SOL_TCP, TCP_MAXSEG, &v) < 0)
		goto fail;
	tc->mss_clamp = (uint32_t)v;
	if (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) {
		step = "TCP_TIMESTAMP";
		if (socket_opt(fd, SOL_TCP, TCP_TIMESTAMP, &v) < 0)
			goto fail;
		tc->has_timestamp = 1;
		tc->timestamp = (uint32_t)v;
	}
	struct tcp_repair_window w;
	socklen_t wl = sizeof(w);
	step = "TCP_REPAIR_WINDOW";
	if (getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &w, &wl) < 0)
		goto fail;
	tc->has_snd_wl1 = tc->has_snd_wnd = tc->has_max_window =
		tc->has_rcv_wnd = tc->has_rcv_wup = 1;
	tc->snd_wl1 = w.snd_wl1;
	tc->snd_wnd = w.snd_wnd;
	tc->max_window = w.max_window;
	tc->rcv_wnd = w.rcv_wnd;
	tc->rcv_wup = w.rcv_wup;

	/* The queues: a peek offset in use would move the peek. */
	char *buf = malloc((size_t)inq + (size_t)outq + 2);
	int zero = 0, r = 0;
	if (!buf)
		return FILE_FAIL(env, "out of memory for the queues of %s",
				 what);
	if (peek_off >= 0)
		setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero));
	if (read_queue(fd, TCP_RECV_QUEUE, &tc->inq_seq, buf, tc->inq_len,
		       &step) < 0 ||
	    read_queue(fd, TCP_SEND_QUEUE, &tc->outq_seq, buf + inq,
		       tc->outq_len, &step) < 0)
		r = -1;
	int e = errno;
	set_queue(fd, TCP_NO_QUEUE);
	if (peek_off >= 0)
		setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &peek_off,
			   sizeof(peek_off));
	if (r < 0) {
		free(buf);
		errno = e;
		goto fail;
	}
	capcr_debug("%s: %u bytes to read, %u not acknowledged, %u of them "
		    "never sent; options 0x%x, MSS %u",
		    what, tc->inq_len, tc->outq_len, tc->unsq_len, tc->opt_mask,
		    tc->mss_clamp);
	if (inq + outq > 0) {
		char name[64];
		struct image_data d;
		snprintf(name, sizeof(name), "tcp-%llu.img",
			 (unsigned long long)f->socket_ino);
		int k = image_data_open(env->img, &d, name);
		if (k < 0) {
			free(buf);
			return FILE_FAIL(env, "cannot create %s: %s", name,
					 strerror(-k));
		}
		k = image_data_write(&d, buf, (size_t)inq + (size_t)outq);
		int c = image_data_close(env->img, &d);
		free(buf);
		if (k < 0 || c < 0)
			return FILE_FAIL(env, "cannot write %s: %s", name,
					 strerror(k < 0 ? -k : -c));
		f->socket_queue_file = arena_strdup(env->arena, name);
	} else {
		free(buf);
	}
	return 0;
fail:
	return FILE_FAIL(env, "cannot read the TCP state of %s (%s): %s", what,
			 step, strerror(errno));
opt_fail_reuse:
	return FILE_FAIL(env, "cannot read SO_REUSEADDR of %s: %s", what,
			 strerror(errno));
}

void tcp_dump_end(enum tcp_dump_end how)
{
	char why[600] = "";
	struct tuple *un = calloc(nblocks + 1, sizeof(*un));
	size_t nun = 0;

	/* Blocks first: the window probe that leaving repair mode sends
	 * goes through. */
	for (size_t i = 0; un && i < nblocks; i++)
		if (how != TCP_DUMP_KILLED || !blocks[i].external)
			un[nun++] = blocks[i].t;
	if (nun && nft_unblock(un, nun, why, sizeof(why)) < 0)
		capcr_warn("cannot lift the nftables block of %zu TCP "
			   "connection%s (table %s): %s",
			   nun, nun == 1 ? "" : "s", NFT_TABLE, why);
	free(un);
	for (size_t i = 0; i < nheld; i++) {
		int off = TCP_REPAIR_OFF;
		if (how != TCP_DUMP_KILLED) {
			if (setsockopt(held[i].fd, SOL_TCP, TCP_REPAIR, &off,
				       sizeof(off)) < 0)
				capcr_warn("cannot take %s out of repair "
					   "mode: %s",
					   held[i].what, strerror(errno));
			setsockopt(held[i].fd, SOL_SOCKET, SO_REUSEADDR,
				   &held[i].reuseaddr,
				   sizeof(held[i].reuseaddr));
		}
		/* Killed: the last reference, closed in repair mode,
		 * sends nothing. */
		close(held[i].fd);
	}
	free(held);
	free(blocks);
	held = NULL;
	blocks = NULL;
	nheld = nblocks = 0;
}

/* ---- restore ---- */

/* A socket made in repair mode, to be let out of it at release. */
struct made {
	uint64_t ino;
	int fd;        /* capcr restore's own copy */
	int reuseaddr;
	int sndbuf;    /* SO_SNDBUF to put back, or 0 */
	char *unsent;  /* never sent at the dump: written at release */
	size_t nunsent;
	int external;
	struct tuple t;
};
static struct made *made;
static size_t nmade;

static int force_buf(int fd, int opt, uint32_t bytes)
{
	/* The kernel doubles what it is given. */
	int v = (int)(bytes / 2);

	return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

/* Queue bytes in repair mode: ENOMEM for a chunk too big for one buffer,
 * halved until it goes (as CRIU). */
static int repair_send(int fd, int q, const char *buf, size_t len)
{
	size_t max = len;

	if (!len)
		return 0;
	if (set_queue(fd, q) < 0)
		return -1;
	while (len) {
		size_t chunk = len < max ? len : max;
		ssize_t n = send(fd, buf, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (max > 1024 && (n == 0 || errno == ENOMEM)) {
				max /= 2;
				continue;
			}
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	const Capcr__Tcp *tc = f->tcp;
	const char *what = f->path ? f->path : "a TCP connection";
	const char *step = "";
	char *q = NULL;
	int fd = -1, v, e;

	if (!tc)
		return FILE_FAIL(env, "%s has no TCP state", what);
	if (tc->external && !restore_external)
		return FILE_FAIL(env, "the image holds %s, whose peer is outside "
				      "it (dumped with --tcp-established); "
				      "restore with --tcp-established to "
				      "bring it back",
				 what);
	struct tuple t;
	tuple_of(f->socket_addr.data, f->socket_peer_addr.data, &t);
	/* Repair mode binds past every conflict, as root: an image of
	 * another user gets no port that user could not bind. */
	long unpriv = 1024;
	FILE *pf = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
	if (pf) {
		if (fscanf(pf, "%ld", &unpriv) != 1)
			unpriv = 1024;
		fclose(pf);
	}
	if (env->img->owner_uid != 0 && t.sport < unpriv)
		return FILE_FAIL(env, "%s: its local port %u is privileged "
				      "(below %ld), and the image belongs to "
				      "user %u, not root",
				 what, t.sport, unpriv,
				 (unsigned)env->img->owner_uid);
	if (grow((void **)&made, nmade, sizeof(*made)) < 0)
		return FILE_FAIL(env, "out of memory");
	size_t total = (size_t)tc->inq_len + tc->outq_len;
	if (total) {
		int src = f->socket_queue_file
				  ? image_open_data(env->img,
						    f->socket_queue_file)
				  : -1;
		if (src < 0)
			return FILE_FAIL(env, "the queues of %s: %s", what,
					 f->socket_queue_file
						 ? image_error()
						 : "no queue file");
		q = malloc(total);
		if (!q || files_read_full(src, q, total) < 0) {
			e = errno;
			close(src);
			free(q);
			return FILE_FAIL(env, "cannot read %s: %s",
					 f->socket_queue_file,
					 q ? strerror(e) : "out of memory");
		}
		close(src);
	}

	step = "socket";
	fd = socket(f->socket_domain, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		goto fail;
	v = TCP_REPAIR_ON;
	step = "TCP_REPAIR";
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR, &v, sizeof(v)) < 0)
		goto fail;
	/* Room for the queues while they are put back. */
	uint32_t rb = f->has_socket_rcvbuf ? f->socket_rcvbuf : 0;
	uint32_t sb = f->has_socket_sndbuf ? f->socket_sndbuf : 0;
	uint64_t need_r = 2 * (uint64_t)tc->inq_len + 65536;
	uint64_t need_s = 2 * (uint64_t)tc->outq_len + 65536;
	step = "SO_RCVBUFFORCE";
	if (force_buf(fd, SO_RCVBUFFORCE,
		      (uint32_t)(need_r > rb ? need_r : rb)) < 0)
		goto fail;
	step = "SO_SNDBUFFORCE";
	if (force_buf(fd, SO_SNDBUFFORCE,
		      (uint32_t)(need_s > sb ? need_s : sb)) < 0)
		goto fail;
	step = "bind";
	if (bind(fd, (const struct sockaddr *)f->socket_addr.data, (socklen_t)f->socket_addr.len) < 0) {
		/* The address is not (yet) on this machine. */
		int one = 1, zero = 0;
		int lvl = f->socket_domain == AF_INET6 ? SOL_IPV6 : SOL_IP;
		int opt = f->socket_domain == AF_INET6 ? IPV6_FREEBIND
						       : IP_FREEBIND;
		if (errno != EADDRNOTAVAIL ||
		    setsockopt(fd, lvl, opt, &one, sizeof(one)) < 0 ||
		    bind(fd, (const struct sockaddr *)f->socket_addr.data,
			 (socklen_t)f->socket_addr.len) < 0)
			goto fail;
		setsockopt(fd, lvl, opt, &zero, sizeof(zero));
	}
	uint32_t seq = tc->inq_seq - tc->inq_len;
	step = "the receive queue's sequence number";
	if (set_queue(fd, TCP_RECV_QUEUE) < 0 ||
	    setsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &seq, sizeof(seq)) < 0)
		goto fail;
	seq = tc->outq_seq - tc->outq_len;
	step = "the send queue's sequence number";
	if (set_queue(fd, TCP_SEND_QUEUE) < 0 ||
	    setsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &seq, sizeof(seq)) < 0)
		goto fail;
	step = "connect (in repair mode)";
	int r;
	do
		r = connect(fd, (const struct sockaddr *)f->socket_peer_addr.data,
			    (socklen_t)f->socket_peer_addr.len);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		goto fail;
	struct tcp_repair_opt o[4];
	int no = 0;
	if (tc->opt_mask & TCPI_OPT_SACK)
		o[no++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (tc->opt_mask & TCPI_OPT_WSCALE)
		o[no++] = (struct tcp_repair_opt){
			TCPOPT_WINDOW, tc->snd_wscale + (tc->rcv_wscale << 16)
		};
	if (tc->opt_mask & TCPI_OPT_TIMESTAMPS)
		o[no++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	o[no++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, tc->mss_clamp };
	step = "TCP_REPAIR_OPTIONS";
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR_OPTIONS, o,
		       (socklen_t)(no * sizeof(o[0]))) < 0)
		goto fail;
	if (tc->opt_mask & TCPI_OPT_TIMESTAMPS) {
		step = "TCP_TIMESTAMP";
		v = (int)tc->timestamp;
		if (setsockopt(fd, SOL_TCP, TCP_TIMESTAMP, &v, sizeof(v)) < 0)
			goto fail;
	}
	step = "putting back the receive queue";
	if (repair_send(fd, TCP_RECV_QUEUE, q, tc->inq_len) < 0)
		goto fail;
	size_t sent = (size_t)tc->outq_len - tc->unsq_len;
	step = "putting back the send queue";
	if (repair_send(fd, TCP_SEND_QUEUE, q ? q + tc->inq_len : NULL, sent) <
	    0)
		goto fail;
	set_queue(fd, TCP_NO_QUEUE);
	if (tc->has_snd_wnd) {
		struct tcp_repair_window w = {
			.snd_wl1 = tc->snd_wl1,
			.snd_wnd = tc->snd_wnd,
			.max_window = tc->max_window,
			.rcv_wnd = tc->rcv_wnd,
			.rcv_wup = tc->rcv_wup,
		};
		step = "TCP_REPAIR_WINDOW";
		if (setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) <
		    0)
			goto fail;
	}
	/* Options; nothing unsent is queued yet, so NODELAY and CORK
	 * push nothing out. */
	const struct {
		int has, level, opt, val;
		const char *name;
	} opts[] = {
		{ tc->has_nodelay, SOL_TCP, TCP_NODELAY, tc->nodelay,
		  "TCP_NODELAY" },
		{ tc->has_cork && tc->cork, SOL_TCP, TCP_CORK, 1, "TCP_CORK" },
		{ tc->has_keepidle && tc->keepidle, SOL_TCP, TCP_KEEPIDLE,
		  (int)tc->keepidle, "TCP_KEEPIDLE" },
		{ tc->has_keepintvl && tc->keepintvl, SOL_TCP, TCP_KEEPINTVL,
		  (int)tc->keepintvl, "TCP_KEEPINTVL" },
		{ tc->has_keepcnt && tc->keepcnt, SOL_TCP, TCP_KEEPCNT,
		  (int)tc->keepcnt, "TCP_KEEPCNT" },
		{ tc->has_user_timeout && tc->user_timeout, SOL_TCP,
		  TCP_USER_TIMEOUT, (int)tc->user_timeout,
		  "TCP_USER_TIMEOUT" },
		{ tc->has_keepalive && tc->keepalive, SOL_SOCKET, SO_KEEPALIVE,
		  1, "SO_KEEPALIVE" },
	};
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (!opts[i].has)
			continue;
		step = opts[i].name;
		if (setsockopt(fd, opts[i].level, opts[i].opt, &opts[i].val,
			       sizeof(opts[i].val)) < 0)
			goto fail;
	}
	if (rb && (uint64_t)rb < need_r) {
		step = "SO_RCVBUFFORCE";
		if (force_buf(fd, SO_RCVBUFFORCE, rb) < 0)
			goto fail;
	}
	if (f->has_socket_peek_off) {
		v = f->socket_peek_off;
		setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	}

	struct made *m = &made[nmade];
	memset(m, 0, sizeof(*m));
	m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (m->fd < 0) {
		step = "keeping a copy";
		goto fail;
	}
	m->ino = f->socket_ino;
	m->reuseaddr = tc->has_reuseaddr && tc->reuseaddr;
	m->sndbuf = sb && (uint64_t)sb < need_s ? (int)sb : 0;
	m->external = tc->external;
	m->t = t;
	if (tc->unsq_len) {
		m->unsent = malloc(tc->unsq_len);
		if (!m->unsent) {
			close(m->fd);
			errno = ENOMEM;
			step = "keeping the unsent data";
			goto fail;
		}
		memcpy(m->unsent, q + tc->inq_len + sent, tc->unsq_len);
		m->nunsent = tc->unsq_len;
	}
	nmade++;
	free(q);
	return fd;
fail:
	e = errno;
	if (fd >= 0)
		close(fd); /* in repair mode: silently */
	free(q);
	return FILE_FAIL(env, "cannot make %s again (%s): %s%s", what, step,
			 strerror(e),
			 e == EPERM ? " (TCP_REPAIR needs CAP_NET_ADMIN)" : "");
}

/* Just before the processes run: out of repair mode, with what was never
 * sent written now.  Nothing can fail any more: a problem is told. */
static int release(const Capcr__File *f)
{
	struct made *m = NULL;
	char why[600] = "";
	int off = TCP_REPAIR_OFF;

	for (size_t i = 0; i < nmade; i++)
		if (made[i].fd >= 0 && made[i].ino == f->socket_ino)
			m = &made[i];
	if (!m)
		return 0;
	if (m->external && nft_unblock(&m->t, 1, why, sizeof(why)) < 0)
		capcr_warn("%s: cannot lift its nftables block (table %s): "
			   "%s",
			   f->path, NFT_TABLE, why);
	if (setsockopt(m->fd, SOL_TCP, TCP_REPAIR, &off, sizeof(off)) < 0)
		capcr_warn("%s: cannot leave repair mode: %s", f->path,
			   strerror(errno));
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &m->reuseaddr,
		   sizeof(m->reuseaddr));
	for (size_t done = 0; done < m->nunsent;) {
		ssize_t n = send(m->fd, m->unsent + done, m->nunsent - done,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			capcr_err("%s: %zu bytes that were never sent before "
				  "the dump could not be queued again: %s",
				  f->path, m->nunsent - done,
				  n < 0 ? strerror(errno) : "nothing taken");
			break;
		}
		done += (size_t)n;
	}
	if (m->sndbuf)
		force_buf(m->fd, SO_SNDBUFFORCE, (uint32_t)m->sndbuf);
	close(m->fd);
	m->fd = -1;
	free(m->unsent);
	m->unsent = NULL;
	return 0;
}

const struct file_ops file_tcp = {
	.kind = CAPCR__FILE_KIND__FILE_TCP,
	.name = "tcp",
	.match = match,
	.dump = dump,
	.restore = restore,
	.release = release,
};
