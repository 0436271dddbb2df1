/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: socket options and UDP sockets.  See
 * crtest.h; run by tests/t_sockopts.sh.
 *
 *   - a Unix stream socketpair, each end with its own set of options
 *     (buffer sizes, SO_PASSCRED, SO_PASSSEC, SO_RCVLOWAT, timeouts,
 *     SO_KEEPALIVE, SO_LINGER, SO_OOBINLINE, SO_TIMESTAMPNS, SO_PRIORITY,
 *     SO_DONTROUTE, SO_BROADCAST, SO_NO_CHECK, a locked classic BPF
 *     filter, SO_MARK) and a few bytes queued;
 *   - a Unix datagram socket bound to an abstract name, with a filter,
 *     SO_TIMESTAMP and a datagram queued on it;
 *   - a TCP listener on 127.0.0.1 (SO_REUSEADDR, SO_REUSEPORT, keepalive
 *     and TCP_KEEP*, SO_LINGER, TCP_NODELAY, TCP_CORK, TCP_USER_TIMEOUT,
 *     TCP_CONGESTION, TCP_FASTOPEN, IP_TOS, IP_TTL, IP_FREEBIND,
 *     IP_TRANSPARENT, SO_BINDTODEVICE lo, buffers, SO_PRIORITY, SO_MARK);
 *   - a TCP listener on [::1] with IPV6_V6ONLY, IPV6_UNICAST_HOPS,
 *     IPV6_TCLASS, IPV6_FREEBIND and more;
 *   - a UDP socket bound to 127.0.0.1 (SO_BROADCAST, SO_NO_CHECK,
 *     IP_PKTINFO, IP_RECVERR, IP_MTU_DISCOVER, IP_TTL, IP_TOS,
 *     SO_TIMESTAMP, a filter, buffers) with three datagrams queued: two
 *     from the connected socket below, one from a socket since closed;
 *   - a UDP socket connected to it (its port given by the connect), with
 *     a datagram queued from its peer;
 *   - an IPv6 UDP pair the same way ([::1], IPV6_V6ONLY,
 *     IPV6_RECVPKTINFO), a datagram queued each way.
 * Every option is read back with getsockopt right after it is set; after
 * the go file every one is read again and must be the same, as must every
 * address (getsockname, getpeername).  The queued datagrams must come out
 * in order with their senders' addresses (capcr keeps UDP queues; see
 * src/files/udp.c), the Unix ones too; then every socket must still work:
 * UDP round trips both ways, a connection to each listener.
 *
 * With the argument "unpriv" (run as an unprivileged user) only what such
 * a user may set is set: no SO_MARK, no SO_PRIORITY above 6, no
 * IP_TRANSPARENT, an allowed congestion control.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "crtest.h"

static int priv = 1;

/* What getsockopt said right after the setup. */
struct rec {
	char what[80];
	int fd, level, opt;
	socklen_t len;
	unsigned char val[64];
};
static struct rec recs[256];
static int nrecs;

static void rec_get(struct rec *r, unsigned char *out, socklen_t *len)
{
	memset(out, 0, 64);
	if (r->opt == SO_GET_FILTER && r->level == SOL_SOCKET) {
		/* the number of instructions */
		socklen_t n = 0;
		int k = getsockopt(r->fd, SOL_SOCKET, SO_GET_FILTER, NULL, &n);
		memcpy(out, &n, sizeof(n));
		*len = k < 0 ? 0 : sizeof(n);
		return;
	}
	*len = 64;
	if (getsockopt(r->fd, r->level, r->opt, out, len) < 0)
		*len = 0;
}

/* Set an int option, read it back, remember it. */
static void seti(const char *sock, int fd, int level, int opt,
		 const char *name, int v)
{
	struct rec *r = &recs[nrecs++];
	char what[80];

	snprintf(what, sizeof(what), "%s %s", sock, name);
	if (setsockopt(fd, level, opt, &v, sizeof(v)) < 0) {
		printf("FAIL: cr_sockopts: setup: %s = %d: %s\n", what, v,
		       strerror(errno));
		exit(2);
	}
	snprintf(r->what, sizeof(r->what), "%s", what);
	r->fd = fd;
	r->level = level;
	r->opt = opt;
	rec_get(r, r->val, &r->len);
}

