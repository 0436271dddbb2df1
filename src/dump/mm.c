/* SPDX-License-Identifier: MIT */
/*
 * Dumping the address space: every mapping from /proc/PID/smaps with its
 * flags, and the pages worth saving, found with the PAGEMAP_SCAN ioctl
 * (ranges, not a word per page) and copied out with process_vm_readv, one
 * copy straight from the target's pages (reading /proc/PID/mem goes
 * through a kernel bounce page: about 0.6 of the speed here), in blocks of
 * 1 MiB that stay in the cache until the image writer has hashed and
 * written them.
 *
 * Saved: present or swapped pages of private anonymous memory (not the
 * shared zero page), the pages of private file mappings that were written
 * (anonymous copies), and the present pages of shared anonymous and memfd
 * mappings.  Not saved: pages of shared file mappings (they are the file),
 * clean pages of private file mappings (the file has them), vDSO and vvar
 * (the kernel makes new ones).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../common/log.h"
#include "dump.h"
#include "mm.h"
#include "mm_flags.h"
#include "precopy.h"
#include "../pages/page_parent.h"

#define SCAN_VEC 512

void mm_parse_vmflags(const char *line, struct smaps_vma *v)
{
	for (const char *p = line + 8; p[0] && p[1]; p++) {
		if (p[0] == ' ' || p[0] == '\n')
			continue;
		char f[3] = { p[0], p[1], 0 };
		p++;
		for (size_t i = 0;
		     i < sizeof(mm_madv_flags) / sizeof(mm_madv_flags[0]); i++)
			if (!strcmp(f, mm_madv_flags[i].vmflag))
				v->madv |= 1u << mm_madv_flags[i].bit;
		if (!strcmp(f, "gd"))
			v->growsdown = 1;
		/* A reservation without backing (ASan's shadow, a runtime's
		 * arena): mapped again the same way, or it would not fit. */
		if (!strcmp(f, "nr"))
			v->noreserve = 1;
	}
}

Capcr__VmaKind mm_vma_kind(const struct smaps_vma *v)
{
	int shared = v->perms[3] == 's';

	if (!strcmp(v->path, "[vdso]"))
		return CAPCR__VMA_KIND__VMA_VDSO;
	if (!strcmp(v->path, "[vvar]"))
		return CAPCR__VMA_KIND__VMA_VVAR;
	if (!strcmp(v->path, "[vvar_vclock]"))
		return CAPCR__VMA_KIND__VMA_VVAR_VCLOCK;
	if (!strcmp(v->path, "[vsyscall]"))
		return CAPCR__VMA_KIND__VMA_VSYSCALL;
	size_t pl = strlen(v->path);
	/* A deleted file cannot be mapped again: keep its pages like
	 * anonymous memory. */
	int deleted = pl > 10 && !strcmp(v->path + pl - 10, " (deleted)");
	if (v->path[0] != '/' || deleted || !strncmp(v->path, "/memfd:", 7) ||
	    !strncmp(v->path, "/dev/zero", 9) ||
	    !strncmp(v->path, "/SYSV", 5))
		return shared ? CAPCR__VMA_KIND__VMA_ANON_SHARED
			      : CAPCR__VMA_KIND__VMA_ANON_PRIVATE;
	return shared ? CAPCR__VMA_KIND__VMA_FILE_SHARED
		      : CAPCR__VMA_KIND__VMA_FILE_PRIVATE;
}

int mm_parse_head(const char *line, struct smaps_vma *v)
{
	uint64_t s, e, off, ino = 0;
	char perms[8];
	int pos = 0;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %" SCNu64
			 "%n",
		   &s, &e, perms, &off, &ino, &pos) < 5)
		return 0;
	memset(v, 0, sizeof(*v));
	v->start = s;
	v->end = e;
	v->pgoff = off;
	v->ino = ino;
	memcpy(v->perms, perms, sizeof(v->perms));
	const char *p = line + pos;
	while (*p == ' ')
		p++;
	snprintf(v->path, sizeof(v->path), "%.*s", (int)strcspn(p, "\n"), p);
	return 1;
}

