/* SPDX-License-Identifier: MIT */
/*
 * bench/cr: the checkpoint/restore benchmark's two halves (bench/run.sh,
 * section cr).
 *
 *   cr fill MIB
 *      The target.  Maps MIB MiB of private anonymous memory, writes every
 *      byte of it with pseudo-random data (xorshift64: incompressible, no
 *      zero page, no two pages alike), prints
 *        ready pid=PID addr=0xADDR bytes=N sum=HEX
 *      and waits.  On each SIGUSR1 it checks the whole area against what it
 *      wrote and prints "check sum=HEX ok" (or "... BAD N words differ"), so
 *      a restored copy can be verified.  On each SIGUSR2 it writes one page
 *      in 100 again with what it holds (the data stays, the pages read as
 *      written: what a dump after a pre-dump must copy) and prints
 *      "touched N pages".  Exits after 600 s in any case.
 *
 *   cr bounds [-r REPS] [-w DIR] PID ADDR BYTES
 *      Bounds for moving BYTES bytes, measured here and now, each the
 *      median of REPS runs (default 3), as "name=SECONDS" on one line:
 *        procmem  reading [ADDR, ADDR+BYTES) of process PID through
 *                 /proc/PID/mem, pread in 16 MiB blocks into one buffer
 *                 (what capcr dump does, without writing anything)
 *        memcpy   memcpy of BYTES between two buffers already touched
 *        touch    first touch of BYTES of fresh anonymous memory (one
 *                 write per 4 KiB page: page faults and zeroing only)
 *        write    (with -w) writing BYTES from a touched buffer into a new
 *                 file in DIR, 16 MiB per write(), then unlinking it: what
 *                 putting the image on that file system costs by itself
 *        scan     one PAGEMAP_SCAN of the area (present and written pages,
 *                 as the freeze of dump -R asks): the page-table walk no
 *                 freeze that finds the written pages can avoid
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../src/dump/pagemap.h"

#define BLOCK (16UL << 20)
#define PAGE 4096UL

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "cr: mmap %zu bytes: %s\n", len,
			strerror(errno));
		exit(1);
	}
	return p;
}

/* ---- fill ---- */

static volatile sig_atomic_t want_check, want_touch;

static void on_usr2(int sig)
{
	(void)sig;
	want_touch = 1;
}

static void on_usr1(int sig)
{
	(void)sig;
	want_check = 1;
}

/* Fill (or check) the area with the xorshift64 sequence; returns the
 * number of words that differ (check) and the sequence's sum in *sum. */
static size_t sequence(uint64_t *p, size_t words, int fill, uint64_t *sum)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL, s = 0;
	size_t bad = 0;

	for (size_t i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (fill)
			p[i] = x;
		else if (p[i] != x)
			bad++;
		s += x;
	}
	*sum = s;
	return bad;
}

static int cmd_fill(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cr fill MIB\n");
		return 2;
	}
	size_t len = (size_t)strtoul(argv[2], NULL, 10) << 20;
	if (!len) {
		fprintf(stderr, "cr fill: MIB must be at least 1\n");
		return 2;
	}
	uint64_t *p = map(len), sum;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sequence(p, len / 8, 1, &sum);
	printf("ready pid=%d addr=%#" PRIxPTR " bytes=%zu sum=%" PRIx64 "\n",
	       getpid(), (uintptr_t)p, len, sum);
	fflush(stdout);
	for (long i = 0; i < 60000; i++) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
		if (want_touch) {
			volatile uint64_t *v = p;
			size_t n = 0;
			want_touch = 0;
			for (size_t pg = 0; pg < len / PAGE; pg += 100, n++)
				v[pg * (PAGE / 8)] = v[pg * (PAGE / 8)];
			printf("touched %zu pages\n", n);
			fflush(stdout);
		}
		if (want_check) {
			uint64_t s;
			want_check = 0;
			size_t bad = sequence(p, len / 8, 0, &s);
			if (bad)
				printf("check sum=%" PRIx64 " BAD %zu words "
				       "differ\n", s, bad);
			else
				printf("check sum=%" PRIx64 " ok\n", s);
			fflush(stdout);
		}
	}
	return 0;
}

