/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: epoll, timerfd, signalfd, inotify.  See
 * crtest.h for the protocol.
 *
 *   - an epoll watching a pipe's read end (level), an eventfd (EPOLLET)
 *     and a bound UDP socket (with EPOLLRDHUP), each with its own data:
 *     the same interest list afterwards (fdinfo: numbers, events, data);
 *     nothing ready at first; then each reports readable with its data
 *     once written to; EPOLL_CTL_DEL of the pipe works (the registrations
 *     use the process's own descriptor numbers) and it is not reported
 *     any more;
 *   - a timerfd every 100 ms (CLOCK_MONOTONIC): still firing, one
 *     expiration per read, about 100 ms apart;
 *   - an absolute CLOCK_REALTIME timerfd, every 10 minutes, first expiry
 *     35 minutes ago: 4 expirations pending, the next in about 5 minutes,
 *     settime flags kept;
 *   - a one-shot timerfd that has expired unread: 1 expiration pending,
 *     disarmed;
 *   - a CLOCK_BOOTTIME timerfd armed then disarmed: disarmed, nothing to
 *     read, same clock;
 *   - a signalfd for SIGUSR1, SIGUSR2 and SIGRTMIN+2 (all blocked), with
 *     SIGUSR2 pending from before: the same mask; SIGUSR2 read first, then
 *     SIGUSR1 (kill) and SIGRTMIN+2 (sigqueue, with its value) sent after;
 *   - an inotify watching a directory (wd 1) and a file (wd 3; wd 2 was a
 *     watch removed before): the same wds and masks; a file created in the
 *     directory gives IN_CREATE with wd 1 and its name, a write to the file
 *     IN_MODIFY with wd 3, and a new watch gets wd 4.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "crtest.h"

#define D_PIPE 0x1111222233334444ULL
#define D_EVENT 0x5555666677778888ULL
#define D_SOCK 0x99990000aaaabbbbULL
#define PERIOD_MS 100
#define SIG_Q (SIGRTMIN + 2)

/* The lines of /proc/self/fdinfo/FD that start with prefix, each cut at
 * the first occurrence of cut (if any), joined with ';'. */
static void fdinfo_lines(int fd, const char *prefix, const char *cut,
			 char *out, size_t len)
{
	char p[64], line[512];
	size_t o = 0;

	out[0] = 0;
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(p, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, prefix, strlen(prefix)))
			continue;
		line[strcspn(line, "\n")] = 0;
		char *c = cut ? strstr(line, cut) : NULL;
		if (c)
			*c = 0;
		o += (size_t)snprintf(out + o, len - o, "%s;", line);
		if (o >= len)
			break;
	}
	fclose(f);
}

static void fdinfo_sorted(int fd, const char *prefix, const char *cut,
			  char *out, size_t len)
{
	char raw[4096], *parts[64];
	int n = 0;
	size_t o = 0;

	fdinfo_lines(fd, prefix, cut, raw, sizeof(raw));
	for (char *s = strtok(raw, ";"); s && n < 64; s = strtok(NULL, ";"))
		parts[n++] = s;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(parts[j], parts[i]) < 0) {
				char *t = parts[i];
				parts[i] = parts[j];
				parts[j] = t;
			}
	out[0] = 0;
	for (int i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s;", parts[i]);
}

static uint64_t ns_of(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;
}

/* The events epoll reports within ms, as (data, events). */
static int wait_events(int ep, struct epoll_event *ev, int max, int ms)
{
	int n;
	do
		n = epoll_wait(ep, ev, max, ms);
	while (n < 0 && errno == EINTR);
	return n;
}

