/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: established TCP connections (tcp.c).
 * See crtest.h.
 *
 *   cr_tcp            the connections below, inside the process tree
 *   cr_tcp -x PORT    also a connection to an echo server outside the tree
 *                     on 127.0.0.1:PORT (dumped with --tcp-established)
 *
 * Connections, each with bytes left unread both ways, more than one
 * segment (the loopback's MSS is 64 KiB) from its first end, until the
 * writer's send buffer is full (so part of it was never sent), and 100000
 * bytes back:
 *   - IPv4 inside this process, its listener still open; the client has
 *     TCP_NODELAY and O_NONBLOCK, the accepted end keepalive with
 *     TCP_KEEPIDLE 77, TCP_KEEPINTVL 13, TCP_KEEPCNT 4;
 *   - IPv6 (::1) inside this process, its listener closed; the client has
 *     TCP_USER_TIMEOUT 12345 ms, the accepted end TCP_CORK;
 *   - IPv4 between this process and a child it forked: the child is the
 *     client, and checks its side itself.
 * After the go file: every byte arrives once and in order and nothing
 * more; a round trip each way works; addresses, the options set and the
 * buffer sizes are as they were.  With -x: 3000 bytes the server echoes
 * come back, and a round trip.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "crtest.h"

#define FILL_MAX (4u << 20)
#define BACK 100000
#define BUF 65536

struct end {
	int fd;
	struct sockaddr_storage name, peer;
	socklen_t nl, pl;
	int sndbuf, rcvbuf;
};

struct pair {
	const char *what;
	struct end a, b; /* a: the client, b: the accepted end */
	size_t a2b, b2a; /* bytes written each way */
	unsigned seed;
};

static unsigned char *wbuf, *rbuf;

static int getint(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, level, opt, &v, &l) < 0)
		return -1000 - errno;
	return v;
}

static void note(struct end *e)
{
	e->nl = sizeof(e->name);
	e->pl = sizeof(e->peer);
	memset(&e->name, 0, sizeof(e->name));
	memset(&e->peer, 0, sizeof(e->peer));
	SETUP(getsockname(e->fd, (struct sockaddr *)&e->name, &e->nl) == 0,
	      "getsockname");
	SETUP(getpeername(e->fd, (struct sockaddr *)&e->peer, &e->pl) == 0,
	      "getpeername");
	e->sndbuf = getint(e->fd, SOL_SOCKET, SO_SNDBUF);
	e->rcvbuf = getint(e->fd, SOL_SOCKET, SO_RCVBUF);
}

static void small_bufs(int fd)
{
	int v = BUF;
	SETUP(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) == 0,
	      "SO_SNDBUF");
	SETUP(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0,
	      "SO_RCVBUF");
}

static int listener(int family, struct sockaddr_storage *a, socklen_t *al)
{
	int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	SETUP(l >= 0, "socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		struct sockaddr_in *s = (void *)a;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*al = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (void *)a;
		s->sin6_family = AF_INET6;
		s->sin6_addr = in6addr_loopback;
		*al = sizeof(*s);
	}
	small_bufs(l);
	SETUP(bind(l, (struct sockaddr *)a, *al) == 0, "bind");
	SETUP(listen(l, 4) == 0, "listen");
	*al = sizeof(*a);
	SETUP(getsockname(l, (struct sockaddr *)a, al) == 0, "getsockname");
	return l;
}

static int client(int family, const struct sockaddr_storage *a, socklen_t al)
{
	int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	SETUP(c >= 0, "socket");
	small_bufs(c);
	SETUP(connect(c, (const struct sockaddr *)a, al) == 0, "connect");
	return c;
}

/* Write the pattern until max bytes or a full send buffer; how many. */
static size_t fill(int fd, unsigned seed, size_t max)
{
	size_t off = 0;
	cr_fill(wbuf, max, seed);
	while (off < max) {
		ssize_t n = send(fd, wbuf + off, max - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* let the kernel move what it can, then once more */
			struct pollfd p = { fd, POLLOUT, 0 };
			if (poll(&p, 1, 50) == 1)
				continue;
			break;
		}
		SETUP(n > 0, "send");
		off += (size_t)n;
	}
	return off;
}

