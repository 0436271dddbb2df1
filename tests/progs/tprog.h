/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the test programs (tests/progs/X.c -> build/tests/X).
 *
 * The programs run as targets under `capcr run` (or plain) and check their
 * own results: every failed check prints a "FAIL: ..." line, and tp_done()
 * prints one final "PASS <name>" or "FAIL <name> (N failures)" line and
 * gives the exit status.
 *
 * They never link the runtime: when it is preloaded, its API is found with
 * dlsym(RTLD_DEFAULT, ...).  Their own region is found the way a monitor
 * finds it, by the "/memfd:capcr-capinfo" line in /proc/self/maps, and read
 * with the sequence-lock protocol of include/capcr/capinfo.h.
 *
 * Control: a program that has something to show prints "ready ..." and
 * waits for SIGUSR2 (tp_wait_go), at most TP_WAIT_S seconds, so that no
 * test program outlives a broken test.
 */
#ifndef CAPCR_TPROG_H
#define CAPCR_TPROG_H

#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "capcr/capinfo.h"

/* How long tp_wait_go waits: TP_WAIT_S seconds times the runner's time
 * scale (CAPCR_TEST_TIMEOUT_SCALE); generous, as only a test that forgot
 * its program waits that long. */
#define TP_WAIT_S 300
#define TP_MAXFD 4096

static const char *tp_name = "tprog";
static int tp_failures;

__attribute__((format(printf, 2, 3))) static inline int tp_check(int ok,
							   const char *fmt,
							   ...)
{
	if (!ok) {
		va_list ap;
		char buf[512];
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		printf("FAIL: %s: %s\n", tp_name, buf);
		fflush(stdout);
		tp_failures++;
	}
	return ok;
}

#define TP_CHECK(cond, ...) tp_check(!!(cond), __VA_ARGS__)

