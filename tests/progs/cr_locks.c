/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: file locks (capcr dump/restore
 * --file-locks).  See crtest.h.
 *
 *   - flock: an exclusive flock(2) lock on file "flock";
 *   - POSIX: a write lock on bytes 0-99 and a read lock on bytes 200-299
 *     of file "posix", which is also mapped MAP_SHARED (so capcr restore
 *     holds a descriptor of its own of that file in the process until the
 *     end of the takeover: closing it must not drop the locks) and open a
 *     second time through dup;
 *   - OFD: a write lock on bytes 10-19 of file "ofd" (F_OFD_SETLK);
 *   - a read lease (F_SETLEASE) on file "lease", open read-only.
 *
 * After the go file, a forked child (which owns none of them) checks they
 * are held: flock(LOCK_NB) on a fresh open fails with EWOULDBLOCK;
 * conflicting F_SETLK / F_OFD_SETLK fail with EAGAIN; F_GETLK and
 * F_OFD_GETLK report each lock with its type and range, and this
 * process's PID for the POSIX ones (-1 for the OFD one); the bytes outside
 * the ranges are free.  The process's own fdinfo shows each lock on its
 * descriptor, and F_GETLEASE its lease.
 */
#define _GNU_SOURCE
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "crtest.h"

static int lock_range(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type,
			    .l_whence = SEEK_SET,
			    .l_start = start,
			    .l_len = len };
	return fcntl(fd, cmd, &fl);
}

/* F_SETLK/F_OFD_SETLK of type over [start, start+len) must fail with
 * EAGAIN (held) or succeed (free; then released again). */
static void expect_held(int fd, int cmd, short type, off_t start, off_t len,
			const char *what)
{
	errno = 0;
	int r = lock_range(fd, cmd, type, start, len);
	CHECK(r < 0 && (errno == EAGAIN || errno == EACCES),
	      "%s: a conflicting lock was %s (%s)", what,
	      r == 0 ? "granted" : "refused otherwise", strerror(errno));
	if (r == 0)
		lock_range(fd, cmd, F_UNLCK, start, len);
}

static void expect_free(int fd, int cmd, short type, off_t start, off_t len,
			const char *what)
{
	int r = lock_range(fd, cmd, type, start, len);
	CHECK(r == 0, "%s: refused: %s", what, strerror(errno));
	if (r == 0)
		lock_range(fd, cmd, F_UNLCK, start, len);
}

/* F_GETLK/F_OFD_GETLK for a write lock at [start, start+len): the lock
 * that is in the way. */
static void expect_getlk(int fd, int cmd, off_t start, off_t len,
			 short want_type, off_t want_start, off_t want_len,
			 pid_t want_pid, const char *what)
{
	struct flock fl = { .l_type = F_WRLCK,
			    .l_whence = SEEK_SET,
			    .l_start = start,
			    .l_len = len };
	if (!CHECK(fcntl(fd, cmd, &fl) == 0, "%s: GETLK: %s", what,
		   strerror(errno)))
		return;
	CHECK(fl.l_type == want_type && fl.l_start == want_start &&
		      fl.l_len == want_len && fl.l_pid == want_pid,
	      "%s: GETLK reports type %d, %lld+%lld, pid %d; expected type "
	      "%d, %lld+%lld, pid %d",
	      what, fl.l_type, (long long)fl.l_start, (long long)fl.l_len,
	      (int)fl.l_pid, want_type, (long long)want_start,
	      (long long)want_len, (int)want_pid);
}

/* The "lock:" lines of /proc/self/fdinfo/FD. */
static int fdinfo_locks(int fd)
{
	char p[64], line[256];
	int n = 0;
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, "lock:", 5);
	fclose(f);
	return n;
}