/* Set any option, read it back, remember it. */
static void setb(const char *sock, int fd, int level, int opt,
		 const char *name, const void *v, socklen_t vl)
{
	struct rec *r = &recs[nrecs++];

	snprintf(r->what, sizeof(r->what), "%s %s", sock, name);
	if (setsockopt(fd, level, opt, v, vl) < 0) {
		printf("FAIL: cr_sockopts: setup: %s: %s\n", r->what,
		       strerror(errno));
		exit(2);
	}
	r->fd = fd;
	r->level = level;
	r->opt = opt == SO_ATTACH_FILTER && level == SOL_SOCKET ? SO_GET_FILTER
								: opt;
	rec_get(r, r->val, &r->len);
}

/* Remember an option without setting it (what it is by default). */
static void keepopt(const char *sock, int fd, int level, int opt,
		    const char *name)
{
	struct rec *r = &recs[nrecs++];

	snprintf(r->what, sizeof(r->what), "%s %s", sock, name);
	r->fd = fd;
	r->level = level;
	r->opt = opt;
	rec_get(r, r->val, &r->len);
}

static void check_recs(void)
{
	for (int i = 0; i < nrecs; i++) {
		unsigned char now[64];
		socklen_t l;
		rec_get(&recs[i], now, &l);
		CHECK(l == recs[i].len && !memcmp(now, recs[i].val, l),
		      "%s: %u bytes %02x%02x%02x%02x..., was %u bytes "
		      "%02x%02x%02x%02x...",
		      recs[i].what, l, now[0], now[1], now[2], now[3],
		      recs[i].len, recs[i].val[0], recs[i].val[1],
		      recs[i].val[2], recs[i].val[3]);
	}
	cr_info("%d option readings compared", nrecs);
}

/* Addresses: what getsockname / getpeername said after the setup. */
struct addr_rec {
	const char *what;
	int fd, peer;
	socklen_t len;
	struct sockaddr_storage a;
};
static struct addr_rec addrs[32];
static int naddrs;

static void keep_addr(const char *what, int fd, int peer)
{
	struct addr_rec *r = &addrs[naddrs++];
	r->what = what;
	r->fd = fd;
	r->peer = peer;
	r->len = sizeof(r->a);
	SETUP((peer ? getpeername(fd, (void *)&r->a, &r->len)
		    : getsockname(fd, (void *)&r->a, &r->len)) == 0,
	      what);
}

static void check_addrs(void)
{
	for (int i = 0; i < naddrs; i++) {
		struct sockaddr_storage a;
		socklen_t l = sizeof(a);
		memset(&a, 0, sizeof(a));
		int k = addrs[i].peer ? getpeername(addrs[i].fd, (void *)&a, &l)
				      : getsockname(addrs[i].fd, (void *)&a, &l);
		CHECK(k == 0 && l == addrs[i].len && !memcmp(&a, &addrs[i].a, l),
		      "%s: the %s address changed (%s)", addrs[i].what,
		      addrs[i].peer ? "peer's" : "own",
		      k ? strerror(errno) : "differs");
	}
	cr_info("%d addresses compared", naddrs);
}

static int same_addr(const struct sockaddr_storage *a, socklen_t al,
		     const struct sockaddr_storage *b, socklen_t bl)
{
	return al == bl && !memcmp(a, b, al);
}

/* One datagram, waiting for it a little: its length, or -1. */
static ssize_t recv_dgram(int fd, void *buf, size_t n,
			  struct sockaddr_storage *from, socklen_t *fl)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 3000) != 1)
		return -2;
	if (from) {
		*fl = sizeof(*from);
		memset(from, 0, sizeof(*from));
	}
	return recvfrom(fd, buf, n, MSG_DONTWAIT, (void *)from, from ? fl : NULL);
}

/* The datagram queued on fd is want, from sender (NULL: anyone). */
static void expect_dgram(const char *what, int fd, const char *want,
			 const struct sockaddr_storage *sender, socklen_t sl)
{
	char b[256];
	struct sockaddr_storage from;
	socklen_t fl = 0;
	ssize_t n = recv_dgram(fd, b, sizeof(b) - 1, &from, &fl);

	if (!CHECK(n == (ssize_t)strlen(want) && !memcmp(b, want, (size_t)n),
		   "%s: got %zd bytes '%.*s', want '%s'", what, n,
		   n > 0 ? (int)n : 0, b, want))
		return;
	if (sender)
		CHECK(same_addr(&from, fl, sender, sl),
		      "%s: '%s' comes from another sender", what, want);
}