/* Read exactly n bytes (waiting up to 20 s in all); how many came. */
static size_t take(int fd, unsigned char *out, size_t n)
{
	size_t got = 0;
	double end = cr_now() + 20 * cr_scale();
	while (got < n && cr_now() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t k = recv(fd, out + got, n - got, MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	return got;
}

/* Nothing more to read (for a moment). */
static int dry(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, 100) == 0;
}

static void check_stream(const char *what, int fd, size_t n, unsigned seed)
{
	size_t got = take(fd, rbuf, n);
	CHECK(got == n, "%s: %zu of %zu bytes arrived", what, got, n);
	long bad = cr_verify(rbuf, got, seed);
	CHECK(bad < 0, "%s: byte %ld differs", what, bad);
	CHECK(dry(fd), "%s: more bytes than were written", what);
}

static void round_trip(const char *what, int x, int y)
{
	char m[32], r[32];
	snprintf(m, sizeof(m), "ping %s", what);
	size_t l = strlen(m);
	CHECK(send(x, m, l, MSG_NOSIGNAL) == (ssize_t)l, "%s: send: %s", what,
	      strerror(errno));
	memset(r, 0, sizeof(r));
	CHECK(take(y, (unsigned char *)r, l) == l && !memcmp(r, m, l),
	      "%s: the round trip's message did not come back (%s)", what, r);
}

static void check_end(const char *what, const struct end *e)
{
	struct end now = *e;
	note(&now);
	CHECK(now.nl == e->nl && !memcmp(&now.name, &e->name, e->nl),
	      "%s: getsockname changed", what);
	CHECK(now.pl == e->pl && !memcmp(&now.peer, &e->peer, e->pl),
	      "%s: getpeername changed", what);
	CHECK(now.sndbuf == e->sndbuf, "%s: SO_SNDBUF %d, was %d", what,
	      now.sndbuf, e->sndbuf);
	CHECK(now.rcvbuf == e->rcvbuf, "%s: SO_RCVBUF %d, was %d", what,
	      now.rcvbuf, e->rcvbuf);
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	CHECK(getsockopt(e->fd, SOL_TCP, TCP_INFO, &ti, &tl) == 0 &&
		      ti.tcpi_state == TCP_ESTABLISHED,
	      "%s: not established (state %d)", what, ti.tcpi_state);
}

static void make_pair(struct pair *p, const char *what, int family,
		      unsigned seed, int keep_listener, int *lfd)
{
	struct sockaddr_storage a;
	socklen_t al;
	int l = listener(family, &a, &al);
	p->what = what;
	p->seed = seed;
	p->a.fd = client(family, &a, al);
	p->b.fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	SETUP(p->b.fd >= 0, "accept");
	if (keep_listener)
		*lfd = l;
	else
		close(l);
}

static void load(struct pair *p)
{
	p->a2b = fill(p->a.fd, p->seed, FILL_MAX);
	p->b2a = fill(p->b.fd, p->seed + 1, BACK);
	SETUP(p->a2b > 70000, "more than a segment");
	SETUP(p->b2a == BACK, "100000 bytes back");
	note(&p->a);
	note(&p->b);
}

static void check_pair(struct pair *p)
{
	char w[64];
	snprintf(w, sizeof(w), "%s a->b", p->what);
	check_stream(w, p->b.fd, p->a2b, p->seed);
	snprintf(w, sizeof(w), "%s b->a", p->what);
	check_stream(w, p->a.fd, p->b2a, p->seed + 1);
	snprintf(w, sizeof(w), "%s client", p->what);
	check_end(w, &p->a);
	snprintf(w, sizeof(w), "%s server", p->what);
	check_end(w, &p->b);
	round_trip(p->what, p->a.fd, p->b.fd);
	round_trip(p->what, p->b.fd, p->a.fd);
}

/* The child: client of a connection to its parent. */
static void child(const struct sockaddr_storage *a, socklen_t al, int ready)
{
	struct pair p = { .what = "fork" };
	p.a.fd = client(AF_INET, a, al);
	/* the parent writes first, then the child */
	char c;
	SETUP(read(ready, &c, 1) == 1, "the parent's go");
	p.b2a = fill(p.a.fd, 301, BACK);
	note(&p.a);
	SETUP(write(ready, "k", 1) == 1, "telling the parent");
	cr_wait_go();
	size_t n = 0;
	SETUP(read(ready, &n, sizeof(n)) == sizeof(n), "the parent's count");
	check_stream("fork parent->child", p.a.fd, n, 300);
	check_end("fork child", &p.a);
	round_trip("fork child", p.a.fd, p.a.fd); /* echoed by the parent */
	_exit(cr_failures ? 1 : 0);
}

int main(int argc, char **argv)
{
	int xport = argc == 3 && !strcmp(argv[1], "-x") ? atoi(argv[2]) : 0;

	cr_init("cr_tcp");
	signal(SIGPIPE, SIG_IGN);
	wbuf = malloc(FILL_MAX);
	rbuf = malloc(FILL_MAX);
	SETUP(wbuf && rbuf, "malloc");

	struct pair p4, p6;
	int l4 = -1, v;
	make_pair(&p4, "ipv4", AF_INET, 100, 1, &l4);
	make_pair(&p6, "ipv6", AF_INET6, 200, 0, NULL);
	v = 1;
	SETUP(setsockopt(p4.a.fd, SOL_TCP, TCP_NODELAY, &v, sizeof(v)) == 0,
	      "TCP_NODELAY");
	SETUP(setsockopt(p4.b.fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)) == 0,
	      "SO_KEEPALIVE");
	v = 77;
	SETUP(setsockopt(p4.b.fd, SOL_TCP, TCP_KEEPIDLE, &v, sizeof(v)) == 0,
	      "TCP_KEEPIDLE");
	v = 13;
	SETUP(setsockopt(p4.b.fd, SOL_TCP, TCP_KEEPINTVL, &v, sizeof(v)) == 0,
	      "TCP_KEEPINTVL");
	v = 4;
	SETUP(setsockopt(p4.b.fd, SOL_TCP, TCP_KEEPCNT, &v, sizeof(v)) == 0,
	      "TCP_KEEPCNT");
	v = 12345;
	SETUP(setsockopt(p6.a.fd, SOL_TCP, TCP_USER_TIMEOUT, &v, sizeof(v)) ==
		      0,
	      "TCP_USER_TIMEOUT");
	SETUP(fcntl(p4.a.fd, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	load(&p4);
	load(&p6);
	/* Corked only now: what it wrote went out before. */
	v = 1;
	SETUP(setsockopt(p6.b.fd, SOL_TCP, TCP_CORK, &v, sizeof(v)) == 0,
	      "TCP_CORK");

	/* Across a fork. */
	struct sockaddr_storage fa;
	socklen_t fal;
	int fl = listener(AF_INET, &fa, &fal), sv[2];
	SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
	      "socketpair");
	pid_t kid = fork();
	SETUP(kid >= 0, "fork");
	if (kid == 0) {
		close(sv[0]);
		child(&fa, fal, sv[1]);
	}
	close(sv[1]);
	struct end fe = { .fd = accept4(fl, NULL, NULL, SOCK_CLOEXEC) };
	SETUP(fe.fd >= 0, "accept (fork)");
	close(fl);
	size_t f2c = fill(fe.fd, 300, FILL_MAX);
	SETUP(f2c > 70000, "more than a segment (fork)");
	char c;
	SETUP(write(sv[0], "g", 1) == 1 && read(sv[0], &c, 1) == 1,
	      "the child's writes");
	note(&fe);

	/* Outside: an echo server. */
	int xfd = -1;
	if (xport) {
		struct sockaddr_in xa = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)xport),
					  .sin_addr.s_addr =
						  htonl(INADDR_LOOPBACK) };
		xfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		SETUP(xfd >= 0 && connect(xfd, (struct sockaddr *)&xa,
					  sizeof(xa)) == 0,
		      "connect to the echo server");
		round_trip("outside", xfd, xfd);
		cr_fill(wbuf, 3000, 400);
		SETUP(send(xfd, wbuf, 3000, 0) == 3000, "send (outside)");
	}
	cr_sleep_ms(100);
	cr_ready();
	cr_wait_go();

	check_pair(&p4);
	check_pair(&p6);
	CHECK(getint(p4.a.fd, SOL_TCP, TCP_NODELAY) == 1,
	      "ipv4 client: TCP_NODELAY is off");
	CHECK(fcntl(p4.a.fd, F_GETFL) & O_NONBLOCK,
	      "ipv4 client: O_NONBLOCK is off");
	CHECK(getint(p4.b.fd, SOL_SOCKET, SO_KEEPALIVE) == 1,
	      "ipv4 server: SO_KEEPALIVE is off");
	CHECK(getint(p4.b.fd, SOL_TCP, TCP_KEEPIDLE) == 77 &&
		      getint(p4.b.fd, SOL_TCP, TCP_KEEPINTVL) == 13 &&
		      getint(p4.b.fd, SOL_TCP, TCP_KEEPCNT) == 4,
	      "ipv4 server: keepalive %d/%d/%d, set 77/13/4",
	      getint(p4.b.fd, SOL_TCP, TCP_KEEPIDLE),
	      getint(p4.b.fd, SOL_TCP, TCP_KEEPINTVL),
	      getint(p4.b.fd, SOL_TCP, TCP_KEEPCNT));
	CHECK(getint(p6.a.fd, SOL_TCP, TCP_USER_TIMEOUT) == 12345,
	      "ipv6 client: TCP_USER_TIMEOUT %d, set 12345",
	      getint(p6.a.fd, SOL_TCP, TCP_USER_TIMEOUT));
	CHECK(getint(p6.b.fd, SOL_TCP, TCP_CORK) == 1,
	      "ipv6 server: TCP_CORK is off");
	CHECK(getint(p4.a.fd, SOL_TCP, TCP_CORK) == 0 &&
		      getint(p6.a.fd, SOL_TCP, TCP_NODELAY) == 0,
	      "options that were not set are set");
	/* The listener still takes connections. */
	struct sockaddr_storage la;
	socklen_t lal = sizeof(la);
	SETUP(getsockname(l4, (struct sockaddr *)&la, &lal) == 0,
	      "getsockname (listener)");
	int nc = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(nc >= 0 && connect(nc, (struct sockaddr *)&la, lal) == 0,
	      "a new connection to the listener: %s", strerror(errno));
	int na = accept4(l4, NULL, NULL, SOCK_CLOEXEC);
	CHECK(na >= 0, "accept on the listener: %s", strerror(errno));
	if (nc >= 0 && na >= 0)
		round_trip("new", nc, na);

	/* The fork's pair: what the child wrote first (before the child
	 * sends anything more), then the child reads f2c and makes a round
	 * trip this end echoes. */
	check_stream("fork child->parent", fe.fd, BACK, 301);
	check_end("fork parent", &fe);
	SETUP(write(sv[0], &f2c, sizeof(f2c)) == sizeof(f2c),
	      "telling the child");
	/* echo the child's round trip */
	char m[64];
	size_t ml = strlen("ping fork child");
	memset(m, 0, sizeof(m));
	CHECK(take(fe.fd, (unsigned char *)m, ml) == ml,
	      "fork: the child's round trip did not come (%s)", m);
	CHECK(send(fe.fd, m, ml, MSG_NOSIGNAL) == (ssize_t)ml,
	      "fork: echo: %s", strerror(errno));
	int st;
	CHECK(waitpid(kid, &st, 0) == kid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0,
	      "the child failed its checks (status 0x%x)", st);

	if (xfd >= 0) {
		size_t got = take(xfd, rbuf, 3000);
		CHECK(got == 3000 && cr_verify(rbuf, 3000, 400) < 0,
		      "outside: %zu of 3000 bytes came back", got);
		round_trip("outside", xfd, xfd);
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);
		CHECK(getsockopt(xfd, SOL_TCP, TCP_INFO, &ti, &tl) == 0 &&
			      ti.tcpi_state == TCP_ESTABLISHED,
		      "outside: not established (state %d)", ti.tcpi_state);
	}
	return cr_done();
}