/* In a child that owns none of the locks. */
static int child_checks(pid_t parent, int posix_fd)
{
	int a = open(cr_path("flock"), O_RDWR | O_CLOEXEC);
	int b = open(cr_path("posix"), O_RDWR | O_CLOEXEC);
	int c = open(cr_path("ofd"), O_RDWR | O_CLOEXEC);

	cr_failures = 0;
	SETUP(a >= 0 && b >= 0 && c >= 0, "child: open");

	/* flock: on a description of its own */
	errno = 0;
	int r = flock(a, LOCK_EX | LOCK_NB);
	CHECK(r < 0 && errno == EWOULDBLOCK,
	      "flock: an exclusive flock was %s (%s)",
	      r == 0 ? "granted" : "refused otherwise", strerror(errno));
	errno = 0;
	r = flock(a, LOCK_SH | LOCK_NB);
	CHECK(r < 0 && errno == EWOULDBLOCK,
	      "flock: a shared flock was %s: the lock is not exclusive",
	      r == 0 ? "granted" : "refused otherwise");
	if (r == 0)
		flock(a, LOCK_UN);

	/* POSIX: through its own open and through the inherited
	 * descriptor (a POSIX lock is the process's, not the
	 * description's) */
	expect_held(b, F_SETLK, F_WRLCK, 0, 100, "posix 0-99 (write)");
	expect_held(b, F_SETLK, F_RDLCK, 50, 1, "posix byte 50 (read)");
	expect_held(posix_fd, F_SETLK, F_WRLCK, 99, 1,
		    "posix byte 99 through the inherited descriptor");
	expect_held(b, F_SETLK, F_WRLCK, 250, 10, "posix 250-259 (write)");
	expect_free(b, F_SETLK, F_RDLCK, 200, 100,
		    "posix 200-299 is a read lock: a read lock");
	expect_free(b, F_SETLK, F_WRLCK, 100, 100, "posix 100-199 is free");
	expect_free(b, F_SETLK, F_WRLCK, 300, 0, "posix 300- is free");
	expect_held(b, F_OFD_SETLK, F_WRLCK, 0, 1,
		    "posix byte 0 against an OFD lock");
	expect_getlk(b, F_GETLK, 10, 1, F_WRLCK, 0, 100, parent,
		     "posix F_GETLK at 10");
	expect_getlk(b, F_GETLK, 299, 5, F_RDLCK, 200, 100, parent,
		     "posix F_GETLK at 299");
	expect_getlk(b, F_OFD_GETLK, 0, 0, F_WRLCK, 0, 100, parent,
		     "posix F_OFD_GETLK from 0");
	struct flock fl = { .l_type = F_WRLCK,
			    .l_whence = SEEK_SET,
			    .l_start = 100,
			    .l_len = 100 };
	CHECK(fcntl(b, F_GETLK, &fl) == 0 && fl.l_type == F_UNLCK,
	      "posix F_GETLK at 100-199: type %d, expected F_UNLCK", fl.l_type);

	/* OFD: a description of its own */
	expect_held(c, F_OFD_SETLK, F_WRLCK, 10, 10, "ofd 10-19 (write)");
	expect_held(c, F_OFD_SETLK, F_RDLCK, 19, 1, "ofd byte 19 (read)");
	expect_held(c, F_SETLK, F_RDLCK, 15, 1, "ofd byte 15 against POSIX");
	expect_free(c, F_OFD_SETLK, F_WRLCK, 0, 10, "ofd 0-9 is free");
	expect_free(c, F_OFD_SETLK, F_WRLCK, 20, 0, "ofd 20- is free");
	expect_getlk(c, F_OFD_GETLK, 0, 0, F_WRLCK, 10, 10, -1,
		     "ofd F_OFD_GETLK from 0");
	fflush(stdout);
	return cr_failures;
}

