/* SPDX-License-Identifier: MIT */
/*
 * demo_counter: the sample target of `make demo` (scripts/demo.sh).
 *
 *   demo_counter [-i MS] [-t SECONDS] DIR
 *
 * Once a tick (every MS milliseconds, default 1000) it changes its
 * capability space in a fixed, visible way and prints one line saying what
 * it did, naming each descriptor as NAME=FD so a script can find it:
 *
 *   tick 1  opens DIR/counter.log                          log=FD
 *   tick 2  makes a pipe                                   pipe_r=FD pipe_w=FD
 *   tick 3  binds a Unix socket to DIR/demo.sock, listens  listen=FD
 *   tick 4  dups the log                                   dup=FD
 *   tick 5  opens DIR/counter.log again by a raw system call,
 *           behind the runtime's back                      raw=FD
 *   tick 6  closes the pipe's read end and the dup
 *   then    opens a UDP socket on odd ticks (udp=FD), closes it on even ones
 *
 * Every tick also appends "count N" to the log.  The program ends by
 * itself after SECONDS (default 60), so it never outlives a broken demo;
 * the demo kills it long before that.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static char log_path[4096];

static void die(const char *what)
{
	printf("demo_counter: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void say(int tick, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(int tick, const char *fmt, ...)
{
	va_list ap;

	printf("tick %d: ", tick);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		die(path);
	}
	strcpy(sa.sun_path, path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(fd, 4) < 0)
		die("listen");
	return fd;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	long interval_ms = 1000, lifetime_s = 60;
	int log = -1, pipe_fd[2] = { -1, -1 }, lsock = -1, dupfd = -1;
	int raw = -1, udp = -1, c;
	char sock_path[4096];

	while ((c = getopt(argc, argv, "i:t:")) != -1) {
		switch (c) {
		case 'i':
			interval_ms = strtol(optarg, NULL, 10);
			break;
		case 't':
			lifetime_s = strtol(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr,
				"usage: demo_counter [-i MS] [-t SECONDS] DIR\n");
			return 2;
		}
	}
	if (optind != argc - 1 || interval_ms <= 0 || lifetime_s <= 0) {
		fprintf(stderr, "usage: demo_counter [-i MS] [-t SECONDS] DIR\n");
		return 2;
	}
	dir = argv[optind];
	snprintf(log_path, sizeof(log_path), "%s/counter.log", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/demo.sock", dir);

	printf("demo_counter: pid=%d, one step every %ld ms\n", getpid(),
	       interval_ms);
	fflush(stdout);

	long ticks = lifetime_s * 1000 / interval_ms;
	for (int tick = 1; tick <= ticks; tick++) {
		sleep_ms(interval_ms);
		switch (tick) {
		case 1:
			log = open(log_path,
				   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				   0644);
			if (log < 0)
				die(log_path);
			say(tick, "opened %s log=%d", log_path, log);
			break;
		case 2:
			if (pipe2(pipe_fd, O_CLOEXEC) < 0)
				die("pipe2");
			say(tick, "made a pipe pipe_r=%d pipe_w=%d", pipe_fd[0],
			    pipe_fd[1]);
			break;
		case 3:
			lsock = listen_unix(sock_path);
			say(tick, "listening on %s listen=%d", sock_path,
			    lsock);
			break;
		case 4:
			dupfd = dup(log);
			if (dupfd < 0)
				die("dup");
			say(tick, "duplicated the log dup=%d", dupfd);
			break;
		case 5:
			/* Behind the runtime's back: the kernel has it, the
			 * region does not. */
			raw = (int)syscall(SYS_openat, AT_FDCWD, log_path,
					   O_RDONLY | O_CLOEXEC);
			if (raw < 0)
				die("raw openat");
			say(tick, "opened %s by a raw system call raw=%d",
			    log_path, raw);
			break;
		case 6:
			say(tick, "closing the pipe's read end pipe_r=%d and "
				  "the dup dup=%d",
			    pipe_fd[0], dupfd);
			close(pipe_fd[0]);
			close(dupfd);
			break;
		default:
			if (udp < 0) {
				udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC,
					     0);
				if (udp < 0)
					die("socket");
				say(tick, "opened a UDP socket udp=%d", udp);
			} else {
				say(tick, "closing the UDP socket udp=%d", udp);
				close(udp);
				udp = -1;
			}
			break;
		}
		if (log >= 0)
			dprintf(log, "count %d\n", tick);
	}
	printf("demo_counter: %ld s are up, exiting\n", lifetime_s);
	(void)raw;
	(void)lsock;
	return 0;
}
