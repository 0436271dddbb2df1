/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: memory.  See crtest.h for the protocol.
 *
 * Areas: private anonymous with a pattern, shared anonymous (still shared
 * with a child after restore), the heap by sbrk (and still growable), a
 * deep stack (and still growable), shared anonymous pages out of the page
 * tables (MADV_DONTNEED) and mapped twice (mremap with old size 0: one
 * object behind both), a private file mapping written in memory (the file
 * unchanged), a shared file mapping (later writes reach the file), a memfd
 * mapping (the same object as the memfd's descriptor, pages written
 * through either),
 * MADV_DONTFORK and MADV_WIPEONFORK areas, pages never touched (still zero
 * and not resident), a PROT_NONE guard page and reservation, an area moved
 * and grown by mremap, and the program's own .data and .bss.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/wait.h>

#include "crtest.h"

#define PG 4096UL

static int gdata = 42;
static unsigned char gbss[3 * PG + 100];

/* ---- the areas ---- */
static unsigned char *priv;    /* 64 pages, seed 1 */
static unsigned char *shanon;  /* 16 pages, seed 2 */
static unsigned char *alias;   /* pages 4..7 of shanon, mapped again */
static unsigned char *heap;    /* sbrk'd, seed 3 */
static size_t heap_len = 5 * PG + 123;
static void *brk_end;
static unsigned char *fpriv;   /* 8 pages of file1, pages 1 and 5 rewritten */
static unsigned char *fshared; /* 8 pages of file2, pages 0..3 written */
static unsigned char *mfdmap;  /* 10 pages of memfd, fd kept; 8, 9 by fd */
static int mfd;
static unsigned char *mfdonly; /* 4 pages of a memfd whose fd is closed */
static unsigned char *dontfork, *wipe; /* 4 pages each, seeds 8, 9 */
static unsigned char *sparse;  /* 256 pages, 0 and 100 written, 200 read */
static unsigned char *guard;   /* 3 pages, the middle one PROT_NONE */
static unsigned char *reserve; /* 16 pages PROT_NONE */
static unsigned char *hidden;  /* 2 pages written, then PROT_NONE */
static unsigned char *moved;   /* 8 pages: mremap'd from 4, page 6 written */
static unsigned char *fixed;   /* 2 pages, mremap'd to a chosen address */

static void *map(size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);
	SETUP(p != MAP_FAILED, "mmap");
	return p;
}

static void make_file(const char *path, size_t len, int seed)
{
	static unsigned char b[16 * PG];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	SETUP(fd >= 0 && len <= sizeof(b), "create file");
	if (seed)
		cr_fill(b, len, (unsigned)seed);
	else
		memset(b, 0, len);
	SETUP(write(fd, b, len) == (ssize_t)len, "write file");
	close(fd);
}