static void nothing_more(const char *what, int fd)
{
	char b[64];
	CHECK(recv(fd, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN,
	      "%s: more is queued than was", what);
}

static struct sock_filter accept_all[] = {
	/* ld len; ret #0x40000 (keep the whole packet) */
	BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
	BPF_STMT(BPF_RET | BPF_K, 0x40000),
};

/* A TCP listener still takes connections. */
static void listener_works(const char *what, int l, int family)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);
	int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), s = -1;
	char b[8] = "";

	getsockname(l, (void *)&a, &al);
	if (CHECK(c >= 0 && connect(c, (void *)&a, al) == 0,
		  "%s: cannot connect to it: %s", what, strerror(errno))) {
		struct pollfd p = { .fd = l, .events = POLLIN };
		if (poll(&p, 1, 3000) == 1)
			s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		CHECK(s >= 0, "%s: accepts nothing", what);
		if (s >= 0) {
			CHECK(write(c, "hi", 2) == 2, "%s: write", what);
			p.fd = s;
			CHECK(poll(&p, 1, 3000) == 1 && read(s, b, 2) == 2 &&
				      !memcmp(b, "hi", 2),
			      "%s: the accepted connection reads nothing",
			      what);
			/* The client closes first: its end, not the
			 * listener's port, stays in TIME_WAIT. */
			close(c);
			c = -1;
			CHECK(poll(&p, 1, 3000) == 1 && read(s, b, 2) == 0,
			      "%s: no end of file after the client closed",
			      what);
			close(s);
		}
	}
	if (c >= 0)
		close(c);
}

