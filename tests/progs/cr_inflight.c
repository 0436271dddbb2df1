/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: descriptors in flight (SCM_RIGHTS), sent
 * and not yet received.  See crtest.h.
 *
 * Before ready it sends, over a stream socketpair S and a datagram
 * socketpair D it keeps both ends of, messages carrying:
 *
 *   S "A-file"   a regular file at offset 7 (nobody else holds it)
 *   S "B-plain"  nothing
 *   S "C-piper"  the read end of a pipe with "pipe-data" in it
 *   S "D-shared" a descriptor g it still holds itself (offset 100)
 *   D "a-pipew"  that pipe's write end
 *   D "b-plain"  nothing
 *   D "c-multi"  an eventfd (counter 42) and the file of "A-file" again
 *   D "d-sock"   a stream socket end whose other end it holds
 *   D "e-nested" a datagram socket end whose other end it holds, with a
 *                message of its own queued carrying another eventfd (7)
 *
 * and closes everything it sent but g.  After the go file it receives it
 * all and checks each descriptor: contents and offsets, that the file of
 * "A-file" and "c-multi" is one description, that g and what came with
 * "D-shared" are one (an lseek on one moves the other), the pipe end to
 * end, both socket pairs both ways, the eventfd counters.
 *
 * Arguments: [keep|skip] [fork|deep].  skip: the dump was made with
 * --skip-in-flight, so the messages come without descriptors (their data
 * all there).  fork: a child receives and checks what the parent sent
 * after the fork; the parent waits for it.  deep: only a chain of datagram
 * sockets in flight, each in the queue of the next (DEEP of them; the
 * innermost nested DEEP - 1 deep, more than capcr keeps), each received
 * after the go file.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "crtest.h"

#define NAME "cr_inflight"

static const char content[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static void send_fds(int s, const char *text, const int *fds, int n)
{
	char c[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec io = { (void *)text, strlen(text) };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1 };

	memset(c, 0, sizeof(c));
	if (n > 0) {
		m.msg_control = c;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
		memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)n);
	}
	SETUP(sendmsg(s, &m, MSG_NOSIGNAL) == (ssize_t)io.iov_len, "sendmsg");
}

/* One recvmsg: the data (NUL-ended) and the descriptors that came with
 * it.  The length, or -1. */
static ssize_t recv_fds(int s, char *buf, size_t max, int *fds, int *nfds)
{
	char c[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec io = { buf, max - 1 };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1,
			    .msg_control = c, .msg_controllen = sizeof(c) };
	struct pollfd p = { .fd = s, .events = POLLIN };

	*nfds = 0;
	if (poll(&p, 1, 2000) != 1)
		return -1;
	ssize_t n = recvmsg(s, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	buf[n] = 0;
	CHECK(!(m.msg_flags & MSG_CTRUNC), "control data truncated");
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
			int k = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds + *nfds, CMSG_DATA(h), sizeof(int) * (size_t)k);
			*nfds += k;
		}
	return n;
}

static int kind_ok(int fd, mode_t type)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

static void both_ways(const char *what, int a, int b)
{
	char x[16] = "";
	struct pollfd p = { .fd = b, .events = POLLIN };
	CHECK(send(a, "ping", 4, MSG_NOSIGNAL) == 4 && poll(&p, 1, 2000) == 1 &&
		      recv(b, x, sizeof(x), MSG_DONTWAIT) == 4 &&
		      !memcmp(x, "ping", 4),
	      "%s: one way does not work", what);
	memset(x, 0, sizeof(x));
	p.fd = a;
	CHECK(send(b, "pong", 4, MSG_NOSIGNAL) == 4 && poll(&p, 1, 2000) == 1 &&
		      recv(a, x, sizeof(x), MSG_DONTWAIT) == 4 &&
		      !memcmp(x, "pong", 4),
	      "%s: the other way does not work", what);
}

struct state {
	int S[2], D[2], g, x0, y0;
};

/* What was sent, sent. */
static void send_all(struct state *st, int x1, int y1)
{
	int rf, p[2], ev, ev2;
	char path[4200];

	snprintf(path, sizeof(path), "%s", cr_path("inflight-file"));
	rf = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	SETUP(rf >= 0, "open the file");
	SETUP(write(rf, content, sizeof(content) - 1) ==
		      (ssize_t)sizeof(content) - 1,
	      "write the file");
	SETUP(lseek(rf, 7, SEEK_SET) == 7, "lseek");
	SETUP(pipe2(p, O_CLOEXEC) == 0, "pipe");
	SETUP(write(p[1], "pipe-data", 9) == 9, "write the pipe");
	ev = eventfd(42, EFD_CLOEXEC);
	ev2 = eventfd(7, EFD_CLOEXEC);
	SETUP(ev >= 0 && ev2 >= 0, "eventfd");

	send_fds(st->S[0], "A-file", &rf, 1);
	send_fds(st->S[0], "B-plain", NULL, 0);
	send_fds(st->S[0], "C-piper", &p[0], 1);
	send_fds(st->S[0], "D-shared", &st->g, 1);
	/* y1's own queue carries ev2, before y1 goes in flight */
	send_fds(st->y0, "inner", &ev2, 1);
	send_fds(st->D[0], "a-pipew", &p[1], 1);
	send_fds(st->D[0], "b-plain", NULL, 0);
	int two[2] = { ev, rf };
	send_fds(st->D[0], "c-multi", two, 2);
	send_fds(st->D[0], "d-sock", &x1, 1);
	send_fds(st->D[0], "e-nested", &y1, 1);
	close(rf);
	close(p[0]);
	close(p[1]);
	close(ev);
	close(ev2);
	close(x1);
	close(y1);
}