int mm_scan(struct dump_ctx *ctx, int pmfd, Capcr__VmaKind kind,
	    uint64_t start, uint64_t end, int how,
	    struct page_region **out, size_t *n)
{
	int written = how & MM_SCAN_WRITTEN;
	struct page_region vec[SCAN_VEC];
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.vec = (uintptr_t)vec,
		.vec_len = SCAN_VEC,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED |
			       (written ? PAGE_IS_WRITTEN : 0),
		.flags = how & MM_SCAN_PROTECT
				 ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC
				 : 0,
	};

	*out = NULL;
	*n = 0;
	switch (kind) {
	case CAPCR__VMA_KIND__VMA_ANON_PRIVATE:
		a.category_inverted = a.category_mask = PAGE_IS_PFNZERO;
		break;
	case CAPCR__VMA_KIND__VMA_FILE_PRIVATE:
		/* only the written (anonymous) copies */
		a.category_inverted = a.category_mask =
			PAGE_IS_PFNZERO | PAGE_IS_FILE;
		break;
	default: /* shared memory is saved from its object */
		return 0;
	}
	for (uint64_t pos = start; pos < end;) {
		a.start = pos;
		a.end = end;
		a.walk_end = 0;
		long got = ioctl(pmfd, PAGEMAP_SCAN, &a);
		if (got < 0 && (errno == ENOTTY || errno == EINVAL))
			return DUMP_FAIL(ctx, "PAGEMAP_SCAN failed: %s (capcr "
					      "needs Linux 6.7 or later)",
					 strerror(errno));
		if (got < 0)
			return DUMP_FAIL(ctx, "cannot scan the pages of process "
					      "%d at %#" PRIx64 " (PAGEMAP_SCAN "
					      "of /proc/%d/pagemap): %s",
					 ctx->pid, pos, ctx->pid,
					 strerror(errno));
		struct page_region *nv =
			realloc(*out, (*n + (size_t)got + 1) * sizeof(*nv));
		if (!nv)
			return DUMP_FAIL(ctx, "out of memory");
		*out = nv;
		for (long i = 0; i < got; i++) {
			struct page_region *last = *n ? &(*out)[*n - 1] : NULL;
			/* merge with the previous run when adjacent */
			if (last && last->end == vec[i].start &&
			    !((last->categories ^ vec[i].categories) &
			      (PAGE_IS_WRITTEN | PAGE_IS_PRESENT)))
				last->end = vec[i].end;
			else
				(*out)[(*n)++] = vec[i];
		}
		if (a.walk_end <= pos)
			break;
		pos = a.walk_end;
	}
	return 0;
}

/*
 * len bytes at addr of the target into buf.  process_vm_readv cannot read
 * what the target itself may not (PROT_NONE, execute-only), and stops at a
 * page it cannot pin; /proc/PID/mem reads those (the kernel forces access
 * for a tracer), so it takes over from where the first one stopped.
 */
static int read_target(struct dump_ctx *ctx, char *buf, size_t len,
		       uint64_t addr, int readable)
{
	size_t done = 0;

	if (readable) {
		struct iovec local = { buf, len };
		struct iovec remote = { (void *)(uintptr_t)addr, len };
		ssize_t got = process_vm_readv(ctx->pid, &local, 1, &remote,
					       1, 0);
		if (got > 0)
			done = (size_t)got & ~(PAGE - 1);
	}
	while (done < len) {
		ssize_t got = pread(ctx->memfd, buf + done, len - done,
				    (off_t)(addr + done));
		if (got <= 0)
			return DUMP_FAIL(ctx, "cannot read memory of process "
					      "%d at %#" PRIx64 " (/proc/%d/mem): %s",
					 ctx->pid, addr + done, ctx->pid,
					 got < 0 ? strerror(errno)
						 : "end of file");
		done += (size_t)got;
	}
	return 0;
}

int mm_copy(struct dump_ctx *ctx, struct page_xfer *x, uint64_t start,
	    uint64_t end, int readable)
{
	for (uint64_t a = start; a < end;) {
		size_t room, len;
		char *buf = page_xfer_room(x, &room);
		if (!buf)
			return -2;
		len = end - a < room ? end - a : room;
		if (read_target(ctx, buf, len, a, readable) < 0)
			return -1;
		page_xfer_fill(x, len);
		a += len;
	}
	return 0;
}