static void check_epoll(int ep, int p[2], int efd, int us,
			const struct sockaddr_in *addr)
{
	struct epoll_event ev[8];
	uint64_t one = 1;

	int n = wait_events(ep, ev, 8, 0);
	CHECK(n == 0, "epoll: %d events ready before anything was written "
		      "(first data %#llx)",
	      n, n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);

	/* the pipe */
	CHECK(write(p[1], "x", 1) == 1, "pipe: write: %s", strerror(errno));
	n = wait_events(ep, ev, 8, 1000);
	CHECK(n == 1 && ev[0].data.u64 == D_PIPE && (ev[0].events & EPOLLIN),
	      "epoll: after a write to the pipe: %d events, data %#llx, "
	      "events %#x",
	      n, n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL,
	      n > 0 ? ev[0].events : 0);
	char c;
	CHECK(read(p[0], &c, 1) == 1, "pipe: read back");
	n = wait_events(ep, ev, 8, 0);
	CHECK(n == 0, "epoll: %d events once the pipe was read", n);

	/* the eventfd, edge-triggered: once, not again while unread */
	CHECK(write(efd, &one, 8) == 8, "eventfd: write");
	n = wait_events(ep, ev, 8, 1000);
	CHECK(n == 1 && ev[0].data.u64 == D_EVENT && (ev[0].events & EPOLLIN),
	      "epoll: after a write to the eventfd: %d events, data %#llx", n,
	      n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);
	n = wait_events(ep, ev, 8, 0);
	CHECK(n == 0, "epoll: the edge-triggered eventfd reported %d more "
		      "times",
	      n);
	uint64_t v;
	CHECK(read(efd, &v, 8) == 8 && v == 1, "eventfd: read back");

	/* the socket */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0 && sendto(s, "dgram", 5, 0, (const void *)addr,
			       sizeof(*addr)) == 5,
	      "socket: cannot send to the watched socket: %s",
	      strerror(errno));
	close(s);
	n = wait_events(ep, ev, 8, 1000);
	CHECK(n == 1 && ev[0].data.u64 == D_SOCK && (ev[0].events & EPOLLIN),
	      "epoll: after a datagram to the socket: %d events, data %#llx",
	      n, n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);
	char buf[16];
	CHECK(recv(us, buf, sizeof(buf), 0) == 5, "socket: receive");

	/* the registration is by this process's descriptor number */
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL) == 0,
	      "epoll: EPOLL_CTL_DEL of the pipe (fd %d): %s", p[0],
	      strerror(errno));
	CHECK(write(p[1], "y", 1) == 1, "pipe: write 2");
	n = wait_events(ep, ev, 8, 100);
	CHECK(n == 0, "epoll: the pipe still reported after EPOLL_CTL_DEL "
		      "(%d events)",
	      n);
	CHECK(read(p[0], &c, 1) == 1, "pipe: read back 2");
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 7 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e) < 0 && errno == EEXIST,
	      "epoll: the eventfd is not registered any more (%s)",
	      strerror(errno));
}

static void check_periodic(int t)
{
	struct itimerspec cur;
	uint64_t n;
	double at[3];

	CHECK(timerfd_gettime(t, &cur) == 0 &&
		      ns_of(&cur.it_interval) == PERIOD_MS * 1000000ULL &&
		      ns_of(&cur.it_value) > 0 &&
		      ns_of(&cur.it_value) <= PERIOD_MS * 1000000ULL,
	      "periodic timerfd: interval %llu ns, %llu ns left",
	      (unsigned long long)ns_of(&cur.it_interval),
	      (unsigned long long)ns_of(&cur.it_value));
	/* what has piled up */
	CHECK(read(t, &n, 8) == 8 && n >= 1, "periodic timerfd: read");
	for (int i = 0; i < 3; i++) {
		n = 0;
		ssize_t r = read(t, &n, 8);
		at[i] = cr_now();
		CHECK(r == 8 && n == 1,
		      "periodic timerfd: read %d gave %zd bytes, %llu "
		      "expirations",
		      i, r, (unsigned long long)n);
	}
	double ms = (at[2] - at[0]) * 1000.0;
	CHECK(ms > 2 * PERIOD_MS * 0.7 && ms < 2 * PERIOD_MS * 1.5,
	      "periodic timerfd: two periods took %.0f ms, want about %d", ms,
	      2 * PERIOD_MS);
}

