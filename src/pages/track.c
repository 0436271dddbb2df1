/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "track.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/proc.h"
#include "../dump/pagemap.h"
#include "../ptrace/inject.h"

#define TRACK_MAGIC 0x6b637274u
/* How long either side waits for the other in a handover. */
#define HANDOVER_S 10

/* One process's tracking, or (pid 0) the end of the set. */
struct track_msg {
	uint32_t magic;
	int32_t pid;
};

/* The process makes a userfaultfd, capcr takes it, the process closes
 * its own: it is stopped for this alone, and keeps nothing. */
static int take_uffd(pid_t pid, int *out)
{
	struct tracee t;
	int r, pidfd;
	long fd;

	*out = -1;
	memset(&t, 0, sizeof(t));
	if ((r = tracee_seize(&t, pid, 0)) < 0)
		return r;
	errno = 0;
	if (tracee_prepare(&t) < 0) {
		r = errno ? -errno : -ENOEXEC;
		goto out;
	}
	fd = tracee_call(&t, SYS_userfaultfd,
			 O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0, 0,
			 0, 0);
	if (fd < 0) {
		r = (int)fd;
		goto out;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	*out = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
	r = *out < 0 ? -errno : 0;
	if (pidfd >= 0)
		close(pidfd);
	if (tracee_call(&t, SYS_close, fd, 0, 0, 0, 0, 0) < 0) {
		/* The process must not keep it: once more, with the
		 * thread taken again (a call that broke off leaves it
		 * unusable until it is let go). */
		tracee_release(&t);
		long c = tracee_seize(&t, pid, 0);
		if (c == 0 && tracee_prepare(&t) == 0)
			c = tracee_call(&t, SYS_close, fd, 0, 0, 0, 0, 0);
		else if (c == 0)
			c = errno ? -errno : -ENOEXEC;
		if (c < 0) {
			if (*out >= 0)
				close(*out);
			*out = -1;
			r = (int)c;
		}
	}
out:
	tracee_release(&t);
	return r;
}

int track_arm(pid_t pid, int *uffd)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC };
	int r = take_uffd(pid, uffd);

	if (r < 0)
		return r;
	if (ioctl(*uffd, UFFDIO_API, &api) < 0) {
		close(*uffd);
		*uffd = -1;
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int track_register(int uffd, unsigned long start, unsigned long end)
{
	struct uffdio_register reg = {
		.range = { start, end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

int track_add(struct track_set *s, pid_t pid, int uffd)
{
	struct track_proc *n = realloc(s->p, (s->n + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	s->p = n;
	n[s->n++] = (struct track_proc){ pid, uffd,
					 (int)syscall(SYS_pidfd_open, pid, 0) };
	return n[s->n - 1].pidfd < 0 ? -errno : 0;
}

struct track_proc *track_find(struct track_set *s, pid_t pid)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->p[i].pid == pid && s->p[i].uffd >= 0)
			return &s->p[i];
	return NULL;
}

void track_set_free(struct track_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->p[i].uffd >= 0)
			close(s->p[i].uffd);
		if (s->p[i].pidfd >= 0)
			close(s->p[i].pidfd);
	}
	free(s->p);
	s->p = NULL;
	s->n = 0;
}

int track_new_name(char *name, size_t len)
{
	unsigned char r[16];

	if (len < 2 * sizeof(r) + 13 ||
	    getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	int n = snprintf(name, len, "capcr-track-");
	for (size_t i = 0; i < sizeof(r); i++)
		n += snprintf(name + n, len - (size_t)n, "%02x", r[i]);
	return 0;
}

/* An abstract address: no file, so nothing in any directory. */
static int addr_of(const char *name, struct sockaddr_un *a, socklen_t *len)
{
	size_t n = strlen(name);

	memset(a, 0, sizeof(*a));
	if (!n || n + 1 > sizeof(a->sun_path))
		return -1;
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path + 1, name, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	return 0;
}

/* The peer runs as our user (root): anyone may connect to an abstract
 * name or bind one first, so each side asks the kernel who the other
 * is. */
static int peer_ok(int fd)
{
	struct ucred c;
	socklen_t l = sizeof(c);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &l) == 0 &&
	       c.uid == geteuid();
}

static void timeouts(int fd)
{
	struct timeval tv = { HANDOVER_S, 0 };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int send_one(int fd, int32_t pid, const int *fds, int nfds)
{
	struct track_msg m = { TRACK_MAGIC, pid };
	struct iovec iov = { &m, sizeof(m) };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -1;
}

/* Hand everything over; 0 once the peer said it has it all. */
static int serve(int c, const struct track_set *s)
{
	char ack;

	for (size_t i = 0; i < s->n; i++) {
		int fds[2] = { s->p[i].uffd, s->p[i].pidfd };
		if (fds[0] >= 0 && fds[1] >= 0 &&
		    send_one(c, s->p[i].pid, fds, 2) < 0)
			return -1;
	}
	if (send_one(c, 0, NULL, 0) < 0)
		return -1;
	return read(c, &ack, 1) == 1 && ack == 'k' ? 0 : -1;
}

static int by_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Nothing of capcr's but what the holder serves: no image directory, no
 * log file, no terminal. */
static void close_others(int lfd, int rootfd, const struct track_set *s)
{
	int *keep = malloc((2 * s->n + 2) * sizeof(int)), n = 0, from = 3;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	if (!keep)
		return;
	keep[n++] = lfd;
	keep[n++] = rootfd;
	for (size_t i = 0; i < s->n; i++) {
		keep[n++] = s->p[i].uffd;
		keep[n++] = s->p[i].pidfd;
	}
	qsort(keep, (size_t)n, sizeof(int), by_int);
	for (int i = 0; i < n; i++) {
		if (keep[i] < from)
			continue;
		if (keep[i] > from)
			close_range((unsigned)from, (unsigned)keep[i] - 1, 0);
		from = keep[i] + 1;
	}
	close_range((unsigned)from, ~0u, 0);
	free(keep);
}

static __attribute__((noreturn)) void holder_main(int lfd, int rootfd,
						  const struct track_set *s)
{
	sigset_t none;
	struct timespec t0, t;

	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_NAME, "capcr-track", 0, 0, 0);
	if (chdir("/") < 0)
		_exit(1);
	close_others(lfd, rootfd, s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = TRACK_HOLD_S - (long)(t.tv_sec - t0.tv_sec);
		struct pollfd p[2] = { { lfd, POLLIN, 0 },
				       { rootfd, POLLIN, 0 } };
		if (left <= 0)
			_exit(0);
		int r = poll(p, 2, (int)(left > INT_MAX / 1000 ? INT_MAX
							       : left * 1000));
		if (r < 0 && errno != EINTR)
			_exit(1);
		if (r <= 0)
			continue;
		/* The tree is gone: nothing left to track. */
		if (p[1].revents)
			_exit(0);
		if (!(p[0].revents & POLLIN))
			continue;
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (!peer_ok(c)) {
			close(c);
			continue;
		}
		timeouts(c);
		r = serve(c, s);
		close(c);
		if (!r)
			_exit(0);
	}
}

pid_t track_hold(const struct track_set *s, const char *name, pid_t root)
{
	struct sockaddr_un a;
	socklen_t len;
	int lfd, rootfd, e;
	pid_t pid;

	if (addr_of(name, &a, &len) < 0)
		return -EINVAL;
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	rootfd = (int)syscall(SYS_pidfd_open, root, 0);
	if (rootfd < 0 || bind(lfd, (struct sockaddr *)&a, len) < 0 ||
	    listen(lfd, 4) < 0) {
		e = errno;
		goto fail;
	}
	pid = fork();
	if (pid == 0)
		holder_main(lfd, rootfd, s);
	e = errno;
	close(lfd);
	close(rootfd);
	return pid < 0 ? -e : pid;
fail:
	close(lfd);
	if (rootfd >= 0)
		close(rootfd);
	return -e;
}

/* fd names what it should: a userfaultfd, a pidfd of pid. */
static int is_anon(int fd, const char *what)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = 0;
	return !strcmp(link, what);
}

static pid_t pidfd_pid(int fd)
{
	char path[64], buf[1024];
	const char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (proc_read_small(path, buf, sizeof(buf)) < 0 ||
	    !(p = strstr(buf, "\nPid:")))
		return -1;
	return (pid_t)atoi(p + 5);
}

/* One message: 1 with a process, 0 at the end, -1 when broken. */
static int take_one(int fd, struct track_set *s)
{
	struct track_msg m;
	struct iovec iov = { &m, sizeof(m) };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	int fds[2] = { -1, -1 }, nfds = 0, r = -1;
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
			if (nfds < 2)
				fds[nfds] = f;
			else
				close(f);
			nfds++;
		}
	}
	if (n != (ssize_t)sizeof(m) || m.magic != TRACK_MAGIC ||
	    (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)))
		goto out;
	if (!m.pid) {
		r = nfds ? -1 : 0;
		goto out;
	}
	if (nfds != 2 || m.pid < 0 ||
	    !is_anon(fds[0], "anon_inode:[userfaultfd]") ||
	    !is_anon(fds[1], "anon_inode:[pidfd]"))
		goto out;
	/* Still the process the tracking was armed in (a PID reused by
	 * another has other pages): its pidfd says which it names. */
	if (pidfd_pid(fds[1]) != m.pid) {
		r = 1;
		goto out;
	}
	struct track_proc *np = realloc(s->p, (s->n + 1) * sizeof(*np));
	if (!np)
		goto out;
	s->p = np;
	np[s->n++] = (struct track_proc){ m.pid, fds[0], fds[1] };
	return 1;
