/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: process attributes.  See crtest.h.
 *
 *   - the working directory (a directory of the test's own; relative
 *     opens still work);
 *   - umask 027 (a new file gets its mode from it);
 *   - resource limits: RLIMIT_NOFILE soft lowered to 900 (and enforced),
 *     RLIMIT_CORE soft 0, RLIMIT_STACK soft lowered, RLIMIT_NPROC hard
 *     lowered; every limit read back the same;
 *   - personality ADDR_NO_RANDOMIZE|UNAME26 (uname says 2.6.x);
 *   - comm, set with PR_SET_NAME (also /proc/self/comm);
 *   - rseq: still registered with glibc's area (registering it again says
 *     EBUSY), its cpu_id kept up to date, sched_getcpu works;
 *   - the robust list (get_robust_list) and clear-child-tid
 *     (PR_GET_TID_ADDRESS) unchanged;
 *   - the same PID and TID, process group and session;
 *   - scheduling: SCHED_BATCH and nice 4 (both per thread);
 *     oom_score_adj 123; child subreaper; transparent huge pages refused
 *     (PR_SET_THP_DISABLE).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "crtest.h"

/* glibc's rseq registration (2.35 and later) */
extern const unsigned int __rseq_size __attribute__((weak));
extern const ptrdiff_t __rseq_offset __attribute__((weak));

struct rseq_abi {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
} __attribute__((aligned(32)));

#define RSEQ_SIG 0x53053053
#define PERS (ADDR_NO_RANDOMIZE | UNAME26)

static struct rseq_abi *rseq_area(void)
{
	if (!&__rseq_size || !__rseq_size)
		return NULL;
	return (struct rseq_abi *)((char *)__builtin_thread_pointer() +
				   __rseq_offset);
}

static const int limits[] = { RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_STACK,
			      RLIMIT_NPROC, RLIMIT_MSGQUEUE };