int main(void)
{
	char ep_before[4096], ep_now[4096], in_before[4096], in_now[4096];
	char tt_flags_before[256], tt_flags_now[256];
	char sig_before[256], sig_now[256], toff_clock[256];

	cr_init("cr_ipc_kinds");

	/* ---- epoll ---- */
	int p[2];
	SETUP(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0, "pipe");
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	SETUP(efd >= 0, "eventfd");
	int us = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	SETUP(us >= 0, "socket");
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(addr);
	SETUP(bind(us, (void *)&addr, sizeof(addr)) == 0, "bind");
	SETUP(getsockname(us, (void *)&addr, &al) == 0, "getsockname");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	SETUP(ep >= 0, "epoll_create1");
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = D_PIPE };
	SETUP(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e) == 0, "watch the pipe");
	e = (struct epoll_event){ .events = EPOLLIN | EPOLLET,
				  .data.u64 = D_EVENT };
	SETUP(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e) == 0, "watch the eventfd");
	e = (struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP,
				  .data.u64 = D_SOCK };
	SETUP(epoll_ctl(ep, EPOLL_CTL_ADD, us, &e) == 0, "watch the socket");
	fdinfo_sorted(ep, "tfd:", " pos:", ep_before, sizeof(ep_before));

	/* ---- timerfds ---- */
	int tper = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	SETUP(tper >= 0, "timerfd periodic");
	struct itimerspec its = { { 0, PERIOD_MS * 1000000L },
				  { 0, PERIOD_MS * 1000000L } };
	SETUP(timerfd_settime(tper, 0, &its, NULL) == 0, "arm periodic");

	int ttick = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	SETUP(ttick >= 0, "timerfd ticks");
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	its = (struct itimerspec){ { 600, 0 }, { now.tv_sec - 35 * 60, 0 } };
	SETUP(timerfd_settime(ttick, TFD_TIMER_ABSTIME, &its, NULL) == 0,
	      "arm ticks");
	fdinfo_lines(ttick, "settime flags:", NULL, tt_flags_before,
		     sizeof(tt_flags_before));

	int tone = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	SETUP(tone >= 0, "timerfd one-shot");
	its = (struct itimerspec){ { 0, 0 }, { 0, 1000000 } };
	SETUP(timerfd_settime(tone, 0, &its, NULL) == 0, "arm one-shot");
	cr_nap_ms(20);

	int toff = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	SETUP(toff >= 0, "timerfd disarmed");
	its = (struct itimerspec){ { 1, 0 }, { 3600, 0 } };
	SETUP(timerfd_settime(toff, 0, &its, NULL) == 0, "arm disarmed");
	its = (struct itimerspec){ { 0, 0 }, { 0, 0 } };
	SETUP(timerfd_settime(toff, 0, &its, NULL) == 0, "disarm");
	fdinfo_lines(toff, "clockid:", NULL, toff_clock, sizeof(toff_clock));

	/* ---- signalfd ---- */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIG_Q);
	SETUP(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "block");
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	SETUP(sfd >= 0, "signalfd");
	SETUP(kill(getpid(), SIGUSR2) == 0, "SIGUSR2 pending");
	fdinfo_lines(sfd, "sigmask:", NULL, sig_before, sizeof(sig_before));

	/* ---- inotify ---- */
	SETUP(mkdir(cr_path("watched"), 0700) == 0, "mkdir watched");
	SETUP(mkdir(cr_path("gone"), 0700) == 0, "mkdir gone");
	int ff = open(cr_path("file"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	SETUP(ff >= 0, "file");
	close(ff);
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	SETUP(in >= 0, "inotify_init1");
	int w1 = inotify_add_watch(in, cr_path("watched"), IN_CREATE | IN_DELETE);
	int w2 = inotify_add_watch(in, cr_path("gone"), IN_CREATE);
	SETUP(w1 == 1 && w2 == 2, "watches 1 and 2");
	SETUP(inotify_rm_watch(in, w2) == 0, "remove watch 2");
	int w3 = inotify_add_watch(in, cr_path("file"),
				   IN_MODIFY | IN_EXCL_UNLINK);
	SETUP(w3 == 3, "watch 3");
	char ibuf[4096] __attribute__((aligned(8)));
	while (read(in, ibuf, sizeof(ibuf)) > 0) /* the IN_IGNORED of wd 2 */
		;
	fdinfo_sorted(in, "inotify wd:", " ino:", in_before, sizeof(in_before));
	char masks[256];
	fdinfo_sorted(in, "inotify wd:", " ignored_mask:", masks, sizeof(masks));

	cr_info("epoll: %s", ep_before);
	cr_info("timerfd: %s %s", tt_flags_before, toff_clock);
	cr_info("signalfd: %s", sig_before);
	cr_info("inotify wds: %s", in_before);
	cr_ready();
	cr_wait_go();

	/* ---- epoll ---- */
	fdinfo_sorted(ep, "tfd:", " pos:", ep_now, sizeof(ep_now));
	CHECK(!strcmp(ep_before, ep_now), "epoll: interest list {%s}, was {%s}",
	      ep_now, ep_before);
	check_epoll(ep, p, efd, us, &addr);

	/* ---- timerfds ---- */
	check_periodic(tper);

	struct itimerspec cur;
	uint64_t n = 0;
	CHECK(timerfd_gettime(ttick, &cur) == 0 && cur.it_interval.tv_sec == 600 &&
		      cur.it_value.tv_sec < 300 && cur.it_value.tv_sec > 200,
	      "absolute timerfd: interval %lld s, %lld s left, want 600 and "
	      "about 300",
	      (long long)cur.it_interval.tv_sec, (long long)cur.it_value.tv_sec);
	fdinfo_lines(ttick, "settime flags:", NULL, tt_flags_now,
		     sizeof(tt_flags_now));
	CHECK(!strcmp(tt_flags_now, tt_flags_before),
	      "absolute timerfd: %s, was %s", tt_flags_now, tt_flags_before);
	CHECK(read(ttick, &n, 8) == 8 && n == 4,
	      "absolute timerfd: %llu expirations pending, want 4",
	      (unsigned long long)n);
	CHECK(read(ttick, &n, 8) < 0 && errno == EAGAIN,
	      "absolute timerfd: readable again at once");

	n = 0;
	CHECK(read(tone, &n, 8) == 8 && n == 1,
	      "one-shot timerfd: %llu expirations pending, want 1",
	      (unsigned long long)n);
	CHECK(timerfd_gettime(tone, &cur) == 0 && !ns_of(&cur.it_value) &&
		      !ns_of(&cur.it_interval),
	      "one-shot timerfd: armed again");

	CHECK(timerfd_gettime(toff, &cur) == 0 && !ns_of(&cur.it_value) &&
		      !ns_of(&cur.it_interval),
	      "disarmed timerfd: armed (%llu ns left)",
	      (unsigned long long)ns_of(&cur.it_value));
	CHECK(read(toff, &n, 8) < 0 && errno == EAGAIN,
	      "disarmed timerfd: readable");
	char clk[256];
	fdinfo_lines(toff, "clockid:", NULL, clk, sizeof(clk));
	CHECK(!strcmp(clk, toff_clock), "disarmed timerfd: %s, was %s", clk,
	      toff_clock);

	/* ---- signalfd ---- */
	fdinfo_lines(sfd, "sigmask:", NULL, sig_now, sizeof(sig_now));
	CHECK(!strcmp(sig_now, sig_before), "signalfd: %s, was %s", sig_now,
	      sig_before);
	struct signalfd_siginfo si;
	CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) &&
		      si.ssi_signo == SIGUSR2,
	      "signalfd: the pending SIGUSR2 is not read first (%u)",
	      si.ssi_signo);
	CHECK(read(sfd, &si, sizeof(si)) < 0 && errno == EAGAIN,
	      "signalfd: more than SIGUSR2 pending (%u)", si.ssi_signo);
	union sigval sv = { .sival_int = 4242 };
	CHECK(kill(getpid(), SIGUSR1) == 0 && sigqueue(getpid(), SIG_Q, sv) == 0,
	      "signalfd: send: %s", strerror(errno));
	memset(&si, 0, sizeof(si));
	CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) &&
		      si.ssi_signo == SIGUSR1 &&
		      si.ssi_pid == (uint32_t)getpid(),
	      "signalfd: SIGUSR1 not received (signal %u from %u)",
	      si.ssi_signo, si.ssi_pid);
	memset(&si, 0, sizeof(si));
	CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) &&
		      si.ssi_signo == (uint32_t)SIG_Q && si.ssi_int == 4242,
	      "signalfd: SIGRTMIN+2 not received with its value (signal %u, "
	      "value %d)",
	      si.ssi_signo, si.ssi_int);

	/* ---- inotify ---- */
	fdinfo_sorted(in, "inotify wd:", " ino:", in_now, sizeof(in_now));
	CHECK(!strcmp(in_now, in_before), "inotify: watches {%s}, were {%s}",
	      in_now, in_before);
	char masks_now[256];
	fdinfo_sorted(in, "inotify wd:", " ignored_mask:", masks_now,
		      sizeof(masks_now));
	CHECK(!strcmp(masks_now, masks), "inotify: masks {%s}, were {%s}",
	      masks_now, masks);
	ssize_t r = read(in, ibuf, sizeof(ibuf));
	CHECK(r < 0 && errno == EAGAIN, "inotify: %zd bytes of events queued "
					"before anything happened",
	      r);
	ff = open(cr_path("watched/new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(ff >= 0, "create watched/new: %s", strerror(errno));
	close(ff);
	struct pollfd pf = { .fd = in, .events = POLLIN };
	CHECK(poll(&pf, 1, 1000) == 1, "inotify: no event for watched/new");
	r = read(in, ibuf, sizeof(ibuf));
	const struct inotify_event *ie = (const void *)ibuf;
	CHECK(r >= (ssize_t)sizeof(*ie) && ie->wd == w1 &&
		      (ie->mask & IN_CREATE) && ie->len &&
		      !strcmp(ie->name, "new"),
	      "inotify: creating watched/new gave wd %d mask %#x name '%s' "
	      "(%zd bytes), want wd %d IN_CREATE new",
	      r > 0 ? ie->wd : -1, r > 0 ? ie->mask : 0,
	      r > 0 && ie->len ? ie->name : "", r, w1);
	ff = open(cr_path("file"), O_WRONLY | O_APPEND | O_CLOEXEC);
	CHECK(ff >= 0 && write(ff, "z", 1) == 1, "write file: %s",
	      strerror(errno));
	close(ff);
	CHECK(poll(&pf, 1, 1000) == 1, "inotify: no event for the write");
	r = read(in, ibuf, sizeof(ibuf));
	CHECK(r >= (ssize_t)sizeof(*ie) && ie->wd == w3 &&
		      (ie->mask & IN_MODIFY),
	      "inotify: writing the file gave wd %d mask %#x, want wd %d "
	      "IN_MODIFY",
	      r > 0 ? ie->wd : -1, r > 0 ? ie->mask : 0, w3);
	int w4 = inotify_add_watch(in, cr_path("gone"), IN_CREATE);
	CHECK(w4 == 4, "inotify: a new watch got wd %d, want 4", w4);

	return cr_done();
}
