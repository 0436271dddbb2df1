/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: descriptors.  See crtest.h.
 *
 *   cr_fds PID [caps]
 *
 * PID is a process that outlives the test (the harness's shell), for a
 * pidfd.  With "caps", once its checks are done the program opens one more
 * descriptor, prints "opened fd=N" and waits for the go file with ".2"
 * appended (the harness looks at the capability space meanwhile).
 *
 *   - a regular file read/write at a position; one O_APPEND;
 *   - a file deleted while open: contents, size and position kept, still
 *     readable, link count 0;
 *   - a directory (fdopendir/readdir, openat);
 *   - /dev/null, /dev/zero, /dev/urandom;
 *   - a pipe with both ends here and unread data (more than the default
 *     64 KiB, capacity raised to 1 MiB), its read end O_NONBLOCK; a second
 *     pipe with a raised capacity and a little data; a third whose write
 *     end has the lower number (its File comes first) and whose read end
 *     was also opened a second time through /proc/self/fd, with data;
 *   - a FIFO (mkfifo) opened O_RDWR, with unread data; another opened
 *     twice, read end (O_NONBLOCK) and write end, with unread data;
 *   - a memfd with contents, a position and seals (F_SEAL_SHRINK|GROW), and
 *     one sealed F_SEAL_WRITE|F_SEAL_SEAL;
 *   - eventfds: a semaphore with count 3 (O_NONBLOCK), and a plain one
 *     with a count above 2^32;
 *   - a pidfd for PID (pidfd_send_signal 0 works);
 *   - close-on-exec per descriptor, status flags, and dup'ed descriptors
 *     that share their position (and one opened separately that does not);
 *   - a descriptor at a high number; the set of open descriptors exactly.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "crtest.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

struct rec {
	const char *what;
	int fd, fdflags, flflags;
	off_t pos;
};
static struct rec recs[64];
static int nrecs;

static int note(const char *what, int fd)
{
	SETUP(fd >= 0, what);
	recs[nrecs].what = what;
	recs[nrecs].fd = fd;
	nrecs++;
	return fd;
}

/* Take every descriptor's flags and position, after the setup. */
static void snap_flags(void)
{
	for (int i = 0; i < nrecs; i++) {
		recs[i].fdflags = fcntl(recs[i].fd, F_GETFD);
		recs[i].flflags = fcntl(recs[i].fd, F_GETFL);
		recs[i].pos = lseek(recs[i].fd, 0, SEEK_CUR);
	}
}

/* The open descriptors, as "0 1 2 5 ..." */
static void fd_list(char *buf, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	int fds[1024], n = 0, self = d ? dirfd(d) : -1;
	size_t o = 0;
	buf[0] = 0;
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.' && atoi(e->d_name) != self && n < 1024)
			fds[n++] = atoi(e->d_name);
	closedir(d);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (fds[j] < fds[i]) {
				int t = fds[i];
				fds[i] = fds[j];
				fds[j] = t;
			}
	for (int i = 0; i < n && o + 8 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%d ", fds[i]);
}

static void link_of(int fd, char *buf, size_t len)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
}

static int readable_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static long fdinfo_num(int fd, const char *key)
{
	char p[64], line[256];
	long v = -12345;
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(p, "re");
	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) &&
		    line[strlen(key)] == ':')
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

#define PIPE_DATA 100000
#define PIPE_CAP (1 << 20)
#define PIPE2_CAP (256 * 1024)

