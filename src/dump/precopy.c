/* SPDX-License-Identifier: MIT */
/*
 * Live pre-copy (dump -R): the time a process stays frozen no longer grows
 * with its memory, only with what it writes while being dumped.
 *
 * 1. Arm.  The process makes a userfaultfd: one system call injected into
 *    its leader, stopped for that alone; capcr takes a copy of the
 *    descriptor (pidfd_getfd) and the process closes its own, so nothing of
 *    it stays in its table.  From capcr, every private area is registered
 *    for write protection in async mode (UFFD_FEATURE_WP_ASYNC, Linux 6.7).
 *    In that mode no fault ever reaches anyone: the kernel lifts a page's
 *    protection at its first write and goes on, and PAGEMAP_SCAN reports
 *    the page as written.
 * 2. Copy.  While the process runs, the pages the final dump would save
 *    are write-protected and found by one PAGEMAP_SCAN
 *    (PM_SCAN_WP_MATCHING), then go into its pages file, as they are at
 *    that moment.  An empty entry is left empty: a page made there later
 *    starts unprotected, so it reads as written.
 * 3. The final dump (frozen, mm.c) scans with PAGE_IS_WRITTEN: a page not
 *    written since step 1 is as it was copied in step 2, so its run points
 *    at that copy; everything else (written, new, or not copied) is copied
 *    then.  A page whose area was unmapped, moved or replaced since reads
 *    as written (a new mapping starts unprotected), so nothing stale is
 *    ever taken.
 *
 * Closing capcr's descriptor ends the tracking: the kernel clears the
 * protection of every page and the areas are as they were.  If capcr dies,
 * that happens by itself.  The only window where the process can keep
 * something is capcr killed between the two injected calls (then it holds
 * one extra userfaultfd descriptor); it is as short as two system calls.
 *
 * Not used for a process under a seccomp filter (the injected userfaultfd
 * could kill it), traced by someone else, or on a kernel without async
 * write protection: its memory is then copied while frozen, as without -R.
 */
#define _GNU_SOURCE
#include "precopy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/proc.h"
#include "../ptrace/inject.h"
#include "mm.h"
#include "../pages/track.h"

#define MAX_PROCS 4096

struct pre_run {
	uint64_t start, end, offset;
};

/* An area as smaps showed it at the end of the pre-copy: its line, and
 * the flags only smaps tells (reading smaps walks every page table, some
 * 15 ms per GiB here, too slow for the freeze). */
struct pre_area {
	uint64_t start;
	char *line;
	uint32_t madv;
	int growsdown, noreserve;
};

struct precopy {
	pid_t pid;
	int uffd;    /* capcr's: the tracking lasts while it is open */
	int usable;  /* the copy went through; the final dump may go on */
	int claimed; /* the final dump took the sink */
	struct page_xfer *x;
	struct pre_run *runs;
	size_t nruns, cap;
	struct pre_area *areas;
	size_t nareas; /* 0: not known, the freeze reads smaps */
	uint64_t bytes;
};