__attribute__((format(printf, 1, 2))) static inline void tp_pass(const char *fmt,
							   ...)
{
	va_list ap;
	printf("PASS: %s: ", tp_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static inline void tp_die(const char *what)
{
	printf("FAIL: %s: %s: %s\n", tp_name, what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static inline int tp_done(void)
{
	if (tp_failures)
		printf("FAIL %s (%d failures)\n", tp_name, tp_failures);
	else
		printf("PASS %s\n", tp_name);
	fflush(stdout);
	return tp_failures ? 1 : 0;
}

/* Block SIGUSR2 (the "go on" signal) in every thread to come. */
static inline void tp_init(const char *name)
{
	sigset_t s;

	tp_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

__attribute__((format(printf, 1, 2))) static inline void tp_ready(const char *fmt,
							    ...)
{
	va_list ap;
	printf("ready pid=%d ", (int)getpid());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Wait for SIGUSR2; a test that never sends it fails the program. */
static inline void tp_wait_go(void)
{
	sigset_t s;
	const char *sc = getenv("CAPCR_TEST_TIMEOUT_SCALE");
	double f = sc ? atof(sc) : 1;
	struct timespec ts = { (time_t)(TP_WAIT_S * (f > 1 ? f : 1)), 0 };

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	for (;;) {
		int r = sigtimedwait(&s, NULL, &ts);
		if (r == SIGUSR2)
			return;
		if (r < 0 && errno == EINTR)
			continue;
		printf("FAIL: %s: nobody said go within %ld s\n", tp_name,
		       (long)ts.tv_sec);
		fflush(stdout);
		_exit(3);
	}
}

static inline double tp_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The runtime's API, if it is loaded. */
static inline int tp_monitored(void)
{
	int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "capcr_monitored");
	return f ? f() : -1; /* -1: no runtime in this process */
}

static inline uint64_t tp_badge(int fd)
{
	static uint64_t (*f)(int);
	if (!f)
		f = (uint64_t(*)(int))dlsym(RTLD_DEFAULT, "capcr_badge");
	return f ? f(fd) : 0;
}

/* This process's region, from /proc/self/maps (raw syscalls, so nothing
 * here shows in the capability space).  *len gets the mapping's size. */
static inline struct capcr_capinfo_header *tp_region(size_t *len)
{
	static char buf[1 << 16];
	size_t got = 0;
	long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/maps",
			  O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	for (;;) {
		long n = syscall(SYS_read, fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got >= sizeof(buf) - 1)
			break;
	}
	syscall(SYS_close, fd);
	buf[got] = 0;
	for (char *l = buf; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = 0;
		if (strstr(l, "/memfd:" CAPCR_CAPINFO_MEMFD_NAME " ")) {
			unsigned long s, e;
			if (sscanf(l, "%lx-%lx", &s, &e) == 2) {
				if (len)
					*len = e - s;
				return (struct capcr_capinfo_header *)s;
			}
		}
		l = nl ? nl + 1 : NULL;
	}
	return NULL;
}

struct tp_snap {
	struct capcr_capinfo_header h;
	struct capcr_cap_info a[CAPCR_CAPINFO_CAPACITY];
};

/* A consistent copy of a region, as a monitor reads it: between two equal,
 * even reads of seq.  0 when consistent, -1 when it stayed odd for ~tries. */
static inline int tp_snapshot(const struct capcr_capinfo_header *r,
		       struct tp_snap *s, long tries)
{
	const struct capcr_cap_info *arr =
		(const struct capcr_cap_info *)(r + 1);
	for (long t = 0; t < tries; t++) {
		uint64_t s1 = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1) {
			if (t > 1000)
				sched_yield();
			continue;
		}
		memcpy(&s->h, (const void *)r, sizeof(s->h));
		uint32_t n = s->h.count;
		if (n > CAPCR_CAPINFO_CAPACITY)
			n = CAPCR_CAPINFO_CAPACITY;
		memcpy(s->a, arr, n * sizeof(*arr));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&r->seq, __ATOMIC_RELAXED) == s1) {
			s->h.count = n;
			return 0;
		}
	}
	return -1;
}

/* The kernel's table of this process: out[fd] = 1 for every open fd.
 * Raw syscalls, so the listing itself is not reported. */
static inline int tp_kernel_fds(unsigned char *out, int max)
{
	char buf[8192];
	long n, dfd = syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
			      O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int count = 0;

	memset(out, 0, (size_t)max);
	if (dfd < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			int fd = atoi(d->d_name);
			if (fd == dfd || fd >= max)
				continue;
			out[fd] = 1;
			count++;
		}
	}
	syscall(SYS_close, dfd);
	return count;
}

/*
 * Check a consistent snapshot of the own region: no descriptor twice, every
 * badge_ptr leads to a cap-map entry with a non-zero badge and the same
 * kcap.  With kfds, also that the region lists exactly the kernel's table
 * (except fds in `ignore`, e.g. the ipc session).  Returns failures.
 */
static inline int tp_check_snapshot(const struct tp_snap *s, const unsigned char *kfds,
			     int ignore_fd, const char *when)
{
	static unsigned char seen[TP_MAXFD];
	int bad = 0;

	memset(seen, 0, sizeof(seen));
	if (!TP_CHECK(s->h.magic == CAPCR_CAPINFO_MAGIC, "%s: magic", when))
		return 1;
	bad += !TP_CHECK(s->h.pid == getpid(), "%s: region pid %d != %d", when,
			 s->h.pid, (int)getpid());
	bad += !TP_CHECK(s->h.count <= s->h.capacity, "%s: count %u", when,
			 s->h.count);
	for (uint32_t i = 0; i < s->h.count; i++) {
		const struct capcr_cap_info *c = &s->a[i];
		if (!TP_CHECK(c->kcap >= 0 && c->kcap < TP_MAXFD,
			      "%s: slot %u kcap %d", when, i, c->kcap)) {
			bad++;
			continue;
		}
		bad += !TP_CHECK(!seen[c->kcap], "%s: fd %d listed twice", when,
				 c->kcap);
		seen[c->kcap] = 1;
		const struct capcr_cap_entry *e =
			(const struct capcr_cap_entry *)(uintptr_t)c->badge_ptr;
		if (!TP_CHECK(e != NULL, "%s: fd %d: no badge_ptr", when,
			      c->kcap)) {
			bad++;
			continue;
		}
		bad += !TP_CHECK(c->kind < CAPCR_KIND_MAX, "%s: fd %d kind %u",
				 when, c->kcap, c->kind);
		/* The entry is private memory, read live, so it may have
		 * changed since the copy: check it only when the caller says
		 * the table is at rest (kfds given). */
		if (kfds) {
			bad += !TP_CHECK(e->badge != 0, "%s: fd %d: badge 0",
					 when, c->kcap);
			bad += !TP_CHECK(e->kcap == c->kcap,
					 "%s: fd %d: entry says kcap %d", when,
					 c->kcap, e->kcap);
		}
	}
	if (kfds) {
		for (int fd = 0; fd < TP_MAXFD; fd++) {
			if (fd == ignore_fd)
				continue;
			if (kfds[fd] && !seen[fd])
				bad += !TP_CHECK(0, "%s: kernel fd %d not in "
						    "the region", when, fd);
			if (!kfds[fd] && seen[fd])
				bad += !TP_CHECK(0, "%s: region lists fd %d, "
						    "which the kernel does not "
						    "have", when, fd);
		}
	}
	return bad;
}

#endif
