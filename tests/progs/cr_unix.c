/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: Unix sockets.  See crtest.h.
 *
 *   - a stream socketpair with unread data both ways (one end O_NONBLOCK,
 *     one with a send buffer of its own, one peeked into with SO_PEEK_OFF);
 *   - a datagram socketpair with four messages queued one way (7, 0, 3000
 *     and 60000 bytes: boundaries kept) and one the other way;
 *   - a seqpacket pair with messages queued both ways;
 *   - a stream pair one end of which shut down writing, with data left;
 *     a stream pair whose other end was closed, with data left;
 *   - a listener bound to a path (backlog 5), a client connected and
 *     accepted with data queued both ways (names kept: the accepted end's
 *     name and the client's peer name are the path), and a second client
 *     waiting to be accepted; a seqpacket listener on an abstract name
 *     made after a client of its, accepted, with messages both ways;
 *   - a datagram socket bound to an abstract name with three datagrams
 *     queued, from an unnamed socket and from a named one since closed
 *     (its sender address kept);
 *   - a datagram socket connected one way to another named one, with a
 *     datagram queued there;
 *   - a child process talking with this one over a socketpair, dumped in
 *     the middle of the conversation: it finishes it after the restore.
 * After the restore every byte, every message boundary and every sender
 * address is checked, and then that every connection still works both
 * ways.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "crtest.h"

#define ST_AB 60000
#define ST_BA 5000
#define LISTEN_BACKLOG 5

static unsigned char buf[1 << 17], want[1 << 17];

static socklen_t abstract(struct sockaddr_un *a, const char *fmt, int n)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int l = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, fmt, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)l);
}

/* Everything there is to read on a stream socket, without waiting once
 * it is dry. */
static ssize_t drain(int fd, unsigned char *out, size_t max)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = recv(fd, out + got, max - got, MSG_DONTWAIT);
		if (n <= 0)
			return n == 0 || errno == EAGAIN ? (ssize_t)got : -1;
		got += (size_t)n;
		if (got == max)
			return (ssize_t)got;
	}
}

/* One message, waiting for it a little. */
static ssize_t recv_msg(int fd, void *out, size_t max, struct sockaddr_un *from,
			socklen_t *fl)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 2000) != 1)
		return -2;
	if (from) {
		*fl = sizeof(*from);
		memset(from, 0, sizeof(*from));
	}
	int type = 0;
	socklen_t tl = sizeof(type);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
	return recvfrom(fd, out, max,
			MSG_DONTWAIT | (type == SOCK_STREAM ? 0 : MSG_TRUNC),
			(struct sockaddr *)from, from ? fl : NULL);
}

/* A message each way, and what arrives is what was sent. */
static void both_ways(const char *what, int a, int b)
{
	char x[64];
	memset(x, 0, sizeof(x));
	CHECK(send(a, "ping", 4, MSG_NOSIGNAL) == 4 &&
		      recv_msg(b, x, sizeof(x), NULL, NULL) == 4 &&
		      !memcmp(x, "ping", 4),
	      "%s: a to b does not work any more", what);
	memset(x, 0, sizeof(x));
	CHECK(send(b, "pong!", 5, MSG_NOSIGNAL) == 5 &&
		      recv_msg(a, x, sizeof(x), NULL, NULL) == 5 &&
		      !memcmp(x, "pong!", 5),
	      "%s: b to a does not work any more", what);
}

static int same_name(int fd, int peer, const char *path)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if ((peer ? getpeername(fd, (void *)&a, &l)
		  : getsockname(fd, (void *)&a, &l)) < 0)
		return 0;
	return l > offsetof(struct sockaddr_un, sun_path) &&
	       !strcmp(a.sun_path, path);
}

/* The child: reads the pings it was sent, answers each, then waits for
 * "bye". */