int main(int argc, char **argv)
{
	int u[2], ud, t4, t6, ub, uc, v6b, v6c, tmp;
	struct sockaddr_in lo4 = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6,
				    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_storage ub_a, uc_a, tmp_a, v6b_a, v6c_a;
	socklen_t ub_l, uc_l, tmp_l, v6b_l, v6c_l;
	struct timeval tv;
	struct linger lg;
	struct sock_fprog fp = { 2, accept_all };

	cr_init("cr_sockopts");
	priv = !(argc > 1 && !strcmp(argv[1], "unpriv"));

	/* ---- Unix stream pair ---- */
	SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u) == 0,
	      "socketpair");
	seti("unix stream a", u[0], SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 50000);
	seti("unix stream a", u[0], SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 60000);
	seti("unix stream a", u[0], SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED", 1);
	seti("unix stream a", u[0], SOL_SOCKET, SO_PASSSEC, "SO_PASSSEC", 1);
	seti("unix stream a", u[0], SOL_SOCKET, SO_RCVLOWAT, "SO_RCVLOWAT", 3);
	tv = (struct timeval){ 2, 500000 };
	setb("unix stream a", u[0], SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", &tv,
	     sizeof(tv));
	tv = (struct timeval){ 1, 250000 };
	setb("unix stream a", u[0], SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO", &tv,
	     sizeof(tv));
	seti("unix stream a", u[0], SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1);
	lg = (struct linger){ 1, 7 };
	setb("unix stream a", u[0], SOL_SOCKET, SO_LINGER, "SO_LINGER", &lg,
	     sizeof(lg));
	seti("unix stream a", u[0], SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE", 1);
	seti("unix stream a", u[0], SOL_SOCKET, SO_TIMESTAMPNS, "SO_TIMESTAMPNS",
	     1);
	seti("unix stream a", u[0], SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY",
	     priv ? 7 : 5);
	if (priv)
		seti("unix stream a", u[0], SOL_SOCKET, SO_MARK, "SO_MARK", 42);
	setb("unix stream a", u[0], SOL_SOCKET, SO_ATTACH_FILTER,
	     "SO_ATTACH_FILTER", &fp, sizeof(fp));
	seti("unix stream a", u[0], SOL_SOCKET, SO_LOCK_FILTER, "SO_LOCK_FILTER",
	     1);
	seti("unix stream b", u[1], SOL_SOCKET, SO_DONTROUTE, "SO_DONTROUTE", 1);
	seti("unix stream b", u[1], SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST", 1);
	seti("unix stream b", u[1], SOL_SOCKET, SO_NO_CHECK, "SO_NO_CHECK", 1);
	seti("unix stream b", u[1], SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 30000);
	keepopt("unix stream b", u[1], SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");
	keepopt("unix stream b", u[1], SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED");
	SETUP(write(u[1], "abcdef", 6) == 6, "write to the stream pair");
	SETUP(write(u[0], "xyz", 3) == 3, "write to the stream pair");

	/* ---- Unix datagram socket, bound, one datagram queued ---- */
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int nl = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1,
			  "cr_sockopts-%d", (int)getpid());
	socklen_t unl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				    (size_t)nl);
	SETUP((ud = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0,
	      "unix dgram socket");
	seti("unix dgram", ud, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 20000);
	seti("unix dgram", ud, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 90000);
	seti("unix dgram", ud, SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED", 1);
	seti("unix dgram", ud, SOL_SOCKET, SO_TIMESTAMP, "SO_TIMESTAMP", 1);
	setb("unix dgram", ud, SOL_SOCKET, SO_ATTACH_FILTER, "SO_ATTACH_FILTER",
	     &fp, sizeof(fp));
	SETUP(bind(ud, (void *)&un, unl) == 0, "bind the unix dgram socket");
	keep_addr("unix dgram", ud, 0);
	SETUP((tmp = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0 &&
		      sendto(tmp, "unixdgram", 9, 0, (void *)&un, unl) == 9,
	      "send to the unix dgram socket");
	close(tmp);

	/* ---- TCP listener, IPv4 ---- */
	SETUP((t4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0,
	      "tcp4 socket");
	seti("tcp4", t4, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", 1);
	seti("tcp4", t4, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT", 1);
	seti("tcp4", t4, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1);
	seti("tcp4", t4, SOL_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", 77);
	seti("tcp4", t4, SOL_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", 11);
	seti("tcp4", t4, SOL_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", 5);
	lg = (struct linger){ 1, 3 };
	setb("tcp4", t4, SOL_SOCKET, SO_LINGER, "SO_LINGER", &lg, sizeof(lg));
	seti("tcp4", t4, SOL_TCP, TCP_NODELAY, "TCP_NODELAY", 1);
	seti("tcp4", t4, SOL_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT", 12345);
	const char *cc = priv ? "cubic" : "reno";
	setb("tcp4", t4, SOL_TCP, TCP_CONGESTION, "TCP_CONGESTION", cc,
	     (socklen_t)strlen(cc));
	seti("tcp4", t4, SOL_IP, IP_TOS, "IP_TOS", 0x20);
	seti("tcp4", t4, SOL_IP, IP_TTL, "IP_TTL", 33);
	seti("tcp4", t4, SOL_IP, IP_FREEBIND, "IP_FREEBIND", 1);
	if (priv) {
		seti("tcp4", t4, SOL_IP, IP_TRANSPARENT, "IP_TRANSPARENT", 1);
		seti("tcp4", t4, SOL_SOCKET, SO_MARK, "SO_MARK", 7);
		setb("tcp4", t4, SOL_SOCKET, SO_BINDTODEVICE, "SO_BINDTODEVICE",
		     "lo", 2);
	}
	seti("tcp4", t4, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 100000);
	seti("tcp4", t4, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 70000);
	seti("tcp4", t4, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY", 3);
	tv = (struct timeval){ 3, 0 };
	setb("tcp4", t4, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO", &tv, sizeof(tv));
	SETUP(bind(t4, (void *)&lo4, sizeof(lo4)) == 0, "bind tcp4");
	SETUP(listen(t4, 16) == 0, "listen tcp4");
	seti("tcp4", t4, SOL_TCP, TCP_FASTOPEN, "TCP_FASTOPEN", 17);
	seti("tcp4", t4, SOL_TCP, TCP_CORK, "TCP_CORK", 1);
	keep_addr("tcp4", t4, 0);

	/* ---- TCP listener, IPv6 only ---- */
	SETUP((t6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0,
	      "tcp6 socket");
	seti("tcp6", t6, SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 1);
	seti("tcp6", t6, SOL_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS", 17);
	seti("tcp6", t6, SOL_IPV6, IPV6_TCLASS, "IPV6_TCLASS", 0x40);
	seti("tcp6", t6, SOL_IPV6, IPV6_FREEBIND, "IPV6_FREEBIND", 1);
	seti("tcp6", t6, SOL_TCP, TCP_NODELAY, "TCP_NODELAY", 1);
	seti("tcp6", t6, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1);
	seti("tcp6", t6, SOL_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", 3);
	seti("tcp6", t6, SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE", 1);
	keepopt("tcp6", t6, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
	keepopt("tcp6", t6, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF");
	keepopt("tcp6", t6, SOL_TCP, TCP_CONGESTION, "TCP_CONGESTION");
	SETUP(bind(t6, (void *)&lo6, sizeof(lo6)) == 0, "bind tcp6");
	SETUP(listen(t6, 8) == 0, "listen tcp6");
	keep_addr("tcp6", t6, 0);

	/* ---- UDP, IPv4: a bound socket and one connected to it ---- */
	SETUP((ub = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0,
	      "udp socket");
	seti("udp bound", ub, SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST", 1);
	seti("udp bound", ub, SOL_SOCKET, SO_NO_CHECK, "SO_NO_CHECK", 1);
	seti("udp bound", ub, SOL_IP, IP_PKTINFO, "IP_PKTINFO", 1);
	seti("udp bound", ub, SOL_IP, IP_RECVERR, "IP_RECVERR", 1);
	seti("udp bound", ub, SOL_IP, IP_MTU_DISCOVER, "IP_MTU_DISCOVER",
	     IP_PMTUDISC_PROBE);
	seti("udp bound", ub, SOL_IP, IP_TTL, "IP_TTL", 9);
	seti("udp bound", ub, SOL_IP, IP_TOS, "IP_TOS", 0x10);
	seti("udp bound", ub, SOL_SOCKET, SO_TIMESTAMP, "SO_TIMESTAMP", 1);
	seti("udp bound", ub, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF", 40000);
	seti("udp bound", ub, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF", 30000);
	setb("udp bound", ub, SOL_SOCKET, SO_ATTACH_FILTER, "SO_ATTACH_FILTER",
	     &fp, sizeof(fp));
	SETUP(bind(ub, (void *)&lo4, sizeof(lo4)) == 0, "bind udp");
	ub_l = sizeof(ub_a);
	SETUP(getsockname(ub, (void *)&ub_a, &ub_l) == 0, "getsockname udp");
	keep_addr("udp bound", ub, 0);
	SETUP((uc = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0,
	      "udp socket");
	seti("udp connected", uc, SOL_IP, IP_TTL, "IP_TTL", 5);
	seti("udp connected", uc, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY", 2);
	tv = (struct timeval){ 0, 700000 };
	setb("udp connected", uc, SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO", &tv,
	     sizeof(tv));
	SETUP(connect(uc, (void *)&ub_a, ub_l) == 0, "connect udp");
	uc_l = sizeof(uc_a);
	SETUP(getsockname(uc, (void *)&uc_a, &uc_l) == 0, "getsockname udp");
	keep_addr("udp connected", uc, 0);
	keep_addr("udp connected", uc, 1);
	/* queued: two from uc, one from a socket since closed, one on uc */
	SETUP(send(uc, "q1", 2, 0) == 2 && send(uc, "q22", 3, 0) == 3,
	      "send to udp");
	SETUP((tmp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0 &&
		      bind(tmp, (void *)&lo4, sizeof(lo4)) == 0 &&
		      sendto(tmp, "q333", 4, 0, (void *)&ub_a, ub_l) == 4,
	      "send to udp from another socket");
	tmp_l = sizeof(tmp_a);
	SETUP(getsockname(tmp, (void *)&tmp_a, &tmp_l) == 0, "getsockname");
	close(tmp);
	SETUP(sendto(ub, "back1", 5, 0, (void *)&uc_a, uc_l) == 5,
	      "send to the connected udp socket");

	/* ---- UDP, IPv6 ---- */
	SETUP((v6b = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0,
	      "udp6 socket");
	seti("udp6 bound", v6b, SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 1);
	seti("udp6 bound", v6b, SOL_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO",
	     1);
	seti("udp6 bound", v6b, SOL_IPV6, IPV6_UNICAST_HOPS,
	     "IPV6_UNICAST_HOPS", 200);
	SETUP(bind(v6b, (void *)&lo6, sizeof(lo6)) == 0, "bind udp6");
	v6b_l = sizeof(v6b_a);
	SETUP(getsockname(v6b, (void *)&v6b_a, &v6b_l) == 0, "getsockname");
	keep_addr("udp6 bound", v6b, 0);
	SETUP((v6c = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0 &&
		      connect(v6c, (void *)&v6b_a, v6b_l) == 0,
	      "connect udp6");
	v6c_l = sizeof(v6c_a);
	SETUP(getsockname(v6c, (void *)&v6c_a, &v6c_l) == 0, "getsockname");
	keep_addr("udp6 connected", v6c, 0);
	keep_addr("udp6 connected", v6c, 1);
	seti("udp6 connected", v6c, SOL_IPV6, IPV6_TCLASS, "IPV6_TCLASS", 0x20);
	SETUP(send(v6c, "six", 3, 0) == 3, "send to udp6");
	SETUP(sendto(v6b, "xis", 3, 0, (void *)&v6c_a, v6c_l) == 3,
	      "send to the connected udp6 socket");

	cr_ready();
	cr_wait_go();

	/* ---- checks ---- */
	check_recs();
	check_addrs();

	char b[64];
	struct pollfd p = { .fd = u[0], .events = POLLIN };
	CHECK(poll(&p, 1, 3000) == 1 && recv(u[0], b, sizeof(b), 0) == 6 &&
		      !memcmp(b, "abcdef", 6),
	      "unix stream a: its queued bytes are not back");
	p.fd = u[1];
	CHECK(poll(&p, 1, 3000) == 1 && recv(u[1], b, sizeof(b), 0) == 3 &&
		      !memcmp(b, "xyz", 3),
	      "unix stream b: its queued bytes are not back");
	CHECK(write(u[1], "ping", 4) == 4 && recv(u[0], b, sizeof(b), 0) == 4 &&
		      !memcmp(b, "ping", 4),
	      "unix stream: b to a does not work");
	CHECK(write(u[0], "pong", 4) == 4 && recv(u[1], b, sizeof(b), 0) == 4 &&
		      !memcmp(b, "pong", 4),
	      "unix stream: a to b does not work");
	expect_dgram("unix dgram", ud, "unixdgram", NULL, 0);

	/* the queued datagrams, in order, from their senders */
	expect_dgram("udp bound: queued 1", ub, "q1", &uc_a, uc_l);
	expect_dgram("udp bound: queued 2", ub, "q22", &uc_a, uc_l);
	expect_dgram("udp bound: queued 3", ub, "q333", &tmp_a, tmp_l);
	nothing_more("udp bound", ub);
	/* An image another user owns gets its datagrams back from a socket
	 * of that user's, bound to the sender's address when it is free: not
	 * when the sender is a socket of the image restored before. */
	expect_dgram("udp connected: queued", uc, "back1", priv ? &ub_a : NULL,
		     ub_l);
	nothing_more("udp connected", uc);
	expect_dgram("udp6 bound: queued", v6b, "six", &v6c_a, v6c_l);
	expect_dgram("udp6 connected: queued", v6c, "xis", priv ? &v6b_a : NULL,
		     v6b_l);
	cr_info("queued datagrams checked");

	/* round trips */
	CHECK(send(uc, "ping", 4, 0) == 4, "udp connected: send: %s",
	      strerror(errno));
	expect_dgram("udp round trip there", ub, "ping", &uc_a, uc_l);
	CHECK(sendto(ub, "pong", 4, 0, (void *)&uc_a, uc_l) == 4,
	      "udp bound: sendto: %s", strerror(errno));
	expect_dgram("udp round trip back", uc, "pong", &ub_a, ub_l);
	CHECK(send(v6c, "ping6", 5, 0) == 5, "udp6 connected: send: %s",
	      strerror(errno));
	expect_dgram("udp6 round trip there", v6b, "ping6", &v6c_a, v6c_l);
	CHECK(sendto(v6b, "pong6", 5, 0, (void *)&v6c_a, v6c_l) == 5,
	      "udp6 bound: sendto: %s", strerror(errno));
	expect_dgram("udp6 round trip back", v6c, "pong6", &v6b_a, v6b_l);
	listener_works("tcp4 listener", t4, AF_INET);
	listener_works("tcp6 listener", t6, AF_INET6);
	cr_info("sockets still work");
	return cr_done();
}