/* Receive it all and check it.  skip: no descriptor may come. */
static void check_all(struct state *st, int skip)
{
	char text[512] = "", buf[256];
	int fds[16], n, at_a = -1, at_c = -1, at_d = -1, got = 0;

	/* The stream: as much as comes at a time; descriptors end a read. */
	size_t tl = 0;
	while (tl < strlen("A-fileB-plainC-piperD-shared")) {
		ssize_t k = recv_fds(st->S[1], buf, sizeof(buf), fds, &n);
		if (!CHECK(k > 0, "stream: nothing more to read after '%s'",
			   text))
			break;
		memcpy(text + tl, buf, (size_t)k + 1);
		tl += (size_t)k;
		for (int i = 0; i < n; i++, got++) {
			if (!strcmp(text, "A-file") && at_a < 0)
				at_a = fds[i];
			else if (!strcmp(text, "A-fileB-plainC-piper") &&
				 at_c < 0)
				at_c = fds[i];
			else if (!strcmp(text, "A-fileB-plainC-piperD-shared") &&
				 at_d < 0)
				at_d = fds[i];
			else
				CHECK(0, "stream: a descriptor came after '%s'",
				      text);
		}
	}
	CHECK(!strcmp(text, "A-fileB-plainC-piperD-shared"),
	      "stream: read '%s'", text);

	/* The datagrams, one by one. */
	static const char *const want[] = { "a-pipew", "b-plain", "c-multi",
					     "d-sock", "e-nested" };
	static const int nwant[] = { 1, 0, 2, 1, 1 };
	int dg[5][2];
	for (int m = 0; m < 5; m++) {
		ssize_t k = recv_fds(st->D[1], buf, sizeof(buf), fds, &n);
		dg[m][0] = dg[m][1] = -1;
		if (!CHECK(k > 0 && !strcmp(buf, want[m]),
			   "datagram %d: '%s', want '%s'", m,
			   k > 0 ? buf : "(nothing)", want[m]))
			continue;
		CHECK(n == (skip ? 0 : nwant[m]),
		      "datagram %s came with %d descriptors, want %d", want[m],
		      n, skip ? 0 : nwant[m]);
		for (int i = 0; i < n; i++)
			if (i < 2)
				dg[m][i] = fds[i];
		got += n;
	}
	if (skip) {
		CHECK(got == 0, "%d descriptors came (skip: none)", got);
		/* y1 is gone: nothing left to check but that g is as it was */
		CHECK(lseek(st->g, 0, SEEK_CUR) == 100, "g moved");
		return;
	}
	CHECK(got == 8, "%d descriptors came, want 8", got);

	/* The file, twice, one description, at offset 7. */
	int rf = at_a, rf2 = dg[2][1];
	if (CHECK(kind_ok(rf, S_IFREG), "A-file: not a regular file")) {
		CHECK(lseek(rf, 0, SEEK_CUR) == 7, "A-file: offset %lld, want 7",
		      (long long)lseek(rf, 0, SEEK_CUR));
		char b[4] = "";
		CHECK(read(rf, b, 3) == 3 && !memcmp(b, content + 7, 3),
		      "A-file: read '%.3s'", b);
		CHECK(kind_ok(rf2, S_IFREG) && lseek(rf2, 0, SEEK_CUR) == 10,
		      "c-multi's file is not the description of A-file");
		CHECK(lseek(rf2, 3, SEEK_SET) == 3 &&
			      lseek(rf, 0, SEEK_CUR) == 3,
		      "A-file and c-multi's file: an lseek on one does not "
		      "move the other");
	}
	/* The eventfd */
	uint64_t v = 0;
	CHECK(dg[2][0] >= 0 && read(dg[2][0], &v, 8) == 8 && v == 42,
	      "c-multi's eventfd reads %llu, want 42", (unsigned long long)v);
	/* g, shared */
	if (CHECK(kind_ok(at_d, S_IFREG), "D-shared: not a regular file")) {
		CHECK(lseek(at_d, 0, SEEK_CUR) == 100,
		      "D-shared: offset %lld, want 100",
		      (long long)lseek(at_d, 0, SEEK_CUR));
		CHECK(lseek(at_d, 200, SEEK_SET) == 200 &&
			      lseek(st->g, 0, SEEK_CUR) == 200,
		      "D-shared and g: an lseek on one does not move the other");
		CHECK(lseek(st->g, 5, SEEK_SET) == 5 &&
			      lseek(at_d, 0, SEEK_CUR) == 5,
		      "g and D-shared: an lseek on one does not move the other");
	}
	/* The pipe, end to end */
	int pr = at_c, pw = dg[0][0];
	if (CHECK(kind_ok(pr, S_IFIFO) && kind_ok(pw, S_IFIFO),
		  "the pipe ends are not pipes")) {
		char b[16] = "";
		CHECK(read(pr, b, sizeof(b)) == 9 && !memcmp(b, "pipe-data", 9),
		      "pipe: read '%s', want 'pipe-data'", b);
		memset(b, 0, sizeof(b));
		CHECK(write(pw, "more", 4) == 4 && read(pr, b, sizeof(b)) == 4 &&
			      !memcmp(b, "more", 4),
		      "pipe: what is written at one end does not come out at "
		      "the other");
		close(pw);
		CHECK(read(pr, b, sizeof(b)) == 0,
		      "pipe: no end of file once the write end is closed");
	}
	/* The stream pair */
	if (CHECK(kind_ok(dg[3][0], S_IFSOCK), "d-sock: not a socket"))
		both_ways("d-sock and x0", st->x0, dg[3][0]);
	/* The datagram pair, with its own message in flight */
	int y1 = dg[4][0];
	if (CHECK(kind_ok(y1, S_IFSOCK), "e-nested: not a socket")) {
		ssize_t k = recv_fds(y1, buf, sizeof(buf), fds, &n);
		CHECK(k == 5 && !strcmp(buf, "inner") && n == 1,
		      "e-nested: its own message is '%s' with %d descriptors",
		      k > 0 ? buf : "(nothing)", n);
		v = 0;
		CHECK(n == 1 && read(fds[0], &v, 8) == 8 && v == 7,
		      "e-nested: the eventfd in its queue reads %llu, want 7",
		      (unsigned long long)v);
		both_ways("e-nested and y0", st->y0, y1);
	}
}