struct precopy_set {
	struct precopy *p;
	size_t n;
	uint64_t bytes;
	double ms;
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Under a seccomp filter an injected call may kill the process. */
int precopy_filtered(pid_t pid)
{
	char path[64], buf[4096];
	const char *s;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (proc_read_small(path, buf, sizeof(buf)) < 0)
		return 1;
	s = strstr(buf, "\nSeccomp:");
	return !s || atoi(s + 9) != 0;
}

static int add_pre_run(struct precopy *p, uint64_t start, uint64_t end,
		       uint64_t offset)
{
	struct pre_run *last = p->nruns ? &p->runs[p->nruns - 1] : NULL;

	p->bytes += end - start;
	if (last && last->end == start &&
	    last->offset + (last->end - last->start) == offset) {
		last->end = end;
		return 0;
	}
	if (p->nruns == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct pre_run *n = realloc(p->runs, cap * sizeof(*n));
		if (!n)
			return -1;
		p->runs = n;
		p->cap = cap;
	}
	p->runs[p->nruns++] = (struct pre_run){ start, end, offset };
	return 0;
}

/* Protect one area and copy what the final dump would save of it.  A
 * failure here only leaves the area to the final dump; -2: the writer
 * failed, stop. */
static int copy_area(struct precopy *p, struct dump_ctx *c, int pmfd,
		     const struct smaps_vma *v)
{
	Capcr__VmaKind kind = mm_vma_kind(v);
	struct page_region *runs;
	size_t n;

	if (kind != CAPCR__VMA_KIND__VMA_ANON_PRIVATE &&
	    kind != CAPCR__VMA_KIND__VMA_FILE_PRIVATE)
		return 0;
	/* Not trackable (or gone meanwhile): the final dump copies it. */
	if (track_register(p->uffd, v->start, v->end) < 0)
		return 0;
	/* Only the pages to copy are write-protected, by the scan that
	 * finds them: UFFDIO_WRITEPROTECT of the whole area would put a
	 * marker in every empty entry (async mode implies "unpopulated"),
	 * which a scan reports as swapped and a read fills with the zero
	 * page, and which costs page tables for all of a sparse area. */
	if (mm_scan(c, pmfd, kind, v->start, v->end, MM_SCAN_PROTECT, &runs,
		    &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t at = page_xfer_at(p->x);
		int r = mm_copy(c, p->x, runs[i].start, runs[i].end,
				v->perms[0] == 'r');
		if (r == -2) {
			free(runs);
			return -2;
		}
		/* A run that could not be read (unmapped meanwhile) leaves
		 * unused bytes behind; the final dump copies it. */
		if (!r && add_pre_run(p, runs[i].start, runs[i].end, at) < 0) {
			free(runs);
			return -2;
		}
	}
	free(runs);
	return 0;
}

static void drop_areas(struct precopy *p)
{
	for (size_t i = 0; i < p->nareas; i++)
		free(p->areas[i].line);
	free(p->areas);
	p->areas = NULL;
	p->nareas = 0;
}

/* Every area with its smaps flags, read last, just before the freeze. */
static void record_areas(struct precopy *p)
{
	char path[64], line[4200];
	struct smaps_vma v;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", p->pid);
	if (!(f = fopen(path, "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		if (mm_parse_head(line, &v)) {
			if (p->nareas == cap) {
				size_t c = cap ? 2 * cap : 64;
				struct pre_area *n =
					realloc(p->areas, c * sizeof(*n));
				if (!n)
					goto fail;
				p->areas = n;
				cap = c;
			}
			struct pre_area *a = &p->areas[p->nareas];
			memset(a, 0, sizeof(*a));
			a->start = v.start;
			a->line = strndup(line, strcspn(line, "\n"));
			if (!a->line)
				goto fail;
			p->nareas++;
		} else if (p->nareas && !strncmp(line, "VmFlags:", 8)) {
			struct pre_area *a = &p->areas[p->nareas - 1];
			memset(&v, 0, sizeof(v));
			mm_parse_vmflags(line, &v);
			a->madv = v.madv;
			a->growsdown = v.growsdown;
			a->noreserve = v.noreserve;
		}
	}
	if (!ferror(f)) {
		fclose(f);
		return;
	}
fail:
	fclose(f);
	drop_areas(p);
}

int precopy_area_flags(const struct precopy *p, const char *line,
		       struct smaps_vma *v)
{
	size_t lo = 0, hi = p->nareas, len = strcspn(line, "\n");

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->areas[mid].start < v->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == p->nareas || p->areas[lo].start != v->start ||
	    strlen(p->areas[lo].line) != len ||
	    memcmp(p->areas[lo].line, line, len))
		return 0;
	v->madv = p->areas[lo].madv;
	v->growsdown = p->areas[lo].growsdown;
	v->noreserve = p->areas[lo].noreserve;
	return 1;
}

int precopy_knows_areas(const struct precopy *p)
{
	return p->nareas > 0;
}

static void precopy_one(struct image *img, struct precopy *p)
{
	char path[64], line[4200];
	struct dump_ctx c;
	struct smaps_vma v;
	FILE *maps = NULL;
	int pmfd = -1, r;

	memset(&c, 0, sizeof(c));
	c.pid = p->pid;
	p->uffd = -1;
	if (precopy_filtered(p->pid)) {
		capcr_debug("process %d: no pre-copy (a seccomp filter, or "
			    "its status unreadable)", p->pid);
		return;
	}
	if ((r = track_arm(p->pid, &p->uffd)) < 0) {
		capcr_debug("process %d: no pre-copy (userfaultfd with async "
			    "write protection, Linux 6.7: %s)",
			    p->pid, strerror(-r));
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", p->pid);
	c.memfd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	pmfd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
	maps = fopen(path, "re");
	if (c.memfd < 0 || pmfd < 0 || !maps) {
		capcr_debug("process %d: no pre-copy (%s: %s)", p->pid, path,
			    strerror(errno));
		goto out;
	}
	if (!(p->x = page_xfer_local(img, p->pid, &r)))
		goto out;
	r = 0;
	while (r == 0 && fgets(line, sizeof(line), maps))
		if (mm_parse_head(line, &v))
			r = copy_area(p, &c, pmfd, &v);
	p->usable = r == 0 && !ferror(maps);
	if (p->usable)
		record_areas(p);
	if (!p->usable)
		capcr_debug("process %d: pre-copy given up (%s)", p->pid,
			    c.why[0] ? c.why : "the pages file could not be "
					       "written");
out:
	if (maps)
		fclose(maps);
	if (pmfd >= 0)
		close(pmfd);
	if (c.memfd >= 0)
		close(c.memfd);
}

/* The processes of the tree as they are now, the root first: the tree may
 * change until the final freeze, which finds it exactly. */
size_t precopy_tree(pid_t root, pid_t *out, size_t max)
{
	size_t n = 0;

	out[n++] = root;
	for (size_t i = 0; i < n; i++) {
		char path[96], buf[8192];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
			 out[i], out[i]);
		/* children of the leader thread only: enough for a pre-copy */
		if (proc_read_small(path, buf, sizeof(buf)) < 0)
			continue;
		for (char *s = buf, *e; n < max; s = e) {
			long pid = strtol(s, &e, 10);
			if (e == s)
				break;
			if (pid > 0)
				out[n++] = (pid_t)pid;
		}
	}
	return n;
}

struct precopy_set *precopy_run(struct image *img, pid_t root)
{
	struct precopy_set *s = calloc(1, sizeof(*s));
	pid_t *pids = malloc(MAX_PROCS * sizeof(*pids));
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!s || !pids) {
		free(pids);
		free(s);
		return NULL;
	}
	s->n = precopy_tree(root, pids, MAX_PROCS);
	s->p = calloc(s->n, sizeof(*s->p));
	if (!s->p) {
		s->n = 0;
		free(pids);
		return s;
	}
	for (size_t i = 0; i < s->n; i++) {
		s->p[i].pid = pids[i];
		precopy_one(img, &s->p[i]);
		if (s->p[i].usable)
			s->bytes += s->p[i].bytes;
	}
	free(pids);
	s->ms = ms_since(&t0);
	return s;
}

struct precopy *precopy_find(struct precopy_set *s, pid_t pid)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->p[i].pid == pid && s->p[i].usable && !s->p[i].claimed)
			return &s->p[i];
	return NULL;
}

struct page_xfer *precopy_claim(struct precopy *p)
{
	p->claimed = 1;
	return p->x;
}

int precopy_lookup(const struct precopy *p, uint64_t addr, uint64_t *off,
		   uint64_t *upto)
{
	size_t lo = 0, hi = p->nruns;

	/* the first run ending after addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->runs[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == p->nruns) {
		*upto = UINT64_MAX;
		return 0;
	}
	const struct pre_run *r = &p->runs[lo];
	if (addr < r->start) {
		*upto = r->start;
		return 0;
	}
	*off = r->offset + (addr - r->start);
	*upto = r->end;
	return 1;
}

void precopy_stats(const struct precopy_set *s, uint64_t *bytes, double *ms)
{
	*bytes = s ? s->bytes : 0;
	*ms = s ? s->ms : 0;
}

void precopy_end(struct precopy_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct precopy *p = &s->p[i];
		if (p->uffd >= 0)
			close(p->uffd);
		if (!p->claimed)
			page_xfer_abandon(p->x);
		free(p->runs);
		drop_areas(p);
	}
	free(s->p);
	free(s);
}
