/* SPDX-License-Identifier: MIT */
/*
 * crf_target: a target for the fault-injection sweep (tests/faults/) that
 * runs on by itself and checks itself on demand.
 *
 *   crf_target -t            one process, five threads
 *   crf_target -c DIR        a tree: the root (two threads) and two
 *                            children, talking over pipes and sockets
 *
 * -t: besides the main thread, four threads, each with a buffer of its own
 * filled with a pattern: one spinning (in short bursts), one blocked in read() on a pipe, one
 * sleeping in nanosleep() in a loop, one waiting on a condition variable.
 * Every thread checks its buffer whenever it wakes.
 *
 * -c: the root makes a listener DIR/l.sock, a pipe and a stream socketpair
 * to child 1 (pings down the pipe, answers up the socket), a pipe in which
 * child 1 keeps 1000 bytes queued for the root, a connection to
 * child 2 through the listener (pings and answers), and a datagram
 * socketpair on which child 2 keeps three datagrams queued for the root.
 * The root pings both children every 2 ms; each checks the sequence numbers
 * it gets are consecutive.  The root has one more thread, sleeping in a loop.
 *
 * Every process holds a heap buffer and an anonymous mapping filled with a
 * pattern.  SIGUSR2 to the root (the main thread) makes it check everything:
 * its buffers, that its threads still run (and wake the blocked ones, which
 * check their own state), and in -c the children's buffers, the queued
 * bytes and datagrams, the sequence numbers.  It prints "PASS check K" or
 * "FAIL check K: why", one line each, and goes on.  It prints
 * "ready pid=N" (-c: "ready pid=N kids=A,B") once set up.  SIGTERM ends it
 * (and its children).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF_SZ (64 << 10)
#define MAP_SZ (48 << 10)
#define KEEP_SZ 1000

static atomic_int fails;
static char why[256];
static volatile sig_atomic_t check_req, stop_req;

static void fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&fails, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
}

static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(1, line, (size_t)n) < 0)
		_exit(3);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 9));
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed * 131 + i * 7 + (i >> 9)))
			return 0;
	return 1;
}

/* A heap buffer and a mapping of this process, with their pattern. */
struct mem {
	unsigned char *heap, *map;
	unsigned seed;
};

static void mem_make(struct mem *m, unsigned seed)
{
	m->seed = seed;
	m->heap = malloc(BUF_SZ);
	m->map = mmap(NULL, MAP_SZ, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!m->heap || m->map == MAP_FAILED) {
		perror("crf_target: memory");
		exit(2);
	}
	fill(m->heap, BUF_SZ, seed);
	fill(m->map, MAP_SZ, seed + 1);
}