int main(void)
{
	char cwd_before[4096], buf[4096], comm[17];
	struct rlimit rl, before[RLIM_NLIMITS];
	pid_t pid, tid, pgid, sid;
	void *robust_head = NULL;
	size_t robust_len = 0;
	int *tid_addr = NULL;
	struct rseq_abi *rs;

	cr_init("cr_attrs");

	SETUP(mkdir(cr_path("wd"), 0700) == 0 || errno == EEXIST, "mkdir");
	SETUP(chdir(cr_path("wd")) == 0, "chdir");
	SETUP(getcwd(cwd_before, sizeof(cwd_before)) != NULL, "getcwd");
	int fd = open("here", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	SETUP(fd >= 0 && write(fd, "here\n", 5) == 5, "relative file");
	close(fd);

	umask(027);

	SETUP(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit");
	SETUP(rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 900, "hard NOFILE");
	rl.rlim_cur = 900;
	SETUP(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit NOFILE");
	SETUP(getrlimit(RLIMIT_CORE, &rl) == 0, "getrlimit CORE");
	rl.rlim_cur = 0;
	SETUP(setrlimit(RLIMIT_CORE, &rl) == 0, "setrlimit CORE");
	SETUP(getrlimit(RLIMIT_STACK, &rl) == 0, "getrlimit STACK");
	rl.rlim_cur = 7 * 1024 * 1024 + 4096;
	SETUP(setrlimit(RLIMIT_STACK, &rl) == 0, "setrlimit STACK");
	SETUP(getrlimit(RLIMIT_NPROC, &rl) == 0, "getrlimit NPROC");
	rl.rlim_max = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 100000
			      ? 100000
			      : rl.rlim_max - 1;
	if (rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	SETUP(setrlimit(RLIMIT_NPROC, &rl) == 0, "setrlimit NPROC");
	SETUP(getrlimit(RLIMIT_MSGQUEUE, &rl) == 0, "getrlimit MSGQUEUE");
	rl.rlim_cur = 12345;
	SETUP(setrlimit(RLIMIT_MSGQUEUE, &rl) == 0, "setrlimit MSGQUEUE");
	for (int r = 0; r < RLIM_NLIMITS; r++)
		getrlimit(r, &before[r]);

	SETUP(personality(PERS) != -1, "personality");
	SETUP(prctl(PR_SET_NAME, "cr-attrs-comm") == 0, "PR_SET_NAME");

	rs = rseq_area();
	SETUP(rs != NULL, "glibc registers rseq (__rseq_size > 0)");
	SETUP(sched_getcpu() >= 0 && (int)rs->cpu_id >= 0, "rseq cpu_id");

	SETUP(syscall(SYS_get_robust_list, 0, &robust_head, &robust_len) == 0,
	      "get_robust_list");
	SETUP(prctl(PR_GET_TID_ADDRESS, &tid_addr) == 0, "PR_GET_TID_ADDRESS");
	struct sched_param sp0 = { 0 };
	SETUP(sched_setscheduler(0, SCHED_BATCH, &sp0) == 0, "SCHED_BATCH");
	SETUP(setpriority(PRIO_PROCESS, 0, 4) == 0, "nice 4");
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	SETUP(fd >= 0 && write(fd, "123", 3) == 3, "oom_score_adj 123");
	close(fd);
	SETUP(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "PR_SET_CHILD_SUBREAPER");
	SETUP(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "PR_SET_THP_DISABLE");
	pid = getpid();
	tid = gettid();
	pgid = getpgrp();
	sid = getsid(0);

	cr_info("set up: cwd, umask, %zu limits, personality %#x, comm, rseq, "
		"robust list, tid address, scheduling, oom_score_adj, "
		"subreaper, THP",
		sizeof(limits) / sizeof(limits[0]), PERS);
	cr_ready();
	cr_wait_go();

	/* cwd */
	CHECK(getcwd(buf, sizeof(buf)) && !strcmp(buf, cwd_before),
	      "cwd: %s, was %s", buf, cwd_before);
	fd = open("here", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, 5) == 5 && !memcmp(buf, "here\n", 5),
	      "cannot read a file by its path relative to the cwd");
	close(fd);

	/* umask */
	mode_t um = umask(027);
	CHECK(um == 027, "umask: %03o, want 027", um);
	unlink("new");
	fd = open("new", O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	struct stat st;
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0640,
	      "a new file has mode %03o, want 640", st.st_mode & 0777);
	close(fd);

	/* rlimits */
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		getrlimit(r, &rl);
		CHECK(rl.rlim_cur == before[r].rlim_cur &&
			      rl.rlim_max == before[r].rlim_max,
		      "limit %d: soft %llu hard %llu, was %llu %llu", r,
		      (unsigned long long)rl.rlim_cur,
		      (unsigned long long)rl.rlim_max,
		      (unsigned long long)before[r].rlim_cur,
		      (unsigned long long)before[r].rlim_max);
	}
	CHECK(dup2(0, 899) == 899, "RLIMIT_NOFILE 900: fd 899: %s",
	      strerror(errno));
	errno = 0;
	CHECK(dup2(0, 900) < 0 && errno == EBADF,
	      "RLIMIT_NOFILE 900: fd 900 could be used");
	close(899);

	/* personality */
	int p = personality(0xffffffff);
	CHECK(p == PERS, "personality: %#x, want %#x", p, PERS);
	struct utsname u;
	uname(&u);
	CHECK(!strncmp(u.release, "2.6.", 4),
	      "UNAME26: uname says release %s", u.release);
	FILE *f = fopen("/proc/self/personality", "re");
	unsigned pp = 0;
	CHECK(f && fscanf(f, "%x", &pp) == 1 && pp == PERS,
	      "/proc/self/personality: %#x", pp);
	if (f)
		fclose(f);

	/* comm */
	memset(comm, 0, sizeof(comm));
	prctl(PR_GET_NAME, comm);
	CHECK(!strcmp(comm, "cr-attrs-comm"), "comm: '%s'", comm);
	f = fopen("/proc/self/comm", "re");
	buf[0] = 0;
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	CHECK(!strcmp(buf, "cr-attrs-comm"), "/proc/self/comm: '%s'", buf);

	/* rseq */
	CHECK(rseq_area() == rs, "glibc's rseq area moved");
	long r = syscall(SYS_rseq, rs, 32, 0, RSEQ_SIG);
	int e = errno;
	CHECK(r < 0 && e == EBUSY,
	      "rseq: registering glibc's area again gives %ld (%s), want "
	      "EBUSY: it is not registered%s",
	      r, r < 0 ? strerror(e) : "success",
	      r < 0 && e == EINVAL ? " with that area" : "");
	if (r == 0)
		syscall(SYS_rseq, rs, 32, 1, RSEQ_SIG);
	rs->cpu_id = (uint32_t)-77; /* the kernel rewrites it on resume */
	rs->cpu_id_start = (uint32_t)-77;
	sched_yield();
	cr_nap_ms(2);
	int cpu = sched_getcpu();
	CHECK(cpu >= 0, "sched_getcpu: %d", cpu);
	CHECK(rs->cpu_id != (uint32_t)-77 && (int)rs->cpu_id >= 0 &&
		      (int)rs->cpu_id < CPU_SETSIZE,
	      "rseq: the kernel does not update cpu_id (%d)", (int)rs->cpu_id);
	CHECK(rs->cpu_id_start != (uint32_t)-77,
	      "rseq: the kernel does not update cpu_id_start");

	/* robust list, tid address */
	void *rh = NULL;
	size_t rlen = 0;
	syscall(SYS_get_robust_list, 0, &rh, &rlen);
	CHECK(rh == robust_head && rlen == robust_len,
	      "robust list: %p len %zu, was %p len %zu", rh, rlen, robust_head,
	      robust_len);
	int *ta = NULL;
	prctl(PR_GET_TID_ADDRESS, &ta);
	CHECK(ta == tid_addr, "clear-child-tid: %p, was %p", (void *)ta,
	      (void *)tid_addr);

	/* identity */
	CHECK(getpid() == pid && syscall(SYS_getpid) == pid,
	      "pid: %d, was %d", getpid(), pid);
	CHECK(gettid() == tid, "tid: %d, was %d", gettid(), tid);
	CHECK(getpgrp() == pgid, "process group: %d, was %d", getpgrp(), pgid);
	CHECK(getsid(0) == sid, "session: %d, was %d", getsid(0), sid);

	/* scheduling and the smaller attributes */
	CHECK(sched_getscheduler(0) == SCHED_BATCH, "policy %d, was SCHED_BATCH",
	      sched_getscheduler(0));
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	CHECK(nice == 4 && !errno, "nice %d, was 4", nice);
	memset(buf, 0, 16);
	fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, 15) > 0 && atoi(buf) == 123,
	      "oom_score_adj %s, was 123", buf);
	if (fd >= 0)
		close(fd);
	int sub = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &sub);
	CHECK(sub == 1, "child subreaper: %d, was 1", sub);
	CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1,
	      "transparent huge pages: no longer refused");

	return cr_done();
}
