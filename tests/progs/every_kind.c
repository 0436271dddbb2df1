/* SPDX-License-Identifier: MIT */
/*
 * One descriptor of every kind, made every way the runtime wraps.
 *
 *   every_kind DIR
 *
 * Creates its files, FIFO and Unix socket in DIR; prints one line
 * "fd NAME N" per descriptor and "info KEY VALUE" for what a test needs to
 * know (ports, paths), then "ready pid=N phase=open" and waits for SIGUSR2.
 * Then it closes them all (close, fclose, closedir, pclose), prints
 * "ready pid=N phase=closed" and waits again.  Checks of its own: every
 * call succeeds, and capcr_badge() agrees for duplicates.
 */
#include "tprog.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#define MAXN 64
static struct {
	const char *name;
	int fd;
} made[MAXN];
static int nmade;

static int note(const char *name, int fd)
{
	if (!TP_CHECK(fd >= 0, "%s: %s", name, strerror(errno)))
		return fd;
	made[nmade].name = name;
	made[nmade].fd = fd;
	nmade++;
	printf("fd %s %d\n", name, fd);
	return fd;
}

static void send_fd(int sock, int fd)
{
	char byte = 'x';
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr a;
	} cm;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	memset(&cm, 0, sizeof(cm));
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	TP_CHECK(sendmsg(sock, &mh, 0) == 1, "sendmsg: %s", strerror(errno));
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr a;
	} cm;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	int fd = -1;
	if (!TP_CHECK(recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) == 1, "recvmsg: %s",
		      strerror(errno)))
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