/* ---- bounds ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double t_procmem(int fd, uint64_t addr, size_t len, char *buf)
{
	double t0 = now();
	for (size_t off = 0; off < len; off += BLOCK) {
		size_t n = len - off < BLOCK ? len - off : BLOCK;
		if (pread(fd, buf, n, (off_t)(addr + off)) != (ssize_t)n) {
			fprintf(stderr, "cr bounds: /proc/PID/mem at %#" PRIx64
					": %s\n", addr + off, strerror(errno));
			exit(1);
		}
	}
	return now() - t0;
}

static double t_memcpy(char *dst, const char *src, size_t len)
{
	double t0 = now();
	memcpy(dst, src, len);
	double t = now() - t0;
	/* keep the copy from being optimised away */
	if (dst[len / 2] != src[len / 2])
		exit(1);
	return t;
}

static double t_touch(size_t len)
{
	char *p = map(len);
	double t0 = now();
	for (size_t off = 0; off < len; off += PAGE)
		((volatile char *)p)[off] = 1;
	double t = now() - t0;
	munmap(p, len);
	return t;
}

static double t_write(const char *dir, const char *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/cr-bounds-write.%d", dir, getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "cr bounds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	double t0 = now();
	for (size_t off = 0; off < len; off += BLOCK) {
		size_t n = len - off < BLOCK ? len - off : BLOCK;
		if (write(fd, buf, n) != (ssize_t)n) {
			fprintf(stderr, "cr bounds: write %s: %s\n", path,
				strerror(errno));
			unlink(path);
			exit(1);
		}
	}
	double t = now() - t0;
	close(fd);
	unlink(path);
	return t;
}

static double t_scan(int pid, uint64_t addr, size_t len)
{
	struct page_region vec[512];
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.vec = (uintptr_t)vec,
		.vec_len = 512,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN,
	};
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cr bounds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	double t0 = now();
	for (uint64_t pos = addr; pos < addr + len;) {
		a.start = pos;
		a.end = addr + len;
		a.walk_end = 0;
		if (ioctl(fd, PAGEMAP_SCAN, &a) < 0) {
			fprintf(stderr, "cr bounds: PAGEMAP_SCAN: %s\n",
				strerror(errno));
			exit(1);
		}
		if (a.walk_end <= pos)
			break;
		pos = a.walk_end;
	}
	double t = now() - t0;
	close(fd);
	return t;
}

#define BOUNDS_ARGS "cr bounds [-r REPS] [-w DIR] PID ADDR BYTES\n"

static int cmd_bounds(int argc, char **argv)
{
	int reps = 3, c;
	const char *wdir = NULL;

	optind = 2;
	while ((c = getopt(argc, argv, "r:w:")) != -1) {
		if (c == 'r') {
			reps = atoi(optarg);
		} else if (c == 'w') {
			wdir = optarg;
		} else {
			fprintf(stderr, "usage: " BOUNDS_ARGS);
			return 2;
		}
	}
	if (argc - optind != 3 || reps < 1 || reps > 100) {
		fprintf(stderr, "usage: " BOUNDS_ARGS);
		return 2;
	}
	int pid = atoi(argv[optind]);
	uint64_t addr = strtoull(argv[optind + 1], NULL, 0);
	size_t len = (size_t)strtoull(argv[optind + 2], NULL, 0);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cr bounds: %s: %s\n", path, strerror(errno));
		return 1;
	}
	char *buf = map(BLOCK);
	memset(buf, 1, BLOCK);
	double pm[100], mc[100], tt[100], wr[100], sc[100];
	for (int i = 0; i < reps; i++)
		pm[i] = t_procmem(fd, addr, len, buf);
	for (int i = 0; i < reps; i++)
		sc[i] = t_scan(pid, addr, len);
	close(fd);
	for (int i = 0; wdir && i < reps; i++)
		wr[i] = t_write(wdir, buf, len);
	munmap(buf, BLOCK);

	char *src = map(len), *dst = map(len);
	memset(src, 0x5a, len);
	memset(dst, 0xa5, len);
	for (int i = 0; i < reps; i++)
		mc[i] = t_memcpy(dst, src, len);
	munmap(src, len);
	munmap(dst, len);
	for (int i = 0; i < reps; i++)
		tt[i] = t_touch(len);
	printf("procmem=%.6f memcpy=%.6f touch=%.6f", median(pm, reps),
	       median(mc, reps), median(tt, reps));
	printf(" write=%.6f scan=%.6f", wdir ? median(wr, reps) : 0.0,
	       median(sc, reps));
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "fill"))
		return cmd_fill(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "bounds"))
		return cmd_bounds(argc, argv);
	fprintf(stderr, "usage: cr fill MIB\n       " BOUNDS_ARGS);
	return 2;
}