int main(void)
{
	cr_init("cr_locks");

	int fa = open(cr_path("flock"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	int fb = open(cr_path("posix"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	int fc = open(cr_path("ofd"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	SETUP(fa >= 0 && fb >= 0 && fc >= 0, "open");
	SETUP(ftruncate(fb, 4096) == 0, "ftruncate");
	char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fb, 0);
	SETUP(map != MAP_FAILED, "mmap");
	memcpy(map, "locked and mapped", 18);
	int fb2 = dup(fb);
	SETUP(fb2 >= 0, "dup");
	int fl = open(cr_path("lease"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	SETUP(fl >= 0 && close(fl) == 0, "lease file");
	fl = open(cr_path("lease"), O_RDONLY | O_CLOEXEC);
	SETUP(fl >= 0, "open the lease file");
	SETUP(fcntl(fl, F_SETLEASE, F_RDLCK) == 0, "F_SETLEASE");

	SETUP(flock(fa, LOCK_EX | LOCK_NB) == 0, "flock");
	SETUP(lock_range(fb, F_SETLK, F_WRLCK, 0, 100) == 0, "posix write");
	SETUP(lock_range(fb, F_SETLK, F_RDLCK, 200, 100) == 0, "posix read");
	SETUP(lock_range(fc, F_OFD_SETLK, F_WRLCK, 10, 10) == 0, "ofd");

	cr_ready();
	cr_wait_go();

	CHECK(fdinfo_locks(fa) == 1,
	      "fdinfo of the flock'ed descriptor shows "
	      "%d locks, expected 1",
	      fdinfo_locks(fa));
	CHECK(fdinfo_locks(fb) == 2,
	      "fdinfo of the POSIX-locked descriptor "
	      "shows %d locks, expected 2",
	      fdinfo_locks(fb));
	CHECK(fdinfo_locks(fc) == 1,
	      "fdinfo of the OFD-locked descriptor "
	      "shows %d locks, expected 1",
	      fdinfo_locks(fc));
	CHECK(fcntl(fl, F_GETLEASE) == F_RDLCK,
	      "F_GETLEASE says %d, expected the read lease (%d)",
	      fcntl(fl, F_GETLEASE), F_RDLCK);
	CHECK(fdinfo_locks(fl) == 1,
	      "fdinfo of the leased descriptor shows %d locks, expected 1",
	      fdinfo_locks(fl));
	CHECK(!memcmp(map, "locked and mapped", 18),
	      "the shared mapping of the locked file lost its contents");

	fflush(stdout);
	pid_t me = getpid();
	pid_t kid = fork();
	SETUP(kid >= 0, "fork");
	if (kid == 0)
		_exit(child_checks(me, fb2));
	int st;
	SETUP(waitpid(kid, &st, 0) == kid, "waitpid");
	CHECK(WIFEXITED(st), "the checking child ended by signal %d",
	      WTERMSIG(st));
	if (WIFEXITED(st))
		cr_failures += WEXITSTATUS(st);

	/* Ours to give up: afterwards the child's locks are granted. */
	SETUP(flock(fa, LOCK_UN) == 0, "flock unlock");
	SETUP(lock_range(fb, F_SETLK, F_UNLCK, 0, 0) == 0, "posix unlock");
	SETUP(lock_range(fc, F_OFD_SETLK, F_UNLCK, 0, 0) == 0, "ofd unlock");
	SETUP(fcntl(fl, F_SETLEASE, F_UNLCK) == 0, "lease given up");
	CHECK(fcntl(fl, F_GETLEASE) == F_UNLCK, "the lease is still held");
	int a = open(cr_path("flock"), O_RDWR | O_CLOEXEC);
	int c = open(cr_path("ofd"), O_RDWR | O_CLOEXEC);
	SETUP(a >= 0 && c >= 0, "open again");
	CHECK(flock(a, LOCK_EX | LOCK_NB) == 0, "flock after unlocking: %s",
	      strerror(errno));
	CHECK(lock_range(c, F_OFD_SETLK, F_WRLCK, 0, 0) == 0,
	      "OFD lock after unlocking: %s", strerror(errno));
	return cr_done();
}