int main(int argc, char **argv)
{
	char path[512], sockpath[108], tmpl[512];
	const char *dir = argc > 1 ? argv[1] : "/tmp";

	tp_init("every_kind");
	printf("info monitored %d\n", tp_monitored());

	/* Files and directories. */
	snprintf(path, sizeof(path), "%s/file", dir);
	int file = note("file", open(path, O_RDWR | O_CREAT | O_TRUNC, 0640));
	TP_CHECK(write(file, "hello\n", 6) == 6, "write");
	int dfd = note("dirfd", open(dir, O_RDONLY | O_DIRECTORY));
	note("openat", openat(dfd, "file", O_RDONLY));
	FILE *fo = fopen(path, "re");
	note("fopen", fo ? fileno(fo) : -1);
	DIR *dd = opendir(dir);
	note("opendir", dd ? dirfd(dd) : -1);
	snprintf(path, sizeof(path), "%s/creat", dir);
	note("creat", creat(path, 0600));
	note("devnull", open("/dev/null", O_WRONLY));
	note("ptmx", posix_openpt(O_RDWR | O_NOCTTY));
	snprintf(tmpl, sizeof(tmpl), "%s/tmp.XXXXXX", dir);
	note("mkstemp", mkstemp(tmpl));
	printf("info mkstemp %s\n", tmpl);
	FILE *tf = tmpfile();
	note("tmpfile", tf ? fileno(tf) : -1);

	/* Pipes and a FIFO. */
	int p[2], p2[2];
	TP_CHECK(pipe(p) == 0, "pipe");
	note("pipe_r", p[0]);
	note("pipe_w", p[1]);
	TP_CHECK(pipe2(p2, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2");
	note("pipe2_r", p2[0]);
	note("pipe2_w", p2[1]);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	TP_CHECK(mkfifo(path, 0600) == 0, "mkfifo");
	note("fifo", open(path, O_RDWR));
	FILE *po = popen("cat >/dev/null", "w");
	note("popen", po ? fileno(po) : -1);

	/* Unix sockets: abstract listener, path listener with a client and
	 * an accepted end, a datagram pair. */
	struct sockaddr_un ua = { .sun_family = AF_UNIX };
	int ulis = note("unix_listen", socket(AF_UNIX, SOCK_STREAM, 0));
	char aname[64];
	snprintf(aname, sizeof(aname), "capcr-test-%d", (int)getpid());
	memcpy(ua.sun_path + 1, aname, strlen(aname));
	TP_CHECK(bind(ulis, (struct sockaddr *)&ua,
		      offsetof(struct sockaddr_un, sun_path) + 1 +
			      strlen(aname)) == 0,
		 "bind abstract: %s", strerror(errno));
	TP_CHECK(listen(ulis, 4) == 0, "listen");
	printf("info abstract %s\n", aname);

	struct sockaddr_un pa = { .sun_family = AF_UNIX };
	snprintf(sockpath, sizeof(sockpath), "%s/sock", dir);
	snprintf(pa.sun_path, sizeof(pa.sun_path), "%s", sockpath);
	int plis = note("path_listen",
			socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	TP_CHECK(bind(plis, (struct sockaddr *)&pa, sizeof(pa)) == 0,
		 "bind path: %s", strerror(errno));
	TP_CHECK(listen(plis, 4) == 0, "listen");
	int pcli = note("path_client", socket(AF_UNIX, SOCK_STREAM, 0));
	TP_CHECK(connect(pcli, (struct sockaddr *)&pa, sizeof(pa)) == 0,
		 "connect path: %s", strerror(errno));
	note("path_accepted", accept4(plis, NULL, NULL, SOCK_CLOEXEC));
	printf("info sockpath %s\n", sockpath);

	int sp[2];
	TP_CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) == 0, "socketpair");
	note("pair0", sp[0]);
	note("pair1", sp[1]);

	/* TCP on loopback: a listener on a fixed port, one on port 0, a
	 * connected client and the accepted end. */
	struct sockaddr_in ia = { .sin_family = AF_INET };
	socklen_t il = sizeof(ia);
	ia.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ilis0 = note("inet_listen0",
			 socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	TP_CHECK(bind(ilis0, (struct sockaddr *)&ia, sizeof(ia)) == 0,
		 "bind inet 0: %s", strerror(errno));
	TP_CHECK(listen(ilis0, 4) == 0, "listen");
	getsockname(ilis0, (struct sockaddr *)&ia, &il);
	printf("info port0 %d\n", ntohs(ia.sin_port));
	/* A fixed port: find a free one, then bind it explicitly. */
	int ilis = -1;
	for (int tries = 0; tries < 20 && ilis < 0; tries++) {
		struct sockaddr_in fa = { .sin_family = AF_INET };
		socklen_t fl = sizeof(fa);
		fa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		long probe = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
		syscall(SYS_bind, probe, &fa, sizeof(fa));
		syscall(SYS_getsockname, probe, &fa, &fl);
		syscall(SYS_close, probe);
		int s = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&fa, sizeof(fa)) == 0) {
			ilis = s;
			ia = fa;
		} else {
			close(s);
		}
	}
	note("inet_listen", ilis);
	TP_CHECK(listen(ilis, 4) == 0, "listen");
	printf("info port %d\n", ntohs(ia.sin_port));
	int icli = note("inet_client", socket(AF_INET, SOCK_STREAM, 0));
	TP_CHECK(connect(icli, (struct sockaddr *)&ia, sizeof(ia)) == 0,
		 "connect inet: %s", strerror(errno));
	struct sockaddr_in ca;
	socklen_t cl = sizeof(ca);
	getsockname(icli, (struct sockaddr *)&ca, &cl);
	printf("info cport %d\n", ntohs(ca.sin_port));
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	int iacc = note("inet_accepted",
			accept(ilis, (struct sockaddr *)&peer, &pl));
	TP_CHECK(iacc < 0 || (pl == sizeof(peer) &&
			      peer.sin_port == ca.sin_port),
		 "accept() handed back a wrong peer address");

	/* Anonymous-inode kinds. */
	note("eventfd", eventfd(42, EFD_CLOEXEC));
	note("epoll", epoll_create1(EPOLL_CLOEXEC));
	note("timerfd", timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	note("signalfd", signalfd(-1, &ss, SFD_CLOEXEC));
	note("inotify", inotify_init1(IN_NONBLOCK));
	note("memfd", memfd_create("capcr-test-memfd", MFD_CLOEXEC));
	note("pidfd", pidfd_open(getpid(), 0));

	/* Duplicates: same object, same badge. */
	note("dup", dup(file));
	note("dup2", dup2(file, 100));
	note("dup3", dup3(file, 101, O_CLOEXEC));
	note("dupfd", fcntl(file, F_DUPFD, 200));
	note("dupfd_cloexec", fcntl(file, F_DUPFD_CLOEXEC, 210));
	uint64_t fb = tp_badge(file);
	if (tp_monitored() == 1) {
		TP_CHECK(fb != 0, "file has no badge");
		TP_CHECK(tp_badge(100) == fb && tp_badge(101) == fb &&
				 tp_badge(made[nmade - 1].fd) == fb,
			 "a duplicate has a badge of its own");
	}

	/* A descriptor received over a Unix socket. */
	int xp[2];
	TP_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, xp) == 0, "socketpair");
	note("xfer_send", xp[0]);
	note("xfer_recv", xp[1]);
	snprintf(path, sizeof(path), "%s/file", dir);
	int orig = open(path, O_RDONLY);
	send_fd(xp[0], orig);
	close(orig);
	note("received", recv_fd(xp[1]));

	tp_ready("phase=open n=%d", nmade);
	tp_wait_go();

	/* Close them all, each the way it was opened. */
	for (int i = 0; i < nmade; i++) {
		int fd = made[i].fd;
		const char *n = made[i].name;
		if (fd < 0)
			continue;
		if (!strcmp(n, "fopen"))
			TP_CHECK(fclose(fo) == 0, "fclose");
		else if (!strcmp(n, "tmpfile"))
			TP_CHECK(fclose(tf) == 0, "fclose tmpfile");
		else if (!strcmp(n, "opendir"))
			TP_CHECK(closedir(dd) == 0, "closedir");
		else if (!strcmp(n, "popen"))
			TP_CHECK(pclose(po) == 0, "pclose");
		else
			TP_CHECK(close(fd) == 0, "close %s (%d): %s", n, fd,
				 strerror(errno));
	}
	tp_ready("phase=closed n=%d", nmade);
	tp_wait_go();
	return tp_done();
}
