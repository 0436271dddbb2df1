/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: a pseudo-terminal pair inside the tree.
 * See crtest.h.
 *
 *   cr_pty
 *
 * The process opens a pty pair (master and slave), gives the terminal
 * settings away from the defaults (echo and output newline translation
 * off, ^G as the interrupt character, exclusive mode, a window size of
 * 37x101), turns on packet mode on the master, and leaves data queued in
 * both directions: a line written to the master that the slave has not
 * read, and a line written to the slave that the master has not read.
 * It forks a child that makes itself a session leader, takes the slave as
 * its controlling terminal (TIOCSCTTY), is its foreground process group,
 * and waits.  After the go file:
 *
 *   child:  getsid, /dev/tty is the slave, tcgetpgrp is its group; the
 *           queued line arrives, once; it says "ready" through /dev/tty
 *           (so the master reads it: the same terminal); reads "ping",
 *           answers "pong"; gets SIGINT when the master writes ^G.
 *   parent: settings, window size, packet and exclusive modes as set; the
 *           queued line arrives once, followed by the child's "ready";
 *           the ping/pong round trip; ^G; the child ends well.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

#include "crtest.h"

#define INPUT "input-line-1\n"
#define OUTPUT "output-data\n"

static volatile sig_atomic_t got_int;

static void on_int(int sig)
{
	(void)sig;
	got_int++;
}

/* Read from fd until buf holds want bytes or nothing comes within ms;
 * strip packet mode's leading byte (which must be TIOCPKT_DATA) if pkt. */
static size_t read_some(int fd, char *buf, size_t cap, size_t want, int ms,
			int pkt)
{
	size_t got = 0;
	char tmp[512];

	while (got < want && got < cap) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, ms) <= 0)
			break;
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		size_t off = 0;
		if (pkt) {
			CHECK(tmp[0] == TIOCPKT_DATA,
			      "master in packet mode: status byte %#x",
			      (unsigned char)tmp[0]);
			off = 1;
		}
		for (size_t i = off; i < (size_t)n && got < cap; i++)
			buf[got++] = tmp[i];
	}
	return got;
}