static int child_talk(int s, int ready)
{
	char m[64];
	int bad = 0;
	SETUP(send(s, "pong 0", 6, 0) == 6, "child: send pong 0");
	SETUP(write(ready, "r", 1) == 1, "child: ready");
	cr_wait_go();
	for (int i = 1; i <= 3; i++) {
		char w[16];
		int wl = snprintf(w, sizeof(w), "ping %d", i);
		memset(m, 0, sizeof(m));
		ssize_t n = recv_msg(s, m, sizeof(m), NULL, NULL);
		if (n != wl || memcmp(m, w, (size_t)wl)) {
			printf("FAIL: cr_unix: child: message %d is '%.*s', "
			       "want '%s'\n",
			       i, n > 0 ? (int)n : 0, m, w);
			bad++;
		}
		snprintf(w, sizeof(w), "pong %d", i);
		if (send(s, w, strlen(w), 0) != (ssize_t)strlen(w))
			bad++;
	}
	memset(m, 0, sizeof(m));
	if (recv_msg(s, m, sizeof(m), NULL, NULL) != 3 || memcmp(m, "bye", 3)) {
		printf("FAIL: cr_unix: child: no bye ('%s')\n", m);
		bad++;
	}
	fflush(stdout);
	return bad ? 1 : 0;
}