int main(int argc, char **argv)
{
	static unsigned char buf[PIPE_DATA + 16];
	char list_before[4096], list_now[4096], l[4400];
	int caps_mode = argc > 2 && !strcmp(argv[2], "caps");

	cr_init("cr_fds");
	if (argc < 2) {
		printf("usage: cr_fds PID [caps]\n");
		return 2;
	}
	pid_t other = (pid_t)atoi(argv[1]);

	/* regular file at a position */
	int reg = note("regular", open(cr_path("reg"),
				       O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
				       0600));
	cr_fill(buf, 1000, 31);
	SETUP(write(reg, buf, 1000) == 1000, "write reg");
	SETUP(lseek(reg, 123, SEEK_SET) == 123, "lseek reg");

	int app = note("append", open(cr_path("app"),
				      O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
				      0600));
	SETUP(write(app, "line1\n", 6) == 6, "write app");

	/* deleted while open */
	int del = note("deleted", open(cr_path("del"),
				       O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
				       0640));
	cr_fill(buf, 5000, 33);
	SETUP(write(del, buf, 5000) == 5000, "write del");
	SETUP(lseek(del, 100, SEEK_SET) == 100, "lseek del");
	SETUP(unlink(cr_path("del")) == 0, "unlink del");

	/* directory */
	SETUP(mkdir(cr_path("dir"), 0700) == 0, "mkdir");
	for (int i = 0; i < 3; i++) {
		char n[16];
		snprintf(n, sizeof(n), "dir/%c", 'a' + i);
		int f = open(cr_path(n), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		SETUP(f >= 0, "dir entry");
		close(f);
	}
	int dir = note("directory",
		       open(cr_path("dir"), O_RDONLY | O_DIRECTORY | O_CLOEXEC));

	/* devices */
	int dnull = note("/dev/null", open("/dev/null", O_WRONLY));
	int dzero = note("/dev/zero", open("/dev/zero", O_RDONLY | O_CLOEXEC));
	int drand = note("/dev/urandom",
			 open("/dev/urandom", O_RDONLY | O_CLOEXEC));

	/* pipes */
	int p[2], q[2];
	SETUP(pipe(p) == 0, "pipe");
	note("pipe read end", p[0]);
	note("pipe write end", p[1]);
	SETUP(fcntl(p[1], F_SETPIPE_SZ, PIPE_CAP) >= PIPE_CAP, "F_SETPIPE_SZ");
	SETUP(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	cr_fill(buf, PIPE_DATA, 35);
	SETUP(write(p[1], buf, PIPE_DATA) == PIPE_DATA, "write pipe");
	SETUP(pipe2(q, O_CLOEXEC) == 0, "pipe 2");
	note("pipe 2 read end", q[0]);
	note("pipe 2 write end", q[1]);
	SETUP(fcntl(q[1], F_SETPIPE_SZ, PIPE2_CAP) >= PIPE2_CAP,
	      "F_SETPIPE_SZ 2");
	SETUP(write(q[1], "small", 5) == 5, "write pipe 2");
	int t3[2];
	SETUP(pipe(t3) == 0, "pipe 3");
	int w3 = note("pipe 3 write end", t3[1]);
	int r3 = note("pipe 3 read end", fcntl(t3[0], F_DUPFD, w3 + 1));
	close(t3[0]);
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", r3);
	int r3b = note("pipe 3 read end, again",
		       open(self, O_RDONLY | O_NONBLOCK));
	SETUP(write(w3, "third", 5) == 5, "write pipe 3");
	/* Who would get its SIGIO, and as which signal (no O_ASYNC: none
	 * is sent). */
	struct f_owner_ex own0 = { F_OWNER_PID, getpid() };
	SETUP(fcntl(r3, F_SETOWN_EX, &own0) == 0, "F_SETOWN_EX");
	SETUP(fcntl(r3, F_SETSIG, SIGRTMIN + 2) == 0, "F_SETSIG");

	/* A userfaultfd made and never handshaken (what a dump -R killed at
	 * the wrong moment leaves): UFFD_USER_MODE_ONLY, non-blocking */
	int uffd = caps_mode ? -1 /* made by a raw system call: the
				     * runtime would not see it */
			     : note("userfaultfd",
				    (int)syscall(SYS_userfaultfd,
						 O_CLOEXEC | O_NONBLOCK | 1));

	/* O_PATH: a place, not an open file (no position, no flags to set) */
	int opath = note("O_PATH directory",
			 open("/etc", O_PATH | O_DIRECTORY | O_CLOEXEC));
	struct stat etc0;
	SETUP(fstat(opath, &etc0) == 0, "fstat O_PATH");

	/* A sparse file removed while open: 4 KiB of data, a 1 MiB hole,
	 * 4 KiB of data, a 1 MiB hole at the end. */
	int sparse = note("deleted sparse file",
			  open(cr_path("sparse"), O_RDWR | O_CREAT | O_CLOEXEC,
			       0600));
	char blk[4096];
	memset(blk, 'A', sizeof(blk));
	SETUP(pwrite(sparse, blk, sizeof(blk), 0) == 4096, "write sparse A");
	memset(blk, 'B', sizeof(blk));
	SETUP(pwrite(sparse, blk, sizeof(blk), 1 << 20) == 4096,
	      "write sparse B");
	SETUP(ftruncate(sparse, (2 << 20) + 4096) == 0, "size sparse");
	SETUP(unlink(cr_path("sparse")) == 0, "unlink sparse");

	/* A directory, a FIFO with data and a symbolic link, each removed
	 * while open; and a symbolic link itself held open. */
	SETUP(mkdir(cr_path("ddir"), 0700) == 0, "mkdir ddir");
	int ddir = note("deleted directory",
			open(cr_path("ddir"), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	SETUP(rmdir(cr_path("ddir")) == 0, "rmdir ddir");
	SETUP(mkfifo(cr_path("dfifo"), 0600) == 0, "mkfifo dfifo");
	int dfifo = note("deleted FIFO", open(cr_path("dfifo"), O_RDWR | O_CLOEXEC));
	SETUP(write(dfifo, "ghost", 5) == 5, "write dfifo");
	SETUP(unlink(cr_path("dfifo")) == 0, "unlink dfifo");
	SETUP(symlink("/etc", cr_path("dlink")) == 0, "symlink dlink");
	int dlink = note("deleted symbolic link",
			 open(cr_path("dlink"), O_PATH | O_NOFOLLOW | O_CLOEXEC));
	SETUP(unlink(cr_path("dlink")) == 0, "unlink dlink");
	SETUP(symlink("/etc", cr_path("alink")) == 0, "symlink alink");
	int alink = note("symbolic link",
			 open(cr_path("alink"), O_PATH | O_NOFOLLOW | O_CLOEXEC));

	/* Its own /proc file, part read: it does not exist while the
	 * restore makes files, only once the process is back. */
	int pst = note("own /proc/PID/status", open("/proc/self/status",
						    O_RDONLY | O_CLOEXEC));
	char pline[8];
	SETUP(read(pst, pline, 5) == 5, "read /proc/self/status");

	/* FIFO */
	SETUP(mkfifo(cr_path("fifo"), 0600) == 0, "mkfifo");
	int fifo = note("fifo", open(cr_path("fifo"), O_RDWR | O_CLOEXEC));
	SETUP(write(fifo, "fifo data\n", 10) == 10, "write fifo");
	SETUP(mkfifo(cr_path("fifo2"), 0600) == 0, "mkfifo 2");
	int fifo_r = note("fifo 2 read end",
			  open(cr_path("fifo2"), O_RDONLY | O_NONBLOCK));
	int fifo_w = note("fifo 2 write end",
			  open(cr_path("fifo2"), O_WRONLY | O_CLOEXEC));
	SETUP(write(fifo_w, "second fifo", 11) == 11, "write fifo 2");

	/* memfds */
	int mfd = note("memfd", memfd_create("crfd", MFD_ALLOW_SEALING |
							   MFD_CLOEXEC));
	cr_fill(buf, 3000, 37);
	SETUP(write(mfd, buf, 3000) == 3000, "write memfd");
	SETUP(lseek(mfd, 1000, SEEK_SET) == 1000, "lseek memfd");
	SETUP(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0,
	      "F_ADD_SEALS");
	int mfd2 = note("memfd 2", memfd_create("crfd2", MFD_ALLOW_SEALING));
	SETUP(write(mfd2, "sealed", 6) == 6, "write memfd 2");
	SETUP(fcntl(mfd2, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) == 0,
	      "F_ADD_SEALS 2");
	int seals1 = fcntl(mfd, F_GET_SEALS), seals2 = fcntl(mfd2, F_GET_SEALS);

	/* eventfds */
	int esem = note("eventfd semaphore",
			eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC));
	int ebig = note("eventfd", eventfd(0, 0));
	uint64_t big = 0x100000005ULL;
	SETUP(write(ebig, &big, 8) == 8, "write eventfd");

	/* pidfd */
	int pfd = note("pidfd", pidfd_open(other, 0));
	/* of its own children: one alive (non-blocking), one ended and not
	 * reaped (status 7), one ended and reaped (names no process) */
	pid_t kid = fork();
	if (kid == 0) {
		for (;;)
			pause();
	}
	pid_t zkid = fork();
	if (zkid == 0)
		_exit(7);
	pid_t rkid = fork();
	if (rkid == 0)
		_exit(0);
	int kfd = note("pidfd of a child", pidfd_open(kid, PIDFD_NONBLOCK));
	int zfd = note("pidfd of an ended child", pidfd_open(zkid, 0));
	int rfd = note("pidfd of a reaped child", pidfd_open(rkid, 0));
	SETUP(waitpid(rkid, NULL, 0) == rkid, "reap");
	siginfo_t zsi;
	memset(&zsi, 0, sizeof(zsi));
	SETUP(waitid(P_PIDFD, (id_t)zfd, &zsi, WEXITED | WNOWAIT) == 0,
	      "the child ends");

	/* dups sharing a position, one that does not */
	int d1 = note("shared position", open(cr_path("shared"),
					      O_RDWR | O_CREAT | O_CLOEXEC,
					      0600));
	cr_fill(buf, 4096, 39);
	SETUP(write(d1, buf, 4096) == 4096, "write shared");
	int d2 = note("dup", dup(d1));
	int d3 = note("F_DUPFD_CLOEXEC 300", fcntl(d1, F_DUPFD_CLOEXEC, 300));
	int d4 = note("separate open", open(cr_path("shared"), O_RDONLY));
	SETUP(lseek(d1, 77, SEEK_SET) == 77, "lseek shared");
	SETUP(lseek(d4, 11, SEEK_SET) == 11, "lseek separate");

	int high = note("fd 700", dup2(dnull, 700));
	SETUP(fcntl(high, F_SETFD, FD_CLOEXEC) == 0, "F_SETFD");

	snap_flags();
	fd_list(list_before, sizeof(list_before));
	char dev_link_before[3][256];
	link_of(dnull, dev_link_before[0], 256);
	link_of(dzero, dev_link_before[1], 256);
	link_of(drand, dev_link_before[2], 256);

	cr_info("set up %d descriptors", nrecs);
	cr_ready();
	cr_wait_go();

	/* The table as a whole, then each descriptor's flags and position. */
	fd_list(list_now, sizeof(list_now));
	CHECK(!strcmp(list_before, list_now),
	      "open descriptors: {%s}, were {%s}", list_now, list_before);
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];
		int fdf = fcntl(r->fd, F_GETFD), flf = fcntl(r->fd, F_GETFL);
		off_t pos = lseek(r->fd, 0, SEEK_CUR);
		CHECK(fdf == r->fdflags, "%s (fd %d): fd flags %#x, were %#x",
		      r->what, r->fd, fdf, r->fdflags);
		CHECK(flf == r->flflags,
		      "%s (fd %d): status flags %#o, were %#o", r->what, r->fd,
		      flf, r->flflags);
		CHECK(pos == r->pos, "%s (fd %d): position %lld, was %lld",
		      r->what, r->fd, (long long)pos, (long long)r->pos);
	}

	/* regular */
	CHECK(read(reg, buf, 100) == 100, "regular: read");
	unsigned char want[1000];
	cr_fill(want, 1000, 31);
	CHECK(!memcmp(buf, want + 123, 100),
	      "regular: reads the wrong bytes at 123");
	CHECK(write(app, "line2\n", 6) == 6, "append: write");
	char ab[32] = { 0 };
	int af = open(cr_path("app"), O_RDONLY | O_CLOEXEC);
	CHECK(af >= 0 && read(af, ab, sizeof(ab) - 1) == 12 &&
		      !strcmp(ab, "line1\nline2\n"),
	      "append: the file holds '%s'", ab);
	close(af);

	/* deleted */
	struct stat st;
	CHECK(fstat(del, &st) == 0 && st.st_nlink == 0 && st.st_size == 5000,
	      "deleted: nlink %ld size %lld, want 0 and 5000",
	      (long)st.st_nlink, (long long)st.st_size);
	CHECK((st.st_mode & 0777) == 0640, "deleted: mode %03o, want 640",
	      st.st_mode & 0777);
	link_of(del, l, sizeof(l));
	CHECK(strstr(l, " (deleted)") != NULL, "deleted: link '%s'", l);
	CHECK(read(del, buf, 4900) == 4900, "deleted: read from 100");
	static unsigned char dw[5000];
	cr_fill(dw, 5000, 33);
	CHECK(!memcmp(buf, dw + 100, 4900), "deleted: contents differ");
	CHECK(access(cr_path("del"), F_OK) < 0, "deleted: the file is back");

	/* directory */
	int dd = dup(dir);
	DIR *ds = fdopendir(dd);
	int found = 0, others = 0;
	if (CHECK(ds != NULL, "directory: fdopendir: %s", strerror(errno))) {
		rewinddir(ds);
		for (struct dirent *e; (e = readdir(ds));)
			if (e->d_name[0] == '.')
				continue;
			else if (strlen(e->d_name) == 1 &&
				 e->d_name[0] >= 'a' && e->d_name[0] <= 'c')
				found++;
			else
				others++;
		closedir(ds);
	}
	CHECK(found == 3 && !others, "directory: readdir found %d of a, b, c "
				     "and %d others",
	      found, others);
	int fa = openat(dir, "b", O_RDONLY | O_CLOEXEC);
	CHECK(fa >= 0, "directory: openat: %s", strerror(errno));
	close(fa);

	/* devices */
	CHECK(fstat(dnull, &st) == 0 && S_ISCHR(st.st_mode) &&
		      st.st_rdev == makedev(1, 3),
	      "/dev/null: not the null device");
	CHECK(write(dnull, "x", 1) == 1, "/dev/null: write");
	memset(buf, 0xaa, 100);
	CHECK(fstat(dzero, &st) == 0 && st.st_rdev == makedev(1, 5) &&
		      read(dzero, buf, 100) == 100 &&
		      cr_first_nonzero(buf, 100) < 0,
	      "/dev/zero: does not read zeros");
	CHECK(fstat(drand, &st) == 0 && st.st_rdev == makedev(1, 9) &&
		      read(drand, buf, 16) == 16,
	      "/dev/urandom: cannot read");
	char dl[256];
	link_of(dnull, dl, 256);
	CHECK(!strcmp(dl, dev_link_before[0]), "/dev/null: link %s", dl);
	link_of(dzero, dl, 256);
	CHECK(!strcmp(dl, dev_link_before[1]), "/dev/zero: link %s", dl);
	link_of(drand, dl, 256);
	CHECK(!strcmp(dl, dev_link_before[2]), "/dev/urandom: link %s", dl);

	/* pipes */
	int cap = fcntl(p[1], F_GETPIPE_SZ);
	CHECK(cap == PIPE_CAP, "pipe: capacity %d, was %d", cap, PIPE_CAP);
	ssize_t got = 0;
	for (ssize_t n; got < PIPE_DATA + 1 &&
			(n = read(p[0], buf + got, PIPE_DATA + 1 - (size_t)got)) >
				0;)
		got += n;
	CHECK(got == PIPE_DATA, "pipe: %zd bytes of unread data, want %d", got,
	      PIPE_DATA);
	CHECK(cr_verify(buf, (size_t)(got < PIPE_DATA ? got : PIPE_DATA), 35) <
		      0,
	      "pipe: the data differs at byte %ld",
	      cr_verify(buf, (size_t)(got < PIPE_DATA ? got : PIPE_DATA), 35));
	CHECK(write(p[1], "more", 4) == 4 && read(p[0], buf, 10) == 4 &&
		      !memcmp(buf, "more", 4),
	      "pipe: the two ends are not one pipe any more");
	cap = fcntl(q[1], F_GETPIPE_SZ);
	CHECK(cap == PIPE2_CAP, "pipe 2: capacity %d, was %d", cap, PIPE2_CAP);
	memset(buf, 0, 16);
	CHECK(readable_within(q[0], 1000) && read(q[0], buf, 16) == 5 &&
		      !memcmp(buf, "small", 5),
	      "pipe 2: the unread data is gone");
	memset(buf, 0, 16);
	CHECK(readable_within(r3, 1000) && read(r3, buf, 16) == 5 &&
		      !memcmp(buf, "third", 5),
	      "pipe 3 (write end first): the unread data is gone");
	CHECK(write(w3, "4th", 3) == 3 && readable_within(r3b, 1000) &&
		      read(r3b, buf, 16) == 3 && !memcmp(buf, "4th", 3),
	      "pipe 3: its second read description is not of the same pipe");
	char pwant[64], phave[64];
	snprintf(pwant, sizeof(pwant), "/proc/%d/status", (int)getpid());
	link_of(pst, phave, sizeof(phave));
	memset(pline, 0, sizeof(pline));
	CHECK(!strcmp(phave, pwant) && lseek(pst, 0, SEEK_CUR) == 5 &&
		      read(pst, pline, 1) == 1 && pline[0] == '\t',
	      "own /proc file: %s at %lld, was %s at 5", phave,
	      (long long)lseek(pst, 0, SEEK_CUR), pwant);
	struct f_owner_ex own1 = { 0, 0 };
	CHECK(fcntl(r3, F_GETOWN_EX, &own1) == 0 && own1.type == F_OWNER_PID &&
		      own1.pid == getpid() &&
		      fcntl(r3, F_GETSIG) == SIGRTMIN + 2,
	      "F_SETOWN/F_SETSIG: owner %d/%d signal %d, want %d/%d %d",
	      own1.type, own1.pid, fcntl(r3, F_GETSIG), F_OWNER_PID,
	      (int)getpid(), SIGRTMIN + 2);
	struct stat sd;
	char blk2[4096];
	CHECK(fstat(sparse, &sd) == 0 && sd.st_nlink == 0 &&
		      sd.st_size == (2 << 20) + 4096 &&
		      sd.st_blocks * 512 <= 64 * 1024,
	      "deleted sparse file: %lld bytes in %lld blocks, want %d bytes "
	      "in at most 128 (its holes are gone)",
	      (long long)sd.st_size, (long long)sd.st_blocks, (2 << 20) + 4096);
	CHECK(lseek(sparse, 4096, SEEK_DATA) == (1 << 20) &&
		      lseek(sparse, (1 << 20) + 4096, SEEK_DATA) < 0,
	      "deleted sparse file: its data is not where it was");
	CHECK(pread(sparse, blk2, 4096, 0) == 4096 && blk2[0] == 'A' &&
		      blk2[4095] == 'A' &&
		      pread(sparse, blk2, 4096, 1 << 20) == 4096 &&
		      blk2[0] == 'B' && blk2[4095] == 'B',
	      "deleted sparse file: its contents differ");
	CHECK(fstat(ddir, &sd) == 0 && S_ISDIR(sd.st_mode) && sd.st_nlink == 0,
	      "deleted directory: not a removed directory");
	memset(buf, 0, 16);
	CHECK(readable_within(dfifo, 1000) && read(dfifo, buf, 16) == 5 &&
		      !memcmp(buf, "ghost", 5),
	      "deleted FIFO: its data is gone");
	CHECK(fstat(dfifo, &sd) == 0 && S_ISFIFO(sd.st_mode) && sd.st_nlink == 0,
	      "deleted FIFO: not a removed FIFO");
	char lt[64];
	ssize_t ln = readlinkat(dlink, "", lt, sizeof(lt) - 1);
	CHECK(ln == 4 && !memcmp(lt, "/etc", 4) && fstat(dlink, &sd) == 0 &&
		      S_ISLNK(sd.st_mode) && sd.st_nlink == 0,
	      "deleted symbolic link: not a removed link to /etc");
	ln = readlinkat(alink, "", lt, sizeof(lt) - 1);
	CHECK(ln == 4 && !memcmp(lt, "/etc", 4) && fstat(alink, &sd) == 0 &&
		      S_ISLNK(sd.st_mode) && sd.st_nlink == 1,
	      "symbolic link held open: not the link to /etc");
	struct stat etc1;
	CHECK(fstat(opath, &etc1) == 0 && etc1.st_ino == etc0.st_ino &&
		      etc1.st_dev == etc0.st_dev &&
		      (fcntl(opath, F_GETFL) & O_PATH),
	      "O_PATH: not an O_PATH descriptor of the same directory");

	/* The userfaultfd is one, and of this address space: the handshake
	 * works and a page of ours registers. */
	char ul[64] = "anon_inode:[userfaultfd]";
	if (uffd >= 0)
		link_of(uffd, ul, sizeof(ul));
	struct uffdio_api api = { .api = UFFD_API };
	void *upg = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register ureg = {
		.range = { (uintptr_t)upg, 4096 },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	CHECK(uffd < 0 ||
		      (!strcmp(ul, "anon_inode:[userfaultfd]") &&
		       ioctl(uffd, UFFDIO_API, &api) == 0 &&
		       ioctl(uffd, UFFDIO_REGISTER, &ureg) == 0),
	      "userfaultfd: %s, or its handshake or a registration of our own "
	      "memory failed: %s", ul, strerror(errno));

	/* FIFO */
	memset(buf, 0, 16);
	int fr = readable_within(fifo, 1000);
	CHECK(fr && read(fifo, buf, 16) == 10 && !memcmp(buf, "fifo data\n", 10),
	      "FIFO: the unread data is gone (%s)",
	      fr ? "read it wrong" : "nothing to read");
	CHECK(write(fifo, "again", 5) == 5 && readable_within(fifo, 1000) &&
		      read(fifo, buf, 16) == 5,
	      "FIFO: not usable both ways");
	CHECK(fstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode),
	      "FIFO: not a FIFO any more");
	memset(buf, 0, 16);
	fr = readable_within(fifo_r, 1000);
	CHECK(fr && read(fifo_r, buf, 16) == 11 &&
		      !memcmp(buf, "second fifo", 11),
	      "FIFO 2: the unread data is gone (%s)",
	      fr ? "read it wrong" : "nothing to read");
	CHECK(write(fifo_w, "x", 1) == 1 && readable_within(fifo_r, 1000) &&
		      read(fifo_r, buf, 16) == 1,
	      "FIFO 2: its ends are not one FIFO any more");

	/* memfds */
	CHECK(fcntl(mfd, F_GET_SEALS) == seals1, "memfd: seals %#x, were %#x",
	      fcntl(mfd, F_GET_SEALS), seals1);
	CHECK(fcntl(mfd2, F_GET_SEALS) == seals2,
	      "memfd 2: seals %#x, were %#x", fcntl(mfd2, F_GET_SEALS), seals2);
	CHECK(fstat(mfd, &st) == 0 && st.st_size == 3000,
	      "memfd: size %lld, want 3000", (long long)st.st_size);
	CHECK(pread(mfd, buf, 3000, 0) == 3000 && cr_verify(buf, 3000, 37) < 0,
	      "memfd: contents differ");
	CHECK(ftruncate(mfd, 10) < 0 && errno == EPERM,
	      "memfd: F_SEAL_SHRINK not in force");
	CHECK(pwrite(mfd, "x", 1, 5000) < 0 && errno == EPERM,
	      "memfd: F_SEAL_GROW not in force");
	CHECK(pwrite(mfd, "x", 1, 10) == 1, "memfd: cannot write inside");
	CHECK(pwrite(mfd2, "x", 1, 0) < 0 && errno == EPERM,
	      "memfd 2: F_SEAL_WRITE not in force");
	CHECK(fcntl(mfd2, F_ADD_SEALS, F_SEAL_SHRINK) < 0 && errno == EPERM,
	      "memfd 2: F_SEAL_SEAL not in force");
	link_of(mfd, l, sizeof(l));
	CHECK(!strcmp(l, "/memfd:crfd (deleted)"), "memfd: link '%s'", l);
	memset(buf, 0, 16);
	CHECK(pread(mfd2, buf, 16, 0) == 6 && !memcmp(buf, "sealed", 6),
	      "memfd 2: contents differ");

	/* eventfds */
	uint64_t v;
	int ok = 1;
	for (int i = 0; i < 3; i++)
		ok &= read(esem, &v, 8) == 8 && v == 1;
	CHECK(ok, "eventfd semaphore: did not give 1 three times");
	CHECK(read(esem, &v, 8) < 0 && errno == EAGAIN,
	      "eventfd semaphore: more than 3 (or blocking)");
	CHECK(fdinfo_num(esem, "eventfd-semaphore") == 1,
	      "eventfd semaphore: not EFD_SEMAPHORE any more");
	v = 0;
	CHECK(readable_within(ebig, 1000) && read(ebig, &v, 8) == 8 &&
		      v == big,
	      "eventfd: count %#llx, want %#llx", (unsigned long long)v,
	      (unsigned long long)big);

	/* pidfd */
	CHECK(pidfd_send_signal(pfd, 0, NULL, 0) == 0,
	      "pidfd: pidfd_send_signal 0: %s", strerror(errno));
	CHECK(fdinfo_num(pfd, "Pid") == other, "pidfd: names pid %ld, want %d",
	      fdinfo_num(pfd, "Pid"), other);

	CHECK(fdinfo_num(kfd, "Pid") == kid && (fcntl(kfd, F_GETFL) & O_NONBLOCK) &&
		      pidfd_send_signal(kfd, 0, NULL, 0) == 0,
	      "pidfd of a child: names %ld, want %d, non-blocking",
	      fdinfo_num(kfd, "Pid"), (int)kid);
	CHECK(fdinfo_num(rfd, "Pid") == -1,
	      "pidfd of a reaped child: names %ld, want none (-1)",
	      fdinfo_num(rfd, "Pid"));
	memset(&zsi, 0, sizeof(zsi));
	CHECK(waitid(P_PIDFD, (id_t)zfd, &zsi, WEXITED) == 0 &&
		      zsi.si_pid == zkid && zsi.si_status == 7,
	      "pidfd of an ended child: waitid gives %d status %d, want %d "
	      "status 7",
	      (int)zsi.si_pid, zsi.si_status, (int)zkid);
	CHECK(pidfd_send_signal(kfd, SIGKILL, NULL, 0) == 0 &&
		      waitpid(kid, NULL, 0) == kid,
	      "pidfd of a child: cannot end it through the pidfd");

	/* shared positions */
	CHECK(lseek(d2, 0, SEEK_CUR) == 77 && lseek(d3, 0, SEEK_CUR) == 77,
	      "dup: positions %lld %lld, want 77",
	      (long long)lseek(d2, 0, SEEK_CUR),
	      (long long)lseek(d3, 0, SEEK_CUR));
	lseek(d3, 200, SEEK_SET);
	CHECK(lseek(d1, 0, SEEK_CUR) == 200 && lseek(d2, 0, SEEK_CUR) == 200,
	      "dup: lseek on one does not move the others (%lld %lld)",
	      (long long)lseek(d1, 0, SEEK_CUR),
	      (long long)lseek(d2, 0, SEEK_CUR));
	CHECK(lseek(d4, 0, SEEK_CUR) == 11,
	      "separate open: moved with the dups (%lld)",
	      (long long)lseek(d4, 0, SEEK_CUR));
	CHECK(write(d2, "Z", 1) == 1 && lseek(d1, 0, SEEK_CUR) == 201,
	      "dup: a write on one does not move the other");

	if (caps_mode) {
		char go2[4200];
		int nfd = open(cr_path("after"),
			       O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		CHECK(nfd >= 0, "open after the restore: %s", strerror(errno));
		printf("opened fd=%d\n", nfd);
		fflush(stdout);
		snprintf(go2, sizeof(go2), "%s.2", cr_go);
		cr_wait_file(go2);
		close(nfd);
	}
	return cr_done();
}