static int child_main(int s)
{
	char buf[256];
	size_t n;

	cr_wait_go();
	CHECK(getsid(0) == getpid(), "child: getsid %d, not itself %d",
	      (int)getsid(0), (int)getpid());
	/* /dev/tty is the slave: its window size, and "ready" below goes
	 * through it to the parent's master */
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct winsize ws = { 0 };
	if (CHECK(tty >= 0, "child: open /dev/tty: %s", strerror(errno)))
		CHECK(ioctl(tty, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 37 &&
			      ws.ws_col == 101,
		      "child: /dev/tty's window size %ux%u", ws.ws_row,
		      ws.ws_col);
	else
		tty = s;
	CHECK(tcgetpgrp(s) == getpgrp(),
	      "child: foreground group %d, not its own %d", (int)tcgetpgrp(s),
	      (int)getpgrp());
	CHECK(tcgetsid(s) == getpid(), "child: tcgetsid %d",
	      (int)tcgetsid(s));
	/* canonical mode: one line per read */
	n = read_some(s, buf, sizeof(buf) - 1, sizeof(INPUT) - 1, 5000, 0);
	buf[n] = 0;
	CHECK(n == sizeof(INPUT) - 1 && !memcmp(buf, INPUT, n),
	      "child: queued input %zu bytes \"%s\"", n, buf);
	CHECK(write(tty, "ready\n", 6) == 6, "child: write ready: %s",
	      strerror(errno));
	n = read_some(s, buf, sizeof(buf) - 1, 5, 10000, 0);
	buf[n] = 0;
	CHECK(n == 5 && !memcmp(buf, "ping\n", 5),
	      "child: after the queued line, \"%s\" instead of ping", buf);
	CHECK(write(s, "pong\n", 5) == 5, "child: write pong: %s",
	      strerror(errno));
	for (int i = 0; i < 2000 && !got_int; i++)
		cr_nap_ms(5);
	CHECK(got_int == 1, "child: %d SIGINTs from ^G, expected 1",
	      (int)got_int);
	return cr_failures ? 1 : 0;
}

int main(void)
{
	/* Zeroed: tcgetattr leaves the padding after c_cc as it was, and the
	 * two are compared whole (memcmp) below. */
	struct termios tio = { 0 };
	struct winsize ws = { .ws_row = 37, .ws_col = 101 };
	int on = 1;

	cr_init("cr_pty");
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	SETUP(m >= 0, "posix_openpt");
	SETUP(grantpt(m) == 0 && unlockpt(m) == 0, "unlockpt");
	int s = open(ptsname(m), O_RDWR | O_NOCTTY);
	SETUP(s >= 0, "open the slave");
	SETUP(tcgetattr(s, &tio) == 0, "tcgetattr");
	tio.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	tio.c_oflag &= ~(tcflag_t)ONLCR;
	tio.c_cc[VINTR] = 0x07;
	SETUP(tcsetattr(s, TCSANOW, &tio) == 0, "tcsetattr");
	SETUP(ioctl(m, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ");
	SETUP(ioctl(s, TIOCEXCL) == 0, "TIOCEXCL");
	SETUP(ioctl(m, TIOCPKT, &on) == 0, "TIOCPKT");
	SETUP(write(m, INPUT, sizeof(INPUT) - 1) == sizeof(INPUT) - 1,
	      "write to the master");
	SETUP(write(s, OUTPUT, sizeof(OUTPUT) - 1) == sizeof(OUTPUT) - 1,
	      "write to the slave");

	int sync[2];
	SETUP(pipe2(sync, O_CLOEXEC) == 0, "pipe");
	pid_t c = fork();
	SETUP(c >= 0, "fork");
	if (c == 0) {
		struct sigaction sa = { .sa_handler = on_int };
		sigaction(SIGINT, &sa, NULL);
		SETUP(setsid() == getpid(), "setsid");
		SETUP(ioctl(s, TIOCSCTTY, 0) == 0, "TIOCSCTTY");
		SETUP(tcsetpgrp(s, getpid()) == 0, "tcsetpgrp");
		close(m);
		close(sync[0]);
		SETUP(write(sync[1], "x", 1) == 1, "sync");
		close(sync[1]);
		_exit(child_main(s));
	}
	char x;
	close(sync[1]);
	SETUP(read(sync[0], &x, 1) == 1, "child set up");
	close(sync[0]);
	cr_ready();
	cr_wait_go();

	struct termios now = { 0 };
	struct winsize wn = { 0 };
	int v = -1;
	CHECK(tcgetattr(m, &now) == 0, "tcgetattr: %s", strerror(errno));
	CHECK(!(now.c_lflag & ECHO) && (now.c_lflag & ICANON) &&
		      (now.c_lflag & ISIG) && !(now.c_oflag & ONLCR) &&
		      now.c_cc[VINTR] == 0x07,
	      "termios: lflag %#x oflag %#x VINTR %#x", now.c_lflag,
	      now.c_oflag, now.c_cc[VINTR]);
	CHECK(memcmp(&now, &tio, sizeof(now)) == 0,
	      "termios differ from what was set");
	CHECK(ioctl(m, TIOCGWINSZ, &wn) == 0 && wn.ws_row == 37 &&
		      wn.ws_col == 101,
	      "window size %ux%u", wn.ws_row, wn.ws_col);
	CHECK(ioctl(m, TIOCGPKT, &v) == 0 && v == 1, "packet mode %d", v);
	v = -1;
	CHECK(ioctl(s, TIOCGEXCL, &v) == 0 && v == 1, "exclusive mode %d",
	      v);
	v = -1;
	CHECK(ioctl(m, TIOCGPTLCK, &v) == 0 && v == 0, "locked %d", v);
	pid_t sid = 0;
	CHECK(ioctl(m, TIOCGSID, &sid) == 0 && sid == c,
	      "the slave's session %d, not the child %d", (int)sid, (int)c);
	pid_t fg = 0;
	CHECK(ioctl(m, TIOCGPGRP, &fg) == 0 && fg == c,
	      "the slave's foreground group %d, not the child %d", (int)fg,
	      (int)c);

	char buf[256];
	const char want[] = OUTPUT "ready\n";
	size_t n = read_some(m, buf, sizeof(buf) - 1, sizeof(want) - 1, 10000, 1);
	buf[n] = 0;
	CHECK(n == sizeof(want) - 1 && !memcmp(buf, want, n),
	      "master read %zu bytes \"%s\", expected \"%s\"", n, buf, want);
	CHECK(write(m, "ping\n", 5) == 5, "write ping: %s", strerror(errno));
	n = read_some(m, buf, sizeof(buf) - 1, 5, 10000, 1);
	buf[n] = 0;
	CHECK(n == 5 && !memcmp(buf, "pong\n", 5), "round trip: \"%s\"", buf);
	char intr = 0x07;
	CHECK(write(m, &intr, 1) == 1, "write ^G: %s", strerror(errno));
	int st = 0;
	CHECK(waitpid(c, &st, 0) == c, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child ended %#x", st);
	return cr_done();
}