static void setup(void)
{
	gdata = 4242;
	cr_fill(gbss, sizeof(gbss), 20);

	priv = map(64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	cr_fill(priv, 64 * PG, 1);

	shanon = map(16 * PG, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_fill(shanon, 16 * PG, 2);
	/* pages 8, 9: out of the page tables, still in the object */
	SETUP(madvise(shanon + 8 * PG, 2 * PG, MADV_DONTNEED) == 0,
	      "MADV_DONTNEED");
	/* mremap with old size 0: a second mapping of the same pages */
	alias = mremap(shanon + 4 * PG, 0, 4 * PG, MREMAP_MAYMOVE);
	SETUP(alias != MAP_FAILED, "mremap alias");


	make_file(cr_path("file1"), 8 * PG, 5);
	int fd = open(cr_path("file1"), O_RDONLY | O_CLOEXEC);
	SETUP(fd >= 0, "open file1");
	fpriv = map(8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	cr_fill(fpriv + 1 * PG, PG, 51);
	cr_fill(fpriv + 5 * PG, PG, 55);

	make_file(cr_path("file2"), 8 * PG, 0);
	fd = open(cr_path("file2"), O_RDWR | O_CLOEXEC);
	SETUP(fd >= 0, "open file2");
	fshared = map(8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_fill(fshared, 4 * PG, 6);

	mfd = memfd_create("crmem", MFD_CLOEXEC);
	SETUP(mfd >= 0 && ftruncate(mfd, 10 * PG) == 0, "memfd");
	mfdmap = map(10 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	cr_fill(mfdmap, 8 * PG, 7);
	/* pages 8, 9 written through the descriptor only */
	static unsigned char w[2 * PG];
	cr_fill(w, 2 * PG, 18);
	SETUP(pwrite(mfd, w, 2 * PG, 8 * PG) == 2 * PG, "pwrite memfd");

	fd = memfd_create("cronly", MFD_CLOEXEC);
	SETUP(fd >= 0 && ftruncate(fd, 4 * PG) == 0, "memfd 2");
	mfdonly = map(4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_fill(mfdonly, 4 * PG, 17);

	dontfork = map(4 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_fill(dontfork, 4 * PG, 8);
	SETUP(madvise(dontfork, 4 * PG, MADV_DONTFORK) == 0, "MADV_DONTFORK");
	wipe = map(4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	cr_fill(wipe, 4 * PG, 9);
	SETUP(madvise(wipe, 4 * PG, MADV_WIPEONFORK) == 0, "MADV_WIPEONFORK");

	sparse = map(256 * PG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_fill(sparse, PG, 10);
	cr_fill(sparse + 100 * PG, PG, 11);
	volatile unsigned char sink = sparse[200 * PG]; /* the zero page */
	(void)sink;

	guard = map(3 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_fill(guard, PG, 12);
	cr_fill(guard + 2 * PG, PG, 13);
	SETUP(mprotect(guard + PG, PG, PROT_NONE) == 0, "mprotect");
	reserve = map(16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* data the process itself cannot read now: a dump must still save it */
	hidden = map(2 * PG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_fill(hidden, 2 * PG, 17);
	SETUP(mprotect(hidden, 2 * PG, PROT_NONE) == 0, "mprotect");

	unsigned char *a = map(4 * PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_fill(a, 4 * PG, 14);
	/* something next to it, so growing may have to move it */
	unsigned char *blocker = map(PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
				     -1, 0);
	(void)blocker;
	moved = mremap(a, 4 * PG, 8 * PG, MREMAP_MAYMOVE);
	SETUP(moved != MAP_FAILED, "mremap grow");
	cr_fill(moved + 6 * PG, PG, 15);

	unsigned char *b = map(2 * PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_fill(b, 2 * PG, 16);
	unsigned char *target = map(4 * PG, PROT_NONE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fixed = mremap(b, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
		       target + PG);
	SETUP(fixed == target + PG, "mremap fixed");

	/* last: nothing may malloc between this and the check */
	heap = sbrk((intptr_t)heap_len);
	SETUP(heap != (void *)-1, "sbrk");
	cr_fill(heap, heap_len, 3);
	brk_end = sbrk(0);
}

/* ---- checks ---- */

static void check_pattern(const char *what, const void *p, size_t len,
			  unsigned seed)
{
	long off = cr_verify(p, len, seed);
	CHECK(off < 0, "%s: differs from its pattern at byte %ld", what, off);
}

/* Bytes [from, from + len) of an area filled with cr_fill(base, ., seed). */
static void check_pattern_at(const char *what, const unsigned char *base,
			     size_t from, size_t len, unsigned seed)
{
	for (size_t i = from; i < from + len; i++)
		if (base[i] != cr_pat(seed, i)) {
			CHECK(0, "%s: differs from its pattern at byte %zu", what,
			      i);
			return;
		}
}

static void check_zero(const char *what, const void *p, size_t len)
{
	long off = cr_first_nonzero(p, len);
	CHECK(off < 0, "%s: non-zero byte at %ld", what, off);
}

/* Read len bytes of a file at off. */
static unsigned char *file_bytes(const char *path, off_t off, size_t len)
{
	static unsigned char buf[16 * PG];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, buf, len, off) : -1;
	if (fd >= 0)
		close(fd);
	if (!CHECK(n == (ssize_t)len, "%s: read %zd of %zu bytes", path, n,
		   len))
		memset(buf, 0xee, len);
	return buf;
}

static void check_perms(const char *what, const void *addr, const char *want)
{
	char line[4400];
	cr_maps_line(addr, line, sizeof(line));
	const char *sp = strchr(line, ' ');
	CHECK(sp && !strncmp(sp + 1, want, 4),
	      "%s: maps line '%s', want perms %s", what, line, want);
}

/* Run fn in a child; its exit status (or 128+signal). */
static int in_child(int (*fn)(void))
{
	pid_t p = fork();
	int st;
	if (p == 0)
		_exit(fn());
	if (p < 0 || waitpid(p, &st, 0) != p)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int child_fork_semantics(void)
{
	int bad = 0;
	/* MADV_DONTFORK: not mapped here */
	if (msync(dontfork, PG, MS_ASYNC) == 0 || errno != ENOMEM)
		bad |= 1;
	/* MADV_WIPEONFORK: zero here */
	if (cr_first_nonzero(wipe, 4 * PG) >= 0)
		bad |= 2;
	/* shared anonymous memory: the parent sees this */
	shanon[3 * PG + 7] ^= 0xff;
	return bad;
}

/* The children that must die of the kernel's SIGSEGV: a sanitizer's
 * handler (ASan's, in the sanitizer build) would report it and exit 1. */
static int child_touch_guard(void)
{
	signal(SIGSEGV, SIG_DFL);
	*(volatile unsigned char *)(guard + PG) = 1;
	return 0;
}

static int child_touch_reserve(void)
{
	signal(SIGSEGV, SIG_DFL);
	return *(volatile unsigned char *)(reserve + 5 * PG);
}

/* ---- the deep stack ---- */

#define DEPTH 2000
static int stack_bad;

static __attribute__((noinline)) void deep(int d, void (*at_bottom)(void))
{
	volatile unsigned char frame[1000];
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = cr_pat(1000 + (unsigned)d, i);
	if (d > 0)
		deep(d - 1, at_bottom);
	else if (at_bottom)
		at_bottom();
	for (size_t i = 0; i < sizeof(frame); i++)
		if (frame[i] != cr_pat(1000 + (unsigned)d, i)) {
			stack_bad++;
			break;
		}
}

static void wait_at_bottom(void)
{
	cr_ready();
	cr_wait_go();
}

static void checks(void)
{
	/* first: nothing may malloc between the setup and this */
	CHECK(sbrk(0) == brk_end, "heap: sbrk(0) is %p, was %p", sbrk(0),
	      brk_end);
	check_pattern("heap", heap, heap_len, 3);
	unsigned char *more = sbrk(64 * PG);
	if (CHECK(more != (void *)-1, "heap: cannot grow it: %s",
		  strerror(errno))) {
		CHECK(more == brk_end, "heap grew at %p, not at its end %p",
		      (void *)more, brk_end);
		cr_fill(more, 64 * PG, 30);
		check_pattern("heap growth", more, 64 * PG, 30);
		CHECK(sbrk(-(intptr_t)(64 * PG)) != (void *)-1 &&
			      sbrk(0) == brk_end,
		      "heap: cannot shrink it back");
	}

	CHECK(gdata == 4242, ".data: %d, want 4242", gdata);
	check_pattern(".bss", gbss, sizeof(gbss), 20);

	check_pattern("private anonymous", priv, 64 * PG, 1);

	check_pattern("shared anonymous, pages 0-7", shanon, 8 * PG, 2);
	check_pattern_at("shared anonymous, pages 10-15", shanon, 10 * PG,
			 6 * PG, 2);
	CHECK(cr_verify(shanon, 10 * PG, 2) < 8 * (long)PG,
	      "shared anonymous, pages 8-9 (in the object, not in the page "
	      "tables after MADV_DONTNEED): lost (%s)",
	      cr_first_nonzero(shanon + 8 * PG, 2 * PG) < 0 ? "zero"
							  : "wrong");
	CHECK(!memcmp(alias, shanon + 4 * PG, 4 * PG),
	      "shared anonymous mapped twice: the two mappings differ");
	alias[PG + 9] ^= 0x5a;
	CHECK(shanon[5 * PG + 9] == (cr_pat(2, 5 * PG + 9) ^ 0x5a),
	      "shared anonymous mapped twice: a write through one mapping "
	      "does not show in the other (two objects instead of one)");
	alias[PG + 9] ^= 0x5a;

	/* private file mapping: ours changed, the file not */
	for (int p = 0; p < 8; p++) {
		char what[64];
		snprintf(what, sizeof(what), "private file mapping page %d", p);
		if (p == 1 || p == 5)
			check_pattern(what, fpriv + p * PG, PG, 50 + (unsigned)p);
		else
			CHECK(!memcmp(fpriv + p * PG,
				      file_bytes(cr_path("file1"), 0, 8 * PG) +
					      p * PG,
				      PG),
			      "%s: differs from the file", what);
	}
	check_pattern("file1 (under a private mapping) on disk",
		      file_bytes(cr_path("file1"), 0, 8 * PG), 8 * PG, 5);

	/* shared file mapping: the file, before and after */
	check_pattern("shared file mapping", fshared, 4 * PG, 6);
	check_zero("shared file mapping, unwritten part", fshared + 4 * PG,
		   4 * PG);
	check_pattern("file2 (under a shared mapping) on disk",
		      file_bytes(cr_path("file2"), 0, 4 * PG), 4 * PG, 6);
	cr_fill(fshared + 6 * PG, PG, 60);
	msync(fshared, 8 * PG, MS_SYNC);
	check_pattern("file2: a write through the mapping after the restore",
		      file_bytes(cr_path("file2"), 6 * PG, PG), PG, 60);

	/* memfd mapping: same object as the descriptor */
	check_pattern("memfd mapping", mfdmap, 8 * PG, 7);
	long bad = cr_verify(mfdmap + 8 * PG, 2 * PG, 18);
	CHECK(bad < 0,
	      "memfd mapping, pages 8-9 (written through the descriptor, "
	      "never touched through the mapping): %s",
	      cr_first_nonzero(mfdmap + 8 * PG, 2 * PG) < 0 ? "zero"
							     : "wrong");
	static unsigned char b[8 * PG];
	CHECK(pread(mfd, b, 8 * PG, 0) == (ssize_t)(8 * PG) &&
		      cr_verify(b, 8 * PG, 7) < 0,
	      "memfd: its descriptor does not read what the mapping holds");
	cr_fill(mfdmap + 2 * PG, PG, 70);
	CHECK(pread(mfd, b, PG, 2 * PG) == (ssize_t)PG &&
		      cr_verify(b, PG, 70) < 0,
	      "memfd: a write through the mapping after the restore does not "
	      "reach its descriptor (two objects instead of one)");
	cr_fill(b, PG, 71);
	CHECK(pwrite(mfd, b, PG, 3 * PG) == (ssize_t)PG &&
		      cr_verify(mfdmap + 3 * PG, PG, 71) < 0,
	      "memfd: a write to the descriptor after the restore does not "
	      "show in the mapping");
	char line[4400];
	cr_maps_line(mfdmap, line, sizeof(line));
	CHECK(strstr(line, "/memfd:crmem") != NULL,
	      "memfd mapping: maps line '%s' does not name memfd crmem", line);
	check_pattern("memfd mapping without descriptor", mfdonly, 4 * PG, 17);

	/* fork advice */
	char fl[512];
	check_pattern("MADV_DONTFORK area", dontfork, 4 * PG, 8);
	check_pattern("MADV_WIPEONFORK area", wipe, 4 * PG, 9);
	cr_vmflags(dontfork, fl, sizeof(fl));
	CHECK(cr_has_vmflag(fl, "dc"), "MADV_DONTFORK area: VmFlags '%s' "
				       "lack dc", fl);
	cr_vmflags(wipe, fl, sizeof(fl));
	CHECK(cr_has_vmflag(fl, "wf"), "MADV_WIPEONFORK area: VmFlags '%s' "
				       "lack wf", fl);
	int r = in_child(child_fork_semantics);
	CHECK(!(r & 1), "MADV_DONTFORK area is mapped in a child (status %d)",
	      r);
	CHECK(!(r & 2), "MADV_WIPEONFORK area is not zero in a child "
			"(status %d)", r);
	CHECK(r >= 0 && r < 128, "fork child died (status %d)", r);
	CHECK(shanon[3 * PG + 7] == (unsigned char)~cr_pat(2, 3 * PG + 7),
	      "shared anonymous memory is not shared with a child any more");
	shanon[3 * PG + 7] ^= 0xff;

	/* pages never touched: not resident, zero */
	unsigned char vec[256];
	if (CHECK(mincore(sparse, 256 * PG, vec) == 0, "mincore: %s",
		  strerror(errno))) {
		int resident = 0, first = -1;
		for (int i = 0; i < 256; i++)
			if (i != 0 && i != 100 && i != 200 && (vec[i] & 1)) {
				resident++;
				if (first < 0)
					first = i;
			}
		CHECK(!resident,
		      "untouched pages: %d of 253 are resident (first: page "
		      "%d); they were never touched",
		      resident, first);
	}
	check_pattern("sparse area page 0", sparse, PG, 10);
	check_pattern("sparse area page 100", sparse + 100 * PG, PG, 11);
	check_zero("sparse area pages 1..99", sparse + PG, 99 * PG);
	check_zero("sparse area pages 101..255", sparse + 101 * PG, 155 * PG);

	/* PROT_NONE */
	check_perms("guard page", guard + PG, "---p");
	check_perms("page before the guard", guard, "rw-p");
	check_perms("page after the guard", guard + 2 * PG, "rw-p");
	check_pattern("page before the guard", guard, PG, 12);
	check_pattern("page after the guard", guard + 2 * PG, PG, 13);
	r = in_child(child_touch_guard);
	CHECK(r == 128 + SIGSEGV, "touching the guard page: status %d, want "
				  "SIGSEGV",
	      r);
	check_perms("PROT_NONE reservation", reserve, "---p");
	check_perms("PROT_NONE reservation end", reserve + 15 * PG, "---p");
	r = in_child(child_touch_reserve);
	CHECK(r == 128 + SIGSEGV, "touching the reservation: status %d, want "
				  "SIGSEGV",
	      r);

	check_perms("written, then PROT_NONE", hidden, "---p");
	if (CHECK(mprotect(hidden, 2 * PG, PROT_READ) == 0, "mprotect: %s",
		  strerror(errno)))
		check_pattern("written, then PROT_NONE", hidden, 2 * PG, 17);

	/* mremap */
	check_pattern("mremap'd area, old part", moved, 4 * PG, 14);
	check_zero("mremap'd area, page 4-5", moved + 4 * PG, 2 * PG);
	check_pattern("mremap'd area, page 6", moved + 6 * PG, PG, 15);
	check_zero("mremap'd area, page 7", moved + 7 * PG, PG);
	check_perms("mremap'd area end", moved + 7 * PG, "rw-p");
	check_pattern("mremap'd to a fixed address", fixed, 2 * PG, 16);
	check_perms("mremap'd to a fixed address", fixed, "rw-p");
	check_perms("below the fixed mremap", fixed - PG, "---p");
}

int main(void)
{
	cr_init("cr_memory");
	cr_info("set up: private, shared, heap, stack, file private, file "
		"shared, memfd, fork advice, sparse, guard, mremap");
	setup();
	deep(DEPTH, wait_at_bottom);
	CHECK(!stack_bad, "deep stack: %d of %d frames changed", stack_bad,
	      DEPTH + 1);
	checks();
	/* the stack can still grow: deeper than before */
	stack_bad = 0;
	deep(2 * DEPTH, NULL);
	CHECK(!stack_bad, "stack growth: %d frames wrong", stack_bad);
	return cr_done();
}