#define DEEP 6

static int deep_chain(void)
{
	int p[DEEP][2], fds[8], n;
	char buf[64];

	for (int i = 0; i < DEEP; i++)
		SETUP(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, p[i]) ==
			      0,
		      "socketpair");
	for (int i = 0; i + 1 < DEEP; i++) {
		send_fds(p[i + 1][0], "level", &p[i][1], 1);
		close(p[i][1]);
	}
	cr_ready();
	cr_wait_go();
	int s = p[DEEP - 1][1], got[DEEP];
	for (int i = DEEP - 2; i >= 0; i--) {
		ssize_t k = recv_fds(s, buf, sizeof(buf), fds, &n);
		got[i] = -1;
		if (!CHECK(k == 5 && n == 1 && kind_ok(fds[0], S_IFSOCK),
			   "level %d: '%s' with %d descriptors", i,
			   k > 0 ? buf : "(nothing)", n))
			break;
		s = got[i] = fds[0];
	}
	for (int i = DEEP - 2; i >= 0 && got[i] >= 0; i--)
		both_ways("a socket of the chain", p[i][0], got[i]);
	return cr_done();
}

int main(int argc, char **argv)
{
	struct state st;
	int skip = 0, forked = 0, x[2], y[2];

	for (int i = 1; i < argc; i++) {
		skip |= !strcmp(argv[i], "skip");
		forked |= !strcmp(argv[i], "fork");
	}
	cr_init(NAME);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "deep"))
			return deep_chain();
	SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st.S) == 0,
	      "socketpair S");
	SETUP(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, st.D) == 0,
	      "socketpair D");
	SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x) == 0,
	      "socketpair x");
	SETUP(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, y) == 0,
	      "socketpair y");
	st.x0 = x[0];
	st.y0 = y[0];
	st.g = open(cr_path("inflight-shared"),
		    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	SETUP(st.g >= 0 && ftruncate(st.g, 4096) == 0 &&
		      lseek(st.g, 100, SEEK_SET) == 100,
	      "the shared file");
	if (!forked) {
		send_all(&st, x[1], y[1]);
		cr_ready();
		cr_wait_go();
		check_all(&st, skip);
		return cr_done();
	}

	/* fork: the child receives what the parent sends after the fork */
	int sync[2];
	SETUP(pipe2(sync, O_CLOEXEC) == 0, "pipe");
	fflush(stdout);
	pid_t kid = fork();
	SETUP(kid >= 0, "fork");
	if (kid == 0) {
		char c;
		close(sync[1]);
		close(st.S[0]);
		close(st.D[0]);
		close(x[1]);
		close(y[1]);
		SETUP(read(sync[0], &c, 1) == 1, "child: wait for the parent");
		cr_wait_go();
		check_all(&st, skip);
		fflush(stdout);
		_exit(cr_failures ? 1 : 0);
	}
	close(sync[0]);
	close(st.S[1]);
	close(st.D[1]);
	send_all(&st, x[1], y[1]);
	SETUP(write(sync[1], "s", 1) == 1, "tell the child");
	close(sync[1]);
	cr_ready();
	cr_wait_go();
	int status = 0;
	SETUP(waitpid(kid, &status, 0) == kid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child failed (status 0x%x)", status);
	return cr_done();
}