static int mem_ok(const struct mem *m)
{
	return same(m->heap, BUF_SZ, m->seed) &&
	       same(m->map, MAP_SZ, m->seed + 1);
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Whole reads and writes, through EINTR. */
static int rd(int fd, void *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int wr(int fd, const void *b, size_t n)
{
	size_t put = 0;
	while (put < n) {
		ssize_t r = write(fd, (const char *)b + put, n - put);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		put += (size_t)r;
	}
	return 0;
}

/* ---- threads ---------------------------------------------------------- */

enum { TH_SPIN, TH_READ, TH_SLEEP, TH_COND, NTH };

struct th {
	int idx;
	pthread_t pt;
	struct mem m;
	atomic_ulong progress;
	atomic_int acked;
};

static struct th th[NTH];
static int nth;
static int wake_pipe[2], ack_pipe[2];
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned cond_gen;

static void *th_main(void *arg)
{
	struct th *t = arg;
	unsigned seen_gen = 0;
	uint32_t want = 1;

	mem_make(&t->m, 100 + (unsigned)t->idx);
	for (;;) {
		switch (t->idx) {
		case TH_SPIN:
			/* Running in user mode a tenth of the time: often
			 * caught there, without taking a core. */
			for (int i = 0; i < 1 << 14; i++)
				atomic_fetch_add(&t->progress, 1);
			if (!mem_ok(&t->m))
				fail("spinning thread: its memory changed");
			msleep(1);
			break;
		case TH_READ: {
			uint32_t tok;
			if (rd(wake_pipe[0], &tok, sizeof(tok)) < 0) {
				fail("reading thread: read: %s", strerror(errno));
				return NULL;
			}
			if (tok != want)
				fail("reading thread: token %u, expected %u",
				     tok, want);
			want = tok + 1;
			if (!mem_ok(&t->m))
				fail("reading thread: its memory changed");
			atomic_fetch_add(&t->progress, 1);
			char a = 'r';
			if (wr(ack_pipe[1], &a, 1) < 0)
				fail("reading thread: ack: %s", strerror(errno));
			break;
		}
		case TH_SLEEP:
			msleep(1);
			atomic_fetch_add(&t->progress, 1);
			if (!mem_ok(&t->m))
				fail("sleeping thread: its memory changed");
			break;
		case TH_COND:
			pthread_mutex_lock(&mx);
			while (cond_gen == seen_gen)
				pthread_cond_wait(&cv, &mx);
			seen_gen = cond_gen;
			pthread_mutex_unlock(&mx);
			if (!mem_ok(&t->m))
				fail("waiting thread: its memory changed");
			atomic_fetch_add(&t->progress, 1);
			char a = 'c';
			if (wr(ack_pipe[1], &a, 1) < 0)
				fail("waiting thread: ack: %s", strerror(errno));
			break;
		}
	}
	return NULL;
}

static void start_threads(int which_mask)
{
	if (pipe2(wake_pipe, O_CLOEXEC) < 0 || pipe2(ack_pipe, O_CLOEXEC) < 0) {
		perror("crf_target: pipe");
		exit(2);
	}
	for (int i = 0; i < NTH; i++) {
		if (!(which_mask & (1 << i)))
			continue;
		th[i].idx = i;
		if (pthread_create(&th[i].pt, NULL, th_main, &th[i])) {
			fprintf(stderr, "crf_target: pthread_create failed\n");
			exit(2);
		}
		nth++;
	}
}

/* The threads still run; the blocked ones wake and answer. */
static void check_threads(int which_mask, unsigned k)
{
	unsigned long before[NTH];
	int want_acks = 0;

	for (int i = 0; i < NTH; i++)
		before[i] = atomic_load(&th[i].progress);
	if (which_mask & (1 << TH_READ)) {
		uint32_t tok = k;
		if (wr(wake_pipe[1], &tok, sizeof(tok)) < 0)
			fail("wake pipe: %s", strerror(errno));
		want_acks++;
	}
	if (which_mask & (1 << TH_COND)) {
		pthread_mutex_lock(&mx);
		cond_gen++;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mx);
		want_acks++;
	}
	for (int got = 0; got < want_acks;) {
		struct pollfd p = { ack_pipe[0], POLLIN, 0 };
		int r = poll(&p, 1, 5000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fail("%d of the blocked threads did not answer",
			     want_acks - got);
			break;
		}
		char a;
		if (read(ack_pipe[0], &a, 1) == 1)
			got++;
	}
	for (int i = 0; i < NTH; i++) {
		if (!(which_mask & (1 << i)) || i == TH_READ || i == TH_COND)
			continue;
		int moved = 0;
		for (int w = 0; w < 500 && !moved; w++) {
			moved = atomic_load(&th[i].progress) != before[i];
			if (!moved)
				msleep(2);
		}
		if (!moved)
			fail("thread %d makes no progress", i);
	}
}

/* ---- messages between the root and its children ------------------------ */

struct msg {
	uint32_t seq, cmd, status, pad;
};

enum { CMD_PING, CMD_CHECK };

/* A process whose peer was killed stays until it is killed too (the sweep
 * checks the others were let go). */
static __attribute__((noreturn)) void linger(void)
{
	for (;;)
		pause();
}

static void keep_fill(unsigned char *b)
{
	for (int i = 0; i < KEEP_SZ; i++)
		b[i] = (unsigned char)(i * 13 + 5);
}

/* Child 1: pings on in_fd, answers on out_fd, keeps KEEP_SZ bytes queued
 * for the root on keep_fd (the root reads them when it checks, child 1
 * writes them again). */
static void child1(int in_fd, int out_fd, int keep_fd)
{
	struct mem m;
	struct msg q;
	uint32_t last = 0;
	unsigned char w[KEEP_SZ];

	mem_make(&m, 11);
	keep_fill(w);
	if (wr(keep_fd, w, KEEP_SZ) < 0)
		_exit(2);
	for (;;) {
		if (rd(in_fd, &q, sizeof(q)) < 0)
			linger(); /* the root is gone */
		q.status = 0;
		if (q.seq != last + 1)
			q.status |= 1;
		last = q.seq;
		if (q.cmd == CMD_CHECK) {
			if (!mem_ok(&m))
				q.status |= 2;
			if (wr(keep_fd, w, KEEP_SZ) < 0)
				q.status |= 4;
		}
		if (wr(out_fd, &q, sizeof(q)) < 0)
			linger();
	}
}

static void dgrams_send(int fd)
{
	for (int i = 0; i < 3; i++) {
		char d[64] = { 0 };
		int n = snprintf(d, sizeof(d), "datagram %d", i);
		if (send(fd, d, (size_t)n + (size_t)i * 5, 0) < 0)
			fail("child 2: send: %s", strerror(errno));
	}
}

/* Child 2: pings and answers on conn, datagrams queued on dg. */
static void child2(const char *path, int dg)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct mem m;
	struct msg q;
	uint32_t last = 0;
	int conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (conn < 0 || connect(conn, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("crf_target: child 2: connect");
		_exit(2);
	}
	mem_make(&m, 22);
	dgrams_send(dg);
	for (;;) {
		if (rd(conn, &q, sizeof(q)) < 0)
			linger();
		q.status = 0;
		if (q.seq != last + 1)
			q.status |= 1;
		last = q.seq;
		if (q.cmd == CMD_CHECK) {
			if (!mem_ok(&m))
				q.status |= 2;
			dgrams_send(dg);
		}
		if (wr(conn, &q, sizeof(q)) < 0)
			linger();
	}
}

static void on_usr2(int s)
{
	(void)s;
	check_req = 1;
}

static void on_term(int s)
{
	(void)s;
	stop_req = 1;
}

static void handlers(void)
{
	struct sigaction sa = { .sa_handler = on_usr2, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
}

/* Any failure since the start fails every later check. */
static void report(unsigned k)
{
	int f = atomic_load(&fails);
	if (!f)
		say("PASS check %u", k);
	else
		say("FAIL check %u: %s (%d failures)", k, why, f);
}

static int run_threads(void)
{
	struct mem m;
	int mask = (1 << NTH) - 1;
	unsigned k = 0;

	mem_make(&m, 1);
	start_threads(mask);
	handlers();
	say("ready pid=%d", getpid());
	while (!stop_req) {
		msleep(5);
		if (!mem_ok(&m))
			fail("main thread: its memory changed");
		if (check_req) {
			check_req = 0;
			check_threads(mask, ++k);
			if (!mem_ok(&m))
				fail("main thread: its memory changed");
			report(k);
		}
	}
	return atomic_load(&fails) ? 1 : 0;
}

static int run_tree(const char *dir)
{
	char path[108];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int down[2], up[2], keep[2], dg[2], lis, conn;
	pid_t c1, c2;
	struct mem m;
	unsigned char kb[KEEP_SZ];
	uint32_t seq = 0;
	unsigned k = 0;

	/* A peer killed must not kill the others: they linger. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "%s/l.sock", dir);
	unlink(path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	lis = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lis < 0 || bind(lis, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lis, 4) < 0 || pipe2(down, O_CLOEXEC) < 0 ||
	    pipe2(keep, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, up) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dg) < 0) {
		perror("crf_target: setup");
		return 2;
	}
	keep_fill(kb);
	c1 = fork();
	if (c1 == 0) {
		close(down[1]);
		close(up[0]);
		close(keep[0]);
		close(lis);
		close(dg[0]);
		close(dg[1]);
		child1(down[0], up[1], keep[1]);
	}
	c2 = fork();
	if (c2 == 0) {
		close(down[0]);
		close(down[1]);
		close(up[0]);
		close(up[1]);
		close(keep[0]);
		close(keep[1]);
		close(lis);
		close(dg[0]);
		child2(path, dg[1]);
	}
	if (c1 < 0 || c2 < 0) {
		perror("crf_target: fork");
		return 2;
	}
	close(down[0]);
	close(up[1]);
	close(keep[1]);
	close(dg[1]);
	conn = accept4(lis, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) {
		perror("crf_target: accept");
		return 2;
	}
	mem_make(&m, 1);
	start_threads(1 << TH_SLEEP);
	handlers();
	say("ready pid=%d kids=%d,%d", getpid(), c1, c2);
	while (!stop_req) {
		struct msg q = { .seq = ++seq, .cmd = CMD_PING };
		msleep(2);
		if (check_req) {
			check_req = 0;
			q.cmd = CMD_CHECK;
			++k;
			/* The three datagrams child 2 left queued. */
			for (int i = 0; i < 3; i++) {
				char d[64], w[64];
				int n = snprintf(w, sizeof(w), "datagram %d", i);
				memset(w + n, 0, sizeof(w) - (size_t)n);
				ssize_t r = recv(dg[0], d, sizeof(d),
						 MSG_DONTWAIT);
				if (r != n + i * 5 || memcmp(d, w, (size_t)r))
					fail("datagram %d: %zd bytes, not as "
					     "sent", i, r);
			}
			unsigned char b[KEEP_SZ];
			if (rd(keep[0], b, KEEP_SZ) < 0 ||
			    memcmp(b, kb, KEEP_SZ))
				fail("the bytes child 1 left in the pipe changed");
			if (!mem_ok(&m))
				fail("root: its memory changed");
			check_threads(1 << TH_SLEEP, k);
		}
		struct msg r1, r2;
		if (wr(down[1], &q, sizeof(q)) < 0 ||
		    rd(up[0], &r1, sizeof(r1)) < 0) {
			fail("child 1 is gone (%s)", strerror(errno));
			report(k);
			while (!stop_req)
				pause();
			break;
		}
		if (wr(conn, &q, sizeof(q)) < 0 ||
		    rd(conn, &r2, sizeof(r2)) < 0) {
			fail("child 2 is gone (%s)", strerror(errno));
			report(k);
			while (!stop_req)
				pause();
			break;
		}
		if (r1.seq != seq || r1.status)
			fail("child 1 answered seq %u status %u to seq %u",
			     r1.seq, r1.status, seq);
		if (r2.seq != seq || r2.status)
			fail("child 2 answered seq %u status %u to seq %u",
			     r2.seq, r2.status, seq);
		if (q.cmd == CMD_CHECK)
			report(k);
	}
	kill(c1, SIGKILL);
	kill(c2, SIGKILL);
	waitpid(c1, NULL, 0);
	waitpid(c2, NULL, 0);
	/* DIR/l.sock stays, as after a dump: the sweep checks a failed
	 * restore leaves the target's directory as it found it. */
	return atomic_load(&fails) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "-t"))
		return run_threads();
	if (argc == 3 && !strcmp(argv[1], "-c"))
		return run_tree(argv[2]);
	fprintf(stderr, "usage: crf_target -t | -c DIR\n");
	return 2;
}