/* Copy [start, end) now, into the sink. */
static int copy_now(struct dump_ctx *ctx, struct page_xfer *x,
		    Capcr__Vma *vma, uint64_t start, uint64_t end)
{
	uint64_t at = page_xfer_at(x);
	int r = mm_copy(ctx, x, start, end, vma->prot & PROT_READ);

	if (!r) {
		ctx->pages_bytes += end - start;
		page_xfer_note(ctx->arena, vma, start, (end - start) / PAGE, at);
	}
	return r;
}

/* Whether the run r of area vma must be copied now: written since the
 * pre-copy or the parent, or nothing to take it from.  A page of a
 * private file mapping that is neither present nor swapped but reported
 * is a marker left where a protected page was dropped (MADV_DONTNEED
 * installs one there, not in anonymous memory): it reads as the file
 * now, so it is copied too. */
static int copy_needed(const struct mm_from *from, const Capcr__Vma *vma,
		       const struct page_region *r)
{
	if (!from || (!from->pre && !from->parent))
		return 1;
	if (r->categories & PAGE_IS_WRITTEN)
		return 1;
	return vma->kind == CAPCR__VMA_KIND__VMA_FILE_PRIVATE &&
	       !(r->categories & PAGE_IS_PRESENT);
}

int mm_save_runs(struct dump_ctx *ctx, struct page_xfer *x,
		 const struct mm_from *from, Capcr__Vma *vma,
		 const struct page_region *runs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t a = runs[i].start, end = runs[i].end;
		if (copy_needed(from, vma, &runs[i])) {
			int r = copy_now(ctx, x, vma, a, end);
			/* gone meanwhile: the next dump copies it */
			if (r == -1 && from && from->running) {
				ctx->why[0] = 0;
				continue;
			}
			if (r < 0)
				return r;
			continue;
		}
		while (a < end) {
			uint64_t off = 0, upto;
			int have = from->parent
					   ? page_parent_lookup(from->parent, a,
								&upto)
					   : precopy_lookup(from->pre, a, &off,
							    &upto);
			upto = upto < end ? upto : end;
			if (have && from->parent) {
				ctx->parent_bytes += upto - a;
				page_xfer_note_parent(ctx->arena, vma, a,
						      (upto - a) / PAGE);
			} else if (have) {
				ctx->pages_bytes += upto - a;
				page_xfer_note(ctx->arena, vma, a,
					       (upto - a) / PAGE, off);
			} else {
				int r = copy_now(ctx, x, vma, a, upto);
				if (r == -1 && from->running)
					ctx->why[0] = 0;
				else if (r < 0)
					return r;
			}
			a = upto;
		}
	}
	return 0;
}

Capcr__Vma *mm_new_vma(struct dump_ctx *ctx, const struct smaps_vma *v)
{
	Capcr__Vma *vma = ARENA_NEW(ctx->arena, Capcr__Vma);
	int shared = v->perms[3] == 's';

	capcr__vma__init(vma);
	vma->start = v->start;
	vma->end = v->end;
	vma->prot = (v->perms[0] == 'r' ? PROT_READ : 0) |
		    (v->perms[1] == 'w' ? PROT_WRITE : 0) |
		    (v->perms[2] == 'x' ? PROT_EXEC : 0);
	vma->flags = (shared ? MAP_SHARED : MAP_PRIVATE) |
		     (v->growsdown ? MAP_GROWSDOWN : 0) |
		     (v->noreserve ? MAP_NORESERVE : 0);
	vma->kind = mm_vma_kind(v);
	if (v->path[0] == '/') {
		vma->path = arena_strdup(ctx->arena, v->path);
		vma->has_pgoff = 1;
		vma->pgoff = v->pgoff;
	} else if (v->path[0]) {
		vma->name = arena_strdup(ctx->arena, v->path);
	}
	if (v->ino) {
		vma->has_ino = 1;
		vma->ino = v->ino;
	}
	if (v->madv) {
		vma->has_madv = 1;
		vma->madv = v->madv;
	}
	return vma;
}