out:
	for (int i = 0; i < nfds && i < 2; i++)
		close(fds[i]);
	return r;
}

int track_take(const char *name, struct track_set *s, char *why, size_t wl)
{
	struct sockaddr_un a;
	socklen_t len;
	int fd, r;

	memset(s, 0, sizeof(*s));
	if (addr_of(name, &a, &len) < 0)
		return snprintf(why, wl, "a bad holder name"), -1;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return snprintf(why, wl, "socket: %s", strerror(errno)), -1;
	if (connect(fd, (struct sockaddr *)&a, len) < 0) {
		snprintf(why, wl, "no process holds the write tracking (@%s: "
				  "%s): it ended with the tree's root, was "
				  "killed, handed it over already or waited "
				  "%d h",
			 name, strerror(errno), TRACK_HOLD_S / 3600);
		close(fd);
		return -1;
	}
	if (!peer_ok(fd)) {
		snprintf(why, wl, "the process answering on @%s runs as "
				  "another user: refused", name);
		close(fd);
		return -1;
	}
	timeouts(fd);
	while ((r = take_one(fd, s)) > 0)
		;
	if (r == 0 && write(fd, "k", 1) != 1)
		r = -1;
	close(fd);
	if (r < 0) {
		track_set_free(s);
		return snprintf(why, wl, "the holder of the write tracking "
					 "(@%s) gave a broken answer", name),
		       -1;
	}
	return 0;
}
