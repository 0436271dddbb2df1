/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the checkpoint/restore area tests (tests/progs/cr_*.c, run by
 * tests/t_cr_areas.sh), in the style of CRIU's zdtm:
 *
 *   1. the program sets up the state of its area and records what it
 *      expects;
 *   2. it prints "ready pid=N" and waits, sleeping in a loop, until the go
 *      file appears (no signal is used to wake it: signal state may be what
 *      is under test);
 *   3. meanwhile the harness may dump it, reap it and restore it (or do
 *      nothing: every program also runs plain);
 *   4. it checks its own state, printing "FAIL: NAME: what" for every
 *      difference, and ends with "PASS NAME" (exit 0) or "FAIL NAME (N
 *      failures)" (exit 1).
 *
 * Everything a program prints apart from the ready line must be the same
 * with and without the dump and restore; the harness compares the outputs.
 *
 * Environment:
 *   CR_GO    the go file (required)
 *   CR_DIR   a scratch directory of the program's own (required by the
 *            programs that make files)
 */
#ifndef CAPCR_CRTEST_H
#define CAPCR_CRTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * How long a program waits for its go file before it gives up: CR_WAIT_S
 * seconds times the test runner's time scale (cr_scale).  Only a test that
 * forgot its program ever waits that long, and the runner's reaper ends
 * what a test leaves behind anyway: generous, so that a loaded machine
 * never runs into it.
 */
#define CR_WAIT_S 300

/* CAPCR_TEST_TIMEOUT_SCALE from tests/run.sh, at least 1. */
static inline double cr_scale(void)
{
	const char *s = getenv("CAPCR_TEST_TIMEOUT_SCALE");
	double f = s ? atof(s) : 1;
	return f > 1 ? f : 1;
}

static const char *cr_name = "cr";
static int cr_failures;
static char cr_go[4096];
static char cr_dir[4096];

__attribute__((format(printf, 2, 3))) static inline int cr_check(int ok,
							  const char *fmt, ...)
{
	if (!ok) {
		va_list ap;
		char buf[1024];
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		printf("FAIL: %s: %s\n", cr_name, buf);
		fflush(stdout);
		cr_failures++;
	}
	return ok;
}

#define CHECK(cond, ...) cr_check(!!(cond), __VA_ARGS__)

/* A setup step that must work for the test to mean anything: a failure
 * here is the test program's own (exit 2), not capcr's. */
#define SETUP(cond, what)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("FAIL: %s: setup: %s: %s (line %d)\n", cr_name, \
			       what, strerror(errno), __LINE__);               \
			fflush(stdout);                                        \
			exit(2);                                               \
		}                                                              \
	} while (0)

/* Informational line: must come out the same with and without a restore. */
__attribute__((format(printf, 1, 2))) static inline void cr_info(const char *fmt, ...)
{
	va_list ap;
	printf("%s: ", cr_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static inline void cr_init(const char *name)
{
	const char *g = getenv("CR_GO"), *d = getenv("CR_DIR");

	cr_name = name;
	if (!g || !*g) {
		printf("FAIL: %s: setup: CR_GO is not set\n", name);
		exit(2);
	}
	snprintf(cr_go, sizeof(cr_go), "%s", g);
	snprintf(cr_dir, sizeof(cr_dir), "%s", d && *d ? d : "/tmp");
}

/* A path in the scratch directory. */
static inline const char *cr_path(const char *leaf)
{
	static char bufs[8][4200];
	static int n;
	char *b = bufs[n++ % 8];
	snprintf(b, 4200, "%s/%s", cr_dir, leaf);
	return b;
}

static inline void cr_ready(void)
{
	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
}

static inline double cr_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep a little, whatever interrupts it. */
static inline void cr_nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Sleep for ms, going back to sleep when a signal interrupts. */
static inline void cr_sleep_ms(long ms)
{
	double end = cr_now() + (double)ms / 1000.0;
	for (double now; (now = cr_now()) < end;) {
		double left = end - now;
		struct timespec ts = { (time_t)left,
				       (long)((left - (double)(time_t)left) *
					      1e9) };
		nanosleep(&ts, NULL);
	}
}

static inline int cr_go_here(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Wait (sleeping in a loop) until file PATH exists. */
static inline void cr_wait_file(const char *path)
{
	double end = cr_now() + CR_WAIT_S * cr_scale();
	while (!cr_go_here(path)) {
		if (cr_now() > end) {
			printf("FAIL: %s: nobody created %s within %.0f s\n",
			       cr_name, path, CR_WAIT_S * cr_scale());
			fflush(stdout);
			_exit(3);
		}
		cr_nap_ms(5);
	}
}

static inline void cr_wait_go(void)
{
	cr_wait_file(cr_go);
}

static inline int cr_done(void)
{
	if (cr_failures)
		printf("FAIL %s (%d failures)\n", cr_name, cr_failures);
	else
		printf("PASS %s\n", cr_name);
	fflush(stdout);
	return cr_failures ? 1 : 0;
}

/* Deterministic pattern byte for (seed, offset). */
static inline unsigned char cr_pat(unsigned seed, size_t off)
{
	uint64_t x = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + off;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 32;
	return (unsigned char)x;
}

static inline void cr_fill(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		c[i] = cr_pat(seed, i);
}

/* Offset of the first byte that differs from the pattern, or -1. */
static inline long cr_verify(const void *p, size_t len, unsigned seed)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != cr_pat(seed, i))
			return (long)i;
	return -1;
}

/* Offset of the first non-zero byte, or -1. */
static inline long cr_first_nonzero(const void *p, size_t len)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i])
			return (long)i;
	return -1;
}

/* The line of /proc/self/maps that covers addr, in buf ("" if none). */
static inline void cr_maps_line(const void *addr, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4400];
	uintptr_t a = (uintptr_t)addr;

	buf[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && a >= s && a < e) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%s", line);
			break;
		}
	}
	fclose(f);
}

/* The VmFlags of the smaps entry that starts at addr ("" if none). */
static inline void cr_vmflags(const void *addr, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[4400];
	int in = 0;

	buf[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = (uintptr_t)addr >= s && (uintptr_t)addr < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			line[strcspn(line, "\n")] = 0;
			size_t n = strlen(line + 8);
			if (n + 2 > len)
				n = len - 2;
			memcpy(buf, line + 8, n);
			buf[n] = ' ';
			buf[n + 1] = 0;
			break;
		}
	}
	fclose(f);
}

/* Has the space-separated VmFlags string flag fl ("dc", "wf", ...)? */
static inline int cr_has_vmflag(const char *flags, const char *fl)
{
	char pat[8];
	snprintf(pat, sizeof(pat), " %s ", fl);
	return strstr(flags, pat) != NULL;
}

#endif