/* A shared area's contents come from the object itself, through
 * /proc/PID/map_files, once for all its mappings and descriptors: pages
 * not mapped here (another process's, or written through a descriptor)
 * are kept too. */
static int shared_object(struct dump_ctx *ctx, Capcr__Vma *vma,
			 const struct smaps_vma *v)
{
	char path[96], name[256] = "";
	int fd, idx;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
		 ctx->pid, v->start, v->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return DUMP_FAIL(ctx, "cannot open the shared memory behind "
				      "%#" PRIx64 " in process %d: %s",
				 v->start, ctx->pid, strerror(errno));
	if (!strncmp(v->path, "/memfd:", 7)) {
		snprintf(name, sizeof(name), "%s", v->path + 7);
		char *d = strstr(name, " (deleted)");
		if (d)
			*d = 0;
	}
	idx = shmem_dump(ctx->img, ctx->arena, ctx->files, &ctx->tree->shm, fd,
			 name[0] ? name : NULL, ctx->why, sizeof(ctx->why));
	close(fd);
	if (idx < 0)
		return -1;
	vma->has_shmem = 1;
	vma->shmem = idx;
	/* A SysV segment is attached again with shmat: its inode number is
	 * its id. */
	if (!strncmp(v->path, "/SYSV", 5)) {
		vma->has_sysv_shmid = 1;
		vma->sysv_shmid = (int32_t)v->ino;
	}
	return 0;
}

/* The parent's copy of area vma, if the pages unwritten since may be
 * taken from there: the parent has exactly this area, and its write
 * protection is the tracking's own (registering it again with the same
 * userfaultfd changes nothing; another's makes it fail). */
static const Capcr__Vma *parent_area(const Capcr__Mm *pmm, int uffd,
				     const Capcr__Vma *vma)
{
	const Capcr__Vma *pa;

	if (vma->kind != CAPCR__VMA_KIND__VMA_ANON_PRIVATE &&
	    vma->kind != CAPCR__VMA_KIND__VMA_FILE_PRIVATE)
		return NULL;
	pa = page_parent_area(pmm, vma);
	return pa && track_register(uffd, vma->start, vma->end) == 0 ? pa
								      : NULL;
}