int main(void)
{
	struct sockaddr_un a, from;
	socklen_t fl;
	int zero = 0;

	cr_init("cr_unix");
	signal(SIGPIPE, SIG_IGN);

	/* the child, talking over a seqpacket pair */
	int tp[2], rp[2];
	SETUP(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tp) == 0,
	      "socketpair for the child");
	SETUP(pipe2(rp, O_CLOEXEC) == 0, "pipe");
	pid_t child = fork();
	SETUP(child >= 0, "fork");
	if (child == 0) {
		close(tp[0]);
		close(rp[0]);
		_exit(child_talk(tp[1], rp[1]));
	}
	close(tp[1]);
	close(rp[1]);
	char r;
	SETUP(read(rp[0], &r, 1) == 1, "the child gets ready");
	close(rp[0]);
	for (int i = 1; i <= 3; i++) {
		char w[16];
		int wl = snprintf(w, sizeof(w), "ping %d", i);
		SETUP(send(tp[0], w, (size_t)wl, 0) == wl, "send ping");
	}

	/* stream pair, data both ways */
	int s[2];
	SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "stream pair");
	SETUP(fcntl(s[0], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	int sb = 300000;
	SETUP(setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb)) == 0,
	      "SO_SNDBUF");
	socklen_t l = sizeof(sb);
	SETUP(getsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &sb, &l) == 0,
	      "get SO_SNDBUF");
	cr_fill(buf, ST_AB, 41);
	SETUP(send(s[0], buf, ST_AB, 0) == ST_AB, "stream a->b");
	cr_fill(buf, ST_BA, 42);
	SETUP(send(s[1], buf, ST_BA, 0) == ST_BA, "stream b->a");
	/* b has peeked at its first 10 bytes with a peek offset */
	SETUP(setsockopt(s[1], SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) ==
		      0,
	      "SO_PEEK_OFF");
	SETUP(recv(s[1], buf, 10, MSG_PEEK) == 10, "peek");

	/* datagram pair */
	static const size_t dsz[] = { 7, 0, 3000, 60000 };
	int d[2];
	SETUP(socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0, "dgram pair");
	for (unsigned i = 0; i < 4; i++) {
		cr_fill(buf, dsz[i], 50 + i);
		SETUP(send(d[0], buf, dsz[i], 0) == (ssize_t)dsz[i],
		      "dgram send");
	}
	SETUP(send(d[1], "back", 4, 0) == 4, "dgram back");

	/* seqpacket pair */
	int q[2];
	SETUP(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q) == 0, "seqpacket pair");
	SETUP(send(q[0], "first", 5, 0) == 5 &&
		      send(q[0], "second message", 14, 0) == 14,
	      "seqpacket send");
	SETUP(send(q[1], "reply", 5, 0) == 5, "seqpacket reply");

	/* shut down one way; closed on the other side */
	int h[2], g[2];
	SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, h) == 0, "pair h");
	SETUP(send(h[0], "bye", 3, 0) == 3, "h send");
	SETUP(shutdown(h[0], SHUT_WR) == 0, "shutdown");
	SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, g) == 0, "pair g");
	SETUP(send(g[0], "last words", 10, 0) == 10, "g send");
	close(g[0]);

	/* listener on a path, a client accepted, one waiting */
	const char *lpath = cr_path("listen.sock");
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", lpath);
	int lis = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	SETUP(lis >= 0 && bind(lis, (void *)&a, sizeof(a)) == 0 &&
		      listen(lis, LISTEN_BACKLOG) == 0,
	      "listener");
	int cli = socket(AF_UNIX, SOCK_STREAM, 0);
	SETUP(cli >= 0 && connect(cli, (void *)&a, sizeof(a)) == 0, "connect");
	int acc = accept4(lis, NULL, NULL, SOCK_CLOEXEC);
	SETUP(acc >= 0, "accept");
	int waiting = socket(AF_UNIX, SOCK_STREAM, 0);
	SETUP(waiting >= 0 && connect(waiting, (void *)&a, sizeof(a)) == 0,
	      "connect the waiting client");
	SETUP(send(cli, "hello server", 12, 0) == 12, "client send");
	cr_fill(buf, 2000, 60);
	SETUP(send(acc, buf, 2000, 0) == 2000, "server send");

	/* an abstract listener made after its client and accepted end */
	pid_t me = getpid();
	struct sockaddr_un la2;
	socklen_t la2l = abstract(&la2, "cr_unix.listen.%d", me);
	int cli2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	int wait2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	int lis2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	SETUP(cli2 >= 0 && lis2 >= 0 && bind(lis2, (void *)&la2, la2l) == 0 &&
		      listen(lis2, 3) == 0 &&
		      connect(cli2, (void *)&la2, la2l) == 0,
	      "second listener");
	int acc3 = accept(lis2, NULL, NULL);
	SETUP(acc3 >= 0, "accept 2");
	SETUP(wait2 >= 0 && connect(wait2, (void *)&la2, la2l) == 0,
	      "connect the second waiting client");
	SETUP(send(cli2, "msg one", 7, 0) == 7 && send(cli2, "msg two", 7, 0) == 7 &&
		      send(acc3, "answer", 6, 0) == 6,
	      "second listener: send");

	/* abstract-name datagram socket with datagrams queued */
	struct sockaddr_un ua, sa;
	socklen_t ual = abstract(&ua, "cr_unix.%d", me);
	socklen_t sal = abstract(&sa, "cr_unix.sender.%d", me);
	int u = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	SETUP(u >= 0 && bind(u, (void *)&ua, ual) == 0, "bind abstract");
	int anon = socket(AF_UNIX, SOCK_DGRAM, 0);
	int snd = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(anon >= 0 && snd >= 0 && bind(snd, (void *)&sa, sal) == 0,
	      "senders");
	cr_fill(buf, 500, 70);
	SETUP(sendto(anon, "one", 3, 0, (void *)&ua, ual) == 3 &&
		      sendto(snd, buf, 500, 0, (void *)&ua, ual) == 500 &&
		      sendto(anon, "3", 1, 0, (void *)&ua, ual) == 1,
	      "sendto abstract");
	close(snd);
	close(anon);

	/* a datagram socket connected one way to a named one */
	struct sockaddr_un ta;
	socklen_t tal = abstract(&ta, "cr_unix.target.%d", me);
	int to = socket(AF_UNIX, SOCK_DGRAM, 0); /* before its target */
	int tgt = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(tgt >= 0 && bind(tgt, (void *)&ta, tal) == 0, "bind target");
	SETUP(to >= 0 && connect(to, (void *)&ta, tal) == 0, "connect target");
	SETUP(send(to, "to target", 9, 0) == 9, "send target");

	/* named datagram sockets connected to each other; a datagram pair
	 * whose other end is closed */
	struct sockaddr_un na1, na2;
	socklen_t na1l = abstract(&na1, "cr_unix.n1.%d", me);
	socklen_t na2l = abstract(&na2, "cr_unix.n2.%d", me);
	int n1 = socket(AF_UNIX, SOCK_DGRAM, 0), n2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(n1 >= 0 && n2 >= 0 && bind(n1, (void *)&na1, na1l) == 0 &&
		      bind(n2, (void *)&na2, na2l) == 0 &&
		      connect(n1, (void *)&na2, na2l) == 0 &&
		      connect(n2, (void *)&na1, na1l) == 0,
	      "named datagram pair");
	SETUP(send(n1, "from n1", 7, 0) == 7 && send(n2, "from n2", 7, 0) == 7,
	      "named datagram pair: send");
	int dg[2];
	SETUP(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) == 0, "dgram pair 2");
	SETUP(send(dg[0], "orphan", 6, 0) == 6, "dgram pair 2: send");
	close(dg[0]);

	cr_info("set up");
	cr_ready();
	cr_wait_go();

	/* stream pair */
	CHECK(fcntl(s[0], F_GETFL) & O_NONBLOCK, "stream: O_NONBLOCK lost");
	int sb2 = 0;
	l = sizeof(sb2);
	getsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &sb2, &l);
	CHECK(sb2 == sb, "stream: SO_SNDBUF %d, was %d", sb2, sb);
	int po = -5;
	l = sizeof(po);
	getsockopt(s[1], SOL_SOCKET, SO_PEEK_OFF, &po, &l);
	CHECK(po == 10, "stream: SO_PEEK_OFF %d, was 10", po);
	cr_fill(want, ST_AB, 41);
	CHECK(recv(s[1], buf, 5, MSG_PEEK) == 5 && !memcmp(buf, want + 10, 5),
	      "stream: a peek does not start at the peek offset");
	ssize_t n = drain(s[1], buf, sizeof(buf));
	CHECK(n == ST_AB && cr_verify(buf, ST_AB, 41) < 0,
	      "stream a->b: %zd bytes (want %d), differ at %ld", n, ST_AB,
	      n > 0 ? cr_verify(buf, (size_t)n, 41) : -1L);
	n = drain(s[0], buf, sizeof(buf));
	CHECK(n == ST_BA && cr_verify(buf, ST_BA, 42) < 0,
	      "stream b->a: %zd bytes (want %d)", n, ST_BA);
	both_ways("stream pair", s[0], s[1]);

	/* datagram pair */
	for (unsigned i = 0; i < 4; i++) {
		n = recv_msg(d[1], buf, sizeof(buf), NULL, NULL);
		CHECK(n == (ssize_t)dsz[i] && cr_verify(buf, dsz[i], 50 + i) < 0,
		      "dgram pair: message %u is %zd bytes, want %zu", i, n,
		      dsz[i]);
	}
	CHECK(recv(d[1], buf, 10, MSG_DONTWAIT) < 0 && errno == EAGAIN,
	      "dgram pair: more messages than sent");
	n = recv_msg(d[0], buf, sizeof(buf), NULL, NULL);
	CHECK(n == 4 && !memcmp(buf, "back", 4), "dgram pair: back: %zd", n);
	both_ways("dgram pair", d[0], d[1]);

	/* seqpacket pair */
	n = recv_msg(q[1], buf, sizeof(buf), NULL, NULL);
	CHECK(n == 5 && !memcmp(buf, "first", 5), "seqpacket: first: %zd", n);
	n = recv_msg(q[1], buf, sizeof(buf), NULL, NULL);
	CHECK(n == 14 && !memcmp(buf, "second message", 14),
	      "seqpacket: second: %zd", n);
	n = recv_msg(q[0], buf, sizeof(buf), NULL, NULL);
	CHECK(n == 5 && !memcmp(buf, "reply", 5), "seqpacket: reply: %zd", n);
	both_ways("seqpacket pair", q[0], q[1]);

	/* shut down, closed */
	memset(buf, 0, 16);
	CHECK(recv(h[1], buf, 16, MSG_DONTWAIT) == 3 && !memcmp(buf, "bye", 3),
	      "shutdown pair: data lost");
	CHECK(recv(h[1], buf, 16, MSG_DONTWAIT) == 0,
	      "shutdown pair: no end of file after the data");
	CHECK(send(h[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE,
	      "shutdown pair: the shut end can write again");
	CHECK(send(h[1], "ack", 3, MSG_NOSIGNAL) == 3 &&
		      recv_msg(h[0], buf, 16, NULL, NULL) == 3,
	      "shutdown pair: the other way does not work");
	memset(buf, 0, 16);
	CHECK(recv(g[1], buf, 16, MSG_DONTWAIT) == 10 &&
		      !memcmp(buf, "last words", 10),
	      "closed peer: data lost");
	CHECK(recv(g[1], buf, 16, MSG_DONTWAIT) == 0,
	      "closed peer: no end of file after the data");

	/* listener, accepted pair, waiting client */
	CHECK(same_name(lis, 0, lpath), "listener: not bound to its path");
	CHECK(same_name(acc, 0, lpath), "accepted: its name is not the path");
	CHECK(same_name(cli, 1, lpath), "client: its peer is not the path");
	memset(buf, 0, 16);
	n = recv_msg(acc, buf, sizeof(buf), NULL, NULL);
	CHECK(n == 12 && !memcmp(buf, "hello server", 12),
	      "accepted: got %zd bytes", n);
	n = drain(cli, buf, sizeof(buf));
	CHECK(n == 2000 && cr_verify(buf, 2000, 60) < 0,
	      "client: got %zd bytes", n);
	both_ways("accepted pair", cli, acc);
	struct pollfd lp = { .fd = lis, .events = POLLIN };
	CHECK(poll(&lp, 1, 2000) == 1, "listener: no connection waiting");
	int acc2 = accept4(lis, NULL, NULL, SOCK_NONBLOCK);
	if (CHECK(acc2 >= 0, "listener: accept: %s", strerror(errno))) {
		both_ways("the waiting connection", waiting, acc2);
		close(acc2);
	}
	fcntl(lis, F_SETFL, O_NONBLOCK);
	CHECK(accept4(lis, NULL, NULL, SOCK_NONBLOCK) < 0 && errno == EAGAIN,
	      "listener: more connections than were waiting");
	/* the backlog: LISTEN_BACKLOG + 1 clients fit, one more does not */
	int extra[LISTEN_BACKLOG + 2], nextra = 0, refused = 0;
	for (int i = 0; i < LISTEN_BACKLOG + 2; i++) {
		extra[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(extra[i], (void *)&a, sizeof(a)) == 0)
			nextra++;
		else
			refused += errno == EAGAIN;
	}
	CHECK(nextra == LISTEN_BACKLOG + 1 && refused == 1,
	      "listener: %d connections queued, %d refused (backlog %d)",
	      nextra, refused, LISTEN_BACKLOG);
	for (int i = 0; i < LISTEN_BACKLOG + 2; i++)
		close(extra[i]);

	/* second listener: names kept, messages, both ways */
	struct sockaddr_un na;
	socklen_t nal = sizeof(na);
	CHECK(getsockname(acc3, (void *)&na, &nal) == 0 && nal == la2l &&
		      !memcmp(&na, &la2, la2l),
	      "accepted 2: its name is not the listener's");
	nal = sizeof(na);
	CHECK(getpeername(cli2, (void *)&na, &nal) == 0 && nal == la2l &&
		      !memcmp(&na, &la2, la2l),
	      "client 2: its peer is not the listener's name");
	n = recv_msg(acc3, buf, sizeof(buf), NULL, NULL);
	CHECK(n == 7 && !memcmp(buf, "msg one", 7), "accepted 2: first %zd", n);
	n = recv_msg(acc3, buf, sizeof(buf), NULL, NULL);
	CHECK(n == 7 && !memcmp(buf, "msg two", 7), "accepted 2: second %zd", n);
	n = recv_msg(cli2, buf, sizeof(buf), NULL, NULL);
	CHECK(n == 6 && !memcmp(buf, "answer", 6), "client 2: answer %zd", n);
	both_ways("accepted pair 2", cli2, acc3);
	int acc5 = accept(lis2, NULL, NULL);
	if (CHECK(acc5 >= 0, "second listener: accept the waiting client: %s",
		  strerror(errno)))
		both_ways("second listener, waiting connection", wait2, acc5);
	close(acc5);
	int cli3 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	CHECK(connect(cli3, (void *)&la2, la2l) == 0,
	      "second listener: cannot connect: %s", strerror(errno));
	int acc4 = accept(lis2, NULL, NULL);
	if (CHECK(acc4 >= 0, "second listener: accept: %s", strerror(errno)))
		both_ways("second listener, new connection", cli3, acc4);
	close(cli3);
	close(acc4);

	/* abstract-name datagram socket */
	n = recv_msg(u, buf, sizeof(buf), &from, &fl);
	CHECK(n == 3 && !memcmp(buf, "one", 3) &&
		      fl <= sizeof(sa_family_t),
	      "abstract: first: %zd bytes, sender length %u", n, fl);
	n = recv_msg(u, buf, sizeof(buf), &from, &fl);
	CHECK(n == 500 && cr_verify(buf, 500, 70) < 0,
	      "abstract: second: %zd bytes", n);
	CHECK(fl == sal && !memcmp(&from, &sa, sal),
	      "abstract: second: not from its sender's name (length %u)", fl);
	n = recv_msg(u, buf, sizeof(buf), &from, &fl);
	CHECK(n == 1 && buf[0] == '3', "abstract: third: %zd bytes", n);
	CHECK(recv(u, buf, 10, MSG_DONTWAIT) < 0 && errno == EAGAIN,
	      "abstract: more datagrams than sent");
	int again = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(sendto(again, "new", 3, 0, (void *)&ua, ual) == 3 &&
		      recv_msg(u, buf, 16, NULL, NULL) == 3,
	      "abstract: cannot be sent to by name");
	close(again);

	/* named datagram pair */
	n = recv_msg(n2, buf, sizeof(buf), &from, &fl);
	CHECK(n == 7 && !memcmp(buf, "from n1", 7) && fl == na1l &&
		      !memcmp(&from, &na1, na1l),
	      "named dgram pair: n2 got %zd bytes from a name of length %u", n,
	      fl);
	n = recv_msg(n1, buf, sizeof(buf), &from, &fl);
	CHECK(n == 7 && !memcmp(buf, "from n2", 7) && fl == na2l &&
		      !memcmp(&from, &na2, na2l),
	      "named dgram pair: n1 got %zd bytes from a name of length %u", n,
	      fl);
	CHECK(same_name(n1, 0, "") && same_name(n2, 1, ""),
	      "named dgram pair: names lost");
	both_ways("named dgram pair", n1, n2);
	n = recv_msg(dg[1], buf, sizeof(buf), NULL, NULL);
	CHECK(n == 6 && !memcmp(buf, "orphan", 6),
	      "dgram pair, other end closed: got %zd", n);
	CHECK(send(dg[1], "x", 1, 0) < 0,
	      "dgram pair, other end closed: can still send");

	/* connected one way */
	n = recv_msg(tgt, buf, sizeof(buf), NULL, NULL);
	CHECK(n == 9 && !memcmp(buf, "to target", 9), "target: got %zd", n);
	struct sockaddr_un pa;
	socklen_t pal = sizeof(pa);
	CHECK(getpeername(to, (void *)&pa, &pal) == 0 && pal == tal &&
		      !memcmp(&pa, &ta, tal),
	      "connected one way: not connected to its target");
	CHECK(send(to, "again", 5, 0) == 5 &&
		      recv_msg(tgt, buf, 16, NULL, NULL) == 5,
	      "connected one way: cannot send");

	/* the child's conversation */
	for (int i = 0; i <= 3; i++) {
		char w[16];
		int wl = snprintf(w, sizeof(w), "pong %d", i);
		memset(buf, 0, 16);
		n = recv_msg(tp[0], buf, sizeof(buf), NULL, NULL);
		CHECK(n == wl && !memcmp(buf, w, (size_t)wl),
		      "child: answer %d is '%.*s', want '%s'", i,
		      n > 0 ? (int)n : 0, buf, w);
	}
	CHECK(send(tp[0], "bye", 3, 0) == 3, "child: send bye");
	int st = 0;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0,
	      "child: ended with status %#x", st);
	return cr_done();
}