/* The whole text of a /proc file, NUL-terminated, or NULL with errno. */
static char *slurp_proc(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 65536, n = 0;
	char *buf = NULL;

	if (fd < 0)
		return NULL;
	for (;;) {
		if (!buf || cap - n < 4097) {
			char *b = realloc(buf, cap *= 2);
			if (!b)
				goto fail;
			buf = b;
		}
		ssize_t got = read(fd, buf + n, cap - n - 1);
		if (got < 0)
			goto fail;
		if (!got)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = 0;
	*len = n;
	return buf;
fail:;
	int e = errno;
	free(buf);
	close(fd);
	errno = e;
	return NULL;
}

/*
 * The map of areas to read.  smaps walks every page table to count what
 * is resident (some 15 ms per GiB here), so after a pre-copy that read it
 * just before the freeze, the freeze reads /proc/PID/maps instead when
 * every area is as it was then, and takes the flags smaps showed then
 * (*text holds that map).  An area that is new or changed: smaps.
 */
static FILE *open_map(struct dump_ctx *ctx, struct precopy *pre, char **text)
{
	char path[64];
	size_t len;

	*text = NULL;
	snprintf(path, sizeof(path), "/proc/%d/maps", ctx->pid);
	if (pre && precopy_knows_areas(pre) && (*text = slurp_proc(path, &len))) {
		struct smaps_vma v;
		int known = 1;
		for (char *l = *text; known && *l; l += strcspn(l, "\n") + 1)
			known = mm_parse_head(l, &v) &&
				precopy_area_flags(pre, l, &v);
		FILE *f = known ? fmemopen(*text, len, "r") : NULL;
		if (f)
			return f;
		free(*text);
		*text = NULL;
	}
	snprintf(path, sizeof(path), "/proc/%d/smaps", ctx->pid);
	return fopen(path, "re");
}

int dump_mm(struct dump_ctx *ctx)
{
	char path[64], line[4200];
	struct smaps_vma areas[2], *v = &areas[0], *next = &areas[1];
	int have = 0, pmfd, r = -1, w, wfail = 0;
	FILE *f;
	struct page_xfer *x = NULL;
	struct precopy *pre = precopy_find(ctx->tree->pre, ctx->pid);
	int uffd;
	const Capcr__Mm *pmm = page_parent_mm(ctx->tree->parent, ctx->pid,
					      &uffd);
	struct mm_from from = { pre, NULL, 0 };
	char *maps_text = NULL;
	Capcr__Mm *mm = ARENA_NEW(ctx->arena, Capcr__Mm);

	capcr__mm__init(mm);
	ctx->mm = mm;
	f = open_map(ctx, pre, &maps_text);
	if (!f) {
		DUMP_FAIL(ctx, "cannot open the memory map of process %d "
			       "(/proc/%d/smaps): %s", ctx->pid, ctx->pid,
			  strerror(errno));
		pmfd = -1;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", ctx->pid);
	pmfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0) {
		DUMP_FAIL(ctx, "cannot open the page map of process %d "
			       "(%s): %s", ctx->pid, path, strerror(errno));
		goto out;
	}
	/* The pre-copy's sink goes on: what it copied stays where it is,
	 * what changed since is added after it. */
	if (pre) {
		x = precopy_claim(pre);
	} else if (!(x = page_xfer_local(ctx->img, ctx->pid, &r))) {
		r = DUMP_FAIL(ctx, "cannot create pages-%d.img in the image "
				   "directory: %s",
			      ctx->pid, strerror(-r));
		goto out;
	}
	r = 0;
	for (;;) {
		char *ok = fgets(line, sizeof(line), f);
		int head = ok && mm_parse_head(line, next);
		if (head && maps_text)
			precopy_area_flags(pre, line, next);
		if ((head || !ok) && have) {
			/* the previous mapping is complete */
			if (ctx->scratch_mapped && v->start == ctx->scratch) {
				have = 0; /* our own scratch page */
			} else {
				Capcr__Vma *vma = mm_new_vma(ctx, v);
				struct page_region *runs = NULL;
				size_t n = 0;
				if (vma->kind == CAPCR__VMA_KIND__VMA_ANON_SHARED &&
				    shared_object(ctx, vma, v) < 0) {
					r = -1;
					break;
				}
				from.parent = pmm ? parent_area(pmm, uffd, vma)
						  : NULL;
				int c = mm_scan(ctx, pmfd, vma->kind, vma->start,
						vma->end,
						pre || pmm ? MM_SCAN_WRITTEN : 0,
						&runs, &n);
				if (!c)
					c = mm_save_runs(ctx, x, &from, vma, runs,
							 n);
				free(runs);
				if (c < 0) {
					wfail = c == -2;
					r = -1;
					break;
				}
				arena_push(ctx->arena, (void ***)&mm->vmas,
					   &mm->n_vmas, vma);
				have = 0;
			}
		}
		if (!ok) {
			/* The end of the file, or a failed read: a map read
			 * in part would leave areas out of the image. */
			if (ferror(f))
				r = DUMP_FAIL(ctx, "cannot read the memory map of "
						   "process %d (/proc/%d/%s): "
						   "%s", ctx->pid, ctx->pid,
					      maps_text ? "maps" : "smaps",
					      strerror(errno));
			break;
		}
		if (head) {
			struct smaps_vma *t = v;
			v = next;
			next = t;
			have = 1;
		} else if (have && !strncmp(line, "VmFlags:", 8)) {
			mm_parse_vmflags(line, v);
		}
	}
	if (!r && fault_at("mm-pages"))
		r = DUMP_FAIL(ctx, "injected failure at mm-pages");
	w = page_xfer_finish(x);
	if (w < 0 && (!r || wfail))
		r = DUMP_FAIL(ctx, "cannot write the pages image pages-%d.img: "
				   "%s%s", ctx->pid, strerror(-w),
			      w == -ENOSPC ? " (the disk is full)" : "");
	else if (wfail)
		r = DUMP_FAIL(ctx, "cannot write the pages image pages-%d.img",
			      ctx->pid);
out:
	if (f)
		fclose(f);
	free(maps_text);
	if (pmfd >= 0)
		close(pmfd);
	return r;
}
